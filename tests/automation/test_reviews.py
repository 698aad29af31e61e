"""The review queue: decisions become labels, the first decision stands, nothing is lost."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from fake_clock import FakeClock
from modelpilot.automation import ReviewQueue, agrees
from modelpilot.errors import ConflictError, NotFoundError
from modelpilot.store import PredictionLog, PredictionRecord, create_database


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'metadata.db'}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_queue(url: str, clock: FakeClock) -> ReviewQueue:
    engine = create_database(url)
    return ReviewQueue(engine, PredictionLog(engine, clock=clock), clock=clock, tolerance=0.1)


@pytest.fixture
def queue(url: str, clock: FakeClock) -> ReviewQueue:
    return make_queue(url, clock)


def log_predictions(queue: ReviewQueue, n: int, *, ts: float = 0.0) -> list[str]:
    ids = [f"p{i}" for i in range(n)]
    queue.log.append(
        [
            PredictionRecord(pid, ts, "m", 1, {"x": i}, {"prediction": i})
            for i, pid in enumerate(ids)
        ]
    )
    return ids


def test_agreement_of_numbers_is_relative_to_the_decision() -> None:
    assert agrees(100.0, 109.0, tolerance=0.1)
    assert not agrees(100.0, 112.0, tolerance=0.1)
    assert agrees(0.0, 0.0, tolerance=0.0)
    assert agrees(1, "1", tolerance=0.1)  # classes compared as text
    assert not agrees(True, 1, tolerance=0.1)  # a boolean is a class, not a number


def test_a_decision_becomes_the_predictions_label(queue: ReviewQueue, clock: FakeClock) -> None:
    [pid] = log_predictions(queue, 1)
    [item] = queue.add("d", "m", 1, "partial", [(pid, {"x": 0}, 400_000.0, 0.2)])
    assert item.status == "pending" and item.suggestion == 400_000.0
    clock.advance(30)
    decided = queue.decide(item.id, 410_000.0, actor="ann")
    assert decided.status == "decided"
    assert (decided.decision, decided.decided_by, decided.decided_at) == (
        410_000.0,
        "ann",
        clock.now,
    )
    assert decided.agreed is True  # within 10 %
    labeled = queue.log.labeled(model="m")
    assert labeled["id"].tolist() == [pid]
    assert labeled["label"].tolist() == [410_000.0]


def test_deciding_twice_is_a_409_and_the_first_decision_stands(queue: ReviewQueue) -> None:
    [pid] = log_predictions(queue, 1)
    [item] = queue.add("d", "m", 1, "assist", [(pid, {"x": 0}, "spam", 0.6)])
    queue.decide(item.id, "ham", actor="ann")
    with pytest.raises(
        ConflictError, match=r"already decided by ann; the first decision stands"
    ) as e:
        queue.decide(item.id, "spam", actor="bob")
    assert e.value.http_status == 409
    assert queue.get(item.id).decision == "ham"
    assert queue.log.labeled(model="m")["label"].tolist() == ["ham"]  # no second label


def test_an_unknown_review_is_not_found(queue: ReviewQueue) -> None:
    with pytest.raises(NotFoundError, match="review 'nope' was not found"):
        queue.get("nope")
    with pytest.raises(NotFoundError):
        queue.decide("nope", 1, actor="ann")


def test_the_queue_survives_a_restart(url: str, clock: FakeClock) -> None:
    first = make_queue(url, clock)
    ids = log_predictions(first, 3)
    items = first.add("d", "m", 1, "shadow", [(p, {"x": i}, i, None) for i, p in enumerate(ids)])
    first.decide(items[0].id, 0, actor="ann")
    first.engine.dispose()

    again = make_queue(url, clock)  # a new process: a new engine on the same file
    # One batch shares a timestamp, so its items come back in id order, not insertion order.
    assert sorted(i.id for i in again.list()) == sorted([items[1].id, items[2].id])
    assert again.get(items[0].id).decision == 0
    assert again.next() == again.list()[0]
    with pytest.raises(ConflictError):
        again.decide(items[0].id, 5, actor="bob")
    assert again.stats()["pending"] == 2


def test_next_is_first_in_first_out_per_deployment(queue: ReviewQueue, clock: FakeClock) -> None:
    a, b, c = log_predictions(queue, 3)
    [first] = queue.add("one", "m", 1, "partial", [(a, {}, 1.0, 0.1)])
    clock.advance(1)
    [second] = queue.add("two", "m", 1, "partial", [(b, {}, 1.0, 0.1)])
    clock.advance(1)
    queue.add("one", "m", 1, "partial", [(c, {}, 1.0, 0.1)])
    assert queue.next().id == first.id  # type: ignore[union-attr]
    assert queue.next(deployment="two").id == second.id  # type: ignore[union-attr]
    assert queue.next(deployment="none") is None


def test_stats_per_degree_and_per_class(queue: ReviewQueue, clock: FakeClock) -> None:
    ids = log_predictions(queue, 7)
    items = queue.add(
        "d",
        "m",
        1,
        "assist",
        [(ids[0], {}, "spam", 0.9), (ids[1], {}, "spam", 0.9), (ids[2], {}, "ham", 0.9)],
    )
    items += queue.add("d", "m", 1, "partial", [(ids[3], {}, 100.0, 0.1), (ids[4], {}, 100.0, 0.1)])
    items += queue.add("d", "m", 1, "human", [(ids[5], {}, None, 0.0)])
    [pending] = queue.add("d", "m", 1, "partial", [(ids[6], {}, 1.0, 0.1)])
    for item, value in zip(items, ["spam", "ham", "ham", 105.0, 200.0, 7.0], strict=True):
        queue.decide(item.id, value, actor="ann")
    clock.advance(90)

    stats = queue.stats()
    assert stats["pending"] == 1
    assert stats["oldest_age_s"] == pytest.approx(90)
    assert stats["agreement"] == {
        "assist": {"rate": pytest.approx(2 / 3), "cases": 3},
        "partial": {"rate": 0.5, "cases": 2},
    }  # no suggestion (human) counts for no degree
    assert stats["agreement_by_class"] == {
        "spam": {"rate": 0.5, "cases": 2},
        "ham": {"rate": 1.0, "cases": 1},
    }  # numbers are not classes
    assert queue.stats("other") == {
        "pending": 0,
        "oldest_age_s": 0.0,
        "agreement": {},
        "agreement_by_class": {},
    }
    assert pending.status == "pending"


def test_expire_only_old_pending_items(queue: ReviewQueue, clock: FakeClock) -> None:
    a, b, c = log_predictions(queue, 3)
    [old] = queue.add("d", "m", 1, "partial", [(a, {}, 1.0, 0.1)])
    [decided] = queue.add("d", "m", 1, "partial", [(b, {}, 1.0, 0.1)])
    queue.decide(decided.id, 1.0, actor="ann")
    clock.advance(100)
    [young] = queue.add("d", "m", 1, "partial", [(c, {}, 1.0, 0.1)])
    clock.advance(10)

    assert queue.expire(50) == 1
    assert queue.get(old.id).status == "expired"
    assert queue.get(decided.id).status == "decided"
    assert queue.get(young.id).status == "pending"
    assert [i.id for i in queue.list(status="expired")] == [old.id]
    assert queue.expire(50) == 0
    with pytest.raises(ConflictError, match="expired unanswered"):
        queue.decide(old.id, 1.0, actor="ann")
    assert queue.log.labeled(model="m")["id"].tolist() == [b]


def test_racing_decisions_one_wins_and_the_loser_is_told_who(queue: ReviewQueue) -> None:
    [pid] = log_predictions(queue, 1)
    [item] = queue.add("d", "m", 1, "partial", [(pid, {}, 1.0, 0.1)])
    barrier = threading.Barrier(4)
    outcomes: dict[str, str] = {}

    def decide(actor: str) -> None:
        barrier.wait()
        try:
            queue.decide(item.id, 2.0, actor=actor)
            outcomes[actor] = "won"
        except ConflictError as exc:
            outcomes[actor] = exc.message

    threads = [threading.Thread(target=decide, args=(f"user{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    [winner] = [a for a, o in outcomes.items() if o == "won"]
    assert len(outcomes) == 4
    for actor, outcome in outcomes.items():
        if actor != winner:
            assert f"already decided by {winner}" in outcome
    assert len(queue.log.labeled(model="m")) == 1


def test_shadow_suggestions_are_hidden_from_the_person_deciding(queue: ReviewQueue) -> None:
    a, b = log_predictions(queue, 2)
    [shadow] = queue.add("d", "m", 1, "shadow", [(a, {}, 5.0, 0.7)])
    [assist] = queue.add("d", "m", 1, "assist", [(b, {}, 5.0, 0.7)])
    assert shadow.to_dict(show_suggestion=False)["suggestion"] is None
    assert shadow.to_dict()["suggestion"] == 5.0
    assert assist.to_dict(show_suggestion=False)["suggestion"] == 5.0


def test_deciding_before_the_prediction_is_logged_changes_nothing(queue: ReviewQueue) -> None:
    [item] = queue.add("d", "m", 1, "partial", [("late", {"x": 1}, 1.0, 0.1)])
    with pytest.raises(ConflictError, match=r"not in the prediction log yet.*retry"):
        queue.decide(item.id, 2.0, actor="ann")
    assert queue.get(item.id).status == "pending"  # the decision is not lost: retry works
    queue.log.append([PredictionRecord("late", 0.0, "m", 1, {"x": 1}, {"prediction": 1.0})])
    assert queue.decide(item.id, 2.0, actor="ann").status == "decided"
    assert queue.log.labeled(model="m")["label"].tolist() == [2.0]


def test_agreement_over_time_is_counted_per_bucket_on_every_backend(
    database_url: str, clock: FakeClock
) -> None:
    engine = create_database(database_url)
    try:
        queue = ReviewQueue(engine, PredictionLog(engine, clock=clock), clock=clock)
        start = clock()
        ids = log_predictions(queue, 4, ts=start)
        items = queue.add("d", "m", 1, "assist", [(pid, {}, 100.0, 0.5) for pid in ids])
        # Two decisions in the first minute (one agrees), two in the second (both agree).
        decisions = zip(items, (10.0, 59.9, 60.0, 119.0), (100, 200, 101, 99), strict=True)
        for item, after, answer in decisions:
            clock.now = start + after
            queue.decide(item.id, float(answer), actor="ann")
        buckets = queue.agreement_over_time(since=start, bucket_s=60.0)
        assert buckets == [
            {"start": start, "cases": 2, "agreed": 1, "rate": 0.5},
            {"start": start + 60.0, "cases": 2, "agreed": 2, "rate": 1.0},
        ]
        assert queue.agreement_over_time(since=start, bucket_s=60.0, deployment="other") == []
    finally:
        engine.dispose()
