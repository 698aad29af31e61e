"""The server with ``logging.backend: delta`` end to end: predictions and their labels go to
Delta tables (not to the metadata database), feedback finds a prediction still in the local
spool, a stop commits the spool, and ``modelpilot log`` reads the tables back."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pandas as pd
import pytest
from sqlalchemy import func, select

from live_server import DEPLOYMENT, auth, live_server
from modelpilot.project import Project
from modelpilot.store import DeltaPredictionLog
from modelpilot.store._tables import feedback, prediction_segments
from project_helpers import as_instances, build_project, open_prediction_log, run_cli

SETTINGS = {
    "logging": {
        "backend": "delta",
        "durable": True,
        # Nothing is committed while the server runs: only the stop commits the spool.
        "delta": {"commit_interval_s": 3600},
    }
}


def test_served_predictions_and_labels_land_in_delta_tables(
    tmp_path: Path,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
    house_model_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    directory = build_project(tmp_path, house_data[1], house_model_file, settings=SETTINGS)
    with (
        live_server(directory) as server,
        httpx.Client(base_url=server.url, headers=auth(), timeout=30.0) as http,
    ):
        answer = http.post(
            f"/v1/deployments/{DEPLOYMENT}/predict",
            json={"instances": as_instances(house_data[1].iloc[:5])},
        )
        assert answer.status_code == 200, answer.text
        ids = [p["id"] for p in answer.json()["predictions"]]
        # Still in the spool, and yet a known prediction; a label of the wrong type is refused
        # by its model's task, as on the SQL backend.
        labels = http.post(
            "/v1/feedback",
            json=[
                {"prediction_id": ids[0], "label": 250_000},
                {"prediction_id": ids[1], "label": "cheap"},
                {"prediction_id": "nope", "label": 1},
            ],
        )
        assert labels.status_code == 207, labels.text  # some accepted, some not
        accepted = [r["accepted"] for r in labels.json()["results"]]
        assert accepted == [True, False, False], labels.text
        assert (directory / ".modelpilot" / "log-spool").is_dir()
    with open_prediction_log(directory) as log:
        assert isinstance(log, DeltaPredictionLog)
        assert log.exists(ids) == set(ids) and log.count() == 5
        labeled = log.labeled(model=DEPLOYMENT)
        assert labeled[["id", "label"]].to_dict("records") == [{"id": ids[0], "label": 250_000}]
    project = Project.open(directory, environ={})
    with project.engine.connect() as connection:  # the metadata database keeps no log rows
        for table in (prediction_segments, feedback):
            assert connection.execute(select(func.count()).select_from(table)).scalar_one() == 0
    project.engine.dispose()
    out = tmp_path / "export.parquet"
    assert run_cli(["-p", str(directory), "log", "export", "-o", str(out), "--with-labels"]) == 0
    exported = pd.read_parquet(out)
    assert sorted(exported["id"]) == sorted(ids)
    assert exported.set_index("id").loc[ids[0], "label"] == 250_000
    capsys.readouterr()
    assert run_cli(["-p", str(directory), "log", "stats", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 5
    assert run_cli(["-p", str(directory), "log", "compact", "--json"]) == 0  # OPTIMIZE, VACUUM
    assert json.loads(capsys.readouterr().out)["segments_after"] == 1
