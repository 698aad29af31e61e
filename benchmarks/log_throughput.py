"""Prediction-log throughput: batched appends (rows/s) and time-window reads (rows/s).

Run: ``.venv/bin/python benchmarks/log_throughput.py [--rows N] [--database-url URL]``.
The goal (issue 2): appends >= 100,000 rows/s here, batched, and a window read back as a
DataFrame fast enough for drift checks. Rows look like the demo's: 9 house features in, a
prediction out.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from modelpilot.datasets import house_prices
from modelpilot.store import PredictionBatch, PredictionLog, create_database, new_ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--database-url", default=None)
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

    print(f"backend        {url.split(':')[0]}")
    print(
        f"append         {written:,} rows in {append_s:.2f}s = {written / append_s:,.0f} rows/s "
        f"(batches of {args.batch:,})"
    )
    print(
        f"window read    {len(window):,} rows x {window.shape[1]} columns in {read_s:.2f}s = "
        f"{len(window) / read_s:,.0f} rows/s"
    )


if __name__ == "__main__":
    main()
