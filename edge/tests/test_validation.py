"""The schema's record rules (the server runs the same code: modelpilot imports it)."""

from __future__ import annotations

import math

from modelpilot_edge import Feature, RecordValidator

FEATURES = [
    Feature("size", "numeric", range=(10, 500)),
    Feature("lot", "numeric", nullable=True),
    Feature("city", "categorical", categories=["a", "b"]),
    Feature("garage", "boolean"),
]


def test_values_are_coerced_as_the_server_coerces_them() -> None:
    result = RecordValidator(FEATURES).validate_records(
        [{"size": "20", "lot": math.nan, "city": 3, "garage": "Yes"}]
    )
    assert result.problems == []
    assert result.columns == {"size": [20.0], "lot": [None], "city": ["3"], "garage": [True]}
    assert result.unseen == {"city": 1} and result.missing == {"lot": 1}


def test_every_problem_is_listed() -> None:
    result = RecordValidator(FEATURES).validate_records(
        [{"size": 5, "city": None, "garage": 2}, "not a record", {"size": True, "city": "a"}]
    )
    assert result.valid_index == []
    assert result.problems == [
        {"instance": 0, "field": "size", "expected": "a number in [10, 500]", "got": 5},
        {
            "instance": 0,
            "field": "city",
            "expected": "a value (the feature is not nullable)",
            "got": None,
        },
        {"instance": 0, "field": "garage", "expected": "true or false", "got": 2},
        {
            "instance": 1,
            "field": "(record)",
            "expected": "an object of feature values",
            "got": "str",
        },
        {"instance": 2, "field": "size", "expected": "a number in [10, 500]", "got": True},
        {"instance": 2, "field": "garage", "expected": "true or false", "got": "(missing)"},
    ]
    assert result.out_of_range == {"size": 1}


def test_the_fast_path_takes_only_what_the_full_rules_accept() -> None:
    numeric = RecordValidator([Feature("a", "numeric", range=(0, 1)), Feature("b", "numeric")])
    assert numeric.numeric_rows([{"a": 1, "b": -2.5}]) == [[1, -2.5]]
    for refused in ({"a": True, "b": 1}, {"a": 2, "b": 1}, {"a": 0.5}, {"a": 0.5, "b": math.inf}):
        assert numeric.numeric_rows([refused]) is None
        assert numeric.validate_records([refused]).problems


def test_an_integer_beyond_float_range_is_a_problem_not_a_crash() -> None:
    numeric = RecordValidator([Feature("a", "numeric", range=(0, 1)), Feature("b", "numeric")])
    huge = 10**400  # Python's json takes it; float() overflows
    for record in ({"a": 0.5, "b": huge}, {"a": huge, "b": 1.0}):
        assert numeric.numeric_row(record) is None
        assert numeric.numeric_rows([record]) is None
        problems = numeric.validate_records([record]).problems
        assert [(p["field"], p["expected"]) for p in problems] == [
            ("b", "a number") if record["b"] is huge else ("a", "a number in [0, 1]")
        ]
