"""Latency percentiles that add up across replicas: a log-bucketed histogram (a sketch).

Each replica counts its request latencies into buckets whose bounds grow by a constant factor
``GAMMA``; counts of several replicas (and several intervals) add bucket by bucket, and any
percentile of the sum is known within ``ERROR`` relative error. Prometheus' fixed buckets
(0.5 ms ... 10 s, 14 of them) would put a p99 somewhere in a bucket as wide as 25-50 ms; the
canary's latency gate reads exact percentiles from the prediction log, and the monitor's
figures should agree with it. This is the idea of DDSketch (Masson et al., VLDB 2019) in the
few lines we need: no collapsing (latencies span at most ~10 decades: < 600 buckets), and a
sparse dict, so an interval's sketch is a few dozen numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

__all__ = ["ERROR", "GAMMA", "bucket_of", "merge_sketches", "sketch_quantile"]

#: Relative accuracy of a percentile: 2%.
ERROR = 0.02
GAMMA = (1 + ERROR) / (1 - ERROR)
_LOG_GAMMA = math.log(GAMMA)
_SMALLEST = 1e-6  # seconds: faster than a microsecond is a microsecond


def bucket_of(seconds: float) -> int:
    """The bucket of a latency: ``GAMMA**(i-1) < seconds <= GAMMA**i``.

    Examples
    --------
    >>> bucket_of(0.010), bucket_of(0.0101), bucket_of(0.0)
    (-115, -114, -345)
    """
    return math.ceil(math.log(max(seconds, _SMALLEST)) / _LOG_GAMMA)


def merge_sketches(sketches: Iterable[Mapping[int, int]]) -> dict[int, int]:
    """Bucket counts added up (replicas, intervals).

    Examples
    --------
    >>> merge_sketches([{1: 2, 3: 1}, {3: 4}])
    {1: 2, 3: 5}
    """
    total: dict[int, int] = {}
    for sketch in sketches:
        for bucket, count in sketch.items():
            total[bucket] = total.get(bucket, 0) + count
    return dict(sorted(total.items()))


def sketch_quantile(sketch: Mapping[int, int], q: float) -> float | None:
    """The ``q`` quantile (0 to 1, nearest rank) of the latencies counted in ``sketch``, in
    seconds, within ``ERROR`` of the true one; None for an empty sketch.

    Examples
    --------
    >>> sketch = merge_sketches([{bucket_of(s / 1000): 1} for s in range(1, 101)])
    >>> [round(sketch_quantile(sketch, q) * 1000, 1) for q in (0.5, 0.99)]
    [50.8, 100.2]
    """
    total = sum(sketch.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for bucket in sorted(sketch):
        seen += sketch[bucket]
        if seen >= rank:
            # The bucket's value that is within ERROR of both of its bounds.
            return 2 * GAMMA**bucket / (GAMMA + 1)
    return None  # pragma: no cover - the loop reaches the rank
