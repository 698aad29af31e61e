"""The persisted rollout state: what two server processes sharing one database may and may not
do at the same time."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fake_clock import FakeClock
from modelpilot.errors import ConflictError
from modelpilot.rollout import RolloutStore
from modelpilot.store import create_database


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def two_processes(tmp_path: Path, clock: FakeClock) -> Iterator[list[RolloutStore]]:
    """Two stores on one SQLite file, each with its own engine, as two worker processes."""
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    stores = [RolloutStore(create_database(url), clock=clock) for _ in range(2)]
    yield stores
    for store in stores:
        store.engine.dispose()


def test_workers_attaching_at_once_to_a_fresh_database_both_succeed(
    two_processes: list[RolloutStore],
) -> None:
    """A first ``serve --workers 2``: both record the deployment's state at the same moment."""
    errors: list[str] = []

    def attach(store: RolloutStore, name: str, start: threading.Barrier) -> None:
        start.wait()
        try:
            store.ensure(name, "houses", 1, "server")
        except Exception as exc:  # collected: an error in a thread would be lost
            errors.append(f"{type(exc).__name__}: {exc}")

    for index in range(60):
        start = threading.Barrier(2)
        threads = [
            threading.Thread(target=attach, args=(store, f"deployment-{index}", start))
            for store in two_processes
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert errors == []
    assert len(two_processes[0].states()) == 60


def test_only_one_rollout_can_claim_a_deployment(two_processes: list[RolloutStore]) -> None:
    first, second = two_processes
    first.ensure("houses", "houses", 1, "server")
    running = first.start(
        "houses", strategy="canary", candidate=2, primary=1, config={}, actor="alice", reason=""
    )
    with pytest.raises(
        ConflictError,
        match=r"cannot start a shadow on 'houses': a canary of v2 started by alice is running; "
        r"`modelpilot abort` or `rollback` it first, or wait",
    ):
        second.start(
            "houses", strategy="shadow", candidate=3, primary=1, config={}, actor="bob", reason=""
        )
    assert second.state("houses").active_rollout == running.id
    assert [r.id for r in second.history("houses")] == [running.id]  # the loser left nothing


def test_a_change_based_on_a_stale_revision_is_a_conflict(
    two_processes: list[RolloutStore],
) -> None:
    first, second = two_processes
    seen = first.ensure("houses", "houses", 1, "server")
    second.set_version("houses", 2, last_good=1, actor="bob", expect_revision=seen.revision)
    with pytest.raises(ConflictError, match="deployment 'houses' changed meanwhile"):
        first.set_version("houses", 3, last_good=1, actor="alice", expect_revision=seen.revision)
    assert first.state("houses").version == 2


def test_one_process_holds_the_controller_lease_until_it_expires(
    two_processes: list[RolloutStore], clock: FakeClock
) -> None:
    a, b = two_processes
    assert a.acquire_lease("rollout-controller", "a", ttl=5.0)
    assert not b.acquire_lease("rollout-controller", "b", ttl=5.0)
    clock.advance(4)
    assert a.acquire_lease("rollout-controller", "a", ttl=5.0)  # renewed
    clock.advance(4)
    assert not b.acquire_lease("rollout-controller", "b", ttl=5.0)
    clock.advance(2)  # a stopped renewing (its process died): b takes over
    assert b.acquire_lease("rollout-controller", "b", ttl=5.0)
    assert not a.acquire_lease("rollout-controller", "a", ttl=5.0)
