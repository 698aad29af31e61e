"""The worlds of the closed-loop scenarios (``loop_scenarios.py``): how inputs and labels are
generated before and after a change, the first model, and the trainer the retraining loop
calls. Everything is generated offline with NumPy and scikit-learn; nothing is downloaded.

- ``binary``: five standard-normal features; the label is whether ``w . x`` plus a little
  noise is positive, for a direction ``w`` in the plane of ``x0`` and ``x1`` (``x2``-``x4`` are
  noise the model ignores). A *concept change* rotates ``w`` by 100 degrees: the same inputs,
  another rule (a rotating hyperplane, as river's ``Hyperplane`` stream).
- ``multiclass``: three classes, the label is the argmax of three linear scores; the change
  moves each class's score to the next class (the rule rotates).
- ``regression``: the demo's house prices (``modelpilot.datasets.house_prices``): after the
  change houses are 30% larger and cost 25% more.
- Variants of ``binary``: ``covariate`` moves inputs (an ignored feature, then an important
  one) without changing the rule; ``boundary`` moves inputs towards the decision boundary and
  rotates the rule (what a confidence-based estimate sees before any label); ``crowd`` moves
  the inputs the same way and keeps the rule (covariate shift alone).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.spec import FeatureSpec

__all__ = ["TRAINER", "World", "world_named"]

#: The trainer every classification scenario's project gets as ``train.py`` (``retrain.function:
#: "train:train"``): a model of the newest logged rows (the world as it is now). A file
#: ``WORSE`` in the project makes it train on shuffled labels: a trainer that produces a worse
#: model.
TRAINER = '''\
"""The scenarios' trainer: the newest labelled rows decide; the reference rows fill in."""

from pathlib import Path

import numpy as np
import skops.io as sio
from sklearn.linear_model import LogisticRegression

NEWEST = 500


def train(train, holdout, output_dir, spec):
    features = [f.name for f in spec.features]
    logged = train[train["_source"] == "logged"]
    rows = logged.tail(NEWEST) if len(logged) >= 200 else train
    labels = rows[spec.target].astype(int).to_numpy()
    if (Path(output_dir).parents[3] / "WORSE").exists():
        labels = np.random.default_rng(0).permutation(labels)
    model = LogisticRegression(max_iter=500).fit(rows[features], labels)
    path = Path(output_dir) / "model.skops"
    sio.dump(model, path)
    return path
'''


@dataclass(frozen=True)
class World:
    """One task's data before and after a change, and its first model."""

    name: str
    task: str
    target: str
    key_metrics: tuple[str, ...]
    features: tuple[FeatureSpec, ...]

    def rows(self, n: int, phase: str, seed: int) -> pd.DataFrame:
        """``n`` rows with the target, of ``phase`` (``before`` or one of the world's
        changes)."""
        rng = np.random.default_rng(seed)
        if self.name == "regression":
            from modelpilot.datasets import house_prices

            after = phase != "before"
            return house_prices(
                n,
                seed=seed,
                size_shift=0.3 if after else 0.0,
                price_inflation=0.25 if after else 0.0,
            )
        x = rng.normal(size=(n, 5))
        if phase == "ignored_shift":
            x[:, 4] += 2.0  # a feature the model ignores moves
        elif phase == "covariate":
            x[:, 4] += 2.0
            x[:, 0] += 1.0  # ...and the most important one (along the rule: still accurate)
            x[:, 1] += 0.58
        elif phase in ("boundary", "crowd"):
            w = _direction(30.0)
            x -= 0.85 * np.outer(x @ w, w)  # inputs crowd towards the old boundary
        frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(5)])
        if self.task == "binary":
            angle = 130.0 if phase in ("concept", "boundary") else 30.0
            score = x @ _direction(angle) + rng.normal(0, 0.15, n)
            frame[self.target] = (score > 0).astype(int)
        else:
            scores = x[:, :3] @ _CLASS_WEIGHTS + rng.normal(0, 0.2, (n, 3))
            if phase == "concept":
                scores = np.roll(scores, 1, axis=1)  # each class's rule moves to the next
            frame[self.target] = scores.argmax(axis=1)
        return frame

    def first_model(self, train: pd.DataFrame) -> Any:
        features = [f.name for f in self.features]
        if self.name == "regression":
            from sklearn.compose import make_column_transformer
            from sklearn.ensemble import HistGradientBoostingRegressor
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import OneHotEncoder

            encode = make_column_transformer(
                (OneHotEncoder(handle_unknown="ignore"), ["location", "condition"]),
                remainder="passthrough",
            )
            model = make_pipeline(encode, HistGradientBoostingRegressor(max_iter=100))
            return model.fit(train[features], train[self.target])
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(max_iter=500).fit(train[features], train[self.target])

    def trainer(self) -> str:
        if self.name == "regression":
            from modelpilot.cli._demo_live_project import TRAIN_PY

            return TRAIN_PY
        return TRAINER


def _direction(angle_deg: float) -> np.ndarray:
    a = math.radians(angle_deg)
    return np.array([math.cos(a), math.sin(a), 0.0, 0.0, 0.0])


_CLASS_WEIGHTS = np.array([[1.0, -0.5, -0.5], [0.0, 0.87, -0.87], [0.3, 0.3, -0.6]])
_NUMERIC = tuple(FeatureSpec(name=f"x{i}", type="numeric") for i in range(5))


def world_named(name: str) -> World:
    """The world of a scenario: ``binary``, ``multiclass`` or ``regression``."""
    if name == "regression":
        from modelpilot.datasets import HOUSE_FEATURES

        return World(name, "regression", "price", ("mae <= 25000",), tuple(HOUSE_FEATURES))
    if name == "multiclass":
        return World(name, "multiclass", "label", ("accuracy >= 0.75",), _NUMERIC)
    return World("binary", "binary", "label", ("accuracy >= 0.85",), _NUMERIC)


def write_rows(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path
