"""One drift check of a deployment: its recent logged inputs and predictions against the
production version's reference profile.

The monitor records each check as points (``drift_score``, ``drift_detected``, ...); the
dashboard's drift detail runs one on request, to draw the distributions behind those numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from modelpilot.drift import DriftReference, DriftReport, FeatureDrift, compare
from modelpilot.inference import Deployment
from modelpilot.project import Project

__all__ = ["DriftCheck", "DriftChecker"]


@dataclass(frozen=True)
class DriftCheck:
    """The report on the inputs and the verdict on the predictions, or ``reason`` why there
    is none (no reference profile, too few predictions)."""

    version: int
    rows: int
    report: DriftReport | None
    prediction: FeatureDrift | None
    reason: str = ""
    #: The window's answered predictions (what the performance estimate reads too).
    frame: pd.DataFrame | None = None


@dataclass
class _References:
    version: int
    inputs: DriftReference | None
    predictions: DriftReference | None


class DriftChecker:
    """Runs drift checks; the references are prepared once per production version."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.settings = project.spec.monitoring.drift
        self._references: dict[str, _References] = {}

    def references(self, deployment: Deployment) -> _References:
        version = deployment.primary.version
        known = self._references.get(deployment.name)
        if known is not None and known.version == version.version:
            return known
        inputs = predictions = None
        profile = version.profile
        if profile.get("features"):  # registered without --data: nothing to compare with
            inputs = DriftReference.from_profile(profile, features=version.features)
            target = profile.get("target")
            if target:
                # The predictions' reference is the training labels' distribution: a model
                # whose outputs leave it is seeing different inputs or has broken, labels or not.
                renamed = {
                    "features": {"prediction": {k: v for k, v in target.items() if k != "name"}}
                }
                predictions = DriftReference.from_profile(renamed)
        found = _References(version.version, inputs, predictions)
        self._references[deployment.name] = found
        return found

    def check(self, deployment: Deployment, now: float) -> DriftCheck:
        """Compare the last ``monitoring.drift.window_s`` of logged, answered predictions."""
        settings = self.settings
        references = self.references(deployment)
        version = deployment.primary.version
        if references.inputs is None:
            reason = f"v{version.version} was registered without --data: no reference profile"
            return DriftCheck(version.version, 0, None, None, reason)
        frame = self.project.prediction_log.window(
            model=version.name,
            version=version.version,
            start=now - settings.window_s,
        )
        # The inputs the version met, online and on devices (synced edge logs); a shadow's
        # copies repeat online requests.
        frame = frame[frame["source"].isin(("online", "edge"))] if len(frame) else frame
        if "error" in frame:
            frame = frame[frame["error"].isna()]
        if len(frame) < settings.min_rows:
            reason = (
                f"{len(frame)} predictions in the last {settings.window_s:g} s; a drift check "
                f"needs monitoring.drift.min_rows = {settings.min_rows}"
            )
            return DriftCheck(version.version, len(frame), None, None, reason)
        features = [f.name for f in version.features if f.name in frame]
        report = compare(
            references.inputs,
            frame[features],
            features=version.features,
            correction=settings.correction,
            dataset_threshold=settings.dataset_threshold,
        )
        prediction = None
        if references.predictions is not None and "prediction" in frame:
            predictions = frame[["prediction"]].dropna()
            if len(predictions) >= settings.min_rows:
                prediction = compare(references.predictions, predictions).features[0]
        return DriftCheck(version.version, len(frame), report, prediction, frame=frame)
