"""The commented project file `modelpilot init` writes, and in-place edits of its schema."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from modelpilot.spec._base import Task
from modelpilot.spec._loader import parse_project
from modelpilot.spec._schema import FeatureSpec

_DEFAULT_METRICS: dict[str, list[str]] = {
    "regression": ["mae <= 25000", "r2 >= 0.8"],
    "binary": ["accuracy >= 0.9", "roc_auc >= 0.85"],
    "multiclass": ["accuracy >= 0.9", "f1_macro >= 0.85"],
}


def _round(value: float) -> float:
    """Two significant digits: a target a person would write."""
    return float(f"{value:.2g}")


def propose_key_metrics(task: Task, *, labels: Sequence[Any] | None = None) -> list[str]:
    """Key metrics that fit the task and, given the training labels, their scale.

    Regression: R^2 (scale-free) and, with labels, an MAE at most half that of always
    predicting the median. Classification: ROC AUC and, with labels, an accuracy halfway from
    always predicting the most common class to perfect (with 90% of one class, 0.95).

    Examples
    --------
    >>> propose_key_metrics("regression")
    ['r2 >= 0.7']
    >>> propose_key_metrics("regression", labels=[100.0, 200.0, 300.0, 400.0, 1000.0])
    ['mae <= 110', 'r2 >= 0.7']
    >>> propose_key_metrics("binary", labels=[0, 0, 0, 1])
    ['accuracy >= 0.88', 'roc_auc >= 0.8']
    """
    if task == "regression":
        if not labels:
            return ["r2 >= 0.7"]
        values = sorted(float(v) for v in labels)
        median = values[len(values) // 2]
        baseline = sum(abs(v - median) for v in values) / len(values)
        return [f"mae <= {_round(baseline / 2):g}", "r2 >= 0.7"] if baseline > 0 else ["r2 >= 0.7"]
    second = "roc_auc >= 0.8" if task == "binary" else "f1_macro >= 0.7"
    if not labels:
        return ["accuracy >= 0.8", second]
    counts: dict[Any, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    majority = max(counts.values()) / len(labels)
    return [f"accuracy >= {min(_round(majority + (1 - majority) / 2), 0.99):g}", second]


TEMPLATE = """\
# modelpilot project file: the scoping stage of the ML lifecycle, written down.
# Every command reads it. Relative paths are relative to this file.

project: {project}          # the project's name; also the registered model's name by default
task: {task}          # regression | binary | multiclass
target: {target}            # the column that holds the label in training and evaluation data

# The input schema. One entry per feature:
#   type: numeric | categorical | boolean | text
#   range: [low, high]            (numeric only) values outside are rejected at scoring time
#   categories: [a, b, ...]       (categorical only) other values are reported as unseen
#   nullable: true                missing values are allowed
#   pii: true                     stored keyed-hashed (or dropped) in the prediction log
# `modelpilot data check FILE --target {target} --write-schema` fills this in from your data.
features:{features}

# Key metrics and the targets a model version must reach to be deployed. A version that misses
# one is registered as `rejected`. Write 'metric <= target' or {{name: ..., op: ..., target: ...}}.
key_metrics:
{metrics}

# Software service-level objectives of the online service.
service_objectives:
  latency_p99_ms: 100       # 99th percentile of request latency
  error_rate: 0.01          # share of requests that fail
  throughput_rps: 100       # requests per second the service must sustain

# Data checks before training (`modelpilot data check`). A failed check listed under
# `blocking` makes the command exit non-zero; the others are warnings.
data_checks:
  max_missing_rate: 0.05            # per column, unless the feature is nullable
  max_duplicate_rate: 0.05          # share of rows that repeat an earlier row
  max_label_conflict_rate: 0.0      # share of rows whose identical features carry other labels
  regression_label_tolerance: 0.1   # regression: relative spread of labels for identical rows
  min_minority_share: 0.05          # classification: share of the rarest class
  max_out_of_range_rate: 0.0        # share of values outside the declared range
  max_unseen_category_rate: 0.0     # share of values not among the declared categories
  blocking: [label_consistency, schema, missing_values]

# Where metadata (SQLite by default; any SQLAlchemy URL such as postgresql+psycopg://...)
# and model artifacts are kept.
store:
  database_url: sqlite:///.modelpilot/modelpilot.db
  artifacts: .modelpilot/artifacts

# The prediction log. durable: true answers a request only after its record is committed.
# backend: sql keeps it in the metadata database; backend: delta keeps it as Delta Lake
# tables (delta.uri: s3://bucket/prefix or a directory; docs/scale-out.md).
logging:
  backend: sql
  durable: false
  pii: hash                 # hash | drop: what to store for features marked pii
  flush_interval_ms: 50     # the background writer commits at least this often
  compact_interval_s: 300   # the server merges small log segments this often (0 = never)

# The online server (`modelpilot serve`). Predict calls need a token unless open_predict is
# true; admin calls always do. Tokens: `modelpilot token create NAME --role predict|admin`,
# or the MODELPILOT_PREDICT_TOKEN / MODELPILOT_ADMIN_TOKEN environment variables.
serving:
  host: 127.0.0.1
  port: 8000
  workers: 1
  max_batch_size: 64        # micro-batching: concurrent requests share one model call
  max_wait_ms: 0            # 0 = adaptive (no added latency); > 0 holds a batch for more
  max_body_bytes: 1048576   # larger request bodies get 413
  open_predict: false
  drain_s: 0                # behind a load balancer: seconds to keep serving after SIGTERM

# Deployment patterns (`modelpilot deploy NAME --version V --strategy canary|shadow|...`).
# A canary ramps through `steps` (percent of traffic), each held `step_interval_s`; every
# `analysis_interval_s` the gates compare the candidate with the primary, and `failure_limit`
# failed analyses roll it back. Passing every step promotes it (the production alias moves).
rollout:
  steps: [5, 25, 50, 100]
  step_interval_s: 600
  analysis_interval_s: 10
  failure_limit: 2
  gates:
    - {{metric: error_rate, threshold: 0.02, min_samples: 50}}        # max increase
    - {{metric: latency_p99, threshold: 2.0, min_samples: 50, slack: 10}}  # max ratio
    - {{metric: prediction_shift, threshold: 0.2, min_samples: 50}}   # max KS / TV distance
    - {{metric: agreement, threshold: 0.8, min_samples: 30}}          # min agreement
    - {{metric: key_metric, threshold: 0.05, min_samples: 30}}        # sequential test alpha
  blue_green_window_s: 600  # the old version stays loaded this long for instant rollback

# What the server measures every `interval_s` and keeps for the dashboard and the alert rules;
# drift checks compare the last `window_s` of logged inputs (and predictions) with the
# production version's reference profile every `interval_s` or `every_n_predictions`.
monitoring:
  enabled: true             # false: no live metrics (/metrics is empty) and no monitor
  interval_s: 10
  label_window: 500         # key metrics over the last N labelled predictions
  drift: {{interval_s: 60, every_n_predictions: 1000, window_s: 3600, min_rows: 200,
          importance_share: 0.3}}

# Alert rules on the measurements above (`modelpilot alerts`, GET /v1/alerts). With
# `defaults: true` you get: p99 latency and error rate above service_objectives for 5 minutes,
# each key metric missing its target over the last `label_window` labels (for classifiers also
# its estimate from calibrated probabilities, before labels arrive), drifted features carrying
# drift.importance_share of the model's importance, concept drift, and a shadow candidate
# agreeing with production less than the agreement gate requires. A rule of yours with the same
# name (latency_p99, error_rate, key_metric_<name>, estimated_key_metric_<name>,
# drift_importance, concept_drift, shadow_agreement) replaces a default.
# A rule fires once `aggregate` (mean | max | min | last) of the last `window_s` has been
# `comparison threshold` for `for_s`; it resolves once the value is back past
# `clear_threshold` (default: threshold) for `clear_for_s`. Actions: rollback_canary,
# lower_automation, retrain (one without a handler is reported "not available yet").
alerts:
  defaults: true
  action_cooldown_s: 1800   # least time between two runs of one action on one deployment
  notifiers:
    - {{kind: log}}
    # - {{kind: webhook, url: "https://hooks.example.com/modelpilot", timeout_s: 5, retries: 3}}
    # - {{kind: command, command: "/usr/local/bin/page-oncall", timeout_s: 10}}
  # rules:
  #   - name: slow_canary
  #     metric: latency_p99_ms
  #     labels: {{}}              # only series with these labels, e.g. {{feature: size}}
  #     comparison: ">"
  #     threshold: 250
  #     aggregate: mean
  #     window_s: 60
  #     for_s: 120
  #     clear_threshold: 200
  #     clear_for_s: 300
  #     severity: critical      # info | warning | critical
  #     annotations: {{team: ml, runbook: "https://wiki.example.com/slow"}}
  #     actions: [rollback_canary]

# Degrees of automation (human | shadow | assist | partial | full). In `partial` the model decides
# when its confidence reaches `threshold` (classifiers: probability margin; regressors: how
# typical the input is of the training data) and defers the rest to the review queue. The
# ladder proposes (or, with `auto`, applies) the next degree when people agree with the model
# often enough; the `lower_automation` alert action steps one rung down.
automation:
  degree: full
  threshold: 0.8
  ladder: propose           # off | propose | auto
  lower_on_alerts: true

# The retraining loop: a command (or module:function) that trains on the data modelpilot
# exports ($MODELPILOT_TRAIN_DATA, $MODELPILOT_HOLDOUT_DATA) and writes one artifact into
# $MODELPILOT_OUTPUT_DIR. Triggers: the `retrain` alert action, `schedule_s`, `modelpilot
# retrain`. A new version that passes its targets and beats production is deployed with
# `deploy` when `auto` is true; the rollout's gates then promote it or roll it back.
retrain:
  # command: python train.py
  min_new_labels: 200
  cooldown_s: 21600
  deploy: canary            # none | shadow | canary | shadow-canary
  auto: false

# `modelpilot score` checks an input file before reading it: older than `max_age_hours`
# (its modification time) is stale; a row count outside `volume_ratio` times the median of the
# model's last `history_runs` successful runs is unusual. A failed check stops the command
# (exit code 2) when `blocking`, unless --skip-checks.
batch_checks:
  max_age_hours: 24         # null: no age check
  volume_ratio: [0.5, 2.0]
  history_runs: 10
  min_history_runs: 3       # fewer earlier runs: the volume check waits
  blocking: true

# Named endpoints. Without this section there is one, named after the model, bound to the
# version its `production` alias points to. `steps` make a deployment a pipeline: each runs
# on every micro-batch before the model and reports its own latency, errors and null outputs.
# A function step is a DataFrame -> DataFrame function of a module in this directory; a model
# step adds its prediction as a column named after the step.
# deployments:
#   - {{name: house-prices, model: house-prices, alias: production}}
#   - name: house-prices-cleaned
#     model: house-prices-v2
#     steps:
#       - {{name: clean, function: "features:clean"}}
#       - {{name: estimate, model: "house-prices@production"}}
"""


def render_project(
    *,
    project: str,
    task: Task,
    target: str,
    features: Sequence[FeatureSpec] = (),
    key_metrics: Sequence[str] | None = None,
) -> str:
    """The text of a new, commented project file; it always validates.

    Examples
    --------
    >>> text = render_project(project="houses", task="regression", target="price")
    >>> parse_project(text).key_metrics[0].name
    'mae'
    """
    metrics = list(key_metrics) if key_metrics is not None else _DEFAULT_METRICS[task]
    text = TEMPLATE.format(
        # Quoted when YAML would read them as something else: a project in a directory named
        # 2024, or a target column called `on`, must stay a string.
        project=_scalar(project),
        task=task,
        target=_scalar(target),
        features=render_features(features),
        metrics="\n".join(f"  - {m}" for m in metrics) if metrics else "  []",
    )
    parse_project(text)  # never write a file we would refuse to read
    return text


def render_features(features: Sequence[FeatureSpec]) -> str:
    """The YAML block of a feature list, one flow mapping per feature."""
    if not features:
        return " []"
    lines = []
    for feature in features:
        data = feature.model_dump(exclude_defaults=True)
        data.pop("name")
        body = yaml.safe_dump(data, default_flow_style=True, width=10_000, sort_keys=False).strip()
        body = body.strip("{}").strip()
        lines.append(f"  - {{name: {_scalar(feature.name)}, {body}}}")
    return "\n" + "\n".join(lines)


def _scalar(value: str) -> str:
    return yaml.safe_dump(value, default_style=None).strip().removesuffix("\n...").strip()


def replace_section(text: str, key: str, block: str) -> str:
    r"""Replace the top-level ``key:`` section of a project file's text (comments elsewhere stay).

    ``block`` is the new section, starting with ``key:``. A missing section is appended.

    Examples
    --------
    >>> replace_section("a: 1\nb:\n  c: 2\n# next\nd: 3\n", "b", "b: {c: 5}")
    'a: 1\nb: {c: 5}\n# next\nd: 3\n'
    """
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.startswith(f"{key}:")), None)
    block = block.rstrip("\n") + "\n"
    if start is None:
        return "".join(lines).rstrip("\n") + "\n\n" + block
    end = start + 1
    # The section goes on while lines are indented, list items or blank; a top-level key or a
    # column-0 comment (the next section's) ends it. Blank lines before that stay in place.
    while end < len(lines) and (not lines[end].strip() or lines[end][0] in " \t-"):
        end += 1
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    return "".join(lines[:start]) + block + "".join(lines[end:])


def write_features(path: Path, features: Sequence[FeatureSpec]) -> None:
    """Replace the ``features:`` block of a project file in place, keeping its comments."""
    text = path.read_text(encoding="utf-8")
    new_text = replace_section(text, "features", "features:" + render_features(features))
    parse_project(new_text, source=path.name)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(new_text, encoding="utf-8")
    tmp.replace(path)
