"""A shadow's agreement with the primary, as a time series that ends when the shadow does."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

from modelpilot.inference import Deployment
from modelpilot.monitoring._metrics import ServingMetrics
from modelpilot.monitoring._timeseries import Point, SeriesEndedListener, format_labels
from modelpilot.rollout import RolloutRecord, RolloutStore, strategy_of

__all__ = ["ShadowAgreement"]

logger = logging.getLogger("modelpilot.monitoring")


class ShadowAgreement:
    """The monitor's check of each deployment's shadow (see :meth:`points`)."""

    def __init__(
        self,
        store: RolloutStore,
        metrics: ServingMetrics,
        *,
        min_samples: int,
        series_ended: Sequence[SeriesEndedListener],
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.min_samples = min_samples
        self.series_ended = series_ended
        self._versions: dict[str, int] = {}  # the shadow version each gauge shows

    def forget(self) -> None:
        """The gauges were cleared (this process stopped leading): nothing is shown."""
        self._versions.clear()

    def points(self, deployment: Deployment, watch: object, now: float) -> list[Point]:
        """The agreement of a shadow candidate with the primary, as the controller last
        measured it (its analysis every ``rollout.analysis_interval_s``, kept in the rollout's
        history in the database, so any worker process reads the same figure).

        The gauge shows it from the first compared prediction; the ``shadow_agreement`` point,
        what alert rules see, only once ``rollout.agreement_min_samples`` were compared: a
        rule must not fire on the first few requests (nor resolve on them).

        Every tick the ``series_ended`` hooks hear that the series of any other version (all
        of them, with no shadow running) ended, and why, as the latest rollout record says: an
        alert on a shadow that is over would otherwise stay as it was for ever.
        """
        name = deployment.name
        record = self.store.active(name)
        agreement: float | None = None
        compared = 0
        version: int | None = None
        if record is not None and strategy_of(record).mirrors(record):
            version = record.candidate_version
            for entry in reversed(record.history):
                report = entry.get("shadow")
                if isinstance(report, dict) and report.get("agreement") is not None:
                    agreement = float(report["agreement"])
                    compared = int(report.get("compared", 0))
                    break
        shown = self._versions.get(name)
        if shown is not None and shown != version:
            # The shadow ended (or another began): its series must not linger at a last value.
            with contextlib.suppress(KeyError):
                self.metrics.shadow_agreement.remove(name, str(shown))
            del self._versions[name]
        if self.series_ended:
            keep = format_labels({"version": str(version)}) if version is not None else None
            latest = record or next(iter(self.store.history(name, limit=1)), None)
            reason = _shadow_ended(latest)
            for listener in self.series_ended:
                try:
                    listener("shadow_agreement", name, reason, keep=keep)
                except Exception:
                    logger.exception("a monitoring listener failed")
        if version is None or agreement is None:
            return []
        self._versions[name] = version
        self.metrics.shadow_agreement.labels(name, str(version)).set(agreement)
        if compared < self.min_samples:
            return []
        labels = format_labels({"version": str(version)})
        return [Point("shadow_agreement", name, agreement, now, labels)]


def _shadow_ended(record: RolloutRecord | None) -> str:
    """Why a shadow's agreement series is over, from the deployment's latest rollout (or None).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> rolled_back = SimpleNamespace(id=4, strategy="shadow", candidate_version=3,
    ...     status="rolled_back", reason="too many errors", active=False, config={})
    >>> _shadow_ended(rolled_back)
    'the shadow of version 3 ended (rollout 4 rolled back: too many errors)'
    >>> _shadow_ended(SimpleNamespace(**{**vars(rolled_back), "strategy": "canary",
    ...     "status": "running", "active": True, "config": {"shadow_until": 600.0}}))
    'the shadow of version 3 ended (rollout 4 passed its shadow phase: a canary now)'
    """
    if record is None:
        return "no shadow is running"
    shadowed = strategy_of(record).shadowed(record)
    what = f"rollout {record.id}, a {record.strategy} of version {record.candidate_version}"
    if not shadowed:
        return f"no shadow is running (the latest rollout: {what}, {record.status})"
    ended = f"the shadow of version {record.candidate_version} ended (rollout {record.id}"
    if record.active and strategy_of(record).mirrors(record):
        return f"a shadow of another version replaced it ({what})"
    if record.active:
        return f"{ended} passed its shadow phase: a canary now)"
    status = record.status.replace("_", " ")
    return f"{ended} {status}: {record.reason})" if record.reason else f"{ended} {status})"
