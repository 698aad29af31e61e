"""Batch scoring of pipeline deployments: ``modelpilot score`` runs a deployment's steps as the
server does, and rejects exactly the rows on which a step raises, naming the step.

The deployments come from ``conftest.py``: ``cleaned`` (the project's ``listing_steps.clean``,
then the house model; ``clean`` raises on a listing with more bedrooms than its floor area
allows) and ``chained`` (the house model, then a second model on its estimate).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from monitoring_helpers import CHAINED, CLEANED

from modelpilot.project import Project
from project_helpers import as_instances, run_cli


@pytest.fixture(scope="module")
def holdout(house_data: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    return house_data[1]


def _score(project: Path, *args: str) -> int:
    return run_cli(["-p", str(project), "score", *args, "--skip-checks"])


def _summary(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    summary: dict[str, object] = json.loads(capsys.readouterr().out)
    return summary


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)


@pytest.mark.parametrize(
    ("deployment", "suffix"), [(CLEANED, ".csv"), (CHAINED, ".parquet"), (CLEANED, ".parquet")]
)
def test_a_file_scored_by_deployment_gets_the_servers_predictions(
    monitored_project: Path,
    http: httpx.Client,
    holdout: pd.DataFrame,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    deployment: str,
    suffix: str,
) -> None:
    rows = holdout.iloc[:60].drop(columns="price").reset_index(drop=True)
    source = tmp_path / f"listings{suffix}"
    rows.to_csv(source, index=False) if suffix == ".csv" else rows.to_parquet(source)
    output = tmp_path / f"scored{suffix}"
    capsys.readouterr()
    args = [str(source), "-o", str(output), "-d", deployment, "--no-log", "--json"]
    assert _score(monitored_project, *args) == 0
    summary = _summary(capsys)
    assert summary["deployment"] == deployment
    assert summary["steps"] == (["clean"] if deployment == CLEANED else ["estimate"])
    assert (summary["scored"], summary["rejected"]) == (len(rows), 0)
    response = http.post(
        f"/v1/deployments/{deployment}/predict", json={"instances": as_instances(rows)}
    )
    assert response.status_code == 200, response.text
    served = [p["prediction"] for p in response.json()["predictions"]]
    np.testing.assert_array_equal(_read(output)["prediction"].to_numpy(), served)


def test_a_model_behind_steps_is_scored_through_them_without_deployment(
    monitored_project: Path,
    holdout: pd.DataFrame,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The server runs every version of a model behind steps through them; so does --model."""
    rows = holdout.iloc[:20].drop(columns="price")
    source = tmp_path / "listings.parquet"
    rows.to_parquet(source)
    by_model, by_deployment = tmp_path / "model.parquet", tmp_path / "deployment.parquet"
    capsys.readouterr()
    by_model_args = [str(source), "-o", str(by_model), "-m", "houses-chain", "--no-log"]
    assert _score(monitored_project, *by_model_args, "--json") == 0
    assert _summary(capsys)["deployment"] == CHAINED
    by_deployment_args = [str(source), "-o", str(by_deployment), "-d", CHAINED, "--no-log"]
    assert _score(monitored_project, *by_deployment_args) == 0
    pd.testing.assert_series_equal(
        _read(by_model)["prediction"], _read(by_deployment)["prediction"]
    )


def test_rows_a_step_raises_on_go_to_the_rejects_file_with_the_steps_name(
    monitored_project: Path,
    holdout: pd.DataFrame,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = Path(shutil.copytree(monitored_project, tmp_path / "project"))  # it logs
    rows = holdout.iloc[:50].drop(columns="price").reset_index(drop=True)
    impossible = [3, 17, 18, 41]  # more bedrooms than the floor area allows: `clean` raises
    rows.loc[impossible, ["bedrooms", "size_sqft"]] = [12, 300]
    rows["size_sqft"] = rows["size_sqft"].astype(object)
    rows.loc[25, "size_sqft"] = "huge"  # and one row the schema rejects, before any step
    source = tmp_path / "listings.csv"
    rows.to_csv(source, index=False)
    output, rejects = tmp_path / "scored.csv", tmp_path / "rejects.csv"
    args = [str(source), "-o", str(output), "--rejects", str(rejects), "-d", CLEANED]
    assert _score(project, *args, "--batch-rows", "20", "--json") == 0
    summary = _summary(capsys)
    assert (summary["rows"], summary["scored"], summary["rejected"]) == (50, 45, 5)
    assert summary["rejection_reasons"] == {"step clean": 4, "size_sqft": 1}
    rejected = pd.read_csv(rejects)
    assert rejected["_row"].tolist() == [3, 17, 18, 25, 41]
    reasons = dict(zip(rejected["_row"], rejected["_reason"], strict=True))
    for row in impossible:
        assert reasons[row] == (
            "step clean: ValueError: more bedrooms than the floor area allows"
        ), row
    assert reasons[25].startswith("size_sqft: expected")
    failed_ids = dict(zip(rejected["_row"], rejected["prediction_id"], strict=True))
    assert pd.isna(failed_ids.pop(25))  # the schema rejected it: never a prediction
    scored = pd.read_csv(output)
    assert len(scored) == 45 and scored["prediction"].notna().all()
    opened = Project.open(project, environ={})
    try:
        log = opened.prediction_log
        # The scored rows, and the rows `clean` raised on as failed predictions (as the server
        # logs them); not the row the schema rejected.
        assert log.count(model="houses-clean", source="batch") == 45 + 4
        assert log.exists(scored["prediction_id"].tolist()) == set(scored["prediction_id"])
        failed = log.get(list(failed_ids.values())).set_index("id")
        assert set(failed.index) == set(failed_ids.values())
        assert failed["prediction"].isna().all()
        assert set(failed["error"]) == {"ValueError in step clean"}
    finally:
        opened.engine.dispose()


def test_deployment_and_a_model_it_does_not_serve_is_refused(
    monitored_project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "listings.csv"
    pd.DataFrame({"size_sqft": [1000]}).to_csv(source, index=False)
    args = [str(source), "-o", str(tmp_path / "out.csv"), "-d", CLEANED, "-m", "houses"]
    assert _score(monitored_project, *args) == 2
    assert "deployment 'cleaned' serves model 'houses-clean'" in capsys.readouterr().err
