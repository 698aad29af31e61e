"""Turning a model's raw output into prediction records: one shape for batch and online."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from modelpilot.runtime import ModelRuntime
from modelpilot.runtime._protocol import ModelInput
from modelpilot.store import output_columns

__all__ = ["ModelOutput", "run_model"]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


@dataclass
class ModelOutput:
    """Predictions of one batch, with class probabilities and confidence when the model has them."""

    predictions: np.ndarray
    proba: np.ndarray | None
    classes: list[Any] | None

    @property
    def confidence(self) -> np.ndarray | None:
        """The top class probability (None for models without probabilities)."""
        return None if self.proba is None else self.proba.max(axis=1)

    def records(self) -> list[dict[str, Any]]:
        """One ``{"prediction": ..., "probabilities": {...}, "confidence": ...}`` per row."""
        preds = [_plain(v) for v in self.predictions.tolist()]
        if self.proba is None or self.classes is None:
            return [{"prediction": p} for p in preds]
        names = [str(c) for c in self.classes]
        confidence = self.proba.max(axis=1).tolist()
        return [
            {"prediction": p, "probabilities": dict(zip(names, row, strict=True)), "confidence": c}
            for p, row, c in zip(preds, self.proba.tolist(), confidence, strict=True)
        ]

    def columns(self) -> dict[str, Any]:
        """Output columns for a scored file: ``prediction``, ``proba_<class>``, ``confidence``."""
        return output_columns(self.predictions, self.proba, self.classes)


def run_model(runtime: ModelRuntime, frame: ModelInput, *, task: str | None) -> ModelOutput:
    """Call the model, vectorised over the batch (once, where the runtime can give both
    predictions and probabilities from one call)."""
    both = getattr(runtime, "predict_with_proba", None) if task != "regression" else None
    if both is not None:
        predictions, proba = both(frame)
        predictions = np.asarray(predictions)
    else:
        predictions = np.asarray(runtime.predict(frame))
        proba = runtime.predict_proba(frame) if task != "regression" else None
    return ModelOutput(predictions, proba, runtime.classes if proba is not None else None)
