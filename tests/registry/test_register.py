"""Registering a model: load, evaluate, profile, store; nothing written unless all of it passed."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from modelpilot.datasets import HOUSE_FEATURES
from modelpilot.errors import (
    ArtifactError,
    DataError,
    NotFoundError,
    UntrustedArtifactError,
)
from modelpilot.project import Project
from modelpilot.registry import register_model
from modelpilot.spec import FeatureSpec, render_project


@pytest.fixture
def project(project_dir: Path) -> Iterator[Project]:
    project = Project.open(project_dir, environ={"MODELPILOT_USER": "ann"})
    yield project
    project.engine.dispose()


@pytest.fixture(scope="session")
def dummy_model_file(
    tmp_path_factory: pytest.TempPathFactory, house_data: tuple[pd.DataFrame, pd.DataFrame]
) -> Path:
    """A model that always predicts the mean price: loads fast, misses every target."""
    train = house_data[0]
    path = tmp_path_factory.mktemp("dummy") / "mean.skops"
    sio.dump(DummyRegressor().fit(train.drop(columns="price"), train["price"]), path)
    return path


def _nothing_registered(project: Project) -> bool:
    artifacts = project.directory / ".modelpilot" / "artifacts"
    stored = [p for p in artifacts.rglob("*") if p.is_file()] if artifacts.exists() else []
    return project.registry.list_models() == [] and stored == []


def test_register_with_holdout_and_training_data(project: Project, house_model_file: Path) -> None:
    version = register_model(
        project,
        house_model_file,
        eval_file=project.directory / "holdout.parquet",
        data_file=project.directory / "train.csv",
        tags={"team": "pricing"},
    )
    assert (version.name, version.version, version.status) == ("houses", 1, "registered")
    assert version.flavor == "skops"
    assert version.metrics["n_eval_rows"] == 600
    assert version.metrics["mae"] < 25_000 and version.metrics["r2"] > 0.8
    assert [(c["metric"], c["passed"]) for c in version.checks] == [("mae", True), ("r2", True)]
    assert version.features == project.spec.features
    assert version.profile["n_rows"] == 2400
    assert set(version.profile["features"]) == set(project.spec.feature_names)
    assert version.profile["target"]["name"] == "price"
    lineage = version.lineage
    train_bytes = (project.directory / "train.csv").read_bytes()
    assert lineage["data_sha256"] == hashlib.sha256(train_bytes).hexdigest()
    assert lineage["data_rows"] == 2400
    assert lineage["eval_path"] == str((project.directory / "holdout.parquet").resolve())
    assert lineage["source_path"] == str(house_model_file.resolve())
    assert lineage["user"] == "ann" and version.created_by == "ann"
    assert version.tags == {"team": "pricing"}
    assert project.registry.resolve("houses") == version


def test_without_a_holdout_the_targets_are_not_evaluated(
    project: Project, dummy_model_file: Path
) -> None:
    version = register_model(project, dummy_model_file)
    assert version.status == "rejected"
    assert version.metrics == {}
    assert [(c["metric"], c["value"], c["passed"], c["reason"]) for c in version.checks] == [
        ("mae", None, False, "not evaluated: register with --eval HOLDOUT"),
        ("r2", None, False, "not evaluated: register with --eval HOLDOUT"),
    ]


def test_a_model_that_misses_a_target_is_registered_as_rejected(
    project: Project, dummy_model_file: Path
) -> None:
    version = register_model(
        project, dummy_model_file, eval_file=project.directory / "holdout.parquet"
    )
    assert version.status == "rejected"
    assert version.metrics["mae"] > 25_000
    assert version.failed_checks[0].startswith("mae = ")
    assert project.registry.get("houses", 1).rejected


def test_a_project_without_key_metrics_registers_without_checks(
    tmp_path: Path, dummy_model_file: Path
) -> None:
    (tmp_path / "modelpilot.yaml").write_text(
        render_project(
            project="p",
            task="regression",
            target="price",
            key_metrics=[],
            features=HOUSE_FEATURES,
        ),
        "utf-8",
    )
    project = Project.open(tmp_path, environ={})
    try:
        version = register_model(project, dummy_model_file, name="mean-price")
        assert (version.name, version.status, version.checks) == ("mean-price", "registered", [])
    finally:
        project.engine.dispose()


def test_extra_holdout_columns_are_ignored(
    project: Project, dummy_model_file: Path, house_data: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    holdout = house_data[1].assign(listing_id=np.arange(600))
    holdout.to_parquet(project.directory / "extra.parquet")
    version = register_model(
        project, dummy_model_file, eval_file=project.directory / "extra.parquet"
    )
    assert version.metrics["n_eval_rows"] == 600


# ---- bad input: one clear message, nothing registered ---------------------------------


def test_missing_artifact(project: Project) -> None:
    with pytest.raises(NotFoundError, match=r"artifact '.*missing\.skops' was not found"):
        register_model(project, project.directory / "missing.skops")
    assert _nothing_registered(project)


def test_unknown_artifact_format(project: Project) -> None:
    with pytest.raises(ArtifactError, match=r"train\.csv: unknown model format '\.csv'"):
        register_model(project, project.directory / "train.csv")
    assert _nothing_registered(project)


def test_corrupt_skops_file(project: Project) -> None:
    broken = project.directory / "broken.skops"
    broken.write_bytes(b"PK\x03\x04 but not really a zip file")
    with pytest.raises(ArtifactError, match=r"broken\.skops is not a loadable skops file"):
        register_model(project, broken)
    assert _nothing_registered(project)


def test_an_object_without_predict(project: Project, tmp_path: Path) -> None:
    scaler = tmp_path / "scaler.skops"
    sio.dump(StandardScaler().fit(np.ones((3, 2))), scaler)
    with pytest.raises(ArtifactError, match="is a StandardScaler, which has no predict method"):
        register_model(project, scaler)
    assert _nothing_registered(project)


def test_pickle_needs_trust(project: Project, tmp_path: Path, dummy_model_file: Path) -> None:
    pickled = tmp_path / "model.joblib"
    joblib.dump(sio.load(dummy_model_file), pickled)
    with pytest.raises(
        UntrustedArtifactError,
        match=r"model\.joblib is a pickle/joblib file.*"
        r"pass --trust",
    ):
        register_model(project, pickled)
    assert _nothing_registered(project)
    assert register_model(project, pickled, trust=True).flavor == "joblib"


@pytest.mark.parametrize(
    ("option", "name", "message"),
    [
        ("eval_file", "absent.csv", r"file '.*absent\.csv' was not found; check the path"),
        ("data_file", "absent.csv", r"file '.*absent\.csv' was not found; check the path"),
        (
            "eval_file",
            "holdout.xlsx",
            r"unsupported file type '\.xlsx'; expected \.csv or \.parquet",
        ),
    ],
)
def test_missing_or_unsupported_data_files(
    project: Project, dummy_model_file: Path, option: str, name: str, message: str
) -> None:
    (project.directory / "holdout.xlsx").write_bytes(b"PK")
    with pytest.raises((NotFoundError, DataError), match=message):
        register_model(project, dummy_model_file, **{option: project.directory / name})
    assert _nothing_registered(project)


def test_holdout_without_the_target(
    project: Project, dummy_model_file: Path, house_data: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    house_data[1].drop(columns="price").to_csv(project.directory / "h.csv", index=False)
    with pytest.raises(
        DataError,
        match=r"h\.csv: the target column 'price' is missing; the "
        r"file has size_sqft, bedrooms",
    ):
        register_model(project, dummy_model_file, eval_file=project.directory / "h.csv")
    assert _nothing_registered(project)


@pytest.mark.parametrize("option", ["eval_file", "data_file"])
def test_data_without_a_declared_column(
    project: Project,
    dummy_model_file: Path,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
    option: str,
) -> None:
    house_data[1].drop(columns="bedrooms").to_csv(project.directory / "h.csv", index=False)
    with pytest.raises(DataError, match="bedrooms"):
        register_model(project, dummy_model_file, **{option: project.directory / "h.csv"})
    assert _nothing_registered(project)


def test_holdout_values_outside_the_schema(
    project: Project, dummy_model_file: Path, house_data: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    holdout = house_data[1].copy()
    holdout.loc[3, "size_sqft"] = -5.0
    holdout.to_parquet(project.directory / "h.parquet")
    with pytest.raises(
        DataError,
        match=r"1 of 600 holdout rows fail the schema \(first: row 3, "
        r"size_sqft: expected a number in \[200, 20000\], got -5\.0\)",
    ):
        register_model(project, dummy_model_file, eval_file=project.directory / "h.parquet")
    assert _nothing_registered(project)


def test_holdout_with_text_in_a_numeric_column(
    project: Project, dummy_model_file: Path, house_data: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    holdout = house_data[1].astype({"size_sqft": object})
    holdout.loc[3, "size_sqft"] = "big"
    holdout.to_csv(project.directory / "h.csv", index=False)
    with pytest.raises(DataError, match=r"h\.csv: cannot be read as csv .*invalid value 'big'"):
        register_model(project, dummy_model_file, eval_file=project.directory / "h.csv")
    assert _nothing_registered(project)


# ---- interrupted registration ----------------------------------------------------------


def test_a_registration_the_database_refuses_leaves_no_half_version(
    project: Project, dummy_model_file: Path
) -> None:
    # The artifact is stored first; then the database refuses the version's last statement.
    with project.engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TRIGGER fail_audit BEFORE INSERT ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
        )
    with pytest.raises(Exception, match="disk I/O error"):
        register_model(project, dummy_model_file, eval_file=project.directory / "holdout.parquet")
    with pytest.raises(NotFoundError, match="model 'houses' was not found"):
        project.registry.resolve("houses")
    assert project.registry.audit_entries() == []

    with project.engine.begin() as connection:
        connection.exec_driver_sql("DROP TRIGGER fail_audit")
    version = register_model(project, dummy_model_file)
    assert version.version == 1  # the failed attempt did not use up a number
    # The artifact the failed attempt stored is reused, not copied twice.
    artifacts = project.directory / ".modelpilot" / "artifacts"
    assert [p.name for p in artifacts.rglob("*") if p.is_file()] == ["mean.skops"]


# ---- classification --------------------------------------------------------------------


@pytest.mark.parametrize("labels", ["int", "str"])
def test_binary_labels_read_from_csv_match_the_model_classes(tmp_path: Path, labels: str) -> None:
    # A CSV reader turns 0/1 into 0.0/1.0 and a model trained on strings wants strings: without
    # aligning them every prediction would count as wrong.
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x1": rng.normal(size=300), "x2": rng.normal(size=300)})
    positive = (frame["x1"] + frame["x2"] > 0).to_numpy()
    target = positive.astype(int) if labels == "int" else np.where(positive, "yes", "no")
    sio.dump(LogisticRegression().fit(frame, target), tmp_path / "clf.skops")
    frame.assign(label=target).to_csv(tmp_path / "holdout.csv", index=False)
    features = [FeatureSpec(name="x1", type="numeric"), FeatureSpec(name="x2", type="numeric")]
    (tmp_path / "modelpilot.yaml").write_text(
        render_project(
            project="clf",
            task="binary",
            target="label",
            features=features,
            key_metrics=["accuracy >= 0.9", "roc_auc >= 0.95"],
        ),
        "utf-8",
    )
    project = Project.open(tmp_path, environ={})
    try:
        version = register_model(
            project, tmp_path / "clf.skops", eval_file=tmp_path / "holdout.csv"
        )
    finally:
        project.engine.dispose()
    assert version.status == "registered", version.checks
    assert version.metrics["accuracy"] > 0.95


def test_importance_is_measured_on_the_holdout(
    project: Project, house_model_file: Path, dummy_model_file: Path
) -> None:
    holdout = project.directory / "holdout.parquet"
    version = register_model(project, house_model_file, eval_file=holdout)
    shares = version.metrics["importance"]
    # Measured by the first key metric (mae <= 25000); each feature's share of the total.
    assert version.lineage["importance_metric"] == "mae"
    assert set(shares) == set(project.spec.feature_names)
    assert max(shares, key=shares.get) == "size_sqft"  # price follows size
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-4)
    # A model that ignores its inputs relies on none of them.
    ignorant = register_model(project, dummy_model_file, eval_file=holdout)
    assert set(ignorant.metrics["importance"].values()) == {0.0}
    # Without a holdout nothing is measured.
    assert "importance" not in register_model(project, house_model_file).metrics
