"""Prediction-log throughput: batched appends (rows/s) and time-window reads (rows/s).

Run: ``.venv/bin/python benchmarks/log_throughput.py [--rows N] [--database-url URL]
[--small-segments N]``. The goal (issue 2): appends >= 100,000 rows/s here, batched, and a
window read back as a DataFrame fast enough for drift checks. Rows look like the demo's: 9 house
features in, a prediction out.

Then the online writer's shape: ``--small-segments`` segments of 5 rows (what a server at
100 requests/s commits every 50 ms), a window over all of them read before and after
``compact_segments`` merges them, side by side.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from modelpilot.datasets import house_prices
from modelpilot.store import (
    PredictionBatch,
    PredictionLog,
    compact_segments,
    create_database,
    log_stats,
    new_ids,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--small-segments", type=int, default=20_000)
    args = parser.parse_args()

    frame = house_prices(args.batch, seed=0)
    inputs = frame.drop(columns="price")
    outputs = pd.DataFrame({"prediction": frame["price"]})
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'log.db'}"
        log = PredictionLog(create_database(url))
        written = 0
        started = time.perf_counter()
        ts = 1_700_000_000.0
        while written < args.rows:
            ids = new_ids(args.batch)
            times = ts + (written + np.arange(args.batch)) * 1e-3
            written += log.append(
                PredictionBatch(
                    model="houses",
                    version=1,
                    ids=ids,
                    ts=times,
                    inputs=inputs,
                    outputs=outputs,
                    source="batch",
                    batch_id="b1",
                    latency_ms=np.full(args.batch, 0.1),
                )
            )
        append_s = time.perf_counter() - started

        start = ts + args.rows * 1e-3 * 0.5
        started = time.perf_counter()
        window = log.window(model="houses", start=start)
        read_s = time.perf_counter() - started
        small = small_segments(log, inputs, outputs, args.small_segments, ts + args.rows)

    print(f"backend        {url.split(':')[0]}")
    print(
        f"append         {written:,} rows in {append_s:.2f}s = {written / append_s:,.0f} rows/s "
        f"(batches of {args.batch:,})"
    )
    print(
        f"window read    {len(window):,} rows x {window.shape[1]} columns in {read_s:.2f}s = "
        f"{len(window) / read_s:,.0f} rows/s"
    )
    print(small)


def small_segments(
    log: PredictionLog, inputs: pd.DataFrame, outputs: pd.DataFrame, n: int, ts: float
) -> str:
    """A window over ``n`` 5-row segments, read before and after compaction."""
    rows = 5
    part_in, part_out = inputs.head(rows), outputs.head(rows)
    started = time.perf_counter()
    for k in range(n):
        log.append(
            PredictionBatch(
                model="online",
                version=1,
                ids=new_ids(rows),
                ts=ts + k * 0.05 + np.arange(rows) * 1e-3,
                inputs=part_in,
                outputs=part_out,
                latency_ms=np.full(rows, 0.1),
            )
        )
    fill_s = time.perf_counter() - started
    started = time.perf_counter()
    before = log.window(model="online")
    before_s = time.perf_counter() - started
    segments_before = log_stats(log.engine).segments
    started = time.perf_counter()
    result = compact_segments(log.engine, older_than=ts + n, target_rows=10_000)
    compact_s = time.perf_counter() - started
    segments_after = log_stats(log.engine).segments
    started = time.perf_counter()
    after = log.window(model="online")
    after_s = time.perf_counter() - started
    if not before.equals(after):
        raise SystemExit("compaction changed the window's contents")
    return (
        f"small segments {n:,} x {rows} rows written in {fill_s:.1f}s (one commit each)\n"
        f"  window read  {len(before):,} rows: {before_s:.2f}s before compaction, "
        f"{after_s:.2f}s after ({before_s / after_s:,.0f}x)\n"
        f"  compaction   {result.segments_merged:,} segments into {result.segments_written:,} "
        f"in {compact_s:.2f}s; segments in the log {segments_before:,} -> {segments_after:,}"
    )


if __name__ == "__main__":
    main()
