"""MicroBatcher: requests that arrive while the model is busy share its next call.

Deterministic without sleeps: the first batch's call blocks on a ``threading.Event``, so every
later submission queues behind it; ``await asyncio.sleep(0)`` only lets the submitting tasks
run up to their first wait.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from modelpilot.inference import Answers, MicroBatcher


class HeldModel:
    """A batch function that records its calls; the first call waits for :meth:`release`."""

    def __init__(self, fn: Callable[[Any], Any] = lambda x: x * 10) -> None:
        self.fn = fn
        self.calls: list[list[Any]] = []
        self._gate = threading.Event()

    def release(self) -> None:
        self._gate.set()

    def __call__(self, items: list[Any]) -> Sequence[Any]:
        self.calls.append(list(items))
        if len(self.calls) == 1:
            assert self._gate.wait(30), "the test never released the first batch"
        return [self.fn(item) for item in items]


@pytest.fixture
def batchers() -> Iterator[list[MicroBatcher[Any, Any]]]:
    """Batchers a test makes; their model threads are stopped afterwards."""
    made: list[MicroBatcher[Any, Any]] = []
    yield made
    for batcher in made:
        batcher.close()


async def _queued_behind_first(
    batcher: MicroBatcher[Any, Any], model: HeldModel, first: Any, rest: Sequence[Any]
) -> list[Any]:
    """Submit ``first`` (the model starts on it), then ``rest`` while it is busy; then release."""
    tasks = [asyncio.create_task(batcher.submit(first))]
    await asyncio.sleep(0)  # the first submission reaches the (held) model
    tasks += [asyncio.create_task(batcher.submit(item)) for item in rest]
    await asyncio.sleep(0)  # the rest queue up
    model.release()
    return await asyncio.gather(*tasks, return_exceptions=True)


def test_an_idle_model_gets_a_request_at_once(batchers: list[MicroBatcher[Any, Any]]) -> None:
    async def main() -> tuple[int, list[list[int]]]:
        model = HeldModel()
        model.release()
        batcher = MicroBatcher(model)
        batchers.append(batcher)
        result = await batcher.submit(4)
        return result, model.calls

    assert asyncio.run(main()) == (40, [[4]])


def test_requests_gather_while_the_model_is_busy(batchers: list[MicroBatcher[Any, Any]]) -> None:
    model = HeldModel()

    async def main() -> tuple[list[Any], MicroBatcher[int, int]]:
        batcher = MicroBatcher(model, max_batch_size=64)
        batchers.append(batcher)
        results = await _queued_behind_first(batcher, model, 0, [1, 2, 3, 4, 5])
        return results, batcher

    results, batcher = asyncio.run(main())
    assert results == [0, 10, 20, 30, 40, 50]  # each caller gets its own result, in order
    assert model.calls == [[0], [1, 2, 3, 4, 5]]
    assert (batcher.stats.calls, batcher.stats.rows, batcher.stats.max_batch_rows) == (2, 6, 5)
    assert batcher.queued_rows == 0


def test_a_poisonous_item_fails_alone(batchers: list[MicroBatcher[Any, Any]]) -> None:
    def fn(item: Any) -> Any:
        if item == "poison":
            raise ValueError("cannot score poison")
        return item * 10

    model = HeldModel(fn)

    async def main() -> list[Any]:
        batcher = MicroBatcher(model)
        batchers.append(batcher)
        return await _queued_behind_first(batcher, model, 0, [1, "poison", 3])

    first, one, poison, three = asyncio.run(main())
    assert (first, one, three) == (0, 10, 30)
    assert isinstance(poison, ValueError) and str(poison) == "cannot score poison"
    # The batch failed as a whole, then each item was retried on its own.
    assert model.calls == [[0], [1, "poison", 3], [1], ["poison"], [3]]


def test_a_lone_failing_item_is_not_retried(batchers: list[MicroBatcher[Any, Any]]) -> None:
    calls: list[list[int]] = []

    def always_fails(items: list[int]) -> list[int]:
        calls.append(items)
        raise RuntimeError("model is broken")

    async def main() -> None:
        batcher = MicroBatcher(always_fails)
        batchers.append(batcher)
        with pytest.raises(RuntimeError, match="model is broken"):
            await batcher.submit(1)

    asyncio.run(main())
    assert calls == [[1]]


def test_a_wrong_number_of_results_is_an_error_per_item(
    batchers: list[MicroBatcher[Any, Any]],
) -> None:
    async def main() -> None:
        batcher = MicroBatcher(lambda items: [])
        batchers.append(batcher)
        with pytest.raises(RuntimeError, match="returned 0 results for 1 items"):
            await batcher.submit(1)

    asyncio.run(main())


@pytest.mark.parametrize(
    ("max_batch_size", "expected"),
    [
        (1, [[0], [1], [2], [3], [4], [5], [6]]),
        (3, [[0], [1, 2, 3], [4, 5, 6]]),
        (4, [[0], [1, 2, 3, 4], [5, 6]]),
    ],
)
def test_max_batch_size_is_respected(
    batchers: list[MicroBatcher[Any, Any]], max_batch_size: int, expected: list[list[int]]
) -> None:
    model = HeldModel()

    async def main() -> list[Any]:
        batcher = MicroBatcher(model, max_batch_size=max_batch_size)
        batchers.append(batcher)
        return await _queued_behind_first(batcher, model, 0, range(1, 7))

    assert asyncio.run(main()) == [i * 10 for i in range(7)]
    assert model.calls == expected


def test_batches_are_counted_in_rows(batchers: list[MicroBatcher[Any, Any]]) -> None:
    """Items of several rows (a request with many instances) fill batches by their rows."""
    model = HeldModel(lambda rows: rows)

    async def main() -> MicroBatcher[int, int]:
        batcher = MicroBatcher(model, max_batch_size=4, size=lambda n: n)
        batchers.append(batcher)
        await _queued_behind_first(batcher, model, 1, [2, 2, 3, 1, 6])
        return batcher

    batcher = asyncio.run(main())
    # [2, 2] fills 4 rows; [3, 1] too; a 6-row item larger than the limit goes alone.
    assert model.calls == [[1], [2, 2], [3, 1], [6]]
    assert batcher.stats.rows == 15 and batcher.stats.calls == 4


def test_max_wait_never_delays_a_full_batch(batchers: list[MicroBatcher[Any, Any]]) -> None:
    model = HeldModel()
    model.release()

    async def main() -> list[int]:
        # A wait of an hour: only a full batch can be dispatched before the test times out.
        batcher = MicroBatcher(model, max_batch_size=3, max_wait=3600.0)
        batchers.append(batcher)
        return await asyncio.gather(*(batcher.submit(i) for i in range(3)))

    assert asyncio.run(main()) == [0, 10, 20]
    assert model.calls == [[0, 1, 2]]


def test_several_model_calls_run_at_once_with_concurrency(
    batchers: list[MicroBatcher[Any, Any]],
) -> None:
    both_running = threading.Barrier(2, timeout=30)

    def run_batch(items: list[int]) -> list[int]:
        both_running.wait()  # only returns once two calls are in flight together
        return items

    async def main() -> list[int]:
        batcher = MicroBatcher(run_batch, concurrency=2)
        batchers.append(batcher)
        return await asyncio.gather(batcher.submit(1), batcher.submit(2))

    assert asyncio.run(main()) == [1, 2]


def test_a_caller_that_went_away_does_not_disturb_the_others(
    batchers: list[MicroBatcher[Any, Any]],
) -> None:
    model = HeldModel()

    async def main() -> list[Any]:
        batcher = MicroBatcher(model)
        batchers.append(batcher)
        first = asyncio.create_task(batcher.submit(0))
        await asyncio.sleep(0)
        gone = asyncio.create_task(batcher.submit(1))
        stays = asyncio.create_task(batcher.submit(2))
        await asyncio.sleep(0)
        gone.cancel()  # a client disconnected while its request waited
        model.release()
        return await asyncio.gather(first, gone, stays, return_exceptions=True)

    first, gone, stays = asyncio.run(main())
    assert (first, stays) == (0, 20)
    assert isinstance(gone, asyncio.CancelledError)


def test_a_batch_is_freed_without_the_cycle_collector(
    batchers: list[MicroBatcher[Any, Any]],
) -> None:
    """The after-work of a batch refers to its answers (to log them). Were the answers still to
    hold the after-work, every batch would be a reference cycle, kept until a full garbage
    collection: at 10,000 requests a second, the collector's work and pauses."""
    answers_made: list[weakref.ref[Answers[int]]] = []
    after_saw: list[int] = []

    def run_batch(items: list[int]) -> Answers[int]:
        answers: Answers[int] = Answers(item * 10 for item in items)

        def after() -> None:
            after_saw.append(sum(answers))

        answers.after = after
        answers_made.append(weakref.ref(answers))
        return answers

    async def main() -> int:
        batcher = MicroBatcher(run_batch, thread_name="freed-test")
        batchers.append(batcher)
        answer = await batcher.submit(4)
        await asyncio.sleep(0)  # the after-work, queued behind the answer
        batcher.close()
        return answer

    gc.disable()
    try:
        assert asyncio.run(main()) == 40
        for thread in threading.enumerate():
            if thread.name.startswith("freed-test"):
                thread.join(30)
        assert after_saw == [40]
        assert answers_made[0]() is None, "the batch outlived its work: a reference cycle"
    finally:
        gc.enable()


class _CloseOnFirstBatch:
    """The model threads' queue; as the first batch is handed over, another thread closes
    the batcher (what a rollout's control tick does when it unloads a version), at the worst
    moment: after the event loop saw a running model thread, before the batch is queued."""

    def __init__(self, batcher: MicroBatcher[Any, Any]) -> None:
        self.batcher = batcher
        self.inner = batcher._work
        self.closed = False

    def put(self, item: Any) -> None:
        if item is not None and not self.closed:
            self.closed = True
            closer = threading.Thread(target=self.batcher.close)
            closer.start()
            closer.join(0.2)  # with the batcher's lock, close() waits for this hand-over
        self.inner.put(item)

    def get(self) -> Any:
        return self.inner.get()


def test_a_batch_handed_over_while_another_thread_closes_the_batcher_is_answered(
    batchers: list[MicroBatcher[Any, Any]],
) -> None:
    async def main() -> list[Any]:
        batcher = MicroBatcher(lambda items: [x * 10 for x in items])
        batchers.append(batcher)
        assert await batcher.submit(1) == 10  # the model thread runs
        batcher._work = _CloseOnFirstBatch(batcher)  # type: ignore[assignment]
        return await asyncio.wait_for(asyncio.gather(batcher.submit(2), batcher.submit(3)), 30)

    assert asyncio.run(main()) == [20, 30]
