"""Edge traffic in the time series: per device, what it uploaded, dropped, and its drift.

After each upload the server writes points for the device (``edge_predictions``: rows
uploaded, ``edge_dropped_predictions``: the device's count of records its log had to drop),
and at most every ``monitoring.drift.interval_s`` per device compares the device's last
``drift.window_s`` of synced inputs with the version's reference profile, as the monitor does
for online traffic (``edge_drift_share``, ``edge_drift_score`` per feature). The dashboard and
alert rules read them like any series, by the ``device`` label. Labels stay bounded: the first
``MAX_LABELLED_DEVICES`` devices of a deployment (by first sight) have their own; the others
share ``device="(other)"``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from modelpilot.drift import DriftReference, compare
from modelpilot.edge._fleet_store import FleetStore
from modelpilot.monitoring import Point, TimeSeriesStore, format_labels
from modelpilot.project import Project

__all__ = ["MAX_LABELLED_DEVICES", "DevicePoints"]

MAX_LABELLED_DEVICES = 50
OTHER = "(other)"


class DevicePoints:
    """Writes the per-device points of edge uploads (see the module's docstring)."""

    def __init__(self, project: Project, *, clock: Callable[[], float] = time.time) -> None:
        self.project = project
        self.clock = clock
        self.series = TimeSeriesStore(project.engine, clock=clock)
        self.store = FleetStore(project.engine)
        self._last_drift: dict[tuple[str, str], float] = {}
        self._references: dict[tuple[str, int], DriftReference | None] = {}
        self._lock = threading.Lock()

    def label(self, deployment: str, device: str) -> str:
        rank = self.store.rank(deployment, device)
        return device if rank is not None and rank < MAX_LABELLED_DEVICES else OTHER

    def after_upload(
        self, deployment: str, model: str, device: str, *, uploaded: int, dropped: int
    ) -> list[Point]:
        now = self.clock()
        label = self.label(deployment, device)
        labels = format_labels({"device": label})
        points = [
            Point("edge_predictions", deployment, float(uploaded), now, labels),
            Point("edge_dropped_predictions", deployment, float(dropped), now, labels),
        ]
        points += self._drift(deployment, model, device, label, now)
        self.series.write(points)
        return points

    def _reference(self, model: str, version: int) -> DriftReference | None:
        key = (model, version)
        if key not in self._references:
            registered = self.project.registry.get(model, version)
            profile = registered.profile
            self._references[key] = (
                DriftReference.from_profile(profile, features=registered.features)
                if profile.get("features")
                else None
            )
        return self._references[key]

    def _drift(
        self, deployment: str, model: str, device: str, label: str, now: float
    ) -> list[Point]:
        settings = self.project.spec.monitoring.drift
        with self._lock:
            if now - self._last_drift.get((deployment, device), 0.0) < settings.interval_s:
                return []
            self._last_drift[(deployment, device)] = now
        frame = self.project.prediction_log.window(
            model=model, start=now - settings.window_s, source="edge"
        )
        if frame.empty or "device" not in frame:
            return []
        frame = frame[frame["device"] == device]
        if "error" in frame:
            frame = frame[frame["error"].isna()]
        if len(frame) < settings.min_rows:
            return []
        version = int(frame["version"].mode().iloc[0])
        reference = self._reference(model, version)
        if reference is None:
            return []
        registered = self.project.registry.get(model, version)
        names = [f.name for f in registered.features if f.name in frame and not f.pii]
        features: Any = [f for f in registered.features if f.name in names]
        report = compare(
            reference,
            frame[frame["version"] == version][names],
            features=features,
            correction=settings.correction,
            dataset_threshold=settings.dataset_threshold,
        )
        labels = format_labels({"device": label})
        points = [Point("edge_drift_share", deployment, report.share_drifted, now, labels)]
        for item in report.features:
            feature_labels = format_labels({"device": label, "feature": item.name})
            points.append(
                Point("edge_drift_score", deployment, item.statistic, now, feature_labels)
            )
        return points
