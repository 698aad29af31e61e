"""``serve --workers 2``: the two processes record one time series and notify an alert once.

The worker holding the ``monitor`` lease ticks the monitor and evaluates the rules; the other
one follows. Without the lease each process wrote every point and told the webhook itself.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from alerting_helpers import CANARY_RULES, HookServer, update_project

from live_server import DEPLOYMENT, live_server, poll
from modelpilot.monitoring import Point, TimeSeriesStore
from modelpilot.project import Project
from modelpilot.rollout import RolloutStore


def test_two_workers_notify_once_and_write_each_point_once(
    versions_project: Path, hooks: HookServer, clean_environ: None
) -> None:
    update_project(
        versions_project,
        {
            "monitoring": {"interval_s": 1},
            "alerts": {
                **CANARY_RULES,
                "notifiers": [{"kind": "webhook", "url": f"{hooks.url}/ok"}],
            },
        },
    )
    project = Project.open(versions_project, environ={})
    try:
        with live_server(versions_project, workers=2, admin_token=None):
            workers = RolloutStore(project.engine)
            series = TimeSeriesStore(project.engine)
            poll(lambda: len(workers.workers(DEPLOYMENT)) == 2, what="two workers", timeout=120)
            (told,) = hooks.wait_for("/ok", 1, timeout=60)
            assert (told.body["rule"], told.body["status"]) == ("memory", "firing")
            fired_at = float(told.body["fired_at"])

            def later() -> list[Point] | None:
                found = series.query("memory_rss_bytes", start=fired_at)
                return found if len(found) >= 6 else None

            # Five more monitor intervals, both workers alive all along: time enough for the
            # second process to fire the alert too, had it evaluated the rules on its own.
            points = poll(later, what="six memory points after the alert fired", timeout=60)
            assert len(workers.workers(DEPLOYMENT)) == 2
        assert [(r.body["rule"], r.body["status"]) for r in hooks.on("/ok")] == [
            ("memory", "firing")
        ]
        # One point per interval (1 s): two processes recording would put pairs close together.
        for name, deployment in (("memory_rss_bytes", ""), ("request_rate", DEPLOYMENT)):
            stamps = [p.ts for p in series.query(name, deployment=deployment)]
            gaps = [b - a for a, b in itertools.pairwise(stamps)]
            assert len(stamps) >= len(points) and min(gaps) >= 0.5, (name, stamps)
    finally:
        project.engine.dispose()
