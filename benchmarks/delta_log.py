"""The prediction log on both backends, side by side: appends, a window read, bytes per row.

Run: ``.venv/bin/python benchmarks/delta_log.py [--rows N] [--batch N]``. The SQL log (a SQLite
file) against the Delta log in a local directory, appended through its spool (what a server
does: each append fsync'd to local disk, one Delta commit at the stop), then one window read
back as a DataFrame. Figures are CPU seconds of this process (``time.process_time``) as well as
wall time: on a shared machine the CPU figures are the ones to compare.
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
    DeltaPredictionLog,
    PredictionBatch,
    PredictionLog,
    PredictionStore,
    create_database,
    new_ids,
)


def run(log: PredictionStore, rows: int, batch: int) -> dict[str, float]:
    frame = house_prices(batch, seed=0)
    inputs = frame.drop(columns="price")
    outputs = pd.DataFrame({"prediction": frame["price"]})
    ts = 1_700_000_000.0
    log.start()
    cpu, wall = time.process_time(), time.perf_counter()
    written = 0
    while written < rows:
        written += log.append(
            PredictionBatch(
                model="houses",
                version=1,
                ids=new_ids(batch),
                ts=ts + (written + np.arange(batch)) * 1e-3,
                inputs=inputs,
                outputs=outputs,
            )
        )
    log.stop()
    append_cpu, append_wall = time.process_time() - cpu, time.perf_counter() - wall
    cpu, wall = time.process_time(), time.perf_counter()
    window = log.window(model="houses", start=ts)
    read_cpu, read_wall = time.process_time() - cpu, time.perf_counter() - wall
    assert len(window) == written
    stats = log.stats()
    return {
        "append rows/s (CPU)": written / append_cpu,
        "append rows/s (wall)": written / append_wall,
        "window rows/s (CPU)": written / read_cpu,
        "window rows/s (wall)": written / read_wall,
        "stored bytes/row": stats.payload_bytes / written,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sql = run(
            PredictionLog(create_database(f"sqlite:///{root / 'log.db'}")), args.rows, args.batch
        )
        delta = run(
            DeltaPredictionLog(str(root / "delta"), spool=root / "spool", commit_interval=3600),
            args.rows,
            args.batch,
        )
    print(f"{args.rows:,} rows in batches of {args.batch}")
    print(f"{'':24} {'sql (SQLite)':>14} {'delta (local)':>14} {'delta/sql':>10}")
    for key in sql:
        print(f"{key:24} {sql[key]:>14,.0f} {delta[key]:>14,.0f} {delta[key] / sql[key]:>10.2f}")


if __name__ == "__main__":
    main()
