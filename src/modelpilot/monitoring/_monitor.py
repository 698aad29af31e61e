"""The monitor: what the server measures over time, checked without slowing requests.

Called from the server's control loop (a worker thread, never the event loop), every second:

- every ``monitoring.interval_s``: software, input and output measurements from the live
  metrics (request rate, error rate, latency percentiles, per-feature missing / out-of-range /
  unseen rates, null outputs, log lag, memory, CPU) become time-series points;
- every ``drift.interval_s`` or ``drift.every_n_predictions``: the last ``drift.window_s`` of
  logged inputs and predictions is compared with the production version's reference profile
  (data drift, and drift of the prediction distribution — the early sign when labels lag);
- as labels arrive: river's detectors on the error stream (concept drift) and the key metrics
  over the last ``label_window`` labels, against the project file's targets;
- a classifier's key metric estimated without labels, and the estimate's error once labels
  arrive (``_performance.py``); drift weighed by the features' importance to the model
  (``drift_importance_share``).

Listeners (the alert engine) get each new batch of points, and ``series_ended`` hooks hear of
a series that stopped for good (a shadow's agreement once the shadow is over).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import psutil

from modelpilot.drift import ConceptDriftMonitor, DriftReference, compare, drifted_importance
from modelpilot.inference import Deployment, DeploymentManager
from modelpilot.monitoring._metrics import ServingMetrics
from modelpilot.monitoring._performance import PerformanceEstimates
from modelpilot.monitoring._shadow import ShadowAgreement
from modelpilot.monitoring._timeseries import (
    Point,
    SeriesEndedListener,
    TimeSeriesStore,
    format_labels,
)
from modelpilot.project import Project
from modelpilot.rollout import RolloutStore
from modelpilot.types import Clock

__all__ = ["Monitor"]

logger = logging.getLogger("modelpilot.monitoring")
Listener = Callable[[list[Point]], None]


class ReviewStats(Protocol):
    """What the monitor reads of the review queue (``modelpilot.automation.ReviewQueue``)."""

    def stats(self, deployment: str | None = None) -> dict[str, Any]: ...


@dataclass
class _DeploymentWatch:
    """What the monitor remembers between ticks for one deployment."""

    requests: dict[str, float] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    latency_seen: int = 0
    predictions_at_drift: float = 0.0
    last_drift: float = 0.0
    last_label_ts: float = 0.0
    concept: ConceptDriftMonitor | None = None
    concept_version: int | None = None
    reference: DriftReference | None = None
    prediction_reference: DriftReference | None = None
    reference_version: int | None = None


class Monitor:
    """Turns live metrics, the prediction log and feedback into time series and gauges."""

    def __init__(
        self,
        project: Project,
        metrics: ServingMetrics,
        manager: DeploymentManager,
        *,
        clock: Clock = time.time,
    ) -> None:
        self.project = project
        self.metrics = metrics
        self.manager = manager
        self.clock = clock
        self.settings = project.spec.monitoring
        self.series = TimeSeriesStore(project.engine, clock=clock)
        self.listeners: list[Listener] = []
        self.series_ended: list[SeriesEndedListener] = []
        self.reviews: ReviewStats | None = None  # the server's review queue, when it has one
        self._watch: dict[str, _DeploymentWatch] = {}
        self._last_snapshot = 0.0
        self._last_prune = 0.0
        self._process = psutil.Process()
        self._process.cpu_percent(None)
        self._performance = PerformanceEstimates(
            project.spec.task, project.spec.key_metrics, self.settings.label_window
        )
        self._shadow = ShadowAgreement(
            RolloutStore(project.engine, clock=clock),
            metrics,
            min_samples=project.spec.rollout.agreement_min_samples,
            series_ended=self.series_ended,
        )

    def resume(self) -> None:
        """Start measuring from now, as if the last snapshot had just been taken.

        For a worker process that takes the ``monitor`` lease over (``MonitorLeader``): its
        request and input counters kept counting while another process recorded, and its
        first rates must not pour all of that into one interval.
        """
        now = self.clock()
        for deployment in self.manager.all():
            watch = self._watch.setdefault(deployment.name, _DeploymentWatch())
            # Their points are dropped: only the baselines they leave in `watch` are wanted.
            self._traffic_points(deployment, watch, now, self.settings.interval_s)
            self._input_points(deployment, watch, now, self.settings.interval_s)
        self._process.cpu_percent(None)
        self._last_snapshot = now

    def tick(self) -> list[Point]:
        now = self.clock()
        points: list[Point] = []
        if now - self._last_snapshot >= self.settings.interval_s:
            elapsed = now - self._last_snapshot if self._last_snapshot else self.settings.interval_s
            self._last_snapshot = now
            points += self._process_points(now)
            for deployment in self.manager.all():
                watch = self._watch.setdefault(deployment.name, _DeploymentWatch())
                points += self._traffic_points(deployment, watch, now, elapsed)
                points += self._input_points(deployment, watch, now, elapsed)
                for check in (
                    self._drift_points,
                    self._outcome_points,
                    self._review_points,
                    self._shadow.points,
                ):
                    try:
                        points += check(deployment, watch, now)
                    except Exception:  # one failing check must not stop the others
                        logger.exception(
                            "monitoring check %s failed for %s", check.__name__, deployment.name
                        )
        if points:
            self.series.write(points)
            for listener in self.listeners:
                try:
                    listener(points)
                except Exception:
                    logger.exception("a monitoring listener failed")
        if now - self._last_prune > 3600:
            self._last_prune = now
            self.series.prune(now - self.settings.retention_days * 86400)
        return points

    # ---- software ---------------------------------------------------------------------
    def _process_points(self, now: float) -> list[Point]:
        info = self._process.memory_info()
        points = [
            Point("memory_rss_bytes", "", float(info.rss), now),
            Point("cpu_percent", "", float(self._process.cpu_percent(None)), now),
        ]
        writer = self.metrics.writer
        if writer is not None:
            points += [
                Point("log_queue_depth", "", float(writer.queued), now),
                Point("log_lag_seconds", "", float(writer.lag_seconds), now),
            ]
        return points

    def _traffic_points(
        self, deployment: Deployment, watch: _DeploymentWatch, now: float, elapsed: float
    ) -> list[Point]:
        name = deployment.name
        totals: dict[str, float] = {}
        for sample in self.metrics.request_stats.requests_family().samples:
            if sample.name.endswith("_total") and sample.labels.get("deployment") == name:
                outcome = sample.labels["outcome"]
                totals[outcome] = totals.get(outcome, 0.0) + sample.value
        delta = {k: v - watch.requests.get(k, 0.0) for k, v in totals.items()}
        watch.requests = totals
        count = sum(delta.values())
        errors = sum(v for k, v in delta.items() if k in ("server_error", "model_error"))
        points = [
            Point("request_rate", name, count / max(elapsed, 1e-9), now),
            Point("error_rate", name, errors / count if count else 0.0, now),
            Point(
                "client_error_rate",
                name,
                delta.get("client_error", 0.0) / count if count else 0.0,
                now,
            ),
        ]
        window = self.metrics.recent_latency.get(name)
        if window is not None:
            recent = list(window)
            # The deque keeps the newest entries; take what arrived since the last snapshot.
            fresh = recent[-int(count) :] if count and count <= len(recent) else recent
            if fresh and count:
                p50, p95, p99 = np.percentile(np.asarray(fresh) * 1000, [50, 95, 99])
                points += [
                    Point("latency_p50_ms", name, float(p50), now),
                    Point("latency_p95_ms", name, float(p95), now),
                    Point("latency_p99_ms", name, float(p99), now),
                ]
        return points

    def _input_points(
        self, deployment: Deployment, watch: _DeploymentWatch, now: float, elapsed: float
    ) -> list[Point]:
        stats = self.metrics.inputs.get(deployment.name)
        if stats is None:
            return []
        with self.metrics.lock:
            snapshot = stats.snapshot()
        before = watch.inputs or {
            "values": {},
            "missing": {},
            "out_of_range": {},
            "unseen": {},
            "instances": 0,
            "requests": 0,
        }
        watch.inputs = snapshot
        points = []
        requests = snapshot["requests"] - before["requests"]
        instances = snapshot["instances"] - before["instances"]
        if requests:
            points.append(
                Point("instances_per_request", deployment.name, instances / requests, now)
            )
        for feature, total in snapshot["values"].items():
            values = total - before["values"].get(feature, 0)
            if not values:
                continue
            labels = format_labels({"feature": feature})
            for key, name in (
                ("missing", "missing_rate"),
                ("out_of_range", "out_of_range_rate"),
                ("unseen", "unseen_rate"),
            ):
                count = snapshot[key].get(feature, 0) - before[key].get(feature, 0)
                points.append(Point(name, deployment.name, count / values, now, labels))
        return points

    # ---- drift ------------------------------------------------------------------------
    def _references(self, deployment: Deployment, watch: _DeploymentWatch) -> None:
        version = deployment.primary.version
        if watch.reference_version == version.version:
            return
        watch.reference_version = version.version
        watch.reference = watch.prediction_reference = None
        profile = version.profile
        if not profile.get("features"):
            return  # registered without --data: no reference to compare with
        watch.reference = DriftReference.from_profile(profile, features=version.features)
        target = profile.get("target")
        if target:
            # The predictions' reference is the training labels' distribution: a model whose
            # outputs leave it is seeing different inputs or has broken, labels or not.
            renamed = {"features": {"prediction": {k: v for k, v in target.items() if k != "name"}}}
            watch.prediction_reference = DriftReference.from_profile(renamed)

    def _drift_points(
        self, deployment: Deployment, watch: _DeploymentWatch, now: float
    ) -> list[Point]:
        settings = self.settings.drift
        stats = self.metrics.inputs.get(deployment.name)
        predicted = float(stats.instances) if stats is not None else 0.0
        due = (
            now - watch.last_drift >= settings.interval_s
            or predicted - watch.predictions_at_drift >= settings.every_n_predictions
        )
        if not due:
            return []
        self._references(deployment, watch)
        if watch.reference is None:
            return []
        version = deployment.primary.version
        frame = self.project.prediction_log.window(
            model=version.name,
            version=version.version,
            start=now - settings.window_s,
            source="online",
        )
        if "error" in frame:
            frame = frame[frame["error"].isna()]
        if len(frame) < settings.min_rows:
            return []
        watch.last_drift = now
        watch.predictions_at_drift = predicted
        features = [f.name for f in version.features if f.name in frame]
        report = compare(
            watch.reference,
            frame[features],
            features=version.features,
            correction=settings.correction,
            dataset_threshold=settings.dataset_threshold,
        )
        name = deployment.name
        points = []
        for item in report.features:
            labels = format_labels({"feature": item.name})
            points.append(Point("drift_score", name, item.statistic, now, labels))
            points.append(Point("drift_detected", name, float(item.drifted), now, labels))
            self.metrics.drift_score.labels(name, item.name, item.method).set(item.statistic)
            self.metrics.drift_detected.labels(name, item.name).set(float(item.drifted))
        points.append(Point("drift_share", name, report.share_drifted, now))
        self.metrics.drift_share.labels(name).set(report.share_drifted)
        importance = version.metrics.get("importance")
        weighted = drifted_importance(report, importance if isinstance(importance, dict) else None)
        points.append(Point("drift_importance_share", name, weighted, now))
        points += self._performance.estimated(name, version, frame, now)
        if watch.prediction_reference is not None and "prediction" in frame:
            predictions = frame[["prediction"]].dropna()
            if len(predictions) >= settings.min_rows:
                result = compare(watch.prediction_reference, predictions).features[0]
                labels = format_labels({"feature": "(prediction)"})
                points.append(Point("drift_score", name, result.statistic, now, labels))
                points.append(Point("drift_detected", name, float(result.drifted), now, labels))
                points.append(Point("prediction_drift", name, float(result.drifted), now))
                self.metrics.drift_score.labels(name, "(prediction)", result.method).set(
                    result.statistic
                )
        points.append(Point("drift_window_rows", name, float(len(frame)), now))
        return points

    # ---- people ---------------------------------------------------------------------------
    def _review_points(
        self, deployment: Deployment, watch: _DeploymentWatch, now: float
    ) -> list[Point]:
        if self.reviews is None:
            return []
        name = deployment.name
        stats = self.reviews.stats(name)
        points = [
            Point("review_queue_length", name, float(stats["pending"]), now),
            Point("review_queue_age_seconds", name, float(stats["oldest_age_s"]), now),
        ]
        self.metrics.review_queue_length.labels(name).set(stats["pending"])
        self.metrics.review_queue_age.labels(name).set(stats["oldest_age_s"])
        for degree, item in stats["agreement"].items():
            points.append(
                Point(
                    "review_agreement", name, item["rate"], now, format_labels({"degree": degree})
                )
            )
            self.metrics.review_agreement.labels(name, degree).set(item["rate"])
        return points

    # ---- outcomes ---------------------------------------------------------------------
    def _outcome_points(
        self, deployment: Deployment, watch: _DeploymentWatch, now: float
    ) -> list[Point]:
        spec = self.project.spec
        version = deployment.primary.version
        name = deployment.name
        if watch.concept is None or watch.concept_version != version.version:
            watch.concept = ConceptDriftMonitor(
                spec.task, spec.key_metrics, window=self.settings.label_window, clock=self.clock
            )
            watch.concept_version = version.version
            watch.last_label_ts = max(watch.last_label_ts, version.created_at)
        fresh = self.project.prediction_log.labels_since(watch.last_label_ts, model=version.name)
        points: list[Point] = []
        if not fresh.empty:
            watch.last_label_ts = float(fresh["label_ts"].max())
            fresh = fresh[(fresh["version"] == version.version) & fresh["prediction"].notna()]
            if not fresh.empty:
                watch.concept.update_many(
                    fresh["prediction"].to_numpy(),
                    fresh["label"].to_numpy(),
                    ts=fresh["label_ts"].to_numpy(float),
                )
                points += self._performance.realised(name, version, fresh, now)
        status = watch.concept.status()
        if status.n_labels == 0:
            return points
        for detector in status.detectors:
            labels = format_labels({"detector": detector.name})
            points.append(Point("concept_drift", name, float(detector.drift_detected), now, labels))
            self.metrics.concept_drift.labels(name, detector.name).set(
                float(detector.drift_detected)
            )
        for key in status.key_metrics:
            if key.value is None:
                continue
            labels = format_labels({"metric": key.metric})
            points.append(Point("key_metric", name, key.value, now, labels))
            self.metrics.key_metric.labels(name, key.metric).set(key.value)
        # Counted in SQL: reading a day of the log on every tick cost seconds at 100 req/s.
        labeled, predictions = self.project.prediction_log.label_coverage(
            model=version.name, start=now - 86400
        )
        if predictions:
            coverage = labeled / predictions
            points.append(Point("label_coverage", name, coverage, now))
            self.metrics.label_coverage.labels(name).set(coverage)
        points.append(Point("labels", name, float(status.n_labels), now))
        return points
