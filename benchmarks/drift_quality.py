"""Concept-drift detection quality: delay, false alarms and missed detections on river's streams.

Run: ``.venv/bin/python benchmarks/drift_quality.py [--seeds 10] [--jobs 2] [--update-docs]``.

Each synthetic stream (SEA, Agrawal, Hyperplane, STAGGER) joins four concepts with nested
``ConceptDriftStream`` at known positions, abrupt (width 1) or gradual (width 1,000), plus a
control run without drift. An online learner (``tree.HoeffdingTreeClassifier``, test-then-train)
turns it into a 0/1 error stream, which every detector of ``modelpilot.drift`` reads from the end
of a burn-in on. Scores follow CD-MOA (Bifet et al., 2013): mean time to detection (MTD), missed
detection rate (MDR), mean time between false alarms (MTFA) and their ratio MTR; the exact rules
are in ``docs/concept-drift.md``, which ``--update-docs`` refreshes with the tables printed here.

A second table runs the seed's story end to end through ``ConceptDriftMonitor``: a house-price
model, then the same houses selling for 5%, 10% or 20% more. Runtime: about 3.5 minutes on two
cores (7.5 when other work shares them).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from river import tree
from river.datasets import synth
from sklearn.compose import make_column_transformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder
from threadpoolctl import threadpool_limits

from modelpilot.datasets import house_prices
from modelpilot.drift import DETECTORS, ConceptDriftMonitor, make_detector

LENGTH = 13_000  # samples per run
BURN_IN = 1_000  # the learner trains, the detectors do not read yet
POSITIONS = (4_000, 7_000, 10_000)  # ConceptDriftStream positions (1-based, 50% new concept)
MAX_DELAY = 1_000  # a detection later than this after the transition ends is not a detection
WIDTHS = {"abrupt": 1, "gradual": 1_000}
DOCS = Path(__file__).resolve().parent.parent / "docs" / "concept-drift.md"

# Four concepts per stream; each gets its own generator seed derived from the run's seed.
CONCEPTS: dict[str, Callable[[int], list[Any]]] = {
    "SEA": lambda s: [
        synth.SEA(variant=v, noise=0.1, seed=s * 10 + k) for k, v in enumerate((0, 1, 2, 3))
    ],
    "Agrawal": lambda s: [
        synth.Agrawal(classification_function=f, seed=s * 10 + k)
        for k, f in enumerate((0, 2, 5, 8))
    ],
    "Hyperplane": lambda s: [synth.Hyperplane(seed=s * 10 + k, n_features=10) for k in range(4)],
    "STAGGER": lambda s: [
        synth.STAGGER(classification_function=f, seed=s * 10 + k)
        for k, f in enumerate((0, 1, 2, 0))
    ],
}


class StableConceptDriftStream(synth.ConceptDriftStream):
    """river's ``ConceptDriftStream`` with the sigmoid's exponent clipped.

    river 0.26 computes ``math.exp(-4 * (t - position) / width)`` unclipped, which overflows
    (``OverflowError: math range error``) once ``4 * position / width > 709``: width 1 cannot
    place a drift beyond sample 177. Clipping at +-700 changes no probability by more than 1e-304.
    """

    def __iter__(self) -> Iterator[tuple[dict[str, Any], Any]]:
        rng = random.Random(self.seed)
        old, new = iter(self.stream), iter(self.drift_stream)
        t = 0
        while True:
            t += 1
            v = min(max(-4.0 * (t - self.position) / self.width, -700.0), 700.0)
            try:
                yield next(old) if rng.random() > 1.0 / (1.0 + math.exp(v)) else next(new)
            except StopIteration:
                return


def make_stream(name: str, drift: str, seed: int) -> Any:
    concepts = CONCEPTS[name](seed)
    if drift == "none":
        return concepts[0]
    stream = concepts[0]
    for concept, position in zip(concepts[1:], POSITIONS, strict=True):
        stream = StableConceptDriftStream(
            stream=stream,
            drift_stream=concept,
            position=position,
            width=WIDTHS[drift],
            seed=seed * 100 + position,
        )
    return stream


def windows(drift: str) -> list[tuple[int, int]]:
    """Per true drift, the 0-based [start, end + MAX_DELAY) where its detection may fall."""
    if drift == "none":
        return []
    half = WIDTHS[drift] // 2
    return [(p - 1 - half, p - 1 + half + MAX_DELAY) for p in POSITIONS]


def run(job: tuple[str, str, int]) -> tuple[str, str, int, dict[str, list[int]], float]:
    """One stream x drift x seed: the error stream of the learner, read by every detector."""
    name, drift, seed = job
    started = time.perf_counter()
    learner = tree.HoeffdingTreeClassifier()
    detectors = [make_detector(kind) for kind in DETECTORS]
    for t, (x, y) in enumerate(make_stream(name, drift, seed).take(LENGTH)):
        error = float(learner.predict_one(x) != y)
        learner.learn_one(x, y)
        if t >= BURN_IN:
            for detector in detectors:
                detector.update(error)
    hits = {d.name: [BURN_IN + i for i in d.detections] for d in detectors}
    return name, drift, seed, hits, time.perf_counter() - started


@dataclass
class Score:
    delays: list[int] = field(default_factory=list)
    drifts: int = 0
    false_alarms: int = 0
    stationary: int = 0  # samples outside every detection window, after the burn-in

    def add(self, hits: list[int], drift: str) -> None:
        spans = windows(drift)
        self.drifts += len(spans)
        self.stationary += LENGTH - BURN_IN - sum(end - start for start, end in spans)
        for start, end in spans:
            inside = [h for h in hits if start <= h < end]
            if inside:
                self.delays.append(inside[0] - start)
        self.false_alarms += sum(not any(s <= h < e for s, e in spans) for h in hits)

    def row(self) -> list[str]:
        detected = len(self.delays)
        mtd = sum(self.delays) / detected if detected else math.nan
        mdr = 1 - detected / self.drifts if self.drifts else math.nan
        mtfa = self.stationary / self.false_alarms if self.false_alarms else math.inf
        mtr = mtfa / mtd * (1 - mdr) if detected else math.nan
        return [
            "-" if math.isnan(mtd) else f"{mtd:,.0f}",
            "-" if math.isnan(mdr) else f"{mdr:.2f}",
            f"{self.false_alarms}",
            f"> {self.stationary:,}" if math.isinf(mtfa) else f"{mtfa:,.0f}",
            "-" if math.isnan(mtr) else "inf" if math.isinf(mtr) else f"{mtr:,.1f}",
        ]


def table(scores: dict[tuple[str, str, str], Score]) -> str:
    head = ["stream", "drift", "detector", "MTD", "MDR", "false alarms", "MTFA", "MTR"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (stream, drift, detector), score in scores.items():
        lines.append("| " + " | ".join([stream, drift, detector, *score.row()]) + " |")
    return "\n".join(lines)


HOUSE_JUMP = 3_000  # labels before the prices rise
HOUSE_RISES = (0.05, 0.10, 0.20)


def house_detectors() -> list[Any]:
    return [
        make_detector("adwin"),
        make_detector("page_hinkley", name="page_hinkley (threshold 50)"),
        make_detector("page_hinkley", threshold=100.0, name="page_hinkley (threshold 100)"),
    ]


def house_table(seeds: int) -> str:
    """The seed's story end to end: a trained model, then the same houses sell for more."""
    train = house_prices(2_400, seed=7)
    encode = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["location", "condition"]), remainder="passthrough"
    )
    model = make_pipeline(encode, HistGradientBoostingRegressor(max_iter=60, random_state=0))
    with threadpool_limits(1):  # OpenMP threads only contend on a small, shared machine
        model.fit(train.drop(columns="price"), train["price"])
    names = [d.name for d in house_detectors()]
    false_alarms = dict.fromkeys(names, 0)
    delays: dict[tuple[str, float], list[int]] = {(n, r): [] for n in names for r in HOUSE_RISES}
    stationary = 0
    for seed in range(seeds):
        houses = house_prices(20_000, seed=1_000 + seed)
        with threadpool_limits(1):
            predicted = model.predict(houses.drop(columns="price"))
        prices = houses["price"].to_numpy(dtype=float, copy=True)
        monitor = ConceptDriftMonitor("regression", detectors=house_detectors(), clock=lambda: 0.0)
        for event in monitor.update_many(predicted, prices):
            false_alarms[event.detector] += 1
        stationary += len(prices)
        for rise in HOUSE_RISES:
            risen = prices[: 2 * HOUSE_JUMP].copy()
            risen[HOUSE_JUMP:] *= 1 + rise
            monitor = ConceptDriftMonitor(
                "regression", detectors=house_detectors(), clock=lambda: 0.0
            )
            events = monitor.update_many(predicted[: 2 * HOUSE_JUMP], risen)
            for name in names:
                late = [e.index for e in events if e.detector == name and e.index >= HOUSE_JUMP]
                if late and late[0] < HOUSE_JUMP + MAX_DELAY:
                    delays[name, rise].append(late[0] - HOUSE_JUMP)
    head = ["detector", "false alarms", "MTFA"]
    head += [f"+{rise:.0%}: MTD / MDR" for rise in HOUSE_RISES]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in names:
        fa = false_alarms[name]
        cells = [name, str(fa), f"{stationary / fa:,.0f}" if fa else f"> {stationary:,}"]
        for rise in HOUSE_RISES:
            found = delays[name, rise]
            mtd = f"{np.mean(found):,.0f}" if found else "-"
            cells.append(f"{mtd} / {1 - len(found) / seeds:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=10, help="runs per stream and drift type")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--update-docs",
        action="store_true",
        help=f"write the table into {DOCS.relative_to(DOCS.parent.parent)}",
    )
    args = parser.parse_args()

    drifts = ("abrupt", "gradual", "none")
    jobs = [(s, d, seed) for s in CONCEPTS for d in drifts for seed in range(args.seeds)]
    started = time.perf_counter()
    scores = {(s, d, k): Score() for s in CONCEPTS for d in drifts for k in DETECTORS}
    busy = 0.0
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for stream, drift, _, hits, seconds in pool.map(run, jobs):
            busy += seconds
            for detector, found in hits.items():
                scores[stream, drift, detector].add(found, drift)
    wall = time.perf_counter() - started

    footer = (
        f"{len(jobs)} runs ({args.seeds} seeds x {len(CONCEPTS)} streams x {len(drifts)} "
        f"drift types) of {LENGTH:,} samples; {wall:.0f} s on {args.jobs} processes "
        f"(runs summed: {busy:.0f} s)."
    )
    started = time.perf_counter()
    houses = house_table(args.seeds)
    house_footer = (
        f"{args.seeds} seeds: {args.seeds * 20_000:,} stationary labels, and per rise "
        f"{args.seeds} runs of {2 * HOUSE_JUMP:,} labels with the rise at label {HOUSE_JUMP:,}; "
        f"{time.perf_counter() - started:.0f} s."
    )
    result = "\n\n".join(
        [table(scores), footer, "#### House prices (regression)", houses, house_footer]
    )
    print(result)
    if args.update_docs:
        text = DOCS.read_text(encoding="utf-8")
        block = f"<!-- results:start -->\n{result}\n<!-- results:end -->"
        updated, n = re.subn(
            r"<!-- results:start -->.*<!-- results:end -->", lambda _: block, text, flags=re.S
        )
        if n != 1:
            raise SystemExit(f"{DOCS} has no '<!-- results:start/end -->' markers to fill")
        DOCS.write_text(updated, encoding="utf-8")
        print(f"updated {DOCS}")


if __name__ == "__main__":
    main()
