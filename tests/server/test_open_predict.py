"""`serving.open_predict: true`, tokens made by `modelpilot token create`, `logging.pii: drop`.

Predictions open up; admin calls never do. The server has no token in its environment: only
the ones the command line wrote to the token file.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

from live_server import DEPLOYMENT, LiveServer, auth, live_server, poll
from modelpilot.datasets import HOUSE_FEATURES
from project_helpers import as_instances, build_project, open_prediction_log, run_cli

PREDICT = f"/v1/deployments/{DEPLOYMENT}/predict"
RELOAD = f"/v1/deployments/{DEPLOYMENT}/reload"
FEATURES = [f.model_copy(update={"pii": f.name == "location"}) for f in HOUSE_FEATURES]


@pytest.fixture(scope="module")
def served_project(
    tmp_path_factory: pytest.TempPathFactory,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
    house_model_file: Path,
) -> Path:
    settings = {"serving": {"open_predict": True}, "logging": {"pii": "drop"}}
    directory = tmp_path_factory.mktemp("open")
    return build_project(
        directory, house_data[1], house_model_file, settings=settings, features=FEATURES
    )


@pytest.fixture(scope="module")
def cli_tokens(served_project: Path) -> dict[str, str]:
    """`modelpilot token create` for a predict and an admin token, before the server starts."""
    tokens = {}
    for name, role in [("alice", "predict"), ("ops", "admin")]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = run_cli(["-p", str(served_project), "token", "create", name, "--role", role])
        assert code == 0
        assert "it is not shown again" in out.getvalue()
        tokens[role] = out.getvalue().splitlines()[-1]
    return tokens


@pytest.fixture(scope="module")
def server(served_project: Path, cli_tokens: dict[str, str]) -> Iterator[LiveServer]:
    with live_server(served_project, predict_token=None, admin_token=None) as running:
        yield running


def test_predict_needs_no_token(http: httpx.Client, holdout: pd.DataFrame) -> None:
    response = http.post(PREDICT, json={"instances": as_instances(holdout.iloc[:2])})
    assert response.status_code == 200, response.text
    [prediction, _] = response.json()["predictions"]
    feedback = http.post("/v1/feedback", json={"prediction_id": prediction["id"], "label": 1.0})
    assert feedback.status_code == 200
    assert http.get("/v1/deployments").status_code == 200


def test_a_token_that_is_sent_is_still_checked(http: httpx.Client, holdout: pd.DataFrame) -> None:
    response = http.post(
        PREDICT, json=as_instances(holdout.iloc[[0]])[0], headers=auth("not-a-token")
    )
    assert response.status_code == 401


def test_admin_calls_are_never_open(http: httpx.Client, cli_tokens: dict[str, str]) -> None:
    anonymous = http.post(RELOAD)
    assert anonymous.status_code == 401
    assert "this endpoint needs an admin token" in anonymous.json()["message"]
    with_predict = http.post(RELOAD, headers=auth(cli_tokens["predict"]))
    assert with_predict.status_code == 403
    assert "token 'alice' has role 'predict'" in with_predict.json()["message"]
    assert http.post(RELOAD, headers=auth(cli_tokens["admin"])).status_code == 200


def test_tokens_made_by_the_command_line_are_accepted(
    http: httpx.Client, holdout: pd.DataFrame, cli_tokens: dict[str, str]
) -> None:
    assert all(token.startswith("mp_") for token in cli_tokens.values())
    for token in cli_tokens.values():
        response = http.post(PREDICT, json=as_instances(holdout.iloc[[1]])[0], headers=auth(token))
        assert response.status_code == 200


def test_token_list_shows_names_and_roles_never_the_tokens(
    served_project: Path, cli_tokens: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["-p", str(served_project), "token", "list"]) == 0
    out = capsys.readouterr().out
    assert "alice" in out and "predict" in out and "ops" in out and "admin" in out
    stored = (served_project / ".modelpilot" / "tokens.json").read_text(encoding="utf-8")
    for token in cli_tokens.values():
        assert token not in out and token not in stored


def test_token_create_refuses_a_name_in_use(
    served_project: Path, cli_tokens: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["-p", str(served_project), "token", "create", "alice"]) == 2
    assert "a token named 'alice' exists" in capsys.readouterr().err


def test_pii_drop_keeps_the_feature_out_of_the_log(
    http: httpx.Client, served_project: Path, holdout: pd.DataFrame
) -> None:
    [record] = as_instances(holdout.iloc[[2]])
    [prediction] = http.post(PREDICT, json=record).json()["predictions"]
    with open_prediction_log(served_project) as log:
        poll(lambda: log.exists([prediction["id"]]), what="the prediction to be committed")
        logged = log.get([prediction["id"]])
    assert "location" not in logged.columns
    assert logged["condition"].tolist() == [record["condition"]]
    assert logged["prediction"].tolist() == pytest.approx([prediction["prediction"]])


@pytest.fixture(scope="module")
def holdout(house_data: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    return house_data[1]
