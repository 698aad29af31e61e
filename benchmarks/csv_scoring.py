"""``modelpilot score`` on the same rows as CSV and as Parquet: CPU seconds side by side.

Run: ``.venv/bin/python benchmarks/csv_scoring.py [--rows 1000000] [--repeat 2] [--no-log]``.

The rows are the house-price data set's 9 features (fixed seed), with 1 row in 10,000 broken
(a size of "unknown" in the CSV, -1 in both: outside the declared range) so the per-cell
rejection path has work to do. The model is the demo's gradient-boosted pipeline, trained on
2,000 rows. Each run scores the file in a fresh process (``modelpilot score``, logging to the
project's SQLite prediction log unless --no-log) and reports that process's user + system CPU
seconds, which move less than wall-clock seconds on a shared machine. The figure per format is
the fastest of --repeat runs; the goal is CSV within 1.5x of Parquet.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import skops.io as sio
from sklearn.compose import make_column_transformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from modelpilot.datasets import HOUSE_FEATURES, house_prices
from modelpilot.spec import render_project

CLI = Path(sys.executable).with_name("modelpilot")


def make_project(directory: Path, n_rows: int) -> tuple[Path, Path]:
    """A project with the model registered as production; the input as CSV and Parquet."""
    (directory / "modelpilot.yaml").write_text(
        render_project(project="houses", task="regression", target="price", features=HOUSE_FEATURES)
    )
    train = house_prices(2000, seed=1)
    encode = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["location", "condition"]),
        remainder="passthrough",
    )
    model = make_pipeline(encode, HistGradientBoostingRegressor(max_iter=60, random_state=0))
    model.fit(train.drop(columns="price"), train["price"])
    sio.dump(model, directory / "model.skops")
    train.iloc[:500].to_parquet(directory / "holdout.parquet")
    subprocess.run(
        [str(CLI), "-p", str(directory), "register", str(directory / "model.skops"), "--eval",
         str(directory / "holdout.parquet"), "--alias", "production"],
        check=True, capture_output=True,
    )  # fmt: skip
    rows = house_prices(n_rows, seed=2).drop(columns="price")
    broken = np.arange(0, n_rows, 10_000)
    rows.loc[broken, "size_sqft"] = -1.0
    rows.to_parquet(directory / "input.parquet")
    text = rows.astype({"size_sqft": object})
    text.loc[broken[::2], "size_sqft"] = "unknown"
    text.to_csv(directory / "input.csv", index=False)
    return directory / "input.csv", directory / "input.parquet"


def score_cpu(directory: Path, source: Path, *, log: bool) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one `modelpilot score` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    command = [str(CLI), "-p", str(directory), "score", str(source), "-o",
               str(directory / f"out{source.suffix}"), "--skip-checks"]  # fmt: skip
    subprocess.run([*command, *([] if log else ["--no-log"])], check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--no-log", action="store_true", help="score with --no-log")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        csv, parquet = make_project(directory, args.rows)
        print(f"{args.rows:,} rows; logging {'off' if args.no_log else 'on'}; best of "
              f"{args.repeat} (CPU s = user + system of the scoring process)")  # fmt: skip
        results: dict[str, tuple[float, float]] = {}
        for source in (parquet, csv):
            runs = [score_cpu(directory, source, log=not args.no_log) for _ in range(args.repeat)]
            results[source.suffix] = min(runs)
            size = source.stat().st_size / 1e6
            print(f"  {source.suffix[1:]:8} {size:8.1f} MB  CPU {min(runs)[0]:6.2f} s  "
                  f"wall {min(r[1] for r in runs):6.2f} s")  # fmt: skip
        ratio = results[".csv"][0] / results[".parquet"][0]
        print(f"CSV / Parquet CPU: {ratio:.2f}x (goal: at most 1.5x)")
        scored = pd.read_parquet(directory / "out.parquet")
        print(f"  ({len(scored):,} rows scored from Parquet)")


if __name__ == "__main__":
    main()
