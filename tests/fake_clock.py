"""The clock every test injects where the code takes ``clock=time.time``: it moves only when
told to, so a 10-minute canary step or a day of retention passes in no time."""

from __future__ import annotations

__all__ = ["FakeClock"]


class FakeClock:
    """Time that stands still until a test moves it.

    >>> clock = FakeClock(100.0)
    >>> clock(), clock.advance(5), clock()
    (100.0, 105.0, 105.0)
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now
