"""The micro-batch scorer of the model thread, in process: answers, ids and the prediction log.

A micro-batch mixes requests validated by the fast path (``rows``) and by the full rules
(``columns``), requests the model thread logs itself (``LogPolicy.SCORER``) and requests whose
caller logs them (a degree of automation below full, a shadow's copy). Each must get its own
answers, ids unique in the batch, and exactly the log rows it is owed: the values that were
sent, the model's outputs, an error for a request the model failed on. The log is read back
with ``PredictionLog.window`` as a user would.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.compose import make_column_transformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from modelpilot.data import SchemaValidator
from modelpilot.errors import ModelpilotError
from modelpilot.inference import (
    BatchFailed,
    BatchJob,
    JobResult,
    LogPolicy,
    LogWriter,
    PredictionRecorder,
    batch_scorer,
)
from modelpilot.registry import ArtifactRef, ModelVersion
from modelpilot.runtime import ModelRuntime, load_runtime
from modelpilot.spec import FeatureSpec
from modelpilot.store import (
    LogRows,
    MatrixColumns,
    PiiScrubber,
    PredictionLog,
    create_database,
    join_rows,
)

WAIT = 30.0  # the longest a commit may take here; a bound, never a pause
MODEL = "scored"
#: The model raises on any input equal to this: a poisonous request.
POISON = -999.0
FEATURES = [
    FeatureSpec(name="x1", type="numeric"),
    FeatureSpec(name="x2", type="numeric", range=(-1000, 1000)),
    FeatureSpec(name="x3", type="numeric", nullable=True),
]
NAMES = [f.name for f in FEATURES]
CLASSES = ["a", "b", "c"]


def refuse_poison(X: Any) -> Any:
    """A preprocessing step that cannot stand one value (module level: joblib pickles it)."""
    values = X.to_numpy(dtype=object) if isinstance(X, pd.DataFrame) else np.asarray(X)
    if (values == POISON).any():
        raise ValueError("a poisoned value")
    return X


def _save(estimator: Any, directory: Path) -> ModelRuntime:
    path = directory / "model.joblib"
    joblib.dump(estimator, path)
    return load_runtime(path, trust=True)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, ModelRuntime]:
    """Three classes from three numeric features (one with missing values), fitted on an array."""
    rng = np.random.default_rng(0)
    X = rng.normal(0, 3, size=(300, 3))
    X[rng.random(300) < 0.1, 2] = np.nan
    y = np.array(CLASSES)[(X[:, 0] > 0).astype(int) + (X[:, 1] > 1).astype(int)]
    estimator = make_pipeline(
        FunctionTransformer(refuse_poison), SimpleImputer(), LogisticRegression()
    ).fit(X, y)
    return estimator, _save(estimator, tmp_path_factory.mktemp("classifier"))


def _version(features: Sequence[FeatureSpec], task: str) -> ModelVersion:
    return ModelVersion(
        name=MODEL,
        version=1,
        status="ok",
        flavor="joblib",
        artifact=ArtifactRef("file:///model.joblib", "0" * 64, "model.joblib", 0),
        features=list(features),
        task=task,
        target="y",
        profile={},
        metrics={},
        checks=[],
        lineage={},
        tags={},
        created_at=0.0,
        created_by="tests",
    )


@pytest.fixture
def log() -> Iterator[PredictionLog]:
    engine = create_database("sqlite://")
    yield PredictionLog(engine)
    engine.dispose()


@pytest.fixture
def writer(log: PredictionLog, tmp_path: Path) -> Iterator[LogWriter]:
    writer = LogWriter(log, flush_interval=0.01, dead_letter_path=tmp_path / "dead-letter.jsonl")
    writer.start()
    yield writer
    writer.stop()


class Scorer:
    """``batch_scorer`` for one model, with jobs built the way the server builds them."""

    def __init__(
        self,
        runtime: ModelRuntime,
        writer: LogWriter,
        *,
        features: Sequence[FeatureSpec] = FEATURES,
        task: str = "multiclass",
        durable: bool = False,
    ) -> None:
        self.validator = SchemaValidator(features)
        self.writer = writer
        self.score = batch_scorer(
            _version(features, task),
            runtime,
            self.validator,
            recorder=PredictionRecorder(writer, durable=durable),
        )

    def fast(self, records: list[dict[str, Any]], *, log: bool) -> BatchJob:
        rows = self.validator.numeric_rows(records)
        assert rows is not None, "these records must take the fast path"
        return BatchJob(len(records), rows=rows, deployment=MODEL, policy=_policy(log))

    def general(self, records: list[dict[str, Any]], *, log: bool) -> BatchJob:
        checked = self.validator.validate_records(records)
        assert checked.problems == []
        assert self.validator.numeric_rows(records) is None, "these must take the full rules"
        return BatchJob(
            len(records), columns=checked.columns, deployment=MODEL, policy=_policy(log)
        )

    def run(self, jobs: list[BatchJob]) -> Sequence[JobResult | BaseException]:
        """Score the batch, then do its after-work, as the event loop would, and let the
        writer commit it."""
        results = self.score(jobs)
        after = getattr(results, "after", None)
        if after is not None:
            after()
        assert self.writer.wait_flushed(WAIT)
        return results


def _policy(log: bool) -> LogPolicy:
    """The model thread logs a job (``log``), or its caller does."""
    return LogPolicy.SCORER if log else LogPolicy.CALLER


def _matrix(records: list[dict[str, Any]]) -> np.ndarray:
    """The records as the model sees them, computed here without the server's code."""
    return np.array(
        [[np.nan if r.get(n) is None else float(r[n]) for n in NAMES] for r in records],
        dtype=np.float64,
    )


# Records of four requests: two take the fast path, two need the full rules (a numeric string,
# a missing nullable value, a null).
FAST_A = [
    {"x1": 1, "x2": 2.5, "x3": -1.0},
    {"x1": -3.5, "x2": 0, "x3": 4},
    {"x1": 0.25, "x2": 9, "x3": 0},
]
GENERAL_B = [{"x1": "1.5", "x2": -2, "x3": None}, {"x1": 2.0, "x2": 3.0}]
FAST_C = [{"x1": 5, "x2": -7.5, "x3": 2.0}]
GENERAL_D = [{"x1": -1.0, "x2": "4", "x3": 1.0}, {"x1": 3.0, "x2": 1.0, "x3": None}]


def _mixed(scorer: Scorer) -> list[BatchJob]:
    return [
        scorer.fast(FAST_A, log=True),
        scorer.general(GENERAL_B, log=True),
        scorer.fast(FAST_C, log=False),
        scorer.general(GENERAL_D, log=False),
    ]


def _answered(results: Sequence[JobResult | BaseException]) -> list[JobResult]:
    assert all(isinstance(r, JobResult) for r in results), results
    return [r for r in results if isinstance(r, JobResult)]


def test_a_mixed_batch_gives_each_job_the_models_answers_for_its_own_rows(
    classifier: tuple[Any, ModelRuntime], writer: LogWriter
) -> None:
    estimator, runtime = classifier
    scorer = Scorer(runtime, writer)
    results = _answered(scorer.run(_mixed(scorer)))
    for records, result in zip([FAST_A, GENERAL_B, FAST_C, GENERAL_D], results, strict=True):
        X = _matrix(records)
        assert result.predictions == estimator.predict(X).tolist()
        assert result.proba is not None
        np.testing.assert_allclose(result.proba, estimator.predict_proba(X), rtol=1e-12)
        assert result.classes == CLASSES
        assert len(result.ids) == len(records)


def test_a_model_fitted_on_a_frame_gets_its_columns_from_both_paths(
    writer: LogWriter, tmp_path: Path
) -> None:
    # Fitted on named columns, the model gets a DataFrame (scikit-learn checks the names).
    X = pd.DataFrame(_matrix(FAST_A * 10 + FAST_C * 10), columns=NAMES)
    y = np.array(CLASSES)[np.arange(len(X)) % 3]
    estimator = make_pipeline(SimpleImputer(), LogisticRegression()).fit(X, y)
    scorer = Scorer(_save(estimator, tmp_path), writer)
    results = _answered(scorer.run(_mixed(scorer)))
    for records, result in zip([FAST_A, GENERAL_B, FAST_C, GENERAL_D], results, strict=True):
        frame = pd.DataFrame(_matrix(records), columns=NAMES)
        assert result.predictions == estimator.predict(frame).tolist()
    only_fast = _answered(scorer.run([scorer.fast(FAST_A, log=True)]))
    frame = pd.DataFrame(_matrix(FAST_A), columns=NAMES)
    assert only_fast[0].predictions == estimator.predict(frame).tolist()


def test_ids_are_unique_in_a_batch_and_across_batches(
    classifier: tuple[Any, ModelRuntime], writer: LogWriter
) -> None:
    scorer = Scorer(classifier[1], writer)
    ids = [i for r in _answered(scorer.run(_mixed(scorer))) for i in r.ids]
    ids += [i for r in _answered(scorer.run(_mixed(scorer))) for i in r.ids]
    assert len(ids) == 2 * 8
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


@pytest.mark.parametrize("durable", [False, True], ids=["after-answers", "durable"])
def test_only_the_jobs_that_log_here_are_logged(
    classifier: tuple[Any, ModelRuntime], writer: LogWriter, log: PredictionLog, durable: bool
) -> None:
    scorer = Scorer(classifier[1], writer, durable=durable)
    results = _answered(scorer.run(_mixed(scorer)))
    logged = log.window(model=MODEL)
    assert sorted(logged["id"]) == sorted(results[0].ids + results[1].ids)
    # The caller logs the other two itself (after changing their answers).
    assert not set(results[2].ids + results[3].ids) & set(logged["id"])


def test_the_log_holds_the_values_that_were_sent_and_the_models_outputs(
    classifier: tuple[Any, ModelRuntime], writer: LogWriter, log: PredictionLog
) -> None:
    estimator, runtime = classifier
    scorer = Scorer(runtime, writer)
    results = _answered(scorer.run(_mixed(scorer)))
    logged = log.window(model=MODEL).set_index("id")
    for records, result in [(FAST_A, results[0]), (GENERAL_B, results[1])]:
        proba = estimator.predict_proba(_matrix(records))
        for index, (pid, record) in enumerate(zip(result.ids, records, strict=True)):
            row = logged.loc[pid]
            for name in NAMES:
                sent = record.get(name)
                if sent is None:
                    assert pd.isna(row[name]), (pid, name)
                else:
                    assert row[name] == float(sent), (pid, name)
            assert row["prediction"] == result.predictions[index]
            for k, label in enumerate(CLASSES):
                assert row[f"proba_{label}"] == pytest.approx(proba[index, k], rel=1e-12)
            assert row["confidence"] == pytest.approx(proba[index].max(), rel=1e-12)
            assert (row["model"], row["version"], row["source"]) == (MODEL, 1, "online")


def test_a_batch_of_fast_jobs_only_logs_its_matrix_of_inputs(
    classifier: tuple[Any, ModelRuntime], writer: LogWriter, log: PredictionLog
) -> None:
    scorer = Scorer(classifier[1], writer)
    jobs = [scorer.fast(FAST_A, log=True), scorer.fast(FAST_C, log=False)]
    results = _answered(scorer.run(jobs))
    logged = log.window(model=MODEL).set_index("id").loc[results[0].ids]
    assert logged[NAMES].to_numpy().tolist() == _matrix(FAST_A).tolist()
    assert log.count() == len(FAST_A)


@pytest.mark.parametrize("durable", [False, True], ids=["after-answers", "durable"])
def test_a_poisonous_job_fails_alone_and_is_logged_with_its_error(
    classifier: tuple[Any, ModelRuntime], writer: LogWriter, log: PredictionLog, durable: bool
) -> None:
    estimator, runtime = classifier
    scorer = Scorer(runtime, writer, durable=durable)
    poisoned = [{"x1": 1.0, "x2": POISON, "x3": 0.0}, {"x1": 2.0, "x2": 1.0, "x3": 0.0}]
    jobs = [
        scorer.fast(FAST_A, log=True),
        scorer.fast(poisoned, log=True),
        scorer.general(GENERAL_B, log=True),
        scorer.fast(FAST_C, log=False),
    ]
    results = scorer.run(jobs)
    first, failed, third, fourth = results
    assert isinstance(failed, BatchFailed)
    assert isinstance(failed.cause, ValueError)
    assert len(failed.ids) == 2 and len(set(failed.ids)) == 2
    for records, result in [(FAST_A, first), (GENERAL_B, third), (FAST_C, fourth)]:
        assert isinstance(result, JobResult)
        assert result.predictions == estimator.predict(_matrix(records)).tolist()
    assert isinstance(first, JobResult) and isinstance(third, JobResult)
    logged = log.window(model=MODEL).set_index("id")
    assert sorted(logged.index) == sorted(first.ids + failed.ids + third.ids)
    for pid, record in zip(failed.ids, poisoned, strict=True):
        assert pd.isna(logged.loc[pid, "prediction"])
        assert logged.loc[pid, "error"] == "ValueError"
        assert [logged.loc[pid, n] for n in NAMES] == [record[n] for n in NAMES]
    assert logged.loc[first.ids + third.ids, "error"].isna().all()


def test_durable_scoring_returns_only_once_its_rows_are_committed(
    classifier: tuple[Any, ModelRuntime], log: PredictionLog
) -> None:
    # An interval of an hour: only the durable commit's wake-up can commit within the test.
    slow = LogWriter(log, flush_interval=3600.0)
    slow.start()
    try:
        scorer = Scorer(classifier[1], slow, durable=True)
        results = scorer.score(_mixed(scorer))  # no wait_flushed: returning means committed
        assert getattr(results, "after", None) is None
        answered = _answered(results)
        expected = set(answered[0].ids + answered[1].ids)
        assert log.exists(sorted(expected)) == expected
        assert log.count() == len(expected)
    finally:
        slow.stop()


def test_durable_scoring_fails_the_logging_jobs_when_the_log_cannot_take_them(
    classifier: tuple[Any, ModelRuntime], log: PredictionLog
) -> None:
    stopped = LogWriter(log, flush_interval=0.01)
    stopped.start()
    stopped.stop()
    scorer = Scorer(classifier[1], stopped, durable=True)
    results = scorer.score(_mixed(scorer))
    # Not logged, so not answered; the jobs whose caller logs them are answered.
    assert [type(r) for r in results] == [ModelpilotError, ModelpilotError, JobResult, JobResult]
    assert log.count() == 0


def test_a_batch_the_stopped_writer_refuses_goes_to_the_dead_letter_file(
    classifier: tuple[Any, ModelRuntime], log: PredictionLog, tmp_path: Path
) -> None:
    estimator, runtime = classifier
    path = tmp_path / "dead" / "predictions.jsonl"
    stopped = LogWriter(log, flush_interval=0.01, dead_letter_path=path)
    stopped.start()
    stopped.stop()
    scorer = Scorer(runtime, stopped)
    results = scorer.score([scorer.fast(FAST_A, log=True), scorer.general(GENERAL_B, log=True)])
    after = getattr(results, "after", None)
    assert after is not None
    after()  # the answers went out; their rows must not be lost
    answered = _answered(results)
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert [line["id"] for line in lines] == answered[0].ids + answered[1].ids
    assert stopped.stats.dead_lettered == len(lines) == 5
    records = FAST_A + GENERAL_B
    for line, record in zip(lines, records, strict=True):
        assert line["model"] == MODEL and line["version"] == 1
        for name in NAMES:
            sent = record.get(name)
            assert line["inputs"][name] == (None if sent is None else float(sent))
        assert "ModelpilotError" in line["error"]
    predictions = estimator.predict(_matrix(records)).tolist()
    assert [line["outputs"]["prediction"] for line in lines] == predictions
    assert log.count() == 0


def test_a_mixed_batch_with_a_64_bit_integer_is_logged(
    classifier: tuple[Any, ModelRuntime], writer: LogWriter, log: PredictionLog
) -> None:
    # A JSON integer past 2**53 (an account number, say) passes the fast path as a Python int.
    # Sharing a micro-batch with a request of the full rules, it must not keep the batch's
    # rows out of the log.
    scorer = Scorer(classifier[1], writer)
    large = [{"x1": 2**53 + 1, "x2": 1.0, "x3": 0.0}]
    jobs = [scorer.fast(large, log=True), scorer.general(GENERAL_B, log=True)]
    results = _answered(scorer.run(jobs))
    assert writer.stats.dead_lettered == 0, writer.stats.last_error
    assert log.count() == 3
    assert log.exists(results[0].ids) == set(results[0].ids)


# ---- personal data --------------------------------------------------------------------------
PII_TEXT = [
    FeatureSpec(name="x1", type="numeric"),
    FeatureSpec(name="email", type="text", pii=True),
]
PII_NUMBER = [
    FeatureSpec(name="customer", type="numeric", pii=True),
    FeatureSpec(name="x1", type="numeric"),
]


@pytest.fixture(scope="module")
def text_regressor(tmp_path_factory: pytest.TempPathFactory) -> ModelRuntime:
    """A regression on x1, fitted on a frame that also holds an e-mail address it ignores."""
    frame = pd.DataFrame({"x1": np.arange(20.0), "email": [f"{i}@a.b" for i in range(20)]})
    estimator = make_pipeline(
        make_column_transformer(("drop", ["email"]), remainder="passthrough"), LinearRegression()
    ).fit(frame, 2 * frame["x1"])
    return _save(estimator, tmp_path_factory.mktemp("text"))


@pytest.fixture(scope="module")
def number_regressor(tmp_path_factory: pytest.TempPathFactory) -> ModelRuntime:
    X = np.column_stack([np.arange(20.0) * 1000, np.arange(20.0)])
    estimator = make_pipeline(FunctionTransformer(refuse_poison), LinearRegression())
    return _save(estimator.fit(X, X[:, 1] * 3), tmp_path_factory.mktemp("number"))


def _scrubbing_writer(
    log: PredictionLog, features: Sequence[FeatureSpec], mode: str
) -> tuple[LogWriter, PiiScrubber]:
    scrubber = PiiScrubber(features, mode=mode, key=b"a key for the tests")
    writer = LogWriter(log, flush_interval=0.01, scrubbers={MODEL: scrubber})
    writer.start()
    return writer, scrubber


@pytest.mark.parametrize("mode", ["hash", "drop"])
def test_a_pii_text_feature_is_scrubbed_in_a_columnar_batch(
    text_regressor: ModelRuntime, log: PredictionLog, mode: str
) -> None:
    writer, scrubber = _scrubbing_writer(log, PII_TEXT, mode)
    try:
        scorer = Scorer(text_regressor, writer, features=PII_TEXT, task="regression")
        first = [{"x1": 1.0, "email": "ann@example.com"}, {"x1": 2.0, "email": "bob@example.com"}]
        second = [{"x1": 3.0, "email": "cy@example.com"}]
        results = _answered(
            scorer.run([scorer.general(first, log=True), scorer.general(second, log=True)])
        )
    finally:
        writer.stop()
    logged = log.window(model=MODEL).set_index("id").loc[results[0].ids + results[1].ids]
    assert logged["x1"].tolist() == [1.0, 2.0, 3.0]
    assert logged["prediction"].tolist() == pytest.approx([2.0, 4.0, 6.0])
    emails = [r["email"] for r in first + second]
    if mode == "drop":
        assert "email" not in logged.columns
    else:
        assert logged["email"].tolist() == [scrubber.token(e) for e in emails]


@pytest.mark.parametrize("mode", ["hash", "drop"])
def test_a_pii_number_is_scrubbed_in_a_batch_of_the_fast_path(
    number_regressor: ModelRuntime, log: PredictionLog, mode: str
) -> None:
    writer, scrubber = _scrubbing_writer(log, PII_NUMBER, mode)
    try:
        scorer = Scorer(number_regressor, writer, features=PII_NUMBER, task="regression")
        records = [{"customer": 12345.0, "x1": 1.0}, {"customer": 777.0, "x1": 2.0}]
        results = _answered(scorer.run([scorer.fast(records, log=True)]))
    finally:
        writer.stop()
    logged = log.window(model=MODEL).set_index("id").loc[results[0].ids]
    assert logged["x1"].tolist() == [1.0, 2.0]
    if mode == "drop":
        assert "customer" not in logged.columns
    else:
        assert logged["customer"].tolist() == [scrubber.token(12345.0), scrubber.token(777.0)]
        assert all(str(v).startswith("hmac:") for v in logged["customer"])


def test_a_pii_number_sent_as_an_integer_gets_one_hash_in_answered_and_failed_rows(
    number_regressor: ModelRuntime, log: PredictionLog
) -> None:
    # The same customer, once answered (a columnar row) and once failed (a row of its own):
    # counting a customer's requests by their hash needs one hash per customer.
    writer, _ = _scrubbing_writer(log, PII_NUMBER, "hash")
    try:
        scorer = Scorer(number_regressor, writer, features=PII_NUMBER, task="regression")
        answered = scorer.fast([{"customer": 12345, "x1": 1.0}], log=True)
        failed = scorer.fast([{"customer": 12345, "x1": POISON}], log=True)
        scorer.run([answered, failed])
    finally:
        writer.stop()
    logged = log.window(model=MODEL)
    assert logged["error"].notna().sum() == 1  # one of them failed
    assert logged["customer"].nunique() == 1, logged[["customer", "error"]]


# ---- the writer's joining of micro-batches ---------------------------------------------------
def _matrix_batch(start: int, n: int) -> LogRows:
    matrix = np.arange(start * 3, (start + n) * 3, dtype=np.float64).reshape(n, 3) / 4
    shares = np.linspace(0, 1, n)
    return LogRows(
        MODEL,
        1,
        [f"id{start + i:04d}" for i in range(n)],
        1000.0 + start,
        MatrixColumns(matrix, NAMES),
        [CLASSES[(start + i) % 3] for i in range(n)],
        proba=np.column_stack([shares, (1 - shares) / 2, (1 - shares) / 2]),
        classes=tuple(CLASSES),
        latencies=[(2.0, n)],
    )


def _columns_batch(start: int) -> LogRows:
    """A micro-batch of the full rules: the same columns as lists, with a null and an int."""
    return LogRows(
        MODEL,
        1,
        [f"id{start:04d}", f"id{start + 1:04d}"],
        1000.0 + start,
        {"x1": [7, 1.5], "x2": [0.0, -2.0], "x3": [None, 3.0]},
        ["b", "c"],
        proba=[[0.25, 0.5, 0.25], [0.75, 0.2, 0.05]],
        classes=tuple(CLASSES),
        latencies=[(1.0, 1), (3.0, 1)],
    )


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in table.to_pylist()
    ]


@pytest.mark.parametrize(
    "parts",
    [
        [_matrix_batch(0, 3), _matrix_batch(3, 1), _matrix_batch(4, 5)],
        [_matrix_batch(0, 3), _columns_batch(3), _matrix_batch(5, 2)],
    ],
    ids=["matrices", "matrices-and-columns"],
)
def test_joined_micro_batches_hold_every_row_of_every_part(parts: list[LogRows]) -> None:
    joined = join_rows(parts)
    expected = pa.concat_tables(
        [join_rows([p]).to_arrow() for p in parts], promote_options="permissive"
    )
    assert _rows(joined.to_arrow()) == _rows(expected)


def test_micro_batches_committed_together_read_back_as_they_were_sent(log: PredictionLog) -> None:
    parts = [_matrix_batch(0, 3), _columns_batch(3), _matrix_batch(5, 2)]
    writer = LogWriter(log, flush_interval=3600.0)  # nothing commits before wait_flushed
    writer.start()
    try:
        for part in parts:
            writer.submit(part)
        assert writer.wait_flushed(WAIT)
    finally:
        writer.stop()
    assert writer.stats.commits == 1
    logged = log.window(model=MODEL)
    columns = ["id", "ts", "latency_ms", *NAMES, "prediction", "proba_a", "confidence"]
    got = logged[columns].astype(object).where(logged[columns].notna(), None)
    expected = [
        {
            name.removeprefix("in:").removeprefix("out:"): value
            for name, value in row.items()
            if name.removeprefix("in:").removeprefix("out:") in columns
        }
        for part in parts
        for row in _rows(join_rows([part]).to_arrow())
    ]
    assert got.to_dict("records") == expected


def test_many_micro_batches_in_one_commit_are_joined_row_for_row(
    classifier: tuple[Any, ModelRuntime], log: PredictionLog, tmp_path: Path
) -> None:
    """At one connection every micro-batch is one request: the writer joins the model
    thread's parts of a whole commit into one batch. Mixed with batches built the general way
    (a job the caller logs, a value that needs the full rules), every row must read back as
    it was sent and answered."""
    estimator, runtime = classifier
    # A long interval: nothing commits until wait_flushed, so everything is one commit.
    slow = LogWriter(log, flush_interval=3600.0, dead_letter_path=tmp_path / "dead.jsonl")
    slow.start()
    try:
        scorer = Scorer(runtime, slow)
        rng = np.random.default_rng(5)
        sent: list[tuple[list[dict[str, Any]], JobResult]] = []
        for round_ in range(40):
            records = [
                {name: float(v) for name, v in zip(NAMES, rng.normal(0, 3, 3), strict=True)}
                for _ in range(1 + round_ % 3)
            ]
            jobs = [scorer.fast(records, log=True)]
            if round_ % 10 == 0:  # not a raw part: the general rules, and a job logged elsewhere
                jobs += [scorer.general(GENERAL_B, log=True), scorer.fast(FAST_C, log=False)]
            results = scorer.score(jobs)
            after = results.after  # type: ignore[attr-defined]
            after()
            sent.append((records, _answered(results)[0]))
            if round_ % 10 == 0:
                sent.append((GENERAL_B, _answered(results)[1]))
        assert slow.stats.commits == 0
        assert slow.wait_flushed(WAIT)
        assert slow.stats.commits == 1
    finally:
        slow.stop()
    logged = log.window(model=MODEL).set_index("id")
    assert len(logged) == sum(len(records) for records, _ in sent)
    for records, result in sent:
        proba = estimator.predict_proba(_matrix(records))
        rows = logged.loc[result.ids]
        np.testing.assert_array_equal(rows[NAMES].to_numpy(dtype=float), _matrix(records))
        assert rows["prediction"].tolist() == result.predictions
        for k, label in enumerate(CLASSES):
            assert rows[f"proba_{label}"].tolist() == pytest.approx(proba[:, k].tolist())
        assert rows["confidence"].tolist() == pytest.approx(proba.max(axis=1).tolist())
        assert rows["latency_ms"].tolist() == pytest.approx([result.latency_ms] * len(records))
