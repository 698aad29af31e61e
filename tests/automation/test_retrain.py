"""The retraining loop on a real project: export, train, register, compare; and its policy."""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from automation_helpers import DEPLOYMENT, add_labelled_predictions, open_project
from sqlalchemy import insert

from fake_clock import FakeClock
from modelpilot.automation import RetrainLoop
from modelpilot.errors import ConfigError, ConflictError
from modelpilot.project import Project
from modelpilot.rollout import RolloutStore
from modelpilot.store import FeedbackItem, PredictionLog, PredictionRecord
from modelpilot.store._tables import retrain_runs
from project_helpers import as_instances, build_project

# The trainers are modules of the project directory; every test gets its own module name,
# because a module imported once stays in sys.modules.
TRAINERS = """
import time
from pathlib import Path

import skops.io as sio
from sklearn.compose import make_column_transformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

SEEN = {}


def fit(train, holdout, output_dir, spec):
    SEEN.update(train=train, holdout=holdout, target=spec.target)
    features = train.drop(columns=[spec.target, "_source"])
    encode = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["location", "condition"]),
        remainder=SimpleImputer(),
    )
    model = make_pipeline(encode, LinearRegression())  # cheap: any model will do
    model.fit(features, train[spec.target])
    path = Path(output_dir) / "model.skops"
    sio.dump(model, path)
    return path


def newest(train, holdout, output_dir, spec):
    # The world as the labels now say: the logged rows alone.
    return fit(train[train["_source"] == "logged"], holdout, output_dir, spec)


def explode(train, holdout, output_dir, spec):
    raise RuntimeError("the trainer ran out of memory")


def garbage(train, holdout, output_dir, spec):
    path = Path(output_dir) / "model.skops"
    path.write_bytes(b"not a model")
    return path


def wait_for_release(train, holdout, output_dir, spec):
    release = Path(output_dir).parents[3] / "release"
    deadline = time.monotonic() + 60
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    raise RuntimeError("released")
"""

COMMAND = """
import os
import sys
from pathlib import Path

mode = sys.argv[1]
if mode == "fail":
    print("loading data", flush=True)
    print("KeyError: 'price'", file=sys.stderr)
    sys.exit(1)
if mode == "two":
    out = Path(os.environ["MODELPILOT_OUTPUT_DIR"])
    (out / "a.skops").write_bytes(b"a")
    (out / "b.skops").write_bytes(b"b")
"""

_counter = iter(range(1_000_000))


@pytest.fixture(scope="module")
def template(
    tmp_path_factory: pytest.TempPathFactory,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
    house_model_file: Path,
) -> Path:
    """A project with production v1 registered with --data and --eval (built once, copied)."""
    train, holdout = house_data
    return build_project(
        tmp_path_factory.mktemp("template"), holdout, house_model_file, train=train
    )


ProjectFactory = Callable[..., tuple[Project, str]]


@pytest.fixture
def make_project(tmp_path: Path, template: Path) -> ProjectFactory:
    """Copy the template and set its ``retrain`` section; returns the project and trainer module.

    ``function="fit"`` becomes ``retrain.function: <unique module>:fit``.
    """

    def make(**retrain: Any) -> tuple[Project, str]:
        directory = tmp_path / "project"
        shutil.copytree(template, directory)
        module = f"mp_trainers_{next(_counter)}_{id(tmp_path)}"
        (directory / f"{module}.py").write_text(TRAINERS, encoding="utf-8")
        (directory / "train_cmd.py").write_text(COMMAND, encoding="utf-8")
        if "function" in retrain:
            retrain["function"] = f"{module}:{retrain['function']}"
        spec_file = directory / "modelpilot.yaml"
        spec = yaml.safe_load(spec_file.read_text(encoding="utf-8"))
        spec["retrain"] = {"min_new_labels": 0, "cooldown_s": 0, **retrain}
        spec_file.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
        return open_project(directory), module

    return make


def versions(project: Project) -> list[int]:
    return [v.version for v in project.registry.list_versions(DEPLOYMENT)]


def test_a_working_function_trainer_registers_a_compared_version(
    make_project: ProjectFactory, house_data: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    project, module = make_project(function="fit")
    labelled = house_data[1].iloc[:100]
    add_labelled_predictions(project, labelled, ts=time.time())
    run = RetrainLoop(project).trigger(reason="manual", actor="ann", background=False)

    assert run.status in ("succeeded", "rejected"), run.details
    assert run.version == 2 and run.details["version"] == 2
    assert versions(project) == [1, 2]
    assert project.registry.get(DEPLOYMENT, 2).tags["retrain_run"] == str(run.id)
    assert (run.details["reference_rows"], run.details["logged_rows"]) == (2400, 80)
    assert run.details["holdout_rows"] == 20  # the newest 20 % of the labels
    comparison = run.details["comparison"]
    assert comparison["metrics"], comparison
    for row in comparison["metrics"]:
        assert row["production_version"] == 1
        assert isinstance(row["candidate"], float) and isinstance(row["production"], float)
    if run.status == "rejected":
        assert run.details["reason"]
    # The trainer saw the reference rows and the logged ones, marked by `_source`.
    seen = sys.modules[module].SEEN
    assert seen["train"]["_source"].value_counts().to_dict() == {"reference": 2400, "logged": 80}
    assert len(seen["holdout"]) == 20 and seen["target"] == "price"
    assert [e["action"] for e in project.registry.audit_entries()][:1] == [f"retrain.{run.status}"]


@pytest.mark.parametrize(
    ("trainer", "error"),
    [
        ({"function": "explode"}, "RuntimeError: the trainer ran out of memory"),
        ({"function": "garbage"}, ""),  # an artifact that does not load
        ({"command": "{python} train_cmd.py fail"}, "exited 1: KeyError: 'price'"),
        ({"command": "{python} train_cmd.py two"}, "exactly one artifact"),
    ],
    ids=["function-raises", "function-garbage", "command-exits-1", "command-two-artifacts"],
)
def test_a_failing_trainer_registers_nothing(
    make_project: ProjectFactory, trainer: dict[str, str], error: str
) -> None:
    trainer = {k: v.format(python=sys.executable) for k, v in trainer.items()}
    project, _ = make_project(**trainer)
    loop = RetrainLoop(project)
    run = loop.trigger(reason="manual", actor="ann", background=False)

    assert run.status == "failed"
    assert run.version is None
    assert error in run.details["error"]
    assert versions(project) == [1]
    assert project.registry.alias_version(DEPLOYMENT, "production") == 1
    assert loop.runs()[0].status == "failed"
    assert project.registry.audit_entries()[0]["action"] == "retrain.failed"


def test_no_trainer_is_a_config_error(make_project: ProjectFactory) -> None:
    project, _ = make_project()
    with pytest.raises(ConfigError, match="neither `command` nor `function` is set"):
        RetrainLoop(project).trigger(reason="manual", actor="ann")


def test_too_few_new_labels_is_refused_with_the_numbers(
    make_project: ProjectFactory, house_data: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    project, _ = make_project(function="explode", min_new_labels=50)
    add_labelled_predictions(project, house_data[1].iloc[:30], ts=time.time())
    loop = RetrainLoop(project)
    with pytest.raises(
        ConflictError,
        match=r"only 30 new labels since the last run; retrain.min_new_labels is 50 "
        r"\(pass --force",
    ):
        loop.trigger(reason="alert", actor="alerts")
    assert loop.runs() == []
    forced = loop.trigger(reason="manual", actor="ann", force=True, background=False)
    assert forced.status == "failed"  # --force starts it anyway


def test_simultaneous_triggers_start_exactly_one_run(make_project: ProjectFactory) -> None:
    project, _ = make_project(function="explode", cooldown_s=3600)
    loop = RetrainLoop(project)
    barrier = threading.Barrier(8)
    started: list[int] = []
    refused: list[str] = []

    def trigger() -> None:
        barrier.wait()
        try:
            started.append(loop.trigger(reason="alert", actor="alerts").id)
        except ConflictError as exc:
            refused.append(exc.message)

    threads = [threading.Thread(target=trigger) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    loop.wait(60)

    assert len(started) == 1, (started, refused)
    assert len(refused) == 7
    assert all("cooling down" in m or "already running" in m for m in refused), refused
    assert [r.id for r in loop.runs()] == started
    # And a while later it is still cooling down, but --force goes through.
    with pytest.raises(ConflictError, match=r"cooling down .* or pass --force"):
        loop.trigger(reason="alert", actor="alerts")
    assert loop.trigger(reason="manual", actor="ann", force=True, background=False)


@pytest.mark.parametrize("max_concurrent", [1, 2])
def test_max_concurrent_runs(make_project: ProjectFactory, max_concurrent: int) -> None:
    project, _ = make_project(function="wait_for_release", max_concurrent=max_concurrent)
    loop = RetrainLoop(project)
    try:
        runs = [
            loop.trigger(reason="manual", actor="ann", force=True) for _ in range(max_concurrent)
        ]
        assert all(r.status == "running" for r in runs)
        with pytest.raises(
            ConflictError,
            match=rf"{max_concurrent} retraining run\(s\) of houses already running "
            rf"\(retrain.max_concurrent = {max_concurrent}\)",
        ):
            loop.trigger(reason="manual", actor="ann", force=True)
    finally:
        (project.directory / "release").touch()
        loop.wait(60)
    assert [r.status for r in loop.runs()] == ["failed"] * max_concurrent
    assert loop.trigger(reason="manual", actor="ann", force=True, background=False)


# ---- the candidate's fate, and the retry rule ---------------------------------------------------
class RolledBack:
    """The server's deploy, as far as a run sees it: a canary is recorded for the candidate (in
    the real rollout store), and its gates roll it back."""

    def __init__(self, project: Project) -> None:
        self.store = RolloutStore(project.engine)
        self.store.ensure(DEPLOYMENT, DEPLOYMENT, 1, "server")
        self.expected: list[dict[str, Any]] = []

    def __call__(self, version: int, reason: str, expected: dict[str, Any]) -> dict[str, Any]:
        self.expected.append(expected)
        record = self.store.start(
            DEPLOYMENT,
            strategy="canary",
            candidate=version,
            primary=1,
            config={"expected": expected},
            actor="retrain",
            reason=reason,
        )
        self.store.finish(record, "rolled_back", "gates failed: key_metric failed", actor="c")
        return {"rollout": {"id": record.id}}


def bad_production_labels(
    project: Project, frame: pd.DataFrame, *, prefix: str, clock: FakeClock
) -> None:
    """Predictions of production at ``clock``'s time, each labelled 50% above what it
    predicted: production misses ``mae <= 25000`` by far on them."""
    production = project.registry.resolve(f"{DEPLOYMENT}@production")
    ids = [f"{prefix}{i:05d}" for i in range(len(frame))]
    log = PredictionLog(project.engine, clock=clock)
    log.append(
        [
            PredictionRecord(
                pid, clock(), DEPLOYMENT, production.version, row, {"prediction": float(y)}
            )
            for pid, row, y in zip(ids, as_instances(frame), frame["price"], strict=True)
        ]
    )
    labels = [FeedbackItem(pid, float(y) * 1.5) for pid, y in zip(ids, frame["price"], strict=True)]
    assert all(r.accepted for r in log.add_feedback(labels))


def test_a_rolled_back_candidate_says_why_and_the_retry_rule_retrains_before_the_cooldown(
    make_project: ProjectFactory, house_data: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    project, _ = make_project(
        function="newest",
        cooldown_s=3600,
        min_new_labels=20,
        retry_after_s=600,
        max_retries=1,
        auto=True,
    )
    clock = FakeClock(time.time())
    deploy = RolledBack(project)
    loop = RetrainLoop(project, clock=clock, deploy=deploy)
    bad_production_labels(project, house_data[1].iloc[:100], prefix="a", clock=clock)
    clock.advance(1)
    first = loop.trigger(reason="alert key_metric_mae", actor="alerts", background=False)
    assert first.status == "succeeded", first.details
    (expected,) = deploy.expected  # what the canary's proxies were told to expect
    assert set(expected) == {"agreement", "prediction_shift"}
    assert expected["agreement"]["rows"] == first.details["holdout_rows"]
    assert expected["agreement"]["source"] == f"retrain run {first.id}"

    # The run follows its rollout: rolled back, and why.
    (run,) = loop.runs()
    assert run.status == "rolled_back"
    assert run.details["rollout"]["reason"] == "gates failed: key_metric failed"
    assert project.registry.audit_entries()[0]["action"] == "retrain.rolled_back"

    # Cooling down for an hour; before retry_after_s nothing starts, nor without new labels.
    assert loop.tick() is None
    clock.advance(601)
    assert loop.tick() is None  # no label since the run started
    with pytest.raises(
        ConflictError, match=r"only 0 new labels since the last run; retrain.min_new_labels is 20"
    ):
        loop.trigger(reason="alert", actor="alerts")
    bad_production_labels(project, house_data[1].iloc[100:160], prefix="b", clock=clock)
    retry = loop.tick()
    assert retry is not None and retry.trigger.startswith("retry: run 1 v2 was rolled back")
    assert "mae" in retry.trigger and "misses mae <= 25000" in retry.trigger
    loop.wait(60)
    # max_retries: 1. The next retry waits for the cooldown, whatever the labels say.
    clock.advance(601)
    bad_production_labels(project, house_data[1].iloc[160:220], prefix="c", clock=clock)
    assert loop.tick() is None
    assert len(loop.runs()) == 2


def test_a_run_left_running_by_a_dead_process_does_not_block_force(
    make_project: ProjectFactory,
) -> None:
    project, _ = make_project(function="explode", timeout_s=60)
    with project.engine.begin() as connection:
        connection.execute(
            insert(retrain_runs).values(
                model=DEPLOYMENT,
                trigger="alert",
                status="running",
                started_at=time.time() - 3600,
                details_json="{}",
                started_by="alerts",
            )
        )
    loop = RetrainLoop(project)
    run = loop.trigger(reason="manual", actor="ann", force=True, background=False)
    assert run.status == "failed"  # it ran: the trainer raised
    abandoned = loop.runs()[-1]
    assert abandoned.status == "failed"
    assert abandoned.details["error"].startswith("abandoned: still marked running")
