"""Alerts in the metadata database, so their state survives a restart of the server."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Engine, delete, insert, select, update

from modelpilot.alerting._alert import Alert
from modelpilot.store import check_fence
from modelpilot.store._tables import alerts

__all__ = ["AlertStore"]


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
            )
            for r in rows
        ]
