"""The Python client meets notebooks: DataFrames, columns and NumPy values in, many labels at
once, status and alerts; and the CLI's `feedback --file`. Against a real server."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from live_server import ADMIN_TOKEN, PREDICT_TOKEN, LiveServer, live_server
from modelpilot import Client
from modelpilot.client import ClientError
from project_helpers import build_project, run_cli


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
    house_model_file: Path,
) -> Iterator[LiveServer]:
    directory = build_project(tmp_path_factory.mktemp("notebook"), house_data[1], house_model_file)
    with live_server(directory) as running:
        yield running


@pytest.fixture
def listings(house_data: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    return house_data[1].drop(columns="price").iloc[:5].reset_index(drop=True)


def test_predict_takes_a_dataframe_columns_records_and_numpy_values(
    server: LiveServer, listings: pd.DataFrame
) -> None:
    with Client(server.url, token=PREDICT_TOKEN) as client:
        from_frame = client.predict("houses", listings)
        assert len(from_frame) == 5 and all(p["version"] == 1 for p in from_frame)
        expected = [p["prediction"] for p in from_frame]

        columns = {name: listings[name].to_numpy() for name in listings.columns}
        assert [p["prediction"] for p in client.predict("houses", columns)] == expected

        record = {k: (np.float64(v) if isinstance(v, float) else v) for k, v in
                  listings.iloc[0].to_dict().items()}  # fmt: skip
        record["bedrooms"] = np.int64(record["bedrooms"])
        record["has_garage"] = np.bool_(record["has_garage"])
        [one] = client.predict("houses", record)
        assert one["prediction"] == expected[0]
        assert [p["prediction"] for p in client.predict("houses", [record, record])] == [
            expected[0]
        ] * 2

        with_gap = listings.copy()
        with_gap.loc[0, "lot_acres"] = np.nan  # nullable: NaN is sent as null
        assert len(client.predict("houses", with_gap)) == 5


def test_feedback_takes_many_labels_at_once(server: LiveServer, listings: pd.DataFrame) -> None:
    with Client(server.url, token=PREDICT_TOKEN) as client:
        ids = [p["id"] for p in client.predict("houses", listings)]
        prices = np.array([400_000, 410_000, 420_000, 430_000, 440_000])
        result = client.feedback(ids[:3], prices[:3])
        assert (result["accepted"], result["rejected"]) == (3, 0)
        result = client.feedback(dict(zip(ids[3:], prices[3:].tolist(), strict=True)))
        assert result["accepted"] == 2
        result = client.feedback([ids[0], "no-such-id"], [1.0, 2.0])
        assert (result["accepted"], result["rejected"]) == (1, 1)
        assert "no-such-id" in result["results"][1]["error"]


def test_status_and_alerts(server: LiveServer) -> None:
    with Client(server.url, token=PREDICT_TOKEN) as client:
        status = client.status("houses")
        assert status["deployment"] == "houses" and status["version"] == 1
        alerts = client.alerts()
        assert set(alerts) == {"active", "recent", "silences"}
        with pytest.raises(ClientError, match="HTTP 404"):
            client.status("nope")


def test_cli_feedback_file(
    server: LiveServer, listings: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Client(server.url, token=ADMIN_TOKEN) as client:
        ids = [p["id"] for p in client.predict("houses", listings.iloc[:2])]
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"id": ids, "label": [399_000, 401_000]}).to_csv(labels, index=False)
    capsys.readouterr()
    command = ["feedback", "--file", str(labels), "--url", server.url, "--token", PREDICT_TOKEN]
    assert run_cli(command) == 0
    assert json.loads(capsys.readouterr().out)["accepted"] == 2

    pd.DataFrame({"prediction": ids}).to_csv(labels, index=False)
    assert run_cli(command) == 2
    assert "expected columns id (or prediction_id) and label" in capsys.readouterr().err


def test_predict_reads_json_from_a_file_or_stdin(
    server: LiveServer,
    listings: pd.DataFrame,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    records = json.loads(listings.iloc[:2].to_json(orient="records"))
    (tmp_path / "two.json").write_text(json.dumps(records))
    command = ["predict", "houses", "--url", server.url, "--token", PREDICT_TOKEN, "--json"]
    capsys.readouterr()
    assert run_cli([*command, f"@{tmp_path / 'two.json'}"]) == 0
    from_file = [p["prediction"] for p in json.loads(capsys.readouterr().out)]
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(records)))
    assert run_cli([*command, "-"]) == 0
    assert [p["prediction"] for p in json.loads(capsys.readouterr().out)] == from_file
    assert run_cli([*command, f"@{tmp_path / 'absent.json'}"]) == 2
    assert "--json @" in capsys.readouterr().err
