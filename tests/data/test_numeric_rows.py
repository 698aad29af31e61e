"""``numeric_rows``, the online fast path, against ``validate_records``, the full rules.

The fast path may decline anything (``None`` sends the request to the full rules), but whenever
it returns rows, the full rules must accept every record, with the same values in feature order.
Records are drawn around that border: clean numbers, and bools, None, NaN, infinities, numeric
strings, missing and extra keys, values on and past a range's bounds, records that are not
objects. The last tests check that the fast path is taken at all, so the property is not
satisfied by declining everything.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from modelpilot.data import SchemaValidator
from modelpilot.spec import FeatureSpec

#: What a JSON parser (orjson) gives for a number: 64-bit integers, and floats.
JSON_INTEGERS = st.integers(min_value=-(2**63), max_value=2**64 - 1)
BOUNDS = st.sampled_from([(0.0, 1.0), (-5.0, 5.0), (200.0, 20_000.0), (3.0, 3.0), (0.0, 1e300)])


@st.composite
def schemas(draw: st.DrawFn, *, only_numeric: bool = False) -> list[FeatureSpec]:
    """One to four features, mostly numeric (some ranged, some nullable), sometimes not."""
    kinds = ["numeric"] if only_numeric else ["numeric"] * 6 + ["boolean", "categorical"]
    features = []
    for index in range(draw(st.integers(min_value=1, max_value=4))):
        kind = draw(st.sampled_from(kinds))
        ranged = kind == "numeric" and draw(st.booleans())
        features.append(
            FeatureSpec(
                name=f"f{index}",
                type=kind,
                range=draw(BOUNDS) if ranged else None,
                nullable=draw(st.booleans()),
            )
        )
    return features


def _near(feature: FeatureSpec) -> st.SearchStrategy[Any]:
    """Numbers in, on and just past the feature's range (any finite number without one)."""
    if feature.range is None:
        return st.one_of(JSON_INTEGERS, st.floats(allow_nan=False, allow_infinity=False))
    low, high = feature.range
    return st.one_of(
        st.floats(min_value=low, max_value=high),
        st.integers(min_value=math.ceil(low), max_value=math.floor(high)),
        st.sampled_from(
            [low, high, math.nextafter(low, -math.inf), math.nextafter(high, math.inf)]
        ),
        st.sampled_from([int(low) - 1, int(high) + 1]),
    )


ODD_VALUES = st.one_of(
    st.booleans(),
    st.none(),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308]),
    st.floats().map(repr),  # numeric strings, "nan" and "inf" among them
    JSON_INTEGERS.map(str),
    st.sampled_from(["", "abc", " 1 "]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)


@st.composite
def records(draw: st.DrawFn, features: list[FeatureSpec]) -> Any:
    shape = draw(st.sampled_from(["clean"] * 4 + ["odd"] * 3 + ["not an object"]))
    if shape == "not an object":
        return draw(
            st.one_of(
                st.none(),
                st.integers(),
                st.text(max_size=3),
                st.lists(st.floats(), max_size=3),
                st.just(OrderedDict((f.name, 1.0) for f in features)),
            )
        )
    record: dict[str, Any] = {f.name: draw(_near(f)) for f in features}
    if shape == "odd":
        for feature in features:
            action = draw(st.sampled_from(["keep", "keep", "odd", "drop"]))
            if action == "odd":
                record[feature.name] = draw(ODD_VALUES)
            elif action == "drop":
                del record[feature.name]
        if draw(st.booleans()):
            record[draw(st.sampled_from(["extra", "f9", "F0"]))] = draw(ODD_VALUES)
    return record


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[FeatureSpec], list[Any]]:
    features = draw(schemas())
    return features, draw(st.lists(records(features), min_size=0, max_size=4))


@settings(max_examples=600, deadline=None, database=None)
@given(cases())
def test_rows_of_the_fast_path_are_records_the_full_rules_accept_with_the_same_values(
    case: tuple[list[FeatureSpec], list[Any]],
) -> None:
    features, batch = case
    validator = SchemaValidator(features)
    rows = validator.numeric_rows(batch)
    event("fast path" if rows is not None else "full rules")
    if rows is None:
        return
    checked = validator.validate_records(batch)
    assert checked.problems == []
    assert checked.valid_index == list(range(len(batch)))
    assert len(rows) == len(batch)
    for index, row in enumerate(rows):
        assert all(type(value) in (int, float) for value in row)  # never a bool
        # The model gets float64 either way: the fast path's array, the full rules' floats.
        expected = [checked.columns[f.name][index] for f in features]
        assert [float(value) for value in row] == expected


@settings(max_examples=200, deadline=None, database=None)
@given(st.data())
def test_clean_all_numeric_records_take_the_fast_path(data: st.DataObject) -> None:
    features = data.draw(schemas(only_numeric=True))
    bounded = st.floats(min_value=-1e300, max_value=1e300)  # no sum of four overflows
    batch = []
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        record = {}
        for feature in features:
            if feature.range is None:
                value = data.draw(st.one_of(bounded, JSON_INTEGERS))
            else:
                low, high = feature.range
                value = data.draw(st.floats(min_value=low, max_value=high))
            record[feature.name] = value
        batch.append(record)
    rows = SchemaValidator(features).numeric_rows(batch)
    assert rows == [[record[f.name] for f in features] for record in batch]


NUMERIC = [
    FeatureSpec(name="a", type="numeric", range=(0, 10)),
    FeatureSpec(name="b", type="numeric", nullable=True),
]


@pytest.mark.parametrize(
    ("batch", "taken"),
    [
        ([{"a": 0, "b": -1.5}, {"a": 10.0, "b": 2**63}], True),  # on the bounds; a 64-bit int
        ([{"a": 1, "b": 2, "extra": "ignored"}], True),
        ([], True),
        ([{"a": True, "b": 1.0}], False),  # a bool is not a number here
        ([{"a": "1.5", "b": 1.0}], False),  # a numeric string: the full rules coerce it
        ([{"a": 1, "b": None}], False),  # a null of a nullable feature: the full rules
        ([{"a": 1, "b": math.nan}], False),
        ([{"a": 1, "b": math.inf}], False),
        ([{"a": 1}], False),  # missing
        ([{"a": 10.5, "b": 1.0}], False),  # out of range
        ([{"a": 1, "b": 1e308}, {"a": 1, "b": 1e308}], True),
        ([{"a": 1.0, "b": 1e308}, {"a": 1, "b": 2e308}], False),  # 2e308 is inf
        ([OrderedDict(a=1, b=2)], False),  # a mapping, but not what a JSON parser gives
        ([[1, 2]], False),
        ([{"a": 1, "b": 2}, "not a record"], False),
    ],
)
def test_the_fast_path_takes_exactly_the_clean_records(batch: list[Any], taken: bool) -> None:
    validator = SchemaValidator(NUMERIC)
    rows = validator.numeric_rows(batch)
    assert (rows is not None) == taken
    if rows is not None:
        assert rows == [[record["a"], record["b"]] for record in batch]
        assert validator.validate_records(batch).problems == []


def test_a_schema_with_other_types_never_takes_the_fast_path() -> None:
    validator = SchemaValidator([*NUMERIC, FeatureSpec(name="c", type="boolean")])
    assert validator.numeric_rows([{"a": 1, "b": 2, "c": True}]) is None
