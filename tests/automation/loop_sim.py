"""The closed-loop scenarios of ``benchmarks/loop_scenarios.py``, run in this process on a fake
clock: what ``tests/automation/test_loop_scenarios.py`` asserts.

The benchmark starts ``modelpilot serve`` and lets minutes of real time pass. Here the same
worlds, project files, first models and trainer (imported from the benchmark) meet the same
server parts, built as ``modelpilot serve`` builds them (``build_state``,
``start_components``), on a :class:`~fake_clock.FakeClock`: requests go straight into the ASGI
application (the real predict, feedback, alerts and status routes) and the control loop is
ticked by hand once per simulated second. Nothing sleeps. A retraining run started during a
tick is waited for before the clock moves on, so it takes no simulated time; the outcome is
judged by the benchmark's own ``judge``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
from threadpoolctl import threadpool_limits

from fake_clock import FakeClock
from modelpilot.project import Project
from modelpilot.server import ControlLoop, build_state, create_app
from modelpilot.server._lifespan import start_components

ROOT = Path(__file__).resolve().parents[2]


def _load_benchmark() -> ModuleType:
    path = ROOT / "benchmarks" / "loop_scenarios.py"
    spec = importlib.util.spec_from_file_location("loop_scenarios", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["loop_scenarios"] = module
    spec.loader.exec_module(module)
    return module


bench = _load_benchmark()
Scenario = bench.Scenario


class _Http:
    """Requests into the application on one event loop, the way the benchmark's httpx client
    sends them over TCP (``get`` is what the benchmark's watcher calls)."""

    def __init__(self, app: Any, token: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://loop",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )

    def get(self, path: str) -> httpx.Response:
        return self.loop.run_until_complete(self.client.get(path))

    def post(self, path: str, body: Any) -> httpx.Response:
        return self.loop.run_until_complete(self.client.post(path, json=body))

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()


class Sim(bench.Loop):  # type: ignore[misc]
    """One scenario on a fake clock: the benchmark's ``Loop`` (its phases, its watcher, its
    record of alerts and versions), with simulated seconds instead of client threads."""

    def __init__(self, directory: Path, scenario: Any, *, rows_per_s: int) -> None:
        world = bench.build_project(directory, scenario)
        self.clock = FakeClock(time.time() + 1)
        self.t0 = self.clock()
        super().__init__("asgi", world, scenario, batch=rows_per_s)
        sys.modules.pop("train", None)  # each project brings its own trainer module
        environ = {
            "MODELPILOT_PREDICT_TOKEN": bench.PREDICT_TOKEN,
            "MODELPILOT_ADMIN_TOKEN": bench.ADMIN_TOKEN,
        }
        self.project = Project.open(directory, environ=environ)
        self.project.clock = self.clock
        self.state = build_state(self.project, trust=True, clock=self.clock)
        self.state.writer.start()
        start_components(self.state)
        if not self.state.manager.ready:
            raise RuntimeError(f"the server did not start: {self.state.load_error}")
        self.control = ControlLoop(self.state)
        app = create_app(self.state)
        self.http = _Http(app, bench.PREDICT_TOKEN)
        self.admin = _Http(app, bench.ADMIN_TOKEN)
        self.due: list[tuple[float, str, Any]] = []
        self.rng = random.Random(0)
        self.offset = 0

    def now(self) -> float:
        return self.clock() - self.t0

    def second(self) -> None:
        """One simulated second: a batch of predictions, the labels that are due, a tick."""
        self.clock.advance(1.0)
        pool = self._pools[self.phase]
        start = self.offset % (len(pool) - self.batch)
        self.offset += self.batch
        rows = pool.iloc[start : start + self.batch]
        features = rows[self._features]
        records = features.astype(object).where(features.notna(), None).to_dict("records")
        response = self.http.post(f"/v1/deployments/{bench.NAME}/predict", {"instances": records})
        self.requests += 1
        if response.status_code != 200:
            self.failed += 1
        else:
            items = response.json()["predictions"]
            self.predictions += len(items)
            due = self.clock() + self.scenario.label_delay_s
            for item, label in zip(items, rows[self.world.target].tolist(), strict=True):
                if self.rng.random() < self.scenario.label_share:
                    self.due.append((due, item["id"], label))
        self.state.writer.wait_flushed(30)  # the labels find their predictions in the log
        now = self.clock()
        ready = [(pid, label) for at, pid, label in self.due if at <= now]
        self.due = [entry for entry in self.due if entry[0] > now]
        if ready:
            items = [{"prediction_id": pid, "label": label} for pid, label in ready]
            results = self.http.post("/v1/feedback", {"items": items}).json()["results"]
            self.labels_sent += sum(bool(r.get("accepted")) for r in results)
        self.control.tick()
        if self.state.retrain is not None:
            self.state.retrain.wait(300)  # a run takes no simulated time
        self._look(self.admin)

    def close(self) -> None:
        self.state.manager.close()
        self.state.writer.stop()
        if self.state.alerts is not None:
            self.state.alerts.close(5.0)
        self.http.close()
        self.admin.close()
        self.project.engine.dispose()


def simulate(
    scenario: Any,
    directory: Path,
    *,
    rows_per_s: int = 150,
    after_second: Callable[[Sim], None] | None = None,
) -> Any:
    """Run ``scenario`` (phases in simulated seconds) and judge it as the benchmark does; a
    recovery ends the change's phase early. ``after_second(sim)`` runs after every second.

    One OpenMP thread, as the benchmark's server has: on a shared, busy machine the
    gradient-boosted trees' threads spin-wait for CPUs they do not get (the regression world's
    first model took 43 s to train and assess instead of a few)."""
    with threadpool_limits(limits=1, user_api="openmp"):
        return _simulate(scenario, directory, rows_per_s=rows_per_s, after_second=after_second)


def _simulate(
    scenario: Any,
    directory: Path,
    *,
    rows_per_s: int,
    after_second: Callable[[Sim], None] | None,
) -> Any:
    sim = Sim(directory, scenario, rows_per_s=rows_per_s)
    cpu = time.process_time()
    try:
        for index, (phase, seconds) in enumerate(scenario.phases):
            sim.set_phase(phase)
            change, settled = sim.now(), None
            for _ in range(int(seconds)):
                sim.second()
                if after_second is not None:
                    after_second(sim)
                if index == scenario.change_index and scenario.expect == "recover":
                    # A new version serves all traffic: the outcome is there (judge says
                    # whether it is better); 3 s more for the watcher to see it settle.
                    promoted = any(v != sim.serving[0][1] for _, v in sim.served_since(change))
                    settled = settled or (sim.now() if promoted else None)
                    if settled is not None and sim.now() - settled >= 3:
                        break
    finally:
        sim.close()
    return bench.judge(directory, sim.world, sim, scenario, cpu)
