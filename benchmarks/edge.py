"""The device runner (modelpilot-edge): start-up, one-row predictions, and what it installs.

Run: ``.venv/bin/python benchmarks/edge.py [--write] [--offline]``. ``--write`` saves the
markdown report to benchmarks/results/edge.md; ``--offline`` skips downloading the dependency
wheels to weigh them (the installed sizes are measured either way).

Models (binary classification, 20 float features, 5,000 training rows), registered and
exported with ``modelpilot export edge`` into a temporary project: a LogisticRegression after
a StandardScaler, and a 200-iteration HistGradientBoostingClassifier (max_depth 8). Each is
exported twice: with the exact NumPy kernels (what ``--engine auto`` picks) and, where
skl2onnx converts it, as an ONNX graph (``--engine onnx``).

Measured as CPU time (``time.process_time``; the machine is shared with other people's test
suites, so wall time says more about them than about this code, and CPU time is noisy too),
and for start-up also as wall time:

- import + open: ``from modelpilot_edge import Bundle; Bundle.open(...)`` in a fresh process
  of the runner's own virtualenv (``edge/.venv``, made by ``make test-edge``; the main one
  otherwise), with no BLAS thread count in the environment (what a device has), best and
  median of 7 processes, as CPU time and as wall time (what a device's user waits; CPU time
  also counts the threads NumPy's BLAS starts at import), and whether the open imported NumPy
  (a linear bundle does not: docs/edge.md, "What loads when"); NumPy's import alone beside it,
  with BLAS's thread pool and with one BLAS thread (how the runner imports it);
- one-row ``predict``, the median of 2,000 calls on holdout rows: with the log (fsync every
  second, the default) and without it; beside it, the server's runtime on the same row (a
  ``predict_with_proba`` of a 1-row array: the kernel the server answers with, walking
  compiled by numba where it is installed, as in the main virtualenv) and
  scikit-learn's own ``predict_proba``;
- the size of the runner's wheel and of each dependency's wheel (downloaded with pip), and
  what each takes installed.

Goals (the edge issue): import + open <= 150 ms; one row <= 50 us (linear), <= 150 us (200-tree
GBM).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import skops.io as sio
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelpilot.cli import run as cli
from modelpilot.edge import NotExportable, export_bundle, load_signing_key
from modelpilot.project import Project
from modelpilot.spec import FeatureSpec, render_project
from modelpilot_edge import Bundle

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "edge.md"
EDGE_PYTHON = ROOT / "edge" / ".venv" / "bin" / "python"
WIDTH = 20
NAMES = [f"f{i}" for i in range(WIDTH)]


def _project(directory: Path) -> tuple[Path, list[dict[str, float]]]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6_000, WIDTH))
    y = X[:, 0] + X[:, 1] * X[:, 2] - X[:, 3] + rng.normal(0, 0.5, len(X)) > 0
    frame = pd.DataFrame(X, columns=NAMES)
    frame["y"] = np.where(y, "yes", "no")
    train, holdout = frame.iloc[:5000], frame.iloc[5000:].reset_index(drop=True)
    features = [FeatureSpec(name=n, type="numeric") for n in NAMES]
    text = render_project(
        project="bench",
        task="binary",
        target="y",
        features=features,
        key_metrics=["accuracy >= 0.5"],
    )
    (directory / "modelpilot.yaml").write_text(text, encoding="utf-8")
    holdout.to_parquet(directory / "holdout.parquet")
    models = {
        "linear": make_pipeline(StandardScaler(), LogisticRegression()),
        "gbm": HistGradientBoostingClassifier(
            max_iter=200, max_depth=8, early_stopping=False, random_state=0
        ),
    }
    for name, model in models.items():
        sio.dump(model.fit(train[NAMES], train["y"]), directory / f"{name}.skops")
        _cli(
            directory,
            "register",
            str(directory / f"{name}.skops"),
            "--name",
            name,
            "--eval",
            str(directory / "holdout.parquet"),
            "--alias",
            "production",
        )
    _cli(directory, "keys", "create")
    records: list[dict[str, float]] = holdout[NAMES].to_dict("records")
    return directory / ".modelpilot" / "keys" / "edge-signing.pub", records


def _cli(directory: Path, *args: str) -> None:
    code = cli(["-p", str(directory), *args])
    if code != 0:
        raise SystemExit(f"modelpilot {' '.join(args)} failed with {code}")


def _interleaved_us(
    calls: list[tuple[Callable[[Any], Any], list[Any]]], n: int = 2000
) -> list[float]:
    """Median CPU us of each call, taken in turns: on a shared machine whose load moves, each
    call then meets the same conditions, and their ratios hold better than their figures."""
    for call, rows in calls:
        for row in rows[:50]:
            call(row)
    times: list[list[float]] = [[] for _ in calls]
    for i in range(n):
        for found, (call, rows) in zip(times, calls, strict=True):
            row = rows[i % len(rows)]
            start = time.process_time()
            call(row)
            found.append(time.process_time() - start)
    return [statistics.median(found) * 1e6 for found in times]


def _median_us(call: Callable[[Any], Any], rows: list[Any], n: int = 2000) -> float:
    for row in rows[:50]:
        call(row)
    times = []
    for i in range(n):
        row = rows[i % len(rows)]
        start = time.process_time()
        call(row)
        times.append(time.process_time() - start)
    return statistics.median(times) * 1e6


_OPEN = """
import sys, time
start, wall = time.process_time(), time.perf_counter()
from modelpilot_edge import Bundle
bundle = Bundle.open({path!r}, public_key={key!r}, log_dir={log!r})
spent, waited = (time.process_time() - start) * 1000, (time.perf_counter() - wall) * 1000
print("numpy" in sys.modules, spent, waited)
"""
_NUMPY = (
    "import time; s, w = time.process_time(), time.perf_counter(); import numpy; "
    "print(True, (time.process_time() - s) * 1000, (time.perf_counter() - w) * 1000)"
)
#: The thread counts NumPy's BLAS reads; unset in the measured processes (what a device has).
_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "GOTO_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class Startup:
    """Best and median of fresh processes: CPU ms and wall ms; whether NumPy was imported."""

    cpu: tuple[float, float]
    wall: tuple[float, float]
    numpy: bool

    def text(self) -> str:
        return (
            f"{self.cpu[0]:.0f} / {self.cpu[1]:.0f} ms | {self.wall[0]:.0f} / {self.wall[1]:.0f} ms"
        )


def _fresh_process_ms(
    python: Path, code: str, runs: int = 7, *, environ: dict[str, str] | None = None
) -> Startup:
    """CPU and wall time printed by ``runs`` fresh processes; whether one printed ``True``
    first (NumPy imported by the open). No BLAS thread count is set unless ``environ`` does."""
    base = {k: v for k, v in os.environ.items() if k not in _THREADS}
    cpu, wall, numpy = [], [], False
    for _ in range(runs):
        out = subprocess.run(
            [str(python), "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**base, **(environ or {})},
        )
        words = out.stdout.strip().splitlines()[-1].split()
        cpu.append(float(words[-2]))
        wall.append(float(words[-1]))
        numpy = numpy or words[0] == "True"
    return Startup((min(cpu), statistics.median(cpu)), (min(wall), statistics.median(wall)), numpy)


def _pip(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", *args, "--quiet", "--disable-pip-version-check"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _sizes(work: Path, *, offline: bool) -> list[tuple[str, str, str, str]]:
    """(distribution, needed for, wheel MB, unpacked MB) of the runner and what it pulls in.

    The runner's wheel is built here; its dependencies' wheels (for this platform, with their
    own dependencies) are downloaded from the package index by pip. Unpacked is what the wheel
    holds uncompressed: what pip writes, before byte-compiling.
    """
    core, onnx = work / "wheels-core", work / "wheels-onnx"
    # Built from a copy: pip builds in the source tree and would leave edge/build behind.
    source = work / "edge-source"
    shutil.copytree(ROOT / "edge", source, ignore=shutil.ignore_patterns(".venv", "build"))
    _pip("wheel", "--no-deps", "-w", str(core), str(source))
    if not offline:
        _pip("download", "--only-binary=:all:", "-d", str(core), "numpy>=1.26", "pynacl>=1.5")
        _pip("download", "--only-binary=:all:", "-d", str(onnx), "onnxruntime>=1.17")
    rows = []
    seen: set[str] = set()
    for folder, needed in ((core, "every bundle"), (onnx, "ONNX bundles only")):
        for wheel in sorted(folder.glob("*.whl")) if folder.exists() else []:
            name = wheel.name.split("-")[0].lower().replace("_", "-")
            if name in seen:
                continue
            seen.add(name)
            with zipfile.ZipFile(wheel) as archive:
                unpacked = sum(info.file_size for info in archive.infolist())
            rows.append(
                (
                    name,
                    needed,
                    f"{wheel.stat().st_size / 1e6:.2f} MB",
                    f"{unpacked / 1e6:.1f} MB",
                )
            )
    return rows


def _goals(
    found: dict[tuple[str, str], tuple[float, float, Startup]],
    baseline: dict[str, float],
    numpy_one: Startup,
) -> list[str]:
    """The issue's goals beside what the kernel bundles (what ``--engine auto`` picks) did."""
    lines = [
        "| goal (edge issue) | measured: no log / logged; CPU / wall | baseline | met |",
        "|---|---:|---:|---|",
    ]
    for name in ("linear", "gbm"):
        if (name, "kernels") in found:
            opened = found[name, "kernels"][2]
            cpu, wall = opened.cpu[0], opened.wall[0]
            met = {(True, True): "yes", (False, False): "no"}.get(
                (cpu <= 150, wall <= 150), "CPU yes, wall no" if cpu <= 150 else "CPU no, wall yes"
            )
            lines.append(
                f"| import + open <= 150 ms, {name} | {cpu:.0f} / {wall:.0f} ms (best of 7) | "
                f"NumPy's import, 1 BLAS thread: {numpy_one.cpu[0]:.0f} / "
                f"{numpy_one.wall[0]:.0f} ms | {met} |"
            )
    for name, goal in (("linear", 50.0), ("gbm", 150.0)):
        if (name, "kernels") not in found:
            lines.append(f"| one row, {name} <= {goal:.0f} us | not exportable | | no |")
            continue
        logged, bare, _ = found[name, "kernels"]
        lines.append(
            f"| one row, {name} <= {goal:.0f} us | {bare:.0f} / {logged:.0f} us | "
            f"server runtime {baseline[name]:.0f} us | {'yes' if bare <= goal else 'no'} (no log) |"
        )
    return [*lines, ""]


def _load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="save benchmarks/results/edge.md")
    parser.add_argument("--offline", action="store_true", help="do not download wheels")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    python = EDGE_PYTHON if EDGE_PYTHON.exists() else Path(sys.executable)
    where = "edge/.venv" if python == EDGE_PYTHON else "the main virtualenv"
    lines = [
        "# modelpilot-edge: start-up, one-row predictions, sizes",
        "",
        f"{dt.datetime.now():%Y-%m-%d %H:%M}, Python {platform.python_version()}, "
        f"{platform.machine()}; start-up of kernel bundles measured in {where} (ONNX bundles "
        "in the main virtualenv, which has onnxruntime). CPU time on a shared, busy machine: "
        f"noisy, and inflated against a quiet one (load average {_load()} at the start).",
        "",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        key, records = _project(work)
        public = key.read_text().strip()
        project = Project.open(work, environ={})
        signing = load_signing_key(work, {})
        found: dict[tuple[str, str], tuple[float, float, Startup]] = {}
        baseline: dict[str, float] = {}
        lines += [
            "| model | engine | one row, logged | one row, no log | server runtime | "
            "scikit-learn | import + open, CPU (best / median) | wall (best / median) | "
            "NumPy imported by the open |",
            "|---|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for name in ("linear", "gbm"):
            version = project.registry.resolve(f"{name}@production")
            runtime: Any = project.registry.load(version)
            estimator = runtime.estimator
            arrays = [np.array([[r[n] for n in NAMES]]) for r in records]
            frames = [pd.DataFrame(a, columns=NAMES) for a in arrays[:200]]
            sklearn_us = _median_us(estimator.predict_proba, frames, n=400)
            for engine in ("kernels", "onnx"):
                out = work / f"{name}-{engine}.zip"
                try:
                    export_bundle(
                        project,
                        f"{name}@production",
                        out,
                        key=signing,
                        as_zip=True,
                        engine=engine,
                    )
                except NotExportable as exc:
                    why = str(exc).split(": ", 2)[-1].split(". A device runs")[0]
                    why = why.split(" with name=")[0]  # skl2onnx then prints every node
                    lines.append(f"| {name} | {engine} | not exportable: {why[:160]} |||||||")
                    continue
                with (
                    Bundle.open(out, public_key=public, log_dir=work / f"log-{name}-{engine}") as b,
                    Bundle.open(out, public_key=public, logging=False) as bare_bundle,
                ):
                    logged, bare, server_us = _interleaved_us(
                        [
                            (b.predict, records),
                            (bare_bundle.predict, records),
                            (runtime.predict_with_proba, arrays),
                        ]
                    )
                    label = b.describe()["engine"]
                opened = _fresh_process_ms(
                    python if engine == "kernels" else Path(sys.executable),
                    _OPEN.format(path=str(out), key=public, log=str(work / "log-open")),
                )
                found[name, engine] = (logged, bare, opened)
                if engine == "kernels":
                    baseline[name] = server_us
                lines.append(
                    f"| {name} | {label} | {logged:.0f} us | {bare:.0f} us | {server_us:.0f} us "
                    f"| {sklearn_us:.0f} us | {opened.text()} | "
                    f"{'yes' if opened.numpy else 'no'} |"
                )
        project.engine.dispose()
        numpy_pool = _fresh_process_ms(python, _NUMPY)
        numpy_one = _fresh_process_ms(python, _NUMPY, environ={"OPENBLAS_NUM_THREADS": "1"})
        lines += [
            "",
            "NumPy's import alone, in the same virtualenv, CPU | wall (best / median of 7): "
            f"{numpy_pool.text()} with BLAS's thread pool (NumPy's default); "
            f"{numpy_one.text()} with one BLAS thread (what the runner imports it with when it "
            "is first and no thread count is set: edge/src/modelpilot_edge/_blas.py).",
            "",
        ]
        lines += _goals(found, baseline, numpy_one)
        sizes = _sizes(work, offline=args.offline)
        lines += ["| distribution | needed for | wheel | unpacked |", "|---|---|---:|---:|"]
        lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in sizes]
        for needed in ("every bundle", "ONNX bundles only"):
            total = sum(float(row[2].split()[0]) for row in sizes if row[1] == needed)
            lines.append(f"| **total, {needed}** | | {total:.2f} MB | |")
    lines.insert(3, f"Load average at the end: {_load()}.")
    lines.insert(4, "")
    report = "\n".join(lines) + "\n"
    print(report)
    if args.write:
        RESULTS.write_text(report, encoding="utf-8")


if __name__ == "__main__":
    main()
