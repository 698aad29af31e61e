"""The project of `modelpilot demo`'s live story: short intervals, alert rules with actions,
automation, retraining, and the trainer the retraining calls (``_demo_live.py`` runs the story).
"""

from __future__ import annotations

from pathlib import Path

from modelpilot.spec import replace_section

__all__ = ["TRAIN_PY", "configure_live"]

#: The trainer the retraining loop calls (written into the demo project as train.py).
TRAIN_PY = '''\
"""The demo's trainer: modelpilot calls train(train, holdout, output_dir, spec).

`train` holds the original training rows (_source == "reference") and the logged houses with
their true prices (_source == "logged"). Prices moved, so the old rows are first restated in
today's prices (a price index measured on the newest logged rows), then the model is refit.
"""

import numpy as np
import pandas as pd
import skops.io as sio
from sklearn.compose import make_column_transformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder


def _model():
    encode = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["location", "condition"]),
        remainder="passthrough",
    )
    return make_pipeline(encode, HistGradientBoostingRegressor(max_iter=100, random_state=0))


def train(train, holdout, output_dir, spec):
    features = [f.name for f in spec.features]
    target = spec.target
    old = train[train["_source"] == "reference"]
    new = train[train["_source"] == "logged"]
    base = _model().fit(old[features], old[target])
    recent = new.tail(150)  # the newest labels: after the drift, not before it
    index = 1.0
    if len(recent):
        index = float(np.median(recent[target] / base.predict(recent[features])))
    restated = old.assign(**{target: old[target] * index})
    both = pd.concat([restated, new], ignore_index=True)
    model = _model().fit(both[features], both[target])
    path = output_dir / "retrained.skops"
    sio.dump(model, path)
    return path
'''

_LIVE_SECTIONS = {
    "service_objectives": """service_objectives:
  latency_p99_ms: 2000      # generous: the demo shares a small machine with its own load
  error_rate: 0.05
  throughput_rps: 20""",
    "rollout": """# Demo: short steps. After concept drift a better model *should* answer
# differently from the old one: the agreement and prediction-shift gates are proxies, judged
# against what the retraining run measured offline, and the labels (key_metric) rank above them.
rollout:
  steps: [25, 50, 100]
  step_interval_s: 4
  analysis_interval_s: 1
  failure_limit: 2
  shadow_s: 5
  gates:
    - {metric: error_rate, threshold: 0.02, min_samples: 20}
    - {metric: latency_p99, threshold: 3.0, min_samples: 20, slack: 200}
    - {metric: prediction_shift, threshold: 0.2, min_samples: 20}
    - {metric: agreement, threshold: 0.8, min_samples: 20}
    - {metric: key_metric, threshold: 0.05, min_samples: 20}""",
    "monitoring": """monitoring:
  interval_s: 1
  label_window: 100
  drift: {interval_s: 2, every_n_predictions: 100, window_s: 8, min_rows: 80}""",
    "alerts": """alerts:
  action_cooldown_s: 600
  rules:
    - name: key_metric_mae
      metric: key_metric
      labels: {metric: mae}
      comparison: ">"
      threshold: 25000
      aggregate: last
      for_s: 5              # sustained: the retraining then has enough post-drift labels
      severity: critical
      actions: [lower_automation, retrain]
    - {name: drift_share, metric: drift_share, comparison: ">=", threshold: 0.3,
       aggregate: last}""",
    "automation": """automation:
  degree: full
  threshold: 0.5
  ladder: propose
  lower_on_alerts: true""",
    "retrain": """retrain:
  function: "train:train"
  min_new_labels: 100
  cooldown_s: 600
  window_s: 600
  deploy: shadow-canary     # shadow first, then a canary promoted by the gates
  auto: true""",
}


def configure_live(root: Path) -> None:
    """Give the demo project the live story's settings and its trainer."""
    path = root / "modelpilot.yaml"
    text = path.read_text(encoding="utf-8")
    for key, block in _LIVE_SECTIONS.items():
        text = replace_section(text, key, block)
    path.write_text(text, encoding="utf-8")
    (root / "train.py").write_text(TRAIN_PY, encoding="utf-8")
