"""`modelpilot export edge`: bundles that answer as the registered model, or a clear refusal."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.compose import make_column_transformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from modelpilot.datasets import HOUSE_FEATURES
from modelpilot.edge import registered_answers
from modelpilot.project import Project
from modelpilot.spec import render_project
from modelpilot_edge import Bundle
from project_helpers import as_instances, register, run_cli

NUMERIC = [f for f in HOUSE_FEATURES if f.type == "numeric" and not f.nullable]


def _answers_without_ids(answers: list[dict]) -> list[dict]:
    return [{k: v for k, v in a.items() if k not in ("id", "confidence")} for a in answers]


def _export(
    project: Path, ref: str, out: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> dict:
    """``modelpilot export edge REF -o OUT --json``: its report (the command must succeed)."""
    code = run_cli(["-p", str(project), "export", "edge", ref, "-o", str(out), "--json", *extra])
    assert code == 0
    report: dict = json.loads(capsys.readouterr().out)
    return report


def test_a_bundle_answers_the_holdout_bit_for_bit(
    edge_project: Path,
    public_key: str,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = edge_project / "exports" / "houses.zip"
    report = _export(edge_project, "houses@production", out, capsys, "--zip")
    assert report["engine"] == "trees" and report["version"] == 1
    assert report["candidates"]["kernels"]["exact"] is True
    assert report["candidates"]["onnx"]["ok"] is False  # skl2onnx fails on this pipeline
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
    assert {
        "manifest.json",
        "manifest.sig",
        "model.json",
        "model/trees.npz",
        "schema.json",
        "profile.json",
        "metadata.json",
        "smoke.json",
    } <= names
    records = as_instances(house_data[1].head(300))
    project = Project.open(edge_project, environ={})
    try:
        version = project.registry.resolve("houses@production")
        expected = registered_answers(version, project.registry.load(version), records)
    finally:
        project.engine.dispose()
    with Bundle.open(out, public_key=public_key, logging=False) as bundle:
        got = _answers_without_ids(bundle.predict(records))
        # One record at a time: the one-row tree walk (kernels/_walk_one_row.py), same bits.
        one_by_one = _answers_without_ids([bundle.predict(record) for record in records])
        assert bundle.smoke_check() == []
        assert bundle.metadata["metrics"]["mae"] > 0 and bundle.profile["features"]
    assert got == expected
    assert one_by_one == expected


def test_the_export_refuses_what_it_cannot_carry(
    tmp_path: Path,
    edge_project: Path,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
    capsys: pytest.CaptureFixture[str],
) -> None:
    train = house_data[0]
    model = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), ["location", "condition"]),
            (FunctionTransformer(np.log1p), ["size_sqft"]),
            remainder="passthrough",
        ),
        HistGradientBoostingRegressor(max_iter=10),
    )
    path = tmp_path / "logged.skops"
    sio.dump(model.fit(train.drop(columns="price"), train["price"]), path)
    register(edge_project, path, production=False)
    capsys.readouterr()
    out = str(tmp_path / "b")
    code = run_cli(["-p", str(edge_project), "export", "edge", "houses:3", "-o", out, "--force"])
    assert code == 2
    message = " ".join(capsys.readouterr().err.split())
    assert "houses:3 cannot be exported to a device" in message
    assert (
        "kernels: no exact kernel: HistGradientBoostingRegressor: the step FunctionTransformer"
        in message
    )
    assert "FunctionTransformer is not supported" in message.split("onnx: skl2onnx:")[1]
    assert not (tmp_path / "b").exists()


def _write_binary_project(directory: Path, frame: pd.DataFrame) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    text = render_project(
        project="expensive",
        task="binary",
        target="expensive",
        features=NUMERIC,
        key_metrics=["accuracy >= 0.5"],
    )
    (directory / "modelpilot.yaml").write_text(text, encoding="utf-8")
    frame.to_parquet(directory / "holdout.parquet")


def test_a_classifiers_probabilities_are_bit_for_bit_and_a_model_without_kernel_goes_onnx(
    tmp_path: Path,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
    capsys: pytest.CaptureFixture[str],
) -> None:
    train, holdout = house_data
    names = [f.name for f in NUMERIC]

    def labelled(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame[names].copy()
        out["expensive"] = np.where(frame["price"] > train["price"].median(), "yes", "no")
        return out

    project = tmp_path / "binary"
    _write_binary_project(project, labelled(holdout))
    logistic = make_pipeline(StandardScaler(), LogisticRegression()).fit(
        train[names], labelled(train)["expensive"]
    )
    sio.dump(logistic, tmp_path / "logistic.skops")
    register(project, tmp_path / "logistic.skops", production=True, name="expensive")
    # No kernel: an ONNX graph. A bare estimator fitted on a DataFrame of numbers: its
    # converter takes one input, so the graph reads one matrix, not a column each.
    bayes = GaussianNB()
    sio.dump(bayes.fit(train[names], labelled(train)["expensive"]), tmp_path / "bayes.skops")
    register(project, tmp_path / "bayes.skops", production=False, name="expensive")
    assert run_cli(["-p", str(project), "keys", "create"]) == 0
    capsys.readouterr()
    report = _export(project, "expensive@production", tmp_path / "linear", capsys)
    assert report["engine"] == "linear" and report["candidates"]["kernels"]["exact"]
    onnx = report["candidates"]["onnx"]
    assert onnx["ok"] and not onnx["exact"] and onnx["largest_probability_difference"] < 1e-4
    key = (project / ".modelpilot/keys/edge-signing.pub").read_text().strip()
    records = as_instances(holdout[names].head(200))
    project_handle = Project.open(project, environ={})
    try:
        version = project_handle.registry.resolve("expensive@production")
        expected = registered_answers(version, project_handle.registry.load(version), records)
    finally:
        project_handle.engine.dispose()
    with Bundle.open(tmp_path / "linear", public_key=key, logging=False) as bundle:
        assert _answers_without_ids(bundle.predict(records)) == expected
        # One record at a time: plain Python (modelpilot_edge/_linear_python.py), whose sum
        # may differ from BLAS's in the last bits: the same classes, probabilities within
        # 1e-12.
        one_by_one = [bundle.predict(record) for record in records]
    assert [a["prediction"] for a in one_by_one] == [e["prediction"] for e in expected]
    assert (
        max(
            abs(a["probabilities"][c] - e["probabilities"][c])
            for a, e in zip(one_by_one, expected, strict=True)
            for c in ("no", "yes")
        )
        <= 1e-12
    )
    report = _export(project, "expensive:2", tmp_path / "graph", capsys)
    assert report["engine"] == "onnx"
    assert "GaussianNB is neither a linear model" in report["candidates"]["kernels"]["why"]
    project_handle = Project.open(project, environ={})
    try:
        version = project_handle.registry.resolve("expensive:2")
        expected = registered_answers(version, project_handle.registry.load(version), records)
    finally:
        project_handle.engine.dispose()
    with Bundle.open(tmp_path / "graph", public_key=key, logging=False) as bundle:
        got = bundle.predict(records)
        assert bundle.smoke_check() == []
    assert [a["prediction"] for a in got] == [e["prediction"] for e in expected]
    gaps = [
        abs(a["probabilities"]["yes"] - e["probabilities"]["yes"])
        for a, e in zip(got, expected, strict=True)
    ]
    assert max(gaps) < 1e-4
