"""Tree kernels against the libraries' own predict and treelite's GTIL, in one process.

Run: ``.venv/bin/python benchmarks/tree_kernels.py [--rounds 3] [--write]``. ``--write`` saves
the markdown report to benchmarks/results/tree_kernels.md.

Models (binary classification, 20 float features, 5,000 training rows): scikit-learn
HistGradientBoostingClassifier (200 iterations, max_depth 8), XGBoost (200 trees, max_depth 8,
saved natively), LightGBM (200 trees, max_depth 8, saved natively) and a 100-tree
RandomForestClassifier (max_depth 12). Each is loaded through ``load_runtime`` (the kernel is
built and checked there) and asked for predictions and probabilities of 1 and of 64 rows, as
the server asks them (``predict_with_proba`` on a float64 array): once with the compiled walk
(numba, the default where it is installed: column "compiled") and once with it switched off
(``MODELPILOT_COMPILED_KERNELS=0``: the NumPy walk, column "kernel"). Peers on the same rows:
the library's ``predict_proba``; XGBoost's ``inplace_predict`` and LightGBM's
``Booster.predict``; treelite GTIL on the same model. The goals are judged on the compiled
walk (what the server uses). The cost of compiling at model load is measured in fresh
processes: with an empty numba cache, then with the cache it left.

Every call runs on one thread (the server's model thread has one core). Figures are CPU time
per call (``time.process_time``), the best of ``--rounds`` rounds: the machine is shared, and
CPU time is what the process itself spent. Goals (the tree-kernel issue): one row <= 100 us,
>= 20x scikit-learn's HistGradientBoosting predict_proba, >= 4x XGBoost's inplace_predict,
faster than GTIL; 64 rows <= 5 us a row.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import skops.io as sio
import treelite
import xgboost
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from threadpoolctl import threadpool_limits

from modelpilot.runtime import load_runtime

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "tree_kernels.md"
WIDTH = 20


def _per_call(call: Callable[[], Any], *, budget: float = 0.3) -> float:
    """CPU microseconds per call, over at least ``budget`` CPU seconds."""
    call()
    count, start = 0, time.process_time()
    while (spent := time.process_time() - start) < budget:
        call()
        count += 1
    return spent / count * 1e6


def _data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5_000, WIDTH))
    y = (X[:, 0] + X[:, 1] * X[:, 2] - X[:, 3] + rng.normal(0, 0.5, 5_000) > 0).astype(int)
    return X, y, rng.normal(size=(64, WIDTH))


def _models(directory: Path, X: np.ndarray, y: np.ndarray) -> dict[str, dict[str, Any]]:
    """name -> the model file, the library call, and the other peers."""
    hgb = HistGradientBoostingClassifier(
        max_iter=200, max_depth=8, early_stopping=False, random_state=0
    ).fit(X, y)
    sio.dump(hgb, directory / "hgb.skops")
    forest = RandomForestClassifier(n_estimators=100, max_depth=12, random_state=0).fit(X, y)
    sio.dump(forest, directory / "forest.skops")
    xgb = xgboost.XGBClassifier(n_estimators=200, max_depth=8, nthread=1).fit(X, y)
    xgb.get_booster().save_model(str(directory / "xgb.json"))
    booster = xgb.get_booster()
    lgb = lightgbm.LGBMClassifier(n_estimators=200, max_depth=8, verbose=-1, n_jobs=1).fit(X, y)
    lgb.booster_.save_model(str(directory / "lgb.txt"))
    return {
        "HistGradientBoosting 200": {
            "file": directory / "hgb.skops",
            "library": hgb.predict_proba,
            "gtil": treelite.sklearn.import_model(hgb),
        },
        "XGBoost 200": {
            "file": directory / "xgb.json",
            "library": xgb.predict_proba,
            "inplace_predict": booster.inplace_predict,
            "gtil": treelite.frontend.from_xgboost(booster),
        },
        "LightGBM 200": {
            "file": directory / "lgb.txt",
            "library": lgb.predict_proba,
            "Booster.predict": lambda rows: lgb.booster_.predict(rows, num_threads=1),
            "gtil": treelite.frontend.from_lightgbm(lgb.booster_),
        },
        "RandomForest 100": {
            "file": directory / "forest.skops",
            "library": forest.predict_proba,
            "gtil": treelite.sklearn.import_model(forest),
        },
    }


def _load(path: Path, *, compiled: bool) -> Any:
    """The runtime of ``path``, with the compiled walk or with the NumPy walk."""
    os.environ["MODELPILOT_COMPILED_KERNELS"] = "1" if compiled else "0"
    try:
        runtime = load_runtime(path)
    finally:
        del os.environ["MODELPILOT_COMPILED_KERNELS"]
    kernel = getattr(runtime, "kernel", None)
    if kernel is None or (kernel.compiled is None) == compiled:
        raise SystemExit(f"{path.name}: not the walk asked for (see the INFO log)")
    return runtime


_JIT_PROBE = """
import time
from modelpilot.runtime import load_runtime
from modelpilot.runtime._compiled_trees import _compiled
start = time.process_time()
assert _compiled() is not None
print(time.process_time() - start)
"""


def jit_cost() -> tuple[float, float]:
    """CPU seconds to import numba and compile the walk (modelpilot itself already imported),
    with an empty cache, then from the cache that left."""
    with tempfile.TemporaryDirectory() as cache:
        environ = {**os.environ, "NUMBA_CACHE_DIR": cache}
        times = [
            float(
                subprocess.run(
                    [sys.executable, "-c", _JIT_PROBE],
                    env=environ,
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
            )
            for _ in range(2)
        ]
    return times[0], times[1]


def _measure(models: dict[str, dict[str, Any]], rows64: np.ndarray, rounds: int) -> list[dict]:
    results = []
    for name, parts in models.items():
        runtime = _load(parts["file"], compiled=False)
        compiled = _load(parts["file"], compiled=True)
        gtil = parts["gtil"]
        peers: dict[str, Callable[[np.ndarray], Any]] = {
            "compiled": compiled.predict_with_proba,
            "kernel": runtime.predict_with_proba,
            "library": parts["library"],
            "gtil": lambda rows, model=gtil: treelite.gtil.predict(model, rows, nthread=1),
        }
        for extra in ("inplace_predict", "Booster.predict"):
            if extra in parts:
                peers[extra] = parts[extra]
        for n in (1, 64):
            rows = np.ascontiguousarray(rows64[:n])
            best = {
                peer: min(_per_call(lambda f=call, r=rows: f(r)) for _ in range(rounds))
                for peer, call in peers.items()
            }
            results.append({"model": name, "rows": n, **best})
    return results


def _report(results: list[dict]) -> tuple[str, list[tuple[str, bool]]]:
    lines = [
        "| model | rows | compiled us | kernel (NumPy) us | library us | other peer us | GTIL us "
        "| x library | x other | x GTIL |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    goals: list[tuple[str, bool]] = []
    for r in results:
        other = r.get("inplace_predict", r.get("Booster.predict"))
        fast = r["compiled"]
        lines.append(
            f"| {r['model']} | {r['rows']} | {fast:.1f} | {r['kernel']:.0f} | {r['library']:.0f} | "
            f"{'-' if other is None else f'{other:.0f}'} | {r['gtil']:.0f} | "
            f"{r['library'] / fast:.1f} | {'-' if other is None else f'{other / fast:.1f}'} | "
            f"{r['gtil'] / fast:.1f} |"
        )
        if r["rows"] == 1:
            goals.append((f"{r['model']}: one row <= 100 us ({fast:.1f})", fast <= 100))
            goals.append(
                (
                    f"{r['model']}: faster than GTIL on one row ({r['gtil'] / fast:.1f}x)",
                    fast < r["gtil"],
                )
            )
            if r["model"].startswith("HistGradient"):
                ratio = r["library"] / fast
                goals.append((f"{r['model']}: >= 20x predict_proba ({ratio:.1f}x)", ratio >= 20))
            if "inplace_predict" in r:
                ratio = r["inplace_predict"] / fast
                goals.append((f"{r['model']}: >= 4x inplace_predict ({ratio:.1f}x)", ratio >= 4))
        else:
            per_row = fast / r["rows"]
            goals.append((f"{r['model']}: 64 rows <= 5 us a row ({per_row:.2f})", per_row <= 5))
    return "\n".join(lines), goals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    X, y, rows64 = _data()
    with threadpool_limits(limits=1), tempfile.TemporaryDirectory() as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            models = _models(Path(tmp), X, y)
            results = _measure(models, rows64, args.rounds)
    table, goals = _report(results)
    verdicts = "\n".join(f"- {'PASS' if ok else 'FAIL'}: {text}" for text, ok in goals)
    cold, warm = jit_cost()
    jit = (
        f"The compiled walk's cost at the first model load of a process (numba's import and "
        f"the walk's one signature), CPU time: {cold:.2f} s with an empty cache, {warm:.2f} s "
        "from the cache it left (a restart); later loads in the process reuse it."
    )
    load = f"Load average: {' / '.join(f'{x:.1f}' for x in os.getloadavg())} (1 / 5 / 15 min)."
    print(table, verdicts, jit, load, sep="\n\n")
    if args.write:
        RESULTS.write_text(
            f"# Tree kernels, in-process ({dt.date.today()}, {platform.processor() or 'cpu'}, "
            "shared machine: CPU time, best of rounds)\n\n"
            f"{table}\n\n{verdicts}\n\n{jit}\n\n{load}\n",
            encoding="utf-8",
        )


if __name__ == "__main__":
    main()
