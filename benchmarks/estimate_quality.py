"""Performance estimation without labels: modelpilot's CBPE next to NannyML's, on the same data.

Run: ``.venv/bin/python benchmarks/estimate_quality.py [--update-docs]`` after
``bash benchmarks/peers/install_drift_peers.sh nannyml`` (NannyML lives in its own virtualenv;
without it its column says n/a).

The world is the scenario suite's binary one (``loop_worlds.py``): a logistic regression of a
hyperplane rule. Both estimators are fitted on the same 1,000 labelled reference rows (the
holdout: modelpilot calibrates there, as at registration; NannyML's ``CBPE.fit``), then
estimate accuracy and ROC AUC on chunks of 1,000 unlabelled rows of four phases:

- ``before``: the world of the reference;
- ``crowd``: inputs crowd towards the decision boundary, the rule stays (covariate shift: what
  a confidence-based estimate is for);
- ``boundary``: the same inputs, and the rule rotates (concept drift as well);
- ``concept``: the rule rotates, inputs as before (concept drift alone: no estimate from the
  model's own probabilities can see it; the estimate error shows it once labels arrive).

Printed side by side per phase: the realised metric, each estimate's mean absolute error over
the chunks, and each tool's CPU seconds (fit plus estimates; process CPU time, less noisy than
wall time on a shared machine, still approximate).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loop_worlds import world_named

ROOT = Path(__file__).resolve().parents[1]
NANNYML = ROOT / "benchmarks" / "peers" / ".envs" / "nannyml" / "bin" / "python"
DOCS = ROOT / "docs" / "closed-loop.md"
PHASES = ("before", "crowd", "boundary", "concept")
CHUNKS, CHUNK = 5, 1000
METRICS = ("accuracy", "roc_auc")

#: Run in NannyML's own environment: fit CBPE on the reference, estimate on the analysis rows.
PEER = """
import json, sys, time
import pandas as pd
import nannyml as nml

reference, analysis, chunk = pd.read_csv(sys.argv[1]), pd.read_csv(sys.argv[2]), int(sys.argv[3])
started = time.process_time()
estimator = nml.CBPE(
    y_pred_proba="proba_1", y_pred="prediction", y_true="label",
    problem_type="classification_binary", metrics=["accuracy", "roc_auc"], chunk_size=chunk,
)
estimator.fit(reference)
frame = estimator.estimate(analysis).filter(period="analysis").to_df()
out = {m: [float(v) for v in frame[(m, "value")]] for m in ("accuracy", "roc_auc")}
out["cpu_s"] = time.process_time() - started
print(json.dumps(out))
"""


def scored(model: object, rows: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    proba = model.predict_proba(rows[features])  # type: ignore[attr-defined]
    return pd.DataFrame(
        {
            "prediction": proba.argmax(axis=1),
            "proba_0": proba[:, 0],
            "proba_1": proba[:, 1],
            "label": rows["label"].to_numpy(),
        }
    )


def main() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, roc_auc_score

    from modelpilot.registry import PerformanceEstimator, fit_calibration

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--update-docs", action="store_true")
    args = parser.parse_args()
    world = world_named("binary")
    features = [f.name for f in world.features]
    train = world.rows(6000, "before", 3)
    model = LogisticRegression(max_iter=500).fit(train[features], train["label"])
    reference = scored(model, world.rows(1000, "before", 2), features)
    chunks = {
        phase: [
            scored(model, world.rows(CHUNK, phase, 500 + 10 * i + k), features)
            for k in range(CHUNKS)
        ]
        for i, phase in enumerate(PHASES)
    }

    started = time.process_time()
    calibration = fit_calibration(
        reference["label"], reference[["proba_0", "proba_1"]].to_numpy(), [0, 1]
    )
    estimator = PerformanceEstimator(calibration, task="binary", metrics=list(METRICS))
    ours = {p: [estimator.estimate(c) for c in chunks[p]] for p in PHASES}
    our_cpu = time.process_time() - started

    realised = {
        p: [
            {
                "accuracy": accuracy_score(c["label"], c["prediction"]),
                "roc_auc": roc_auc_score(c["label"], c["proba_1"]),
            }
            for c in chunks[p]
        ]
        for p in PHASES
    }
    theirs: dict[str, list[dict[str, float]]] | None = None
    their_cpu = None
    if NANNYML.exists():
        with tempfile.TemporaryDirectory() as tmp:
            ref_path, ana_path = Path(tmp) / "reference.csv", Path(tmp) / "analysis.csv"
            reference.to_csv(ref_path, index=False)
            pd.concat([c for p in PHASES for c in chunks[p]]).to_csv(ana_path, index=False)
            done = subprocess.run(
                [str(NANNYML), "-c", PEER, str(ref_path), str(ana_path), str(CHUNK)],
                capture_output=True,
                text=True,
                check=True,
            )
        out = json.loads(done.stdout.strip().splitlines()[-1])
        their_cpu = out["cpu_s"]
        values = list(zip(out["accuracy"], out["roc_auc"], strict=True))
        theirs = {
            p: [{"accuracy": a, "roc_auc": r} for a, r in values[i * CHUNKS : (i + 1) * CHUNKS]]
            for i, p in enumerate(PHASES)
        }

    def mae(estimates: list[dict[str, float]], truth: list[dict[str, float]], m: str) -> str:
        errors = [abs(e[m] - t[m]) for e, t in zip(estimates, truth, strict=True)]
        return f"{np.mean(errors):.3f}"

    lines = [
        "| phase | realised accuracy | error, modelpilot | error, NannyML | realised ROC AUC "
        "| error, modelpilot | error, NannyML |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in PHASES:
        cells = []
        for m in METRICS:
            cells += [
                f"{np.mean([t[m] for t in realised[p]]):.3f}",
                mae(ours[p], realised[p], m),
                mae(theirs[p], realised[p], m) if theirs else "n/a",
            ]
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + (
        f"\n\nMean absolute error of the estimate over {CHUNKS} chunks of {CHUNK:,} rows per "
        f"phase, both fitted on the same {len(reference):,} reference rows. CPU seconds "
        f"(calibration or fit, plus {CHUNKS * len(PHASES)} estimates): modelpilot "
        f"{our_cpu:.2f}, NannyML "
        + (f"{their_cpu:.2f}" if their_cpu is not None else "n/a")
        + " (process CPU time on a shared machine: approximate)."
    )
    print(text)
    if args.update_docs:
        doc = DOCS.read_text(encoding="utf-8")
        start, end = "<!-- estimate:start -->", "<!-- estimate:end -->"
        head, rest = doc.split(start, 1)
        _, tail = rest.split(end, 1)
        DOCS.write_text(f"{head}{start}\n{text}\n{end}{tail}", encoding="utf-8")


if __name__ == "__main__":
    main()
