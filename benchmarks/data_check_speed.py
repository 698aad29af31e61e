"""Speed and memory of ``modelpilot data check`` on 1,000,000 rows x 25 feature columns.

Run: ``.venv/bin/python benchmarks/data_check_speed.py [--rows 1000000] [--repeat 3]``.

The data (fixed seed): 20 numeric features, 5 categorical ones with 10 to 30 categories, and a
binary label; 1% of the rows repeat an earlier row and 0.1% repeat one with the other label, so
the duplicate and label-conflict checks have work to do. It is written once as Parquet and once
as CSV in a temporary directory. Each timing runs ``check_data`` in a fresh process, twice: with
the schema inferred, and with a declared schema (ranges and categories, so every check runs).
Peak RSS is the child's high-water mark (``VmHWM``; ``getrusage``'s ``ru_maxrss`` would do, but
Linux keeps it across ``exec``, so a child would report the parent's peak), including Python,
pandas and DuckDB themselves; "idle" is the same process after its imports, before the check.
"CPU s" is the check's user + system time over all of DuckDB's threads: on a busy machine it
moves less than the wall-clock seconds do.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

N_NUMERIC = 20
N_CATEGORICAL = 5


def make_table(n_rows: int, *, seed: int = 0) -> pa.Table:
    """The benchmark's rows, with 1% exact duplicates and 0.1% label conflicts."""
    rng = np.random.default_rng(seed)
    n_base = n_rows - n_rows // 100 - n_rows // 1000
    columns: dict[str, np.ndarray] = {
        f"num_{i:02d}": rng.normal(0, 1, n_base).round(4) for i in range(N_NUMERIC)
    }
    for i in range(N_CATEGORICAL):
        categories = np.array([f"c{i}_{k}" for k in range(10 + 5 * i)])
        columns[f"cat_{i}"] = categories[rng.integers(0, len(categories), n_base)]
    score = columns["num_00"] + 0.5 * columns["num_01"] + rng.normal(0, 1, n_base)
    columns["label"] = (score > 1.0).astype(np.int64)
    copies = rng.integers(0, n_base, n_rows // 100)
    flipped = rng.integers(0, n_base, n_rows // 1000)
    order = np.concatenate([np.arange(n_base), copies, flipped])
    data = {name: values[order] for name, values in columns.items()}
    data["label"][n_base + len(copies) :] = 1 - data["label"][n_base + len(copies) :]
    return pa.table(data)


def peak_rss_mb() -> float:
    """This process's peak resident set size, in MiB."""
    try:
        status = Path("/proc/self/status").read_text(encoding="ascii")
    except OSError:  # not Linux: ru_maxrss is in bytes on macOS, KiB elsewhere
        scale = 2**20 if sys.platform == "darwin" else 2**10
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale
    kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(kib) / 1024


def measure(path: str, declared: bool) -> dict[str, float]:
    """Run in a child process: one check of ``path``, its time and the process's peak RSS."""
    from modelpilot.data import check_data, infer_schema

    features = None
    if declared:  # not timed: the inferred schema, with a range on every numeric feature
        features = [
            f.model_copy(update={"range": (-10.0, 10.0)}) if f.type == "numeric" else f
            for f in infer_schema(path, target="label")
        ]
    idle = peak_rss_mb()
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    report = check_data(path, target="label", task="binary", features=features)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_seconds = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
    peak = peak_rss_mb()
    conflicts = report.check("label_consistency").details["conflicting_groups"]
    duplicates = report.check("duplicate_rows").details["count"]
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "peak_mb": peak,
        "idle_mb": idle,
        "n_rows": report.n_rows,
        "n_columns": report.n_columns,
        "conflicts": conflicts,
        "duplicates": duplicates,
    }


def run_child(path: Path, declared: bool) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--measure", str(path), *(["--declared"] if declared else [])],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the best counts")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--declared", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.declared)))
        return

    with tempfile.TemporaryDirectory(prefix="modelpilot-bench-") as tmp:
        start = time.perf_counter()
        table = make_table(args.rows, seed=args.seed)
        files = {"parquet": Path(tmp) / "train.parquet", "csv": Path(tmp) / "train.csv"}
        pq.write_table(table, files["parquet"])
        pacsv.write_csv(table, files["csv"])
        del table
        print(
            f"generated {args.rows:,} rows x {N_NUMERIC + N_CATEGORICAL} features + label in "
            f"{time.perf_counter() - start:.1f} s: parquet "
            f"{files['parquet'].stat().st_size / 2**20:.0f} MB, csv "
            f"{files['csv'].stat().st_size / 2**20:.0f} MB"
        )
        print(
            f"{'format':8} {'schema':9} {'seconds':>8} {'CPU s':>6} {'rows/s':>11} {'peak RSS':>9} "
            f"{'idle RSS':>9} {'duplicates':>10} {'conflicts':>9}"
        )
        for fmt, path in files.items():
            for declared in (False, True):
                runs = [run_child(path, declared) for _ in range(args.repeat)]
                best = min(runs, key=lambda r: r["seconds"])
                print(
                    f"{fmt:8} {'declared' if declared else 'inferred':9} "
                    f"{best['seconds']:8.2f} {best['cpu_seconds']:6.1f} "
                    f"{best['n_rows'] / best['seconds']:11,.0f} "
                    f"{max(r['peak_mb'] for r in runs):7.0f}MB {best['idle_mb']:7.0f}MB "
                    f"{best['duplicates']:10,} {best['conflicts']:9,}"
                )


if __name__ == "__main__":
    main()
