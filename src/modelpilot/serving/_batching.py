"""Adaptive micro-batching: concurrent requests for one model share one vectorised call.

A scikit-learn ``predict_proba`` on one row costs about as much as on 32, so gathering
requests is where a Python model server wins throughput. The policy needs no timer: when the
model is idle a request goes to it at once (no added latency at low load); while it is busy,
new requests gather, and the next call takes up to ``max_batch_size`` rows of them. An
optional ``max_wait`` holds an incomplete batch a little longer. Model calls run in a thread
pool, so the event loop keeps accepting and answering requests meanwhile.

Written here rather than taken from MLServer: its adaptive batcher always waits up to its
timeout for a batch to fill, which costs every request at low load that timeout in latency.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Answers", "BatchStats", "MicroBatcher"]

T = TypeVar("T")
R = TypeVar("R")


class Answers(list[R]):
    """A batch function's results, with work for the event loop once they are handed out.

    ``after`` (if set) runs on the event loop right after the requests of the batch have
    been resumed, so what the answers do not depend on (bookkeeping: logging, metrics) does
    not delay them.
    """

    after: Callable[[], None] | None = None


@dataclass
class BatchStats:
    calls: int = 0
    rows: int = 0
    last_batch_rows: int = 0
    max_batch_rows: int = 0


@dataclass
class _Job(Generic[T, R]):
    item: T
    rows: int
    future: asyncio.Future[R]


class MicroBatcher(Generic[T, R]):
    """Gathers items into batches for ``run_batch(items) -> results`` (one result per item).

    ``run_batch`` runs in ``executor``. A result that is an exception fails its item alone.
    When ``run_batch`` raises on a batch of several items, each item is retried alone, so one
    poisonous request fails alone and its neighbours still succeed.

    Examples
    --------
    >>> import asyncio
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> async def main():
    ...     batcher = MicroBatcher(lambda items: [x * 2 for x in items],
    ...                            executor=ThreadPoolExecutor(1), max_batch_size=8)
    ...     return await asyncio.gather(*(batcher.submit(i) for i in range(5))), batcher.stats.calls
    >>> asyncio.run(main())
    ([0, 2, 4, 6, 8], 2)
    """

    def __init__(
        self,
        run_batch: Callable[[list[T]], Sequence[R | BaseException]],
        *,
        executor: Executor,
        max_batch_size: int = 64,
        max_wait: float = 0.0,
        concurrency: int = 1,
        size: Callable[[T], int] = lambda _: 1,
        on_dispatch: Callable[[int], None] | None = None,
    ) -> None:
        self.run_batch = run_batch
        self.executor = executor
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait
        self.concurrency = concurrency
        self.size = size
        self.on_dispatch = on_dispatch
        self.stats = BatchStats()
        self._queue: deque[_Job[T, R]] = deque()
        self._queued_rows = 0
        self._running = 0
        self._timer: asyncio.TimerHandle | None = None

    @property
    def queued_rows(self) -> int:
        return self._queued_rows

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        job: _Job[T, R] = _Job(item, self.size(item), loop.create_future())
        self._queue.append(job)
        self._queued_rows += job.rows
        self._maybe_dispatch(loop)
        return await job.future

    def _maybe_dispatch(self, loop: asyncio.AbstractEventLoop) -> None:
        while self._queue and self._running < self.concurrency:
            if self.max_wait > 0 and self._queued_rows < self.max_batch_size and self._running == 0:
                if self._timer is None:
                    self._timer = loop.call_later(self.max_wait, self._on_timer, loop)
                return
            self._dispatch(loop)

    def _on_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        if self._queue and self._running < self.concurrency:
            self._dispatch(loop)

    def _dispatch(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        jobs: list[_Job[T, R]] = []
        rows = 0
        while self._queue and (not jobs or rows + self._queue[0].rows <= self.max_batch_size):
            job = self._queue.popleft()
            jobs.append(job)
            rows += job.rows
        self._queued_rows -= rows
        self._running += 1
        self.stats.calls += 1
        self.stats.rows += rows
        self.stats.last_batch_rows = rows
        self.stats.max_batch_rows = max(self.stats.max_batch_rows, rows)
        if self.on_dispatch is not None:
            self.on_dispatch(rows)
        items = [job.item for job in jobs]
        try:
            future = self.executor.submit(self._call, items)
        except RuntimeError as exc:  # the executor is shut down: the server is stopping
            self._running -= 1
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        # One hand-over back to the event loop per batch. (loop.run_in_executor would wrap
        # the future in an asyncio future and chain the two: about 50 us more per call,
        # which at one connection is a sixth of the whole request.)
        future.add_done_callback(lambda done: self._hand_back(loop, jobs, done))

    def _hand_back(
        self,
        loop: asyncio.AbstractEventLoop,
        jobs: list[_Job[T, R]],
        done: Future[list[R | BaseException]],
    ) -> None:
        try:
            loop.call_soon_threadsafe(self._finish, loop, jobs, done)
        except RuntimeError:  # the loop is closed: nobody waits for these answers any more
            pass

    def _call(self, items: list[T]) -> list[R | BaseException]:
        try:
            answers = self.run_batch(items)
            results: list[R | BaseException] = (
                answers if isinstance(answers, Answers) else list(answers)
            )
            if len(results) != len(items):
                raise RuntimeError(
                    f"the batch function returned {len(results)} results for {len(items)} items"
                )
            return results
        except Exception as exc:
            if len(items) == 1:
                return [exc]
        out: list[R | BaseException] = []
        for item in items:  # find the poisonous item: retry each one alone
            try:
                out.append(self.run_batch([item])[0])
            except Exception as exc:
                out.append(exc)
        return out

    def _finish(
        self,
        loop: asyncio.AbstractEventLoop,
        jobs: list[_Job[T, R]],
        done: Future[list[R | BaseException]],
    ) -> None:
        self._running -= 1
        error = done.exception()
        for index, job in enumerate(jobs):
            if job.future.done():  # the caller went away (client disconnected)
                continue
            if error is not None:
                job.future.set_exception(error)
                continue
            result = done.result()[index]
            if isinstance(result, BaseException):
                job.future.set_exception(result)
            else:
                job.future.set_result(result)
        if error is None:
            after = getattr(done.result(), "after", None)
            if after is not None:
                loop.call_soon(after)  # queued behind the requests just resumed
        self._maybe_dispatch(loop)
