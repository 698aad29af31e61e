"""``modelpilot score`` single-process vs ``--engine dask`` (a local cluster of 2 workers) on
the same Parquet file: wall and CPU seconds per row, side by side with ratios.

Run: ``.venv/bin/python benchmarks/dask_scoring.py [--rows 1000000 10000000] [--log]``.

The input is 10 numeric features (fixed seed), generated once under
``/tmp/modelpilot-bench-dask/`` in row groups of 1M rows (never held in memory whole); the model
is a ridge regression, cheap on purpose: the goal measures the engine's overhead (validation,
ids, output files, the cluster), not the model's arithmetic. Each run is a fresh
``modelpilot score`` process, by default with ``--no-log`` (the log's own throughput is
``benchmarks/log_throughput.py``'s subject); CPU is user + system of that process and its
reaped children (the dask workers and nannies), which moves less than wall time on a shared
machine. Goals (issue 18): dask within 2x the single-process wall time at 10M rows; CPU per row
flat from 1M to 10M.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import skops.io as sio
from sklearn.linear_model import Ridge

from modelpilot.spec import FeatureSpec, render_project

CLI = Path(sys.executable).with_name("modelpilot")
DATA = Path("/tmp/modelpilot-bench-dask")
FEATURES = [f"f{i}" for i in range(10)]
WEIGHTS = np.linspace(-2.0, 2.0, len(FEATURES))


def rows_file(n_rows: int) -> Path:
    """The input of ``n_rows`` rows, written once, 1M rows at a time."""
    path = DATA / f"rows-{n_rows}.parquet"
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    tmp = path.with_suffix(".tmp")
    writer: pq.ParquetWriter | None = None
    for start in range(0, n_rows, 1_000_000):
        n = min(1_000_000, n_rows - start)
        table = pa.table({name: rng.normal(size=n) for name in FEATURES})
        writer = writer or pq.ParquetWriter(tmp, table.schema)
        writer.write_table(table)
    if writer is not None:
        writer.close()
    tmp.rename(path)
    return path


def make_project(directory: Path) -> None:
    features = [FeatureSpec(name=name, type="numeric") for name in FEATURES]
    (directory / "modelpilot.yaml").write_text(
        render_project(project="bench", task="regression", target="y", features=features)
    )
    rng = np.random.default_rng(1)
    train = pd.DataFrame({name: rng.normal(size=5000) for name in FEATURES})
    train["y"] = train[FEATURES].to_numpy() @ WEIGHTS + rng.normal(scale=0.1, size=5000)
    model = Ridge().fit(train[FEATURES], train["y"])
    sio.dump(model, directory / "model.skops")
    train.iloc[:1000].to_parquet(directory / "holdout.parquet")
    subprocess.run(
        [str(CLI), "-p", str(directory), "register", str(directory / "model.skops"), "--eval",
         str(directory / "holdout.parquet"), "--alias", "production"],
        check=True, capture_output=True,
    )  # fmt: skip


def run(directory: Path, source: Path, *, engine: str, log: bool) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one ``modelpilot score`` process."""
    output = directory / ("out-dask" if engine == "dask" else "out.parquet")
    shutil.rmtree(output, ignore_errors=True)
    output.unlink(missing_ok=True) if output.is_file() else None
    command = [str(CLI), "-p", str(directory), "score", str(source), "-o", str(output),
               "--skip-checks", "--json", "--engine", engine]  # fmt: skip
    if engine == "dask":
        command += ["--workers", "2"]
    if not log:
        command.append("--no-log")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--log", action="store_true", help="log the predictions (SQLite)")
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"({os.cpu_count()} cores, shared with other work: wall times are noisy)")  # fmt: skip
    print(f"logging {'on (SQLite)' if args.log else 'off (--no-log)'}")
    header = f"{'rows':>11} {'engine':>7} {'wall s':>8} {'CPU s':>8} {'CPU us/row':>11}"
    print(header + f" {'wall dask/local':>16} {'CPU dask/local':>15}")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        make_project(directory)
        for n_rows in args.rows:
            source = rows_file(n_rows)
            figures = {e: run(directory, source, engine=e, log=args.log) for e in ("local", "dask")}
            for engine, (wall, cpu) in figures.items():
                per_row = cpu / n_rows * 1e6
                line = f"{n_rows:>11,} {engine:>7} {wall:>8.2f} {cpu:>8.2f} {per_row:>11.2f}"
                if engine == "dask":
                    (lw, lc), (dw, dc) = figures["local"], figures["dask"]
                    line += f" {dw / lw:>15.2f}x {dc / lc:>14.2f}x"
                print(line, flush=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
