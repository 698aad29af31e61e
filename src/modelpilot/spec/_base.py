"""What the other parts of the project file's model share: tasks, metric names, strictness."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Task = Literal["regression", "binary", "multiclass"]
FeatureType = Literal["numeric", "categorical", "boolean", "text"]
Comparison = Literal["<=", ">=", "<", ">"]
#: The data checks, in the order a report lists them.
CheckName = Literal[
    "schema",
    "missing_values",
    "constant_columns",
    "duplicate_rows",
    "label_consistency",
    "class_balance",
    "out_of_range",
    "unseen_categories",
]

#: Metrics modelpilot can compute offline and online, with the direction that is better.
METRICS: dict[str, Literal["lower", "higher"]] = {
    "mae": "lower",
    "rmse": "lower",
    "mse": "lower",
    "mape": "lower",
    "r2": "higher",
    "accuracy": "higher",
    "balanced_accuracy": "higher",
    "f1": "higher",
    "f1_macro": "higher",
    "precision": "higher",
    "recall": "higher",
    "roc_auc": "higher",
    "log_loss": "lower",
}
REGRESSION_METRICS = frozenset({"mae", "rmse", "mse", "mape", "r2"})


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
