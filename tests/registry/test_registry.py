"""The model registry: numbered versions, moving aliases with history, audit log, verified loads."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from fake_clock import FakeClock
from modelpilot.datasets import HOUSE_FEATURES
from modelpilot.errors import (
    ArtifactError,
    ModelpilotError,
    NotFoundError,
    RejectedVersionError,
    UntrustedArtifactError,
)
from modelpilot.registry import LocalArtifactStore, ModelRef, ModelRegistry, parse_ref
from modelpilot.store import create_database

FAILED = [{"metric": "mae", "op": "<=", "target": 100.0, "value": 250.0, "passed": False}]
PASSED = [{"metric": "mae", "op": "<=", "target": 100.0, "value": 50.0, "passed": True}]


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = create_database("sqlite://")
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def registry(engine: Engine, tmp_path: Path, clock: FakeClock) -> ModelRegistry:
    return ModelRegistry(engine, LocalArtifactStore(tmp_path / "artifacts"), clock=clock)


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    """Bytes named like an ONNX file: registering does not load the model, only stores it."""
    path = tmp_path / "model.onnx"
    path.write_bytes(b"an onnx graph")
    return path


def test_versions_are_numbered_per_model(registry: ModelRegistry, artifact: Path) -> None:
    numbers = [
        (v.name, v.version)
        for v in (
            registry.create_version("houses", artifact, features=[], actor="ann"),
            registry.create_version("houses", artifact, features=[], actor="ann"),
            registry.create_version("churn", artifact, features=[], actor="ann"),
            registry.create_version("houses", artifact, features=[], actor="ann"),
        )
    ]
    assert numbers == [("houses", 1), ("houses", 2), ("churn", 1), ("houses", 3)]
    assert [v.version for v in registry.list_versions("houses")] == [1, 2, 3]
    assert [(m["name"], m["versions"], m["latest"]) for m in registry.list_models()] == [
        ("churn", 1, 1),
        ("houses", 3, 3),
    ]


def test_a_version_keeps_everything_it_was_registered_with(
    registry: ModelRegistry, artifact: Path, clock: FakeClock
) -> None:
    created = registry.create_version(
        "houses",
        artifact,
        features=HOUSE_FEATURES,
        actor="ann",
        task="regression",
        target="price",
        profile={"n_rows": 10},
        metrics={"mae": 50.0, "n_eval_rows": 3},
        checks=PASSED,
        lineage={"git_commit": "abc"},
        tags={"team": "pricing"},
    )
    stored = registry.get("houses", 1)
    assert stored == created
    assert stored.status == "registered" and not stored.rejected
    assert stored.flavor == "onnx"
    assert stored.features == HOUSE_FEATURES
    assert (stored.task, stored.target) == ("regression", "price")
    assert stored.metrics == {"mae": 50.0, "n_eval_rows": 3}
    assert stored.checks == PASSED and stored.failed_checks == []
    assert stored.lineage == {"git_commit": "abc", "artifact_bytes": len(b"an onnx graph")}
    assert stored.tags == {"team": "pricing"}
    assert (stored.created_at, stored.created_by) == (clock.now, "ann")
    assert stored.summary()["sha256"] == stored.artifact.sha256


def test_a_version_that_misses_a_target_is_rejected(
    registry: ModelRegistry, artifact: Path
) -> None:
    version = registry.create_version(
        "houses", artifact, features=[], actor="ann", checks=PASSED + FAILED
    )
    assert version.status == "rejected" and version.rejected
    assert version.failed_checks == ["mae = 250.0 misses <= 100.0"]


def test_checks_that_were_not_evaluated_say_so(registry: ModelRegistry, artifact: Path) -> None:
    unevaluated = [
        {
            "metric": "mae",
            "op": "<=",
            "target": 100.0,
            "value": None,
            "passed": False,
            "reason": "not evaluated: register with --eval HOLDOUT",
        }
    ]
    version = registry.create_version(
        "houses", artifact, features=[], actor="ann", checks=unevaluated
    )
    with pytest.raises(
        RejectedVersionError,
        match=r"houses v1 is rejected \(mae not evaluated: "
        r"register with --eval HOLDOUT\); pass --force",
    ):
        registry.set_alias("houses", "production", version.version, actor="ann")


def test_aliases_move_and_keep_their_history(
    registry: ModelRegistry, artifact: Path, clock: FakeClock
) -> None:
    for _ in range(3):
        registry.create_version("houses", artifact, features=[], actor="ann")
    clock.advance(60)
    registry.set_alias("houses", "production", 1, actor="ann", reason="first release")
    registry.set_alias("houses", "candidate", 3, actor="bob")
    clock.advance(3600)
    moved = registry.set_alias("houses", "production", 2, actor="bob", reason="better mae")

    assert moved.version == 2 and moved.aliases == ["production"]
    assert registry.resolve("houses@production").version == 2
    assert registry.resolve("houses@candidate").version == 3
    assert registry.get("houses", 1).aliases == []
    assert registry.list_models()[0]["aliases"] == {"production": 2, "candidate": 3}

    history = registry.alias_history("houses", "production")
    assert [(h["previous_version"], h["version"], h["by"], h["reason"]) for h in history] == [
        (None, 1, "ann", "first release"),
        (1, 2, "bob", "better mae"),
    ]
    assert [h["at"] - history[0]["at"] for h in history] == [0.0, 3600.0]
    assert len(registry.alias_history("houses")) == 3


def test_rejected_version_needs_force(registry: ModelRegistry, artifact: Path) -> None:
    registry.create_version("houses", artifact, features=[], actor="ann", checks=FAILED)
    with pytest.raises(
        RejectedVersionError,
        match=r"houses v1 is rejected \(mae = 250\.0 misses "
        r"<= 100\.0\); pass --force to use it anyway",
    ) as info:
        registry.set_alias("houses", "production", 1, actor="ann")
    assert info.value.exit_code == 2
    assert registry.alias_history("houses") == []

    forced = registry.set_alias("houses", "production", 1, actor="ann", force=True)
    assert forced.aliases == ["production"]
    assert registry.audit_entries(limit=1)[0]["details"]["forced"] is True


def test_every_change_is_audited(registry: ModelRegistry, artifact: Path, clock: FakeClock) -> None:
    registry.create_version("houses", artifact, features=[], actor="ann")
    clock.advance(10)
    registry.set_alias("houses", "production", 1, actor="bob", reason="go")
    clock.advance(10)
    registry.audit("carl", "deploy", "houses@production", {"replicas": 2})
    entries = registry.audit_entries()  # newest first
    assert [(e["actor"], e["action"], e["target"]) for e in entries] == [
        ("carl", "deploy", "houses@production"),
        ("bob", "alias.set", "houses@production"),
        ("ann", "register", "houses:1"),
    ]
    assert [e["at"] for e in entries] == [clock.now, clock.now - 10, clock.now - 20]
    assert entries[1]["details"] == {
        "version": 1,
        "previous": None,
        "reason": "go",
        "forced": False,
    }
    assert entries[2]["details"]["status"] == "registered"
    assert len(registry.audit_entries(limit=2)) == 2


def test_resolve_references(registry: ModelRegistry, artifact: Path) -> None:
    registry.create_version("houses", artifact, features=[], actor="ann")
    registry.create_version("houses", artifact, features=[], actor="ann")
    registry.set_alias("houses", "production", 1, actor="ann")
    assert registry.resolve("houses").version == 2  # a bare name is the latest version
    assert registry.resolve("houses:1").version == 1
    assert registry.resolve("houses@production").version == 1
    assert registry.resolve(ModelRef("houses", version=2)).version == 2


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("nope", "model 'nope' was not found; registered models: houses"),
        ("nope:1", "model 'nope' was not found; registered models: houses"),
        ("houses:7", "version 'houses:7' was not found; houses has versions 1"),
        (
            "houses@staging",
            "alias 'houses@staging' was not found; set one with "
            "`modelpilot alias set houses staging VERSION`",
        ),
    ],
)
def test_unknown_references(
    registry: ModelRegistry, artifact: Path, ref: str, message: str
) -> None:
    registry.create_version("houses", artifact, features=[], actor="ann")
    with pytest.raises(NotFoundError) as info:
        registry.resolve(ref)
    assert info.value.message == message
    assert (info.value.exit_code, info.value.http_status) == (2, 404)


def test_unknown_alias_lists_the_existing_ones(registry: ModelRegistry, artifact: Path) -> None:
    registry.create_version("houses", artifact, features=[], actor="ann")
    registry.set_alias("houses", "production", 1, actor="ann")
    with pytest.raises(NotFoundError, match="houses has aliases production"):
        registry.resolve("houses@prod")


def test_no_model_registered_yet(registry: ModelRegistry) -> None:
    with pytest.raises(
        NotFoundError, match="no model is registered yet; run `modelpilot register`"
    ):
        registry.list_versions("houses")


@pytest.mark.parametrize("text", ["", "a:b:c", "houses:one", "houses@", "houses@a b"])
def test_malformed_references(text: str) -> None:
    with pytest.raises(
        ModelpilotError, match="is not a model reference; expected NAME, NAME:VERSION or NAME@ALIAS"
    ):
        parse_ref(text)


@pytest.mark.parametrize("name", ["bad name", "-leading", "a/b", "x" * 201, "ümlaut"])
def test_model_names_are_checked(registry: ModelRegistry, artifact: Path, name: str) -> None:
    with pytest.raises(ModelpilotError, match="is not allowed; use letters, digits"):
        registry.create_version(name, artifact, features=[], actor="ann")
    assert registry.list_models() == []


def test_alias_names_are_checked(registry: ModelRegistry, artifact: Path) -> None:
    registry.create_version("houses", artifact, features=[], actor="ann")
    with pytest.raises(ModelpilotError, match=r"alias 'live now!' is not allowed"):
        registry.set_alias("houses", "live now!", 1, actor="ann")


def test_same_bytes_are_stored_once(registry: ModelRegistry, artifact: Path) -> None:
    first = registry.create_version("houses", artifact, features=[], actor="ann")
    second = registry.create_version("churn", artifact, features=[], actor="ann")
    assert first.artifact == second.artifact


def test_unknown_artifact_format_is_refused_before_anything_is_stored(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    weights = tmp_path / "weights.h5"
    weights.write_bytes(b"keras")
    with pytest.raises(ArtifactError, match=r"weights\.h5: unknown model format '\.h5'"):
        registry.create_version("houses", weights, features=[], actor="ann")
    assert not (tmp_path / "artifacts").exists()


# ---- nothing half-written -------------------------------------------------------------


_FAIL_AUDIT = {
    "sqlite": [
        "CREATE TRIGGER fail_audit BEFORE INSERT ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION fail_audit() RETURNS trigger LANGUAGE plpgsql "
        "AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$",
        "CREATE TRIGGER fail_audit BEFORE INSERT ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION fail_audit()",
    ],
}


def test_a_failed_registration_leaves_no_half_version(database_url: str, tmp_path: Path) -> None:
    # The database refuses the very last statement of the registration (its audit entry), after
    # the model and version rows were written in the same transaction: all of it must go.
    engine = create_database(database_url)
    try:
        registry = ModelRegistry(engine, LocalArtifactStore(tmp_path / "artifacts"))
        model = tmp_path / "model.onnx"
        model.write_bytes(b"graph")
        with engine.begin() as connection:
            for statement in _FAIL_AUDIT[engine.dialect.name]:
                connection.exec_driver_sql(statement)
        with pytest.raises(DBAPIError, match="disk full"):
            registry.create_version("houses", model, features=[], actor="ann")
        assert registry.list_models() == []
        with pytest.raises(NotFoundError, match="no model is registered yet"):
            registry.resolve("houses")
        assert registry.audit_entries() == []

        with engine.begin() as connection:
            connection.exec_driver_sql(
                "DROP TRIGGER fail_audit"
                + (" ON audit_log" if engine.dialect.name == "postgresql" else "")
            )
        assert registry.create_version("houses", model, features=[], actor="ann").version == 1
    finally:
        engine.dispose()


def test_registry_on_every_backend(database_url: str, tmp_path: Path) -> None:
    clock = FakeClock()
    engine = create_database(database_url)
    try:
        registry = ModelRegistry(engine, LocalArtifactStore(tmp_path / "a"), clock=clock)
        model = tmp_path / "model.onnx"
        model.write_bytes(b"graph")
        for name in ("houses", "houses", "churn"):
            registry.create_version(
                name,
                model,
                features=HOUSE_FEATURES,
                actor="ann",
                metrics={"mae": 1.5},
                checks=PASSED,
            )
        registry.set_alias("houses", "production", 1, actor="ann")
        registry.set_alias("houses", "production", 2, actor="bob", reason="v2")
        assert registry.resolve("houses@production").features == HOUSE_FEATURES
        assert registry.resolve("houses").metrics == {"mae": 1.5}
        assert [h["previous_version"] for h in registry.alias_history("houses")] == [None, 1]
        assert [m["name"] for m in registry.list_models()] == ["churn", "houses"]
        assert [e["action"] for e in registry.audit_entries()] == [
            "alias.set",
            "alias.set",
            "register",
            "register",
            "register",
        ]
        with pytest.raises(NotFoundError, match="houses has versions 1, 2"):
            registry.get("houses", 3)
    finally:
        engine.dispose()


# ---- loading ---------------------------------------------------------------------------


@pytest.fixture
def house_version(registry: ModelRegistry, house_model_file: Path) -> int:
    return registry.create_version(
        "houses", house_model_file, features=HOUSE_FEATURES, actor="ann"
    ).version


def test_load_verifies_and_predicts(
    registry: ModelRegistry, house_version: int, house_data: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    runtime = registry.load(registry.get("houses", house_version))
    holdout = house_data[1].head(20)
    predictions = runtime.predict(holdout.drop(columns="price"))
    assert predictions.shape == (20,)
    assert np.mean(np.abs(predictions - holdout["price"])) < 40_000


def test_load_refuses_a_modified_artifact(
    registry: ModelRegistry, house_version: int, tmp_path: Path
) -> None:
    version = registry.get("houses", house_version)
    stored = tmp_path / "artifacts" / version.artifact.uri
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0x01
    stored.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=rf"artifact {version.artifact.uri} is corrupt"):
        registry.load(version)


def test_load_refuses_a_deleted_artifact(
    registry: ModelRegistry, house_version: int, tmp_path: Path
) -> None:
    version = registry.get("houses", house_version)
    shutil.rmtree(tmp_path / "artifacts")
    with pytest.raises(ArtifactError, match="is missing from the artifact store"):
        registry.load(version)


def test_load_of_a_rejected_version_needs_force(
    registry: ModelRegistry, house_model_file: Path
) -> None:
    version = registry.create_version(
        "houses", house_model_file, features=[], actor="ann", checks=FAILED
    )
    with pytest.raises(RejectedVersionError, match="pass --force"):
        registry.load(version)
    assert registry.load(version, force=True).flavor == "skops"


def test_load_of_a_pickle_version_needs_trust(
    registry: ModelRegistry, house_model_file: Path, tmp_path: Path
) -> None:
    import joblib
    import skops.io as sio

    pickled = tmp_path / "house.joblib"
    joblib.dump(
        sio.load(house_model_file, trusted=sio.get_untrusted_types(file=house_model_file)), pickled
    )
    version = registry.create_version("houses", pickled, features=[], actor="ann")
    assert version.flavor == "joblib"
    with pytest.raises(UntrustedArtifactError, match="pass --trust"):
        registry.load(version)
    assert registry.load(version, trust=True).flavor == "joblib"
