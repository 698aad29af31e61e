"""Alerts in the metadata database, so their state survives a restart of the server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Engine, delete, insert, or_, select, update

from modelpilot.alerting._alert import Alert
from modelpilot.store import check_fence
from modelpilot.store._tables import alert_silences, alerts

__all__ = ["AlertStore", "Silence"]


@dataclass(frozen=True)
class Silence:
    """Notifications of one series (rule, deployment, label set) muted until ``ends_at``."""

    rule: str
    deployment: str
    labels: str
    starts_at: float
    ends_at: float
    created_by: str
    reason: str = ""

    def covers(self, key: tuple[str, str, str]) -> bool:
        return (self.rule, self.deployment, self.labels) == key

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "deployment": self.deployment,
            "labels": self.labels,
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "created_by": self.created_by,
            "reason": self.reason,
        }


class AlertStore:
    """Save, reload and list alerts.

    Saves and deletes are the monitor leader's: fenced by its lease
    (:func:`~modelpilot.store.check_fence`) when it writes inside ``fenced(lease)``.

    Examples
    --------
    >>> from modelpilot.store import create_database
    >>> store = AlertStore(create_database("sqlite://"))
    >>> alert = Alert(rule="slow", deployment="houses", labels="", state="pending",
    ...               severity="warning", value=180.0, threshold=100.0, started_at=10.0)
    >>> store.save(alert)
    >>> [(a.id, a.state) for a in store.open()]
    [(1, 'pending')]
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def save(self, alert: Alert) -> None:
        """Insert a new alert (setting its ``id``) or update a known one."""
        values = {
            "rule": alert.rule,
            "deployment": alert.deployment,
            "labels": alert.labels,
            "state": alert.state,
            "severity": alert.severity,
            "value": alert.value,
            "threshold": alert.threshold,
            "started_at": alert.started_at,
            "fired_at": alert.fired_at,
            "resolved_at": alert.resolved_at,
            "updated_at": alert.updated_at,
            "details_json": orjson.dumps(alert.details).decode(),
        }
        with self.engine.begin() as connection:
            check_fence(connection)
            if alert.id is None:
                result = connection.execute(insert(alerts).values(**values))
                key = result.inserted_primary_key
                if key is None:  # pragma: no cover - every backend we support returns it
                    raise RuntimeError("the database did not return the new alert's id")
                alert.id = int(key[0])
            else:
                connection.execute(update(alerts).where(alerts.c.id == alert.id).values(**values))

    def delete(self, alert: Alert) -> None:
        """Forget an alert (a pending one whose condition stopped before it fired)."""
        if alert.id is None:
            return
        with self.engine.begin() as connection:
            check_fence(connection)
            connection.execute(delete(alerts).where(alerts.c.id == alert.id))

    def open(self) -> list[Alert]:
        """Pending and firing alerts, oldest first."""
        query = select(alerts).where(alerts.c.state.in_(("pending", "firing")))
        return self._fetch(query.order_by(alerts.c.started_at, alerts.c.id))

    def resolved(self, *, limit: int = 50, since: float | None = None) -> list[Alert]:
        """Resolved alerts, the most recently resolved first."""
        query = select(alerts).where(alerts.c.state == "resolved")
        if since is not None:
            query = query.where(alerts.c.updated_at >= since)
        return self._fetch(query.order_by(alerts.c.resolved_at.desc(), alerts.c.id.desc()), limit)

    def get(self, alert_id: int) -> Alert | None:
        found = self._fetch(select(alerts).where(alerts.c.id == alert_id))
        return found[0] if found else None

    def of_deployment(self, deployment: str, *, since: float, limit: int = 200) -> list[Alert]:
        """The deployment's alerts that were open at some time since ``since``, newest first."""
        query = select(alerts).where(
            alerts.c.deployment == deployment,
            or_(alerts.c.resolved_at.is_(None), alerts.c.resolved_at >= since),
        )
        return self._fetch(query.order_by(alerts.c.started_at.desc(), alerts.c.id.desc()), limit)

    # ---- what people did (``_handling.py``) ---------------------------------------------------
    def acknowledge(self, alert_id: int, *, actor: str, at: float) -> None:
        # Its own columns, which save() leaves alone: the process that evaluates the rules
        # saves its copy of the alert on every evaluation and must not erase the note.
        with self.engine.begin() as connection:
            connection.execute(
                update(alerts)
                .where(alerts.c.id == alert_id, alerts.c.acknowledged_at.is_(None))
                .values(acknowledged_at=at, acknowledged_by=actor)
            )

    def acknowledgements(self, ids: list[int]) -> dict[int, tuple[float, str]]:
        """``{alert id: (when, by whom)}`` of the acknowledged alerts among ``ids``."""
        if not ids:
            return {}
        query = select(alerts.c.id, alerts.c.acknowledged_at, alerts.c.acknowledged_by).where(
            alerts.c.id.in_(ids), alerts.c.acknowledged_at.is_not(None)
        )
        with self.engine.connect() as connection:
            return {int(i): (float(at), str(by)) for i, at, by in connection.execute(query)}

    def add_silence(self, silence: Silence) -> None:
        with self.engine.begin() as connection:
            connection.execute(insert(alert_silences).values(**silence.to_dict()))

    def end_silences(self, key: tuple[str, str, str], *, at: float) -> None:
        """End the series' running silences now (a new one replaces them)."""
        rule, deployment, labels = key
        with self.engine.begin() as connection:
            connection.execute(
                update(alert_silences)
                .where(
                    alert_silences.c.rule == rule,
                    alert_silences.c.deployment == deployment,
                    alert_silences.c.labels == labels,
                    alert_silences.c.ends_at > at,
                )
                .values(ends_at=at)
            )

    def silences(self, *, now: float) -> list[Silence]:
        """The silences running at ``now``."""
        query = select(alert_silences).where(
            alert_silences.c.starts_at <= now, alert_silences.c.ends_at > now
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query.order_by(alert_silences.c.id)).mappings().all()
        return [Silence(**{k: v for k, v in r.items() if k != "id"}) for r in rows]

    def _fetch(self, query: Any, limit: int | None = None) -> list[Alert]:
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [
            Alert(
                rule=r.rule,
                deployment=r.deployment,
                labels=r.labels,
                state=r.state,
                severity=r.severity,
                value=r.value,
                threshold=r.threshold,
                started_at=r.started_at,
                fired_at=r.fired_at,
                resolved_at=r.resolved_at,
                updated_at=r.updated_at,
                id=r.id,
                details=orjson.loads(r.details_json),
                acknowledged_at=r.acknowledged_at,
                acknowledged_by=r.acknowledged_by,
            )
            for r in rows
        ]
