"""Batch scoring when the model raises on some rows: those rows, and only those, are rejected
and logged as failed predictions; the run goes on. Errors that are not about the rows (the
prediction log's database) still stop it.

The model is a real scikit-learn pipeline saved with joblib (:mod:`marked_model`): it raises
``ValueError`` on a house of ``MARKED_SIZE`` square feet and predicts prices for the others.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from marked_model import MARKED, MARKED_SIZE
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from modelpilot.datasets import house_prices
from modelpilot.inference import FunctionStep, Pipeline, score_file
from modelpilot.project import Project
from modelpilot.registry import ModelVersion
from modelpilot.runtime import ModelRuntime
from modelpilot.store import PredictionLog, create_database
from modelpilot.store._tables import scoring_runs
from project_helpers import open_prediction_log, run_cli

REASON = f"model: ValueError: size_sqft {MARKED_SIZE:g} is marked"


@pytest.fixture(scope="module")
def marked(batch_project: Path) -> Iterator[tuple[Project, ModelVersion, ModelRuntime]]:
    """The project, the marked model's version and its loaded runtime."""
    project = Project.open(batch_project, environ={})
    version = project.registry.resolve(f"{MARKED}@production")
    try:
        yield project, version, project.registry.load(version, trust=True)
    finally:
        project.engine.dispose()


@pytest.fixture(scope="module")
def listings(house_data: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    return house_data[1].drop(columns="price").iloc[:100].reset_index(drop=True)


class CountingRuntime:
    """The real model, counting its calls and the rows they carried."""

    def __init__(self, runtime: ModelRuntime) -> None:
        self.runtime = runtime
        self.flavor = runtime.flavor
        self.classes = runtime.classes
        self.calls = 0
        self.rows = 0

    def predict(self, frame: Any) -> np.ndarray:
        self.calls += 1
        self.rows += len(frame)
        return self.runtime.predict(frame)

    def predict_proba(self, frame: Any) -> np.ndarray | None:
        return self.runtime.predict_proba(frame)


def _mark(rows: pd.DataFrame, positions: list[int]) -> pd.DataFrame:
    marked = rows.copy()
    marked.loc[positions, "size_sqft"] = MARKED_SIZE
    return marked


def _write(rows: pd.DataFrame, path: Path) -> Path:
    rows.to_csv(path, index=False) if path.suffix == ".csv" else rows.to_parquet(path)
    return path


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)


def _run_status(log: PredictionLog, batch_id: str) -> dict[str, Any]:
    query = select(scoring_runs).where(scoring_runs.c.batch_id == batch_id)
    with log.engine.connect() as connection:
        return dict(connection.execute(query).one()._mapping)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_rows_the_model_raises_on_are_rejected_and_the_others_scored(
    marked: tuple[Project, ModelVersion, ModelRuntime],
    marked_model_file: Path,
    listings: pd.DataFrame,
    tmp_path: Path,
    suffix: str,
) -> None:
    project, version, runtime = marked
    bad = [31, 32, 77, 99]  # chunks of 25: none in the first, two in the second
    rows = _mark(listings, bad)
    rows.loc[10, "bedrooms"] = 40  # the schema rejects it: a chunk of validation rejects only
    source = _write(rows, tmp_path / f"listings{suffix}")
    output, rejects = tmp_path / f"scored{suffix}", tmp_path / f"rejects{suffix}"
    log = project.prediction_log
    result = score_file(
        version, runtime, source, output, log=log, rejects_path=rejects, batch_rows=25
    )
    assert (result.n_rows, result.n_scored, result.n_rejected, result.n_failed) == (100, 95, 5, 4)
    assert result.n_scored + result.n_rejected == result.n_rows
    assert result.reasons == {"model": 4, "bedrooms": 1}
    assert _run_status(log, result.batch_id)["status"] == "done"
    rejected = _read(rejects)
    assert rejected["_row"].tolist() == [10, *bad]
    reasons = dict(zip(rejected["_row"], rejected["_reason"], strict=True))
    assert {reasons[row] for row in bad} == {REASON}
    assert reasons[10].startswith("bedrooms: expected a number in [0, 12]")
    ids = dict(zip(rejected["_row"], rejected["prediction_id"], strict=True))
    assert pd.isna(ids.pop(10))
    assert all(isinstance(pid, str) and len(pid) == 32 for pid in ids.values())
    scored = _read(output)
    kept = rows.drop(index=[10, *bad])
    np.testing.assert_array_equal(scored["size_sqft"], kept["size_sqft"])  # order kept
    estimator = joblib.load(marked_model_file)
    np.testing.assert_allclose(scored["prediction"], estimator.predict(kept), rtol=1e-9)


@pytest.mark.parametrize(
    ("steps", "error"), [(False, "ValueError"), (True, "ValueError in step model")]
)
def test_failed_rows_are_logged_as_the_server_logs_failed_predictions(
    marked: tuple[Project, ModelVersion, ModelRuntime],
    listings: pd.DataFrame,
    tmp_path: Path,
    steps: bool,
    error: str,
) -> None:
    """Prediction null and the error's type (the online server's shape), source batch, the
    run's batch id; with or without steps, the reason names the model."""
    project, version, runtime = marked
    rows = _mark(listings.iloc[:40], [5, 26])
    rows.loc[12, "bedrooms"] = 40  # a validation reject: never a prediction, never logged
    source = _write(rows, tmp_path / "listings.csv")
    pipeline = (
        Pipeline("marked", [FunctionStep("same", lambda f: f)], features=version.features)
        if steps
        else None
    )
    log = project.prediction_log
    result = score_file(
        version,
        runtime,
        source,
        tmp_path / "scored.csv",
        log=log,
        batch_rows=16,
        pipeline=pipeline,
    )
    assert result.reasons == {"model": 2, "bedrooms": 1}
    rejected = _read(Path(str(result.rejects)))
    assert rejected["_row"].tolist() == [5, 12, 26]
    assert rejected["_reason"][[0, 2]].tolist() == [REASON, REASON]
    failed_ids = rejected["prediction_id"][[0, 2]].tolist()
    logged = log.get(failed_ids).set_index("id").loc[failed_ids]
    assert logged["prediction"].isna().all()
    assert logged["error"].tolist() == [error, error]
    assert logged["source"].tolist() == ["batch", "batch"]
    assert logged["batch_id"].tolist() == [result.batch_id] * 2
    assert logged["size_sqft"].tolist() == [MARKED_SIZE, MARKED_SIZE]
    run = log.window(model=MARKED, source="batch")
    run = run[run["batch_id"] == result.batch_id]
    assert len(run) == result.n_scored + 2 == 39  # the scored and the failed, not the invalid
    assert run["error"].notna().sum() == 2
    assert 40 not in set(run["bedrooms"])


def test_a_chunk_on_which_every_row_fails_does_not_stop_the_run(
    marked: tuple[Project, ModelVersion, ModelRuntime], listings: pd.DataFrame, tmp_path: Path
) -> None:
    _, version, runtime = marked
    rows = _mark(listings.iloc[:30], list(range(10, 20)))  # the whole second chunk
    source = _write(rows, tmp_path / "listings.csv")
    result = score_file(version, runtime, source, tmp_path / "scored.csv", log=None, batch_rows=10)
    assert (result.n_scored, result.n_rejected, result.n_failed) == (20, 10, 10)
    assert result.reasons == {"model": 10}
    rejected = _read(Path(str(result.rejects)))
    assert rejected["_row"].tolist() == list(range(10, 20))
    assert rejected["prediction_id"].notna().all()
    scored = _read(tmp_path / "scored.csv")
    np.testing.assert_array_equal(scored["size_sqft"], rows.drop(index=range(10, 20))["size_sqft"])


def test_one_bad_row_in_a_big_chunk_costs_a_logarithmic_number_of_calls(
    marked: tuple[Project, ModelVersion, ModelRuntime], tmp_path: Path
) -> None:
    _, version, runtime = marked
    n = 10_000
    rows = _mark(house_prices(n, seed=3).drop(columns="price"), [6173])
    source = _write(rows, tmp_path / "listings.parquet")
    counting = CountingRuntime(runtime)
    result = score_file(
        version, counting, source, tmp_path / "scored.parquet", log=None, batch_rows=n
    )
    assert (result.n_scored, result.n_failed) == (n - 1, 1)
    # The chunk, then two halves per level down to the row: n + n + n/2 + ... rows. The
    # scored halves are kept, so the other rows are not predicted a fourth time.
    assert counting.calls <= 1 + 2 * math.ceil(math.log2(n))
    assert counting.rows < 3 * n
    scored = _read(tmp_path / "scored.parquet")
    np.testing.assert_allclose(
        scored["prediction"], runtime.predict(rows.drop(index=6173)), rtol=1e-9
    )


def test_an_error_writing_the_prediction_log_still_stops_the_run(
    marked: tuple[Project, ModelVersion, ModelRuntime], listings: pd.DataFrame, tmp_path: Path
) -> None:
    """Not about the rows: no row is rejected for it; the run fails and leaves no file."""
    _, version, runtime = marked
    log = PredictionLog(create_database(f"sqlite:///{tmp_path / 'log.db'}"))
    with log.engine.begin() as connection:  # a botched migration dropped the log's table
        connection.execute(text("DROP TABLE prediction_segments"))
    source = _write(_mark(listings.iloc[:20], [3]), tmp_path / "listings.csv")
    output = tmp_path / "scored.csv"
    with pytest.raises(OperationalError, match="no such table: prediction_segments"):
        score_file(version, runtime, source, output, log=log, batch_rows=10)
    with log.engine.connect() as connection:
        runs = connection.execute(select(scoring_runs.c.status, scoring_runs.c.n_rows)).all()
    assert [tuple(run) for run in runs] == [("failed", 0)]
    left = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("log.db"))
    assert left == ["listings.csv"]  # no scored or rejects file, not even a temporary one
    log.engine.dispose()


def test_the_cli_summary_names_the_model_failures_and_exits_zero(
    batch_project: Path,
    listings: pd.DataFrame,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = _mark(listings.iloc[:50], [7, 30, 31])
    source = _write(rows, tmp_path / "listings.csv")
    output = tmp_path / "scored.csv"
    args = ["-p", str(batch_project), "score", str(source), "-o", str(output), "-m", MARKED]
    args += ["--trust", "--skip-checks", "--batch-rows", "20"]
    capsys.readouterr()
    assert run_cli([*args, "--json"]) == 0  # rejected rows are not a failed run
    summary = json.loads(capsys.readouterr().out)
    assert (summary["rows"], summary["scored"], summary["rejected"], summary["failed"]) == (
        50,
        47,
        3,
        3,
    )
    assert summary["rejection_reasons"] == {"model": 3}
    assert run_cli(args) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "scored 47 of 50 rows" in printed
    assert "rejected 3 rows (model: 3)" in printed
    assert "3 of them failed in the model or a step, logged as failed predictions" in printed
    with open_prediction_log(batch_project) as log:
        run = log.window(model=MARKED, source="batch")
    run = run[run["batch_id"] == summary["batch_id"]]
    assert (len(run), run["error"].notna().sum()) == (50, 3)
