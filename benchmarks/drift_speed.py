"""Data-drift speed, memory and verdicts: modelpilot against Evidently, NannyML, alibi-detect and a
plain scipy loop, side by side in one run.

Data (fixed seed): 25 columns, 20 numeric (normal, log-normal and uniform) and 5 categorical with
10 levels; in the current set the means of 5 numeric columns are shifted by 0.2 standard
deviations and 1 categorical column is re-weighted, so exactly 6 columns should be flagged.

Each tool runs in its own subprocess (peers in their own virtualenvs, made by
``benchmarks/peers/install_drift_peers.sh``); the subprocess reads the Parquet files, then times
only the drift computation, and reports the peak resident memory during it (Linux: VmHWM after
resetting it through /proc/self/clear_refs) and the columns it flagged. A peer that is not
installed prints "n/a".

    .venv/bin/python benchmarks/drift_speed.py                      # 10k and 100k rows
    .venv/bin/python benchmarks/drift_speed.py --rows 1000000 --peers modelpilot scipy evidently

The ratio column is the tool's time divided by modelpilot's (defaults) time at the same size.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ENVS = HERE / "peers" / ".envs"
PEERS = ["modelpilot", "modelpilot-ks", "scipy", "evidently", "nannyml", "alibi-detect"]
PEER_PYTHON = {
    "modelpilot": ROOT / ".venv" / "bin" / "python",
    "modelpilot-ks": ROOT / ".venv" / "bin" / "python",
    "scipy": ROOT / ".venv" / "bin" / "python",
    "evidently": ENVS / "evidently" / "bin" / "python",
    "nannyml": ENVS / "nannyml" / "bin" / "python",
    "alibi-detect": ENVS / "alibi-detect" / "bin" / "python",
}
NUMERIC = [f"num_{i:02d}" for i in range(20)]
CATEGORICAL = [f"cat_{i}" for i in range(5)]
SHIFTED = NUMERIC[:5]
REWEIGHTED = CATEGORICAL[:1]
EXPECTED = set(SHIFTED + REWEIGHTED)
SEED = 20240601


# ---- data -----------------------------------------------------------------------------------
def make_data(n_rows: int, directory: Path) -> None:
    """Write reference.parquet and current.parquet with ``n_rows`` rows each."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(SEED)
    levels = np.array([f"level_{i}" for i in range(10)])
    weights = np.array([0.2, 0.16, 0.13, 0.11, 0.1, 0.08, 0.07, 0.06, 0.05, 0.04])
    reweighted = weights[[9, 1, 2, 3, 4, 5, 6, 7, 8, 0]]  # the most and least common swap
    reference: dict[str, Any] = {}
    current: dict[str, Any] = {}
    for i, name in enumerate(NUMERIC):
        loc, scale = rng.uniform(-50, 50), rng.uniform(0.5, 20)
        if i % 4 == 3:  # log-normal: skewed, positive
            ref = np.exp(rng.normal(0, 0.5, n_rows)) * scale
            cur = np.exp(rng.normal(0, 0.5, n_rows)) * scale
        elif i % 4 == 2:  # uniform
            ref = rng.uniform(loc, loc + scale, n_rows)
            cur = rng.uniform(loc, loc + scale, n_rows)
        else:
            ref = rng.normal(loc, scale, n_rows)
            cur = rng.normal(loc, scale, n_rows)
        if name in SHIFTED:
            cur = cur + 0.2 * float(np.std(ref))
        reference[name], current[name] = ref, cur
    for name in CATEGORICAL:
        reference[name] = levels[rng.choice(10, n_rows, p=weights)]
        p = reweighted if name in REWEIGHTED else weights
        current[name] = levels[rng.choice(10, n_rows, p=p)]
    pd.DataFrame(reference).to_parquet(directory / "reference.parquet")
    pd.DataFrame(current).to_parquet(directory / "current.parquet")


# ---- workers (run inside each tool's own environment) -----------------------------------------
def _rss_bytes() -> int:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def _peak_bytes() -> int:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _run_modelpilot(ref: Any, cur: Any, methods: str) -> tuple[set[str], str]:
    import modelpilot
    from modelpilot.drift import compare

    overrides = None
    if methods == "ks":
        overrides = {c: ("ks" if c in NUMERIC else "chi_square") for c in ref.columns}
    report = compare(ref, cur, methods=overrides)
    return set(report.drifted_features), getattr(modelpilot, "__version__", "dev")


def _run_scipy(ref: Any, cur: Any) -> tuple[set[str], str]:
    import numpy as np
    import scipy
    from scipy import stats

    flagged = set()
    for name in NUMERIC:
        if stats.ks_2samp(ref[name].to_numpy(), cur[name].to_numpy()).pvalue < 0.05:
            flagged.add(name)
    for name in CATEGORICAL:
        a, b = ref[name].value_counts(), cur[name].value_counts()
        keys = sorted(set(a.index) | set(b.index))
        table = np.array([[a.get(k, 0) for k in keys], [b.get(k, 0) for k in keys]])
        if stats.chi2_contingency(table).pvalue < 0.05:
            flagged.add(name)
    return flagged, scipy.__version__


def _run_evidently(ref: Any, cur: Any) -> tuple[set[str], str]:
    import evidently
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(cur, data_definition=definition),
        Dataset.from_pandas(ref, data_definition=definition),
    )
    flagged = set()
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        if config.get("type") != "evidently:metric_v2:ValueDrift":
            continue
        value, threshold = float(metric["value"]), float(config["threshold"])
        is_p_value = "p_value" in str(config.get("method", ""))
        if (value < threshold) if is_p_value else (value >= threshold):
            flagged.add(config["column"])
    return flagged, evidently.__version__


def _run_nannyml(ref: Any, cur: Any) -> tuple[set[str], str]:
    import nannyml

    # NannyML judges chunks against thresholds learnt from reference chunks: ten chunks per
    # side; a column counts as flagged when any current chunk raises an alert.
    chunk = max(len(ref) // 10, 1)
    calculator = nannyml.UnivariateDriftCalculator(
        column_names=NUMERIC + CATEGORICAL,
        treat_as_categorical=CATEGORICAL,
        chunk_size=chunk,
        continuous_methods=["jensen_shannon"],
        categorical_methods=["jensen_shannon"],
    )
    calculator.fit(ref)
    results = calculator.calculate(cur).filter(period="analysis").to_df()
    flagged = set()
    for name in NUMERIC + CATEGORICAL:
        alerts = results[(name, "jensen_shannon", "alert")]
        if bool(alerts.any()):
            flagged.add(name)
    return flagged, nannyml.__version__


def _run_alibi(ref: Any, cur: Any, encoded: tuple[Any, Any]) -> tuple[set[str], str]:
    import alibi_detect
    from alibi_detect.cd import TabularDrift

    x_ref, x_cur = encoded
    categories = {NUMERIC.__len__() + i: None for i in range(len(CATEGORICAL))}
    detector = TabularDrift(x_ref, p_val=0.05, categories_per_feature=categories)
    prediction = detector.predict(x_cur, drift_type="feature")["data"]
    columns = NUMERIC + CATEGORICAL
    flagged = {columns[i] for i, d in enumerate(prediction["is_drift"]) if d}
    return flagged, alibi_detect.__version__


def _encode_for_alibi(ref: Any, cur: Any) -> tuple[Any, Any]:
    import numpy as np
    import pandas as pd

    blocks = []
    for frame in (ref, cur):
        columns = [frame[c].to_numpy(dtype=np.float64) for c in NUMERIC]
        for c in CATEGORICAL:
            codes = pd.Categorical(frame[c], categories=sorted(set(ref[c]) | set(cur[c]))).codes
            columns.append(codes.astype(np.float64))
        blocks.append(np.column_stack(columns))
    return blocks[0], blocks[1]


def _import(peer: str) -> None:
    modules = {
        "modelpilot": ["modelpilot.drift"],
        "modelpilot-ks": ["modelpilot.drift"],
        "scipy": ["scipy.stats"],
        "evidently": ["evidently", "evidently.presets"],
        "nannyml": ["nannyml"],
        "alibi-detect": ["alibi_detect.cd"],
    }
    for module in modules[peer]:
        __import__(module)


def worker(peer: str, directory: Path, repeat: int) -> dict[str, Any]:
    import warnings

    import pandas as pd

    warnings.simplefilter("ignore")
    ref = pd.read_parquet(directory / "reference.parquet")
    cur = pd.read_parquet(directory / "current.parquet")
    encoded = _encode_for_alibi(ref, cur) if peer == "alibi-detect" else None
    _import(peer)  # imports are not part of the timed computation
    gc.collect()
    baseline = _rss_bytes()
    exact_peak = _reset_peak()
    times, cpu_times = [], []
    flagged: set[str] = set()
    version = ""
    for attempt in range(repeat):
        start, cpu_start = time.perf_counter(), time.process_time()
        if peer == "modelpilot":
            flagged, version = _run_modelpilot(ref, cur, "default")
        elif peer == "modelpilot-ks":
            flagged, version = _run_modelpilot(ref, cur, "ks")
        elif peer == "scipy":
            flagged, version = _run_scipy(ref, cur)
        elif peer == "evidently":
            flagged, version = _run_evidently(ref, cur)
        elif peer == "nannyml":
            flagged, version = _run_nannyml(ref, cur)
        elif peer == "alibi-detect":
            flagged, version = _run_alibi(ref, cur, encoded)
        else:
            raise SystemExit(f"unknown peer {peer!r}")
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
        if attempt == 0 and times[0] > 20:  # a slow tool runs once
            break
    peak = _peak_bytes()
    return {
        "peer": peer,
        "version": version,
        "seconds": min(times),
        "cpu_seconds": min(cpu_times),
        "runs": len(times),
        "peak_rss_bytes": peak,
        "baseline_rss_bytes": baseline,
        "peak_increase_bytes": max(peak - baseline, 0) if exact_peak else None,
        "flagged": sorted(flagged),
    }


# ---- driver ---------------------------------------------------------------------------------
def run_peer(peer: str, directory: Path, repeat: int, timeout: float) -> dict[str, Any]:
    python = PEER_PYTHON[peer]
    if not python.exists():
        return {"peer": peer, "error": "not installed (benchmarks/peers/install_drift_peers.sh)"}
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")} if peer.startswith("modelpilot") else None
    command = [
        str(python),
        str(Path(__file__).resolve()),
        "--worker",
        peer,
        "--data",
        str(directory),
        "--repeat",
        str(repeat),
    ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        return {"peer": peer, "error": f"timed out after {timeout:.0f} s"}
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"peer": peer, "error": f"failed: {last[:160]}"}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _mb(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:,.0f}"


def print_table(n_rows: int, results: list[dict[str, Any]]) -> list[str]:
    base = next((r for r in results if r["peer"] == "modelpilot" and "seconds" in r), None)
    print(
        f"\n## {n_rows:,} rows per side, 25 columns (expected flagged: "
        f"{', '.join(sorted(EXPECTED))}); load average now {os.getloadavg()[0]:.1f}\n"
    )
    headers = ["tool", "version", "time (s)", "x modelpilot", "CPU (s)", "peak +MB", "peak MB"]
    print("| " + " | ".join(headers) + " | flagged |")
    print("|" + "|".join(["---"] * 2 + ["---:"] * 5 + ["---"]) + "|")
    for r in results:
        if "seconds" not in r:
            print(f"| {r['peer']} | " + " | ".join(["n/a"] * 6) + f" | {r['error']} |")
            continue
        flagged = set(r["flagged"])
        verdict = (
            "the 6 expected"
            if flagged == EXPECTED
            else f"missed {sorted(EXPECTED - flagged)}, extra {sorted(flagged - EXPECTED)}"
        )
        ratio = f"{r['seconds'] / base['seconds']:,.1f}" if base else "n/a"
        cells = [
            r["peer"],
            r["version"],
            f"{r['seconds']:.3f}",
            ratio,
            f"{r['cpu_seconds']:.3f}",
            _mb(r["peak_increase_bytes"]),
            _mb(r["peak_rss_bytes"]),
            verdict,
        ]
        print("| " + " | ".join(cells) + " |")
    return check_goals(n_rows, results)


def check_goals(n_rows: int, results: list[dict[str, Any]]) -> list[str]:
    by_peer = {r["peer"]: r for r in results if "seconds" in r}
    mp = by_peer.get("modelpilot")
    lines: list[str] = []
    if mp is None:
        return lines
    lines.append(
        f"{n_rows:,} rows: modelpilot flags the 6 expected columns and none other: "
        f"{'PASS' if set(mp['flagged']) == EXPECTED else 'FAIL'}"
    )
    if n_rows >= 1_000_000:
        lines.append(
            f"{n_rows:,} rows: modelpilot under 2 s: "
            f"{'PASS' if mp['seconds'] < 2 else 'FAIL'} ({mp['seconds']:.2f} s)"
        )
    ev = by_peer.get("evidently")
    if ev is not None:
        speedup = ev["seconds"] / mp["seconds"]
        goal = 100 if n_rows >= 1_000_000 else 20 if n_rows <= 10_000 else None
        if goal is not None:
            lines.append(
                f"{n_rows:,} rows: >= {goal}x faster than Evidently: "
                f"{'PASS' if speedup >= goal else 'FAIL'} ({speedup:,.0f}x)"
            )
        else:
            lines.append(f"{n_rows:,} rows: {speedup:,.0f}x faster than Evidently")
        mine, theirs = mp["peak_increase_bytes"], ev["peak_increase_bytes"]
        if mine is not None and theirs:
            lines.append(
                f"{n_rows:,} rows: peak memory <= half of Evidently's: "
                f"{'PASS' if mine <= theirs / 2 else 'FAIL'} "
                f"(+{_mb(mine)} MB vs +{_mb(theirs)} MB during the computation; "
                f"{_mb(mp['peak_rss_bytes'])} vs {_mb(ev['peak_rss_bytes'])} MB total)"
            )
    sp = by_peer.get("scipy")
    if sp is not None:
        lines.append(
            f"{n_rows:,} rows: faster than a plain scipy loop: "
            f"{'PASS' if mp['seconds'] < sp['seconds'] else 'FAIL'} "
            f"({sp['seconds'] / mp['seconds']:,.1f}x)"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--peers", nargs="+", default=PEERS, choices=PEERS)
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--worker", choices=PEERS, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.data, args.repeat)))
        return
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.2f}"
    )
    summary: list[str] = []
    for n_rows in args.rows:
        with tempfile.TemporaryDirectory(prefix="drift-speed-") as tmp:
            directory = Path(tmp)
            make_data(n_rows, directory)
            results = [run_peer(peer, directory, args.repeat, args.timeout) for peer in args.peers]
        summary += print_table(n_rows, results)
    print()
    for line in summary:
        print(f"- {line}")


if __name__ == "__main__":
    main()
