"""Data checks before training: each check passing and failing, on frames and on files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelpilot.data import CHECK_NAMES, CheckResult, DataCheckReport, check_data
from modelpilot.datasets import HOUSE_FEATURES, house_prices
from modelpilot.errors import DataError
from modelpilot.spec import DataChecks, FeatureSpec

NONE_BLOCK = DataChecks(blocking=[])
ALL_BLOCK = DataChecks(blocking=list(CHECK_NAMES))


def _clean(n: int = 200, *, seed: int = 0) -> pd.DataFrame:
    """Rows that pass every check: no gaps, no repeats, balanced labels."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "size": rng.permutation(n) * 0.5 + 50,  # every row differs
            "city": rng.choice(["oslo", "bergen"], n),
            "garage": rng.random(n) < 0.5,
            "label": np.arange(n) % 2,
        }
    )


FEATURES = [
    FeatureSpec(name="size", type="numeric", range=(0, 1000)),
    FeatureSpec(name="city", type="categorical", categories=["bergen", "oslo"]),
    FeatureSpec(name="garage", type="boolean"),
]


def _write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    return path


def test_clean_data_passes_every_check() -> None:
    report = check_data(_clean(), target="label", features=FEATURES, thresholds=ALL_BLOCK)
    assert [c.name for c in report.checks] == list(CHECK_NAMES)
    assert {c.status for c in report.checks} == {"pass"}, [c.summary for c in report.checks]
    assert report.passed
    assert (report.n_rows, report.n_columns, report.task) == (200, 4, "binary")
    assert [f.name for f in report.schema] == ["size", "city", "garage"]


def test_the_report_is_plain_json() -> None:
    frame = pd.concat([_clean(), _clean().iloc[:3]], ignore_index=True)
    report = check_data(frame, target="label", features=FEATURES)
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["passed"] is True
    assert data["checks"][3]["name"] == "duplicate_rows"
    assert data["checks"][3]["details"]["count"] == 3
    assert data["schema"][1] == {
        "name": "city",
        "type": "categorical",
        "range": None,
        "categories": ["bergen", "oslo"],
        "nullable": False,
        "pii": False,
        "description": "",
    }


# ---- blocking and warnings ------------------------------------------------------------


def test_a_failed_blocking_check_fails_the_report() -> None:
    frame = _clean()
    frame.loc[:30, "size"] = np.nan
    report = check_data(frame, target="label")  # missing_values blocks by default
    result = report.check("missing_values")
    assert (result.status, result.blocking, report.passed) == ("fail", True, False)


def test_a_failed_check_that_does_not_block_is_a_warning() -> None:
    frame = _clean()
    frame.loc[:30, "size"] = np.nan
    report = check_data(frame, target="label", thresholds=NONE_BLOCK)
    result = report.check("missing_values")
    assert (result.status, result.blocking, report.passed) == ("warn", False, True)


def test_asking_for_a_check_that_did_not_run() -> None:
    report = check_data(_clean().assign(label=np.arange(200.0)), target="label")
    assert report.task == "regression"
    with pytest.raises(KeyError, match="no check named 'class_balance' in this report"):
        report.check("class_balance")


# ---- schema ---------------------------------------------------------------------------


def test_schema_without_a_declaration_reports_what_it_inferred() -> None:
    result = check_data(_clean(), target="label").check("schema")
    assert result.status == "pass"
    assert (
        result.summary
        == "No schema declared; inferred 3 features: 1 numeric, 1 categorical, 1 boolean."
    )


def test_schema_declared_features_missing_from_the_data() -> None:
    frame = _clean().drop(columns="garage").assign(id=range(200))
    report = check_data(frame, target="label", features=FEATURES)
    result = report.check("schema")
    assert result.status == "fail"
    assert result.summary == "1 declared feature is missing from the data: garage."
    assert result.details["missing_features"] == ["garage"]
    assert result.details["extra_columns"] == ["id"]
    # The other checks still run, on the features that are there.
    assert report.check("duplicate_rows").status == "pass"


def test_schema_values_that_do_not_fit_the_declared_type(tmp_path: Path) -> None:
    frame = _clean().astype({"size": object, "garage": object})
    frame.loc[[5, 6], "size"] = "big"
    frame.loc[9, "garage"] = "maybe"
    result = check_data(
        _write(frame, tmp_path / "train.csv"), target="label", features=FEATURES
    ).check("schema")
    assert result.status == "fail"
    assert result.summary == (
        "Column size has 2 values that are not finite numbers (e.g. 'big'). "
        "Column garage has 1 value that is not true or false (e.g. 'maybe')."
    )
    assert result.details["type_mismatches"]["size"] == {
        "expected": "numeric",
        "count": 2,
        "examples": ["big"],
    }


def test_schema_target_missing_from_the_data() -> None:
    report = check_data(_clean(), target="churned", features=FEATURES)
    assert report.check("schema").summary == (
        "The target column 'churned' is missing, so no label was checked."
    )
    assert "label_consistency" not in {c.name for c in report.checks}
    assert not report.passed


def test_without_a_declaration_an_unknown_target_is_an_error() -> None:
    with pytest.raises(
        DataError,
        match=r"the target column 'churned' is not in the DataFrame; "
        r"its columns are size, city, garage, label\. Pass the name of one",
    ):
        check_data(_clean(), target="churned")


def test_schema_a_binary_task_with_three_classes() -> None:
    frame = _clean().assign(label=np.arange(200) % 3)
    result = check_data(frame, target="label", task="binary").check("schema")
    assert result.status == "fail"
    assert "the target label has 3 distinct values, but a binary task allows at most 2" in (
        result.summary.lower()
    )


def test_schema_a_regression_target_that_is_not_numeric() -> None:
    frame = _clean().assign(label=["1.5", "n/a", "2.0", "3.25"] * 50)
    result = check_data(frame, target="label", task="regression").check("schema")
    assert result.summary == "The target label has 50 values that are not numbers."


# ---- missing values -------------------------------------------------------------------


def test_missing_values_none() -> None:
    result = check_data(_clean(), target="label").check("missing_values")
    assert (result.status, result.summary) == ("pass", "No values are missing.")


def test_missing_values_within_the_limit_and_in_a_nullable_column() -> None:
    frame = _clean()
    frame.loc[:9, "size"] = np.nan  # 5%: at the limit, not above it
    frame.loc[:99, "city"] = None  # 50%, but declared nullable
    features = [FEATURES[0], FEATURES[1].model_copy(update={"nullable": True}), FEATURES[2]]
    result = check_data(frame, target="label", features=features).check("missing_values")
    assert result.status == "pass"
    assert result.summary == (
        "2 columns have missing values, within limits: city 50% (nullable), size 5%."
    )
    assert result.details["columns"]["size"] == {"missing": 10, "rate": 0.05, "nullable": False}


def test_missing_values_above_the_limit(tmp_path: Path) -> None:
    frame = _clean()
    frame.loc[:10, "size"] = np.nan
    frame.loc[:2, "label"] = np.nan  # the target is never nullable
    path = _write(frame, tmp_path / "train.parquet")
    result = check_data(path, target="label", features=FEATURES).check("missing_values")
    assert result.status == "fail"
    assert result.summary == "1 column misses more than the 5% of values allowed: size 5.5%."
    assert result.details["over_limit"] == ["size"]
    assert result.details["columns"]["label"]["missing"] == 3


def test_an_inferred_schema_does_not_make_gaps_allowed() -> None:
    frame = _clean()
    frame.loc[:60, "size"] = np.nan
    report = check_data(frame, target="label")
    assert report.check("missing_values").status == "fail"
    assert report.schema[0].nullable  # what --write-schema would declare


# ---- constant columns -----------------------------------------------------------------


def test_constant_columns() -> None:
    frame = _clean().assign(country="norway", notes=None)
    result = check_data(frame, target="label").check("constant_columns")
    assert result.status == "warn"  # not blocking by default
    assert result.summary == (
        "2 columns hold a single value, which teaches a model nothing: country = norway, "
        "notes (all missing)."
    )
    assert result.details["columns"] == {"country": "norway", "notes": None}


def test_no_constant_columns() -> None:
    result = check_data(_clean(), target="label").check("constant_columns")
    assert (result.status, result.summary) == ("pass", "No column holds a single value.")


# ---- duplicate rows -------------------------------------------------------------------


def test_duplicate_rows_are_counted_exactly() -> None:
    frame = _clean(1000)
    copies = frame.iloc[[1, 1, 1, 2, 3]]
    report = check_data(pd.concat([frame, copies], ignore_index=True), target="label")
    result = report.check("duplicate_rows")
    assert (result.status, result.details["count"]) == ("pass", 5)
    assert result.summary == "5 rows (0.5%) repeat an earlier row."
    assert result.details["examples"][0]["count"] == 4  # row 1 and its three copies
    assert result.details["examples"][0]["features"]["size"] == frame.loc[1, "size"]


def test_duplicate_rows_above_the_limit() -> None:
    frame = _clean(100)
    frame = pd.concat([frame, frame.iloc[:10]], ignore_index=True)
    result = check_data(frame, target="label", thresholds=ALL_BLOCK).check("duplicate_rows")
    assert result.status == "fail"
    assert result.summary == "10 rows (9.1%) repeat an earlier row, above the 5% allowed."


def test_rows_with_the_same_gaps_are_duplicates() -> None:
    frame = _clean(100)
    frame.loc[[0, 1], ["size", "city", "garage", "label"]] = [np.nan, None, True, 1]
    assert check_data(frame, target="label").check("duplicate_rows").details["count"] == 1


# ---- label consistency ----------------------------------------------------------------


@pytest.mark.parametrize("conflicts", [1, 7, 40])
@pytest.mark.parametrize("form", ["frame", ".csv", ".parquet"])
def test_label_conflicts_in_house_prices_are_found_exactly(
    tmp_path: Path, conflicts: int, form: str
) -> None:
    frame = house_prices(2000, seed=11, conflicting_duplicates=conflicts)
    data = frame if form == "frame" else _write(frame, tmp_path / f"houses{form}")
    report = check_data(data, target="price", features=HOUSE_FEATURES)
    result = report.check("label_consistency")
    assert result.status == "fail"
    assert result.details["conflicting_groups"] == conflicts
    assert result.details["conflicting_rows"] == 2 * conflicts
    assert len(result.details["examples"]) == min(conflicts, 5)
    assert report.check("duplicate_rows").details["count"] == 0
    example = result.details["examples"][0]
    assert set(example["features"]) == {f.name for f in HOUSE_FEATURES}
    assert example["rows"] == 2
    labels = sorted(label["label"] for label in example["labels"])
    same = frame.loc[(frame.drop(columns="price") == pd.Series(example["features"])).all(axis=1)]
    assert labels == sorted(same["price"])


def test_label_conflicts_in_classification() -> None:
    frame = _clean(100)
    twins = frame.iloc[[4, 5, 6]].assign(label=lambda f: 1 - f["label"])
    same = frame.iloc[[7]]  # an exact duplicate is no conflict
    data = pd.concat([frame, twins, same], ignore_index=True)
    result = check_data(data, target="label").check("label_consistency")
    assert (result.status, result.details["conflicting_groups"]) == ("fail", 3)
    assert result.details["conflicting_rows"] == 6
    assert result.summary == (
        "3 groups of identical feature rows carry different labels (6 rows, 5.8%); "
        "none are allowed."
    )
    assert result.details["examples"][0]["labels"] == [
        {"label": 0, "count": 1},
        {"label": 1, "count": 1},
    ]


def test_regression_labels_within_the_tolerance_do_not_conflict() -> None:
    frame = pd.DataFrame({"x": [1, 1, 2, 2, 3, 3, 4], "y": [100.0, 105.0, 0.0, 0.0, 50, 50, 9]})
    result = check_data(frame, target="y", task="regression").check("label_consistency")
    assert result.status == "pass"
    assert result.summary == "No identical feature rows carry labels that differ by more than 10%."


def test_regression_labels_beyond_the_tolerance_conflict() -> None:
    # (150 - 100) / 125 = 0.4; around a median of 0, any spread is relative to nothing.
    frame = pd.DataFrame({"x": [1, 1, 2, 2, 2, 3], "y": [100.0, 150.0, -1.0, 0.0, 1.0, 7.0]})
    result = check_data(frame, target="y", task="regression").check("label_consistency")
    assert (result.details["conflicting_groups"], result.details["conflicting_rows"]) == (2, 5)
    loose = DataChecks(regression_label_tolerance=0.5)
    result = check_data(frame, target="y", task="regression", thresholds=loose)
    assert result.check("label_consistency").details["conflicting_groups"] == 1


def test_label_conflicts_within_the_allowed_rate() -> None:
    frame = house_prices(1000, seed=2, conflicting_duplicates=3)
    limits = DataChecks(max_label_conflict_rate=0.01)
    result = check_data(frame, target="price", thresholds=limits).check("label_consistency")
    assert (result.status, result.details["conflicting_rows"]) == ("pass", 6)
    assert result.summary.endswith("(6 rows, 0.6%).")


# ---- class balance --------------------------------------------------------------------


def test_class_balance() -> None:
    frame = _clean(1000).assign(label=["a"] * 700 + ["b"] * 250 + ["c"] * 50)
    result = check_data(frame, target="label").check("class_balance")
    assert result.status == "pass"
    assert result.summary == (
        "3 classes; the rarest, c, is 5% of 1,000 labelled rows (imbalance 14.0:1)."
    )
    assert result.details["classes"] == {"a": 700, "b": 250, "c": 50}
    assert result.details["imbalance_ratio"] == 14.0


def test_class_balance_below_the_minority_share() -> None:
    frame = _clean(1000).assign(label=[0] * 980 + [1] * 20)
    result = check_data(frame, target="label", thresholds=ALL_BLOCK).check("class_balance")
    assert result.status == "fail"
    assert result.summary == (
        "2 classes; the rarest, 1, is 2% of 1,000 labelled rows (imbalance 49.0:1), below the 5% "
        "required."
    )


def test_class_balance_with_one_class() -> None:
    frame = _clean().assign(label=1)
    result = check_data(frame, target="label", task="binary").check("class_balance")
    assert result.status == "warn"
    assert (
        result.summary == "Only 1 class (1) in 200 labelled rows; a binary model needs at least 2."
    )


@pytest.mark.parametrize(
    ("labels", "task"),
    [
        (np.arange(200) * 1.5, "regression"),  # numeric, more than 20 values
        (np.arange(200) % 21, "regression"),
        (np.arange(200) % 20, "multiclass"),
        (np.arange(200) % 2, "binary"),
        (np.array(["yes", "no", "maybe", "no"] * 50), "multiclass"),
    ],
)
def test_the_task_is_guessed_from_the_target(labels: np.ndarray, task: str) -> None:
    assert check_data(_clean().assign(label=labels), target="label").task == task


# ---- ranges and categories ------------------------------------------------------------


def test_no_ranges_or_categories_declared() -> None:
    report = check_data(_clean(), target="label")
    assert report.check("out_of_range").summary == "No ranges declared; nothing to check."
    assert report.check("unseen_categories").summary == "No categories declared; nothing to check."


def test_values_out_of_range(tmp_path: Path) -> None:
    frame = _clean()
    frame.loc[[0, 1, 2], "size"] = [-5.0, 2000.0, 1000.0]  # the bounds are allowed
    path = _write(frame, tmp_path / "train.csv")
    result = check_data(path, target="label", features=FEATURES).check("out_of_range")
    assert result.status == "warn"
    assert result.summary == (
        "1 column has values outside the declared ranges: size 2 values (1%); none are allowed."
    )
    assert result.details["columns"]["size"] == {
        "count": 2,
        "rate": 0.01,
        "range": [0.0, 1000.0],
        "min": -5.0,
        "max": 2000.0,
    }


def test_values_within_range() -> None:
    result = check_data(_clean(), target="label", features=FEATURES).check("out_of_range")
    assert result.summary == "Every value of the 1 column with declared ranges fits them."


def test_unseen_categories() -> None:
    frame = _clean(1000)
    frame.loc[:11, "city"] = [f"town{i}" for i in range(12)]
    frame.loc[12:14, "city"] = "town0"
    result = check_data(frame, target="label", features=FEATURES).check("unseen_categories")
    assert result.status == "warn"
    assert result.summary == (
        "1 column has values not among the declared categories: city 15 values (1.5%); "
        "none are allowed."
    )
    examples = result.details["columns"]["city"]["examples"]
    assert len(examples) == 10 and examples[0] == "town0"
    assert set(examples) <= {f"town{i}" for i in range(12)}


def test_unseen_categories_within_the_allowed_rate() -> None:
    frame = _clean(1000)
    frame.loc[:4, "city"] = "tromso"
    limits = DataChecks(max_unseen_category_rate=0.01)
    result = check_data(frame, target="label", features=FEATURES, thresholds=limits)
    assert result.check("unseen_categories").status == "pass"


def test_declared_categories_keep_leading_zeros_in_a_csv(tmp_path: Path) -> None:
    frame = _clean().assign(zip=["0150", "5003"] * 100)
    features = [*FEATURES, FeatureSpec(name="zip", type="categorical", categories=["0150", "5003"])]
    path = _write(frame, tmp_path / "train.csv")
    result = check_data(path, target="label", features=features).check("unseen_categories")
    assert result.details["columns"]["zip"]["count"] == 0


# ---- bad input ------------------------------------------------------------------------


def test_data_without_rows(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("size,label\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"empty.csv has no rows; there is nothing to check"):
        check_data(tmp_path / "empty.csv", target="label")


def test_an_unknown_task() -> None:
    with pytest.raises(
        DataError,
        match=r"task must be regression, binary or multiclass; "
        r"got 'ranking'",
    ):
        check_data(_clean(), target="label", task="ranking")  # type: ignore[arg-type]


def test_check_result_to_dict() -> None:
    result = CheckResult("schema", "pass", True, "Fine.", {"n": 1})
    assert result.to_dict() == {
        "name": "schema",
        "status": "pass",
        "blocking": True,
        "summary": "Fine.",
        "details": {"n": 1},
    }
    report = DataCheckReport("x.csv", "y", "binary", 1, 2, [result], [])
    assert report.to_dict()["passed"] is True
