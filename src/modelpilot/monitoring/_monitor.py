"""The monitor: what the server measures over time, checked without slowing requests.

Called from the server's control loop (a worker thread, never the event loop), every second:

- every ``monitoring.interval_s``: software, input and output measurements from the live
  metrics (request rate, error rate, latency percentiles, per-feature missing / out-of-range /
  unseen rates, null outputs, log lag, memory, CPU) become time-series points (the traffic
  summed over every replica: ``_traffic_points.py``);
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
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import psutil

from modelpilot.data import TargetValidator
from modelpilot.drift import ConceptDriftMonitor, drifted_importance
from modelpilot.inference import Deployment, DeploymentManager
from modelpilot.monitoring._drift_check import DriftChecker
from modelpilot.monitoring._metrics import ServingMetrics
from modelpilot.monitoring._performance import PerformanceEstimates
from modelpilot.monitoring._shadow import ShadowAgreement
from modelpilot.monitoring._timeseries import (
    Point,
    SeriesEndedListener,
    TimeSeriesStore,
    format_labels,
)
from modelpilot.monitoring._traffic import TrafficLedger, TrafficReporter
from modelpilot.monitoring._traffic_points import input_points, traffic_points
from modelpilot.project import Project
from modelpilot.rollout import RolloutStore
from modelpilot.store import LeaseLost
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

    predictions_at_drift: float = 0.0
    last_drift: float = 0.0
    last_label_ts: float = 0.0
    concept: ConceptDriftMonitor | None = None
    concept_version: int | None = None


class Monitor:
    """Turns live metrics, the prediction log and feedback into time series and gauges."""

    def __init__(
        self,
        project: Project,
        metrics: ServingMetrics,
        manager: DeploymentManager,
        *,
        clock: Clock = time.time,
        replica: str | None = None,
    ) -> None:
        self.project = project
        self.metrics = metrics
        self.manager = manager
        self.clock = clock
        self.settings = project.spec.monitoring
        self.series = TimeSeriesStore(project.engine, clock=clock)
        # This replica's counts go to the database every interval (every replica's control
        # loop flushes them); the leader's tick sums every replica's (``_traffic.py``).
        self.traffic = TrafficReporter(
            project.engine,
            metrics,
            replica or f"{socket.gethostname()}-{os.getpid()}",
            interval_s=self.settings.interval_s,
            clock=clock,
        )
        self.ledger = TrafficLedger(project.engine, clock=clock)
        self.drift = DriftChecker(project)
        self.listeners: list[Listener] = []
        self.series_ended: list[SeriesEndedListener] = []
        self.reviews: ReviewStats | None = None  # the server's review queue, when it has one
        self._watch: dict[str, _DeploymentWatch] = {}
        self._last_snapshot = 0.0
        self._last_prune = 0.0
        self._last_rollup = 0.0
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

        For a worker process that takes the ``monitor`` lease over (``MonitorLeader``). The
        traffic rows no leader summed during the hand-over are summed at the next snapshot,
        each replica's over the time its rows cover.
        """
        self._process.cpu_percent(None)
        self._last_snapshot = self.clock()

    def stop_leading(self) -> None:
        """This process lost the ``monitor`` lease: its leader-only gauges go (see
        :meth:`ServingMetrics.clear_leader_gauges`) until it leads again."""
        self.metrics.clear_leader_gauges()
        self._shadow.forget()

    def tick(self) -> list[Point]:
        now = self.clock()
        points: list[Point] = []
        self.traffic.flush()  # this replica's interval, as every replica's control loop does
        if now - self._last_snapshot >= self.settings.interval_s:
            elapsed = now - self._last_snapshot if self._last_snapshot else self.settings.interval_s
            self._last_snapshot = now
            points += self._process_points(now)
            fleet = self.ledger.consume()
            for deployment in self.manager.all():
                watch = self._watch.setdefault(deployment.name, _DeploymentWatch())
                points += traffic_points(deployment.name, fleet, now, elapsed)
                points += input_points(deployment.name, fleet.total, now)
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
                except LeaseLost:  # another replica leads now: MonitorLeader steps down
                    raise
                except Exception:
                    logger.exception("a monitoring listener failed")
        if now - self._last_prune > 3600:
            self._last_prune = now
            self.series.prune(now - self.settings.retention_days * 86400)
            self.ledger.prune()
        if now - self._last_rollup >= 60:
            self._last_rollup = now
            try:  # the charts of long windows read the roll-ups; a failure costs only speed
                self.series.roll_up(now)
            except Exception:
                logger.exception("rolling up the time series failed")
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

    # ---- drift ------------------------------------------------------------------------
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
        check = self.drift.check(deployment, now)
        report = check.report
        if report is None:
            return []
        watch.last_drift = now
        watch.predictions_at_drift = predicted
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
        version = deployment.primary.version
        importance = version.metrics.get("importance")
        weighted = drifted_importance(report, importance if isinstance(importance, dict) else None)
        points.append(Point("drift_importance_share", name, weighted, now))
        if check.frame is not None:
            points += self._performance.estimated(name, version, check.frame, now)
        result = check.prediction
        if result is not None:
            labels = format_labels({"feature": "(prediction)"})
            points.append(Point("drift_score", name, result.statistic, now, labels))
            points.append(Point("drift_detected", name, float(result.drifted), now, labels))
            points.append(Point("prediction_drift", name, float(result.drifted), now))
            self.metrics.drift_score.labels(name, "(prediction)", result.method).set(
                result.statistic
            )
        points.append(Point("drift_window_rows", name, float(check.rows), now))
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
    def _feed_labels(
        self, deployment: Deployment, concept: ConceptDriftMonitor, fresh: Any
    ) -> tuple[int, Any]:
        """Feed the labels that fit the model's task to the concept monitor; the number left
        out, and the rows fed. A label that does not fit (a string among integer classes, say)
        must never stop
        the key-metric series: it is skipped, counted, logged and alerted on (labels_skipped)."""
        version = deployment.primary.version
        check = TargetValidator(
            version.task or self.project.spec.task, deployment.primary.runtime.classes
        )
        labels = fresh["label"].tolist()
        problems = [check.problem(label) for label in labels]
        fit = [p is None for p in problems]
        skipped = len(fit) - sum(fit)
        first = next((i for i, p in enumerate(problems) if p is not None), None)
        kept = fresh[fit]
        if not kept.empty:
            try:
                concept.update_many(
                    kept["prediction"].to_numpy(),
                    np.asarray([check.check(v) for v in kept["label"]], dtype=object),
                    ts=kept["label_ts"].to_numpy(float),
                )
            except Exception as exc:  # a metric computation must not stop the series
                logger.warning("labels of %s left out: %s", deployment.name, exc)
                skipped += len(kept)
                kept = kept.iloc[:0]
        if skipped:
            example = (
                f" (prediction {fresh['id'].iloc[first]}: the label must be {problems[first]})"
                if first is not None
                else ""
            )
            logger.warning(
                "%d label(s) of %s left out of its key metrics and concept drift%s; correct "
                "them with `modelpilot feedback PREDICTION_ID VALUE --replace`",
                skipped,
                deployment.name,
                example,
            )
            self.metrics.labels_skipped.labels(deployment.name).inc(skipped)
        return skipped, kept

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
        skipped = 0
        if not fresh.empty:
            watch.last_label_ts = float(fresh["label_ts"].max())
            fresh = fresh[(fresh["version"] == version.version) & fresh["prediction"].notna()]
            if not fresh.empty:
                skipped, kept = self._feed_labels(deployment, watch.concept, fresh)
                points += self._performance.realised(name, version, kept, now)
        # Every tick, 0 included: the labels_skipped alert resolves once none are skipped.
        points.append(Point("labels_skipped", name, float(skipped), now))
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
