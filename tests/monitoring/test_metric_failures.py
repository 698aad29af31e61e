"""A metric failure never fails a prediction (the monitoring issue's reliability clause).

The server is built with ``build_state(..., metrics=...)``, the public way to hand it the live
metrics, given a :class:`ServingMetrics` whose every recording raises, and served by uvicorn on
127.0.0.1 in this process (a subprocess could not be handed a Python object). Predictions,
pipeline steps, validation errors and feedback answer exactly as with working metrics; each
failure is logged; only ``GET /metrics`` itself fails.
"""

from __future__ import annotations

import logging
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from monitoring_helpers import in_process_server

from modelpilot.monitoring import ServingMetrics
from modelpilot.project import Project
from modelpilot.server import build_state, create_app
from project_helpers import as_instances, register, write_project

STEPS_MODULE = "failing_metrics_steps"  # a module name no other test imports


class MetricsDown(RuntimeError):
    pass


class _Refuses:
    """Stands in for a prometheus-client metric: every use raises."""

    def labels(self, *args: Any) -> Any:
        raise MetricsDown("the metrics backend is down")


class FailingMetrics(ServingMetrics):
    """Live metrics of which every recording raises."""

    def __init__(self) -> None:
        super().__init__(process=False)
        self.feedback = _Refuses()  # type: ignore[assignment]

    def observe_batch(self, *args: Any, **kwargs: Any) -> None:
        raise MetricsDown("batch size")

    def request_started(self, deployment: str) -> None:
        raise MetricsDown("in flight")

    def observe_request(self, *args: Any, **kwargs: Any) -> None:
        raise MetricsDown("request")

    def observe_inputs(self, *args: Any, **kwargs: Any) -> None:
        raise MetricsDown("inputs")

    def observe_outputs(self, *args: Any, **kwargs: Any) -> None:
        raise MetricsDown("outputs")

    def observe_step(self, *args: Any, **kwargs: Any) -> None:
        raise MetricsDown("step")

    def exposition(self) -> bytes:
        raise MetricsDown("exposition")


@pytest.fixture
def project_dir(
    tmp_path: Path, house_data: tuple[pd.DataFrame, pd.DataFrame], house_model_file: Path
) -> Iterator[Path]:
    """The house model served alone (``houses``) and behind a step (``cleaned``)."""
    holdout = house_data[1]
    settings = {
        "serving": {"open_predict": True},
        "deployments": [
            {"name": "houses"},
            {
                "name": "cleaned",
                "model": "houses-clean",
                "steps": [{"name": "tidy", "function": f"{STEPS_MODULE}:tidy"}],
            },
        ],
    }
    directory = write_project(tmp_path / "project", settings=settings)
    holdout.to_parquet(directory / "holdout.parquet")
    (directory / f"{STEPS_MODULE}.py").write_text(
        textwrap.dedent(
            """
            def tidy(frame):
                return frame.assign(condition=frame["condition"].str.lower())
            """
        ),
        "utf-8",
    )
    register(directory, house_model_file, production=True)
    register(directory, house_model_file, name="houses-clean", production=True)
    yield directory
    # The server put the project on sys.path to import its step: take it off again.
    if str(directory) in sys.path:
        sys.path.remove(str(directory))
    sys.modules.pop(STEPS_MODULE, None)


def test_predictions_and_feedback_succeed_while_every_metric_raises(
    project_dir: Path, holdout_frame: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    project = Project.open(project_dir, environ={})
    state = build_state(project, metrics=FailingMetrics())
    records = as_instances(holdout_frame.iloc[:8])
    with (
        caplog.at_level(logging.ERROR, logger="modelpilot"),
        in_process_server(create_app(state)) as url,
        httpx.Client(base_url=url, timeout=60) as http,  # serving.open_predict
    ):
        single = http.post("/v1/deployments/houses/predict", json=records[0])
        batch = http.post("/v1/deployments/houses/predict", json={"instances": records})
        piped = http.post("/v1/deployments/cleaned/predict", json={"instances": records})
        invalid = http.post("/v1/deployments/houses/predict", json={"size_sqft": -1})
        assert batch.status_code == 200, batch.text
        ids = [p["id"] for p in batch.json()["predictions"]]
        labels = [{"prediction_id": i, "label": 250_000.0} for i in ids]
        feedback = http.post("/v1/feedback", json={"items": labels})
        scraped = http.get("/metrics")
    assert [single.status_code, batch.status_code, piped.status_code] == [200, 200, 200]
    assert len(piped.json()["predictions"]) == len(records)
    assert invalid.status_code == 422  # a client error stays a client error
    assert feedback.status_code == 200 and feedback.json()["accepted"] == len(ids)
    assert scraped.status_code == 500  # the only casualty: the metrics endpoint itself
    logged = {r.getMessage() for r in caplog.records}
    for what in ("request", "input", "output", "feedback"):
        assert f"recording {what} metrics failed" in logged, what
    assert "recording the batch size failed" in logged
    assert "recording the metrics of step tidy failed" in logged
    project.engine.dispose()
    reopened = Project.open(project_dir, environ={})  # what the server committed
    try:
        assert reopened.prediction_log.exists(ids) == set(ids)
    finally:
        reopened.engine.dispose()


@pytest.fixture
def holdout_frame(house_data: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    return house_data[1]
