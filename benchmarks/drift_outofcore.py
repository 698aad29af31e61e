"""Drift on data larger than memory: the streaming engine on a generated 100M-row case, and
beside the in-memory engine on the 1M-row case (same verdicts, time ratio), in one run.

Data (fixed seed, generated batch by batch and never materialised): 8 numeric columns (normal,
log-normal, uniform, a few-valued integer) and 2 categorical ones (10 and 200 levels). In the
current side ``num_0`` is shifted by 0.3 standard deviations, ``num_1`` scaled by 1.5, ``num_2``
(log-normal) shifted by 0.25 in log space, ``cat_0`` re-weighted; ``num_3`` has a tiny shift
(0.03 sd) that the effect-size thresholds should NOT flag. Expected: num_0, num_1, num_2, cat_0.

    .venv/bin/python benchmarks/drift_outofcore.py                 # 1M side by side, then 100M
    .venv/bin/python benchmarks/drift_outofcore.py --rows 20000000  # a smaller large case

Figures: CPU seconds (``time.process_time``: the machine is shared, wall time is noisy),
wall seconds, rows/s (rows of both sides read per pass, over wall time), peak RSS
(``ru_maxrss`` of this process; the large case runs in a fresh subprocess so its peak is its
own). Each side is read twice (the engine's two passes).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

NUMERIC = [f"num_{i}" for i in range(8)]
CATEGORICAL = ["cat_0", "cat_1"]
EXPECTED = {"num_0", "num_1", "num_2", "cat_0"}
SEED = 20261207
BATCH_ROWS = 500_000
_CAT0 = np.array([f"c{i}" for i in range(10)])
_CAT1 = np.array([f"k{i:03d}" for i in range(200)])
SCHEMA = pa.schema(
    [(name, pa.int64() if name == "num_7" else pa.float64()) for name in NUMERIC]
    + [(name, pa.string()) for name in CATEGORICAL]
)


def _batch(rng: np.random.Generator, n: int, drift: bool) -> pa.RecordBatch:
    shift = 1.0 if drift else 0.0
    cols: dict[str, Any] = {
        "num_0": rng.normal(0.3 * shift, 1.0, n),
        "num_1": rng.normal(0.0, 1.0 + 0.5 * shift, n),
        "num_2": rng.lognormal(0.25 * shift, 0.5, n),
        "num_3": rng.normal(0.03 * shift, 1.0, n),
        "num_4": rng.uniform(0.0, 10.0, n),
        "num_5": rng.normal(5.0, 2.0, n),
        "num_6": rng.exponential(1.0, n),
        "num_7": rng.integers(0, 4, n),
    }
    weights0 = np.full(10, 0.1)
    if drift:
        weights0 = np.array([0.25, 0.15, *([0.075] * 8)])
    cols["cat_0"] = pa.DictionaryArray.from_arrays(
        pa.array(rng.choice(10, n, p=weights0).astype(np.int32)), pa.array(_CAT0)
    ).cast(pa.string())
    cols["cat_1"] = pa.DictionaryArray.from_arrays(
        pa.array(rng.integers(0, 200, n).astype(np.int32)), pa.array(_CAT1)
    ).cast(pa.string())
    return pa.record_batch(cols, schema=SCHEMA)


def batches(n_rows: int, *, drift: bool, seed: int = SEED) -> Iterator[pa.RecordBatch]:
    """The side's batches, regenerated identically on every call (the engine reads twice)."""
    for index, start in enumerate(range(0, n_rows, BATCH_ROWS)):
        rng = np.random.default_rng([seed, int(drift), index])
        yield _batch(rng, min(BATCH_ROWS, n_rows - start), drift)


def source(n_rows: int, *, drift: bool) -> Any:
    from modelpilot.drift import GeneratedSource

    return GeneratedSource(lambda: batches(n_rows, drift=drift), schema=SCHEMA, n_rows=n_rows)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_stream(n_rows: int, **options: Any) -> dict[str, Any]:
    from modelpilot.drift import compare_stream

    cpu, wall = time.process_time(), time.perf_counter()
    report = compare_stream(source(n_rows, drift=False), source(n_rows, drift=True), **options)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {
        "rows": n_rows,
        "cpu_s": cpu,
        "wall_s": wall,
        "rows_per_s": 4 * n_rows / wall,  # two sides, two passes
        "peak_rss_mb": _peak_mb(),
        "features": [
            {k: f.to_dict()[k] for k in ("name", "method", "statistic", "drifted", "exact")}
            | {"error_bound": f.error_bound}
            for f in report.features
        ],
    }


def run_generation(n_rows: int) -> float:
    """CPU seconds to generate what the engine reads (both sides, twice): not the engine's."""
    cpu = time.process_time()
    for _ in range(2):
        for drift in (False, True):
            sum(batch.num_rows for batch in batches(n_rows, drift=drift))
    return time.process_time() - cpu


def run_memory(n_rows: int) -> dict[str, Any]:
    from modelpilot.drift import compare

    ref = pa.Table.from_batches(list(batches(n_rows, drift=False))).to_pandas()
    cur = pa.Table.from_batches(list(batches(n_rows, drift=True))).to_pandas()
    cpu, wall = time.process_time(), time.perf_counter()
    report = compare(ref, cur, n_jobs=1)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    flagged = {f.name: (f.method, f.statistic, f.drifted) for f in report.features}
    return {"cpu_s": cpu, "wall_s": wall, "features": flagged}


def _verdicts(features: list[dict[str, Any]]) -> set[str]:
    return {f["name"] for f in features if f["drifted"]}


def small_case(n_rows: int) -> list[str]:
    memory = run_memory(n_rows)
    binned = run_stream(n_rows, exact_max_rows=0)
    exact = run_stream(n_rows)
    generation = run_generation(n_rows)
    lines = [
        f"## {n_rows:,} rows a side: in-memory vs streaming engine",
        "",
        "| feature | in-memory (method, statistic) | streaming binned (statistic ± bound) "
        "| streaming exact |",
        "|---|---|---|---|",
    ]
    for b, e in zip(binned["features"], exact["features"], strict=True):
        method, statistic, drifted = memory["features"][b["name"]]
        bound = "" if b["error_bound"] is None else f" ± {b['error_bound']:.2g}"
        lines.append(
            f"| {b['name']} | {method} {statistic:.4f} {'**drift**' if drifted else ''} "
            f"| {b['method']} {b['statistic']:.4f}{bound} {'**drift**' if b['drifted'] else ''} "
            f"| {e['statistic']:.4f} {'**drift**' if e['drifted'] else ''} |"
        )
    memory_drifted = {n for n, (_, _, d) in memory["features"].items() if d}
    same = memory_drifted == _verdicts(binned["features"]) == _verdicts(exact["features"])
    lines += [
        "",
        f"Verdicts: in-memory {sorted(memory_drifted)}; streaming binned "
        f"{sorted(_verdicts(binned['features']))}; streaming exact "
        f"{sorted(_verdicts(exact['features']))} -> {'SAME' if same else 'DIFFERENT'}"
        f" (expected {sorted(EXPECTED)}).",
        "",
        "| engine | CPU s | wall s | CPU ratio to in-memory |",
        "|---|---|---|---|",
        f"| in-memory `compare` (data already in memory) | {memory['cpu_s']:.2f} "
        f"| {memory['wall_s']:.2f} | 1.0 |",
        f"| streaming, binned (2 passes, generating the data) | {binned['cpu_s']:.2f} "
        f"| {binned['wall_s']:.2f} | {binned['cpu_s'] / memory['cpu_s']:.1f} |",
        f"| streaming, exact (< exact_max_rows) | {exact['cpu_s']:.2f} "
        f"| {exact['wall_s']:.2f} | {exact['cpu_s'] / memory['cpu_s']:.1f} |",
        f"| (generating the batches alone, both sides twice) | {generation:.2f} | | |",
        f"| streaming binned minus generation | {binned['cpu_s'] - generation:.2f} | "
        f"| {(binned['cpu_s'] - generation) / memory['cpu_s']:.1f} |",
        "",
        "The in-memory engine's figure excludes reading the data (already in memory); the "
        "streaming figures include generating every batch twice, shown apart on the last rows.",
        "",
    ]
    return lines


def large_case(n_rows: int) -> list[str]:
    # A fresh process, so ru_maxrss is the large run's own peak and not the 1M case's.
    out = subprocess.run(
        [sys.executable, __file__, "--worker", str(n_rows)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    generation = result["generation_cpu_s"]
    lines = [
        f"## {n_rows:,} rows a side, generated on the fly (streaming engine)",
        "",
        f"CPU {result['cpu_s']:.0f} s, wall {result['wall_s']:.0f} s, "
        f"{result['rows_per_s'] / 1e6:.2f} M rows/s (4 x {n_rows:,} rows read), "
        f"peak RSS {result['peak_rss_mb']:.0f} MB. Generating the batches alone (both sides, "
        f"twice) took {generation:.0f} s CPU of that: the engine's share is "
        f"{result['cpu_s'] - generation:.0f} s CPU, "
        f"{4 * n_rows / max(result['cpu_s'] - generation, 1e-9) / 1e6:.2f} M rows per CPU second.",
        "",
        "| feature | method | statistic | error bound | exact | drifted |",
        "|---|---|---|---|---|---|",
    ]
    for f in result["features"]:
        bound = "-" if f["error_bound"] is None else f"{f['error_bound']:.2g}"
        lines.append(
            f"| {f['name']} | {f['method']} | {f['statistic']:.4f} | {bound} | {f['exact']} "
            f"| {'**yes**' if f['drifted'] else 'no'} |"
        )
    verdicts = _verdicts(result["features"])
    lines += [
        "",
        f"Drifted: {sorted(verdicts)} (expected {sorted(EXPECTED)}): "
        f"{'as expected' if verdicts == EXPECTED else 'NOT as expected'}.",
        "",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000_000, help="rows a side, large case")
    parser.add_argument("--small", type=int, default=1_000_000, help="rows a side, small case")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help="also write the Markdown here")
    args = parser.parse_args()
    if args.worker:
        result = run_stream(args.worker)
        result["generation_cpu_s"] = run_generation(args.worker)
        print(json.dumps(result))
        return
    lines = ["# Drift on data larger than memory", ""]
    lines += small_case(args.small)
    print("\n".join(lines), flush=True)
    large = large_case(args.rows) if args.rows else []
    print("\n".join(large))
    if args.out:
        args.out.write_text("\n".join(lines + large) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
