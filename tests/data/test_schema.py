"""Schema inference: the feature types, categories and nullability the data implies."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelpilot.data import infer_schema
from modelpilot.datasets import HOUSE_FEATURES, house_prices
from modelpilot.errors import DataError, NotFoundError
from modelpilot.spec import FeatureSpec


def _frame(n: int = 400, *, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "size": rng.normal(100, 10, n),
            "rooms": rng.integers(1, 6, n),
            "garage": rng.random(n) < 0.5,
            "city": rng.choice(["oslo", "bergen", "tromso"], n),
            "note": [f"listing {i}" for i in range(n)],
            "price": rng.normal(300, 50, n),
        }
    )
    frame.loc[[3, 7], "size"] = np.nan
    return frame


def _summary(features: list[FeatureSpec]) -> list[tuple[str, str, list[str] | None, bool]]:
    return [(f.name, f.type, f.categories, f.nullable) for f in features]


EXPECTED = [
    ("size", "numeric", None, True),
    ("rooms", "numeric", None, False),
    ("garage", "boolean", None, False),
    ("city", "categorical", ["bergen", "oslo", "tromso"], False),
    ("note", "text", None, False),
]


def test_types_categories_and_nullability_from_a_frame() -> None:
    features = infer_schema(_frame(), target="price")
    assert _summary(features) == EXPECTED
    assert all(f.range is None for f in features)  # observed extremes are too tight to declare


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_files_give_the_same_schema_as_the_frame(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"train{suffix}"
    frame = _frame()
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    assert _summary(infer_schema(path, target="price")) == EXPECTED
    assert _summary(infer_schema(str(path), target="price")) == EXPECTED


def test_the_house_price_schema_is_recovered() -> None:
    inferred = infer_schema(house_prices(2000, seed=3), target="price")
    declared = [
        f.model_copy(
            update={
                "range": None,
                "description": "",
                "categories": f.categories and sorted(f.categories),
            }
        )
        for f in HOUSE_FEATURES
    ]
    # lot_acres, the one feature with missing values, is the one the declared schema calls
    # nullable; inferred categories come sorted.
    assert inferred == declared


@pytest.mark.parametrize(
    ("n_distinct", "n_rows", "expected"),
    [
        (50, 10_000, "categorical"),  # at the limit of 50 values
        (51, 10_000, "text"),  # one more
        (19, 400, "categorical"),  # under 5% of the rows
        (20, 400, "text"),  # 5% of the rows: values barely repeat
        (3, 10, "categorical"),  # a tiny file: a few values that repeat
        (6, 12, "text"),  # more than five values in a file too small to tell
    ],
)
def test_a_string_column_is_categorical_when_values_repeat(
    n_distinct: int, n_rows: int, expected: str
) -> None:
    values = [f"v{i % n_distinct:03d}" for i in range(n_rows)]
    frame = pd.DataFrame({"x": values, "y": np.arange(n_rows)})
    (feature,) = infer_schema(frame, target="y")
    assert feature.type == expected
    if expected == "categorical":
        assert feature.categories == sorted(set(values))


def test_columns_without_a_feature_type_of_their_own() -> None:
    frame = pd.DataFrame(
        {
            "empty": pd.Series([None] * 40, dtype=object),
            "day": [dt.date(2024, 1, 1 + i % 3) for i in range(40)],
            "kind": pd.Categorical(["a", "b"] * 20),
            "y": np.arange(40.0),
        }
    )
    empty, day, kind = infer_schema(frame, target="y")
    assert (empty.type, empty.nullable) == ("text", True)  # nothing to infer from
    assert (day.type, day.categories) == ("categorical", ["2024-01-01", "2024-01-02", "2024-01-03"])
    assert (kind.type, kind.categories) == ("categorical", ["a", "b"])


def test_nan_in_a_parquet_file_is_missing(tmp_path: Path) -> None:
    # pandas writes NaN as null; other writers keep NaN, which is just as missing.
    table = pa.table({"x": pa.array([1.0, float("nan"), 3.0] * 10), "y": pa.array(range(30))})
    pq.write_table(table, tmp_path / "nan.parquet")
    (feature,) = infer_schema(tmp_path / "nan.parquet", target="y")
    assert (feature.type, feature.nullable) == ("numeric", True)


def test_a_csv_value_that_breaks_the_sampled_type(tmp_path: Path) -> None:
    # DuckDB guesses CSV types from a sample of rows; a value far down the file must still count.
    lines = ["code,amount,y"] + [f"{i % 7},{i},{i % 2}" for i in range(30_000)]
    lines += ["x9,2.5,1"]
    path = tmp_path / "late.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, amount = infer_schema(path, target="y")
    assert (code.type, code.categories) == (
        "categorical",
        ["0", "1", "2", "3", "4", "5", "6", "x9"],
    )
    assert amount.type == "numeric"


def test_a_csv_quoted_field_after_the_sample(tmp_path: Path) -> None:
    lines = ["city,y"] + [f"town{i % 3},{i % 2}" for i in range(30_000)] + ['"Oslo, Norway",1']
    path = tmp_path / "quoted.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (city,) = infer_schema(path, target="y")
    assert city.categories == ["Oslo, Norway", "town0", "town1", "town2"]


def test_a_csv_with_semicolons_and_windows_line_ends(tmp_path: Path) -> None:
    path = tmp_path / "semicolons.csv"
    path.write_bytes(b"size;city;y\r\n" + b'1.5;"Oslo; Norway";0\r\n2;"Bergen";1\r\n' * 20)
    size, city = infer_schema(path, target="y")
    assert size.type == "numeric"
    assert city.categories == ["Bergen", "Oslo; Norway"]


def test_an_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(DataError, match=r"empty.csv is empty \(not even a header line\)"):
        infer_schema(tmp_path / "empty.csv", target="y")


def test_an_unknown_target_names_the_columns() -> None:
    with pytest.raises(
        DataError,
        match=r"the target column 'prize' is not in the DataFrame; "
        r"its columns are size, rooms, garage, city, note, price",
    ):
        infer_schema(_frame(), target="prize")


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"file '.*nope.csv' was not found; check the path"):
        infer_schema(tmp_path / "nope.csv", target="y")


def test_an_unsupported_file_type(tmp_path: Path) -> None:
    (tmp_path / "train.xlsx").write_bytes(b"PK\x03\x04")
    with pytest.raises(
        DataError, match=r"unsupported file type '.xlsx'; expected .csv or .parquet"
    ):
        infer_schema(tmp_path / "train.xlsx", target="y")


def test_a_corrupt_parquet_file(tmp_path: Path) -> None:
    (tmp_path / "train.parquet").write_bytes(b"PAR1 this is not really parquet PAR1")
    with pytest.raises(DataError, match=r"train.parquet: cannot be read"):
        infer_schema(tmp_path / "train.parquet", target="y")
