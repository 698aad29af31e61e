"""`compare_stream`: exact binned statistics, bounded KS / Wasserstein, categories, batches."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats

from modelpilot.drift import (
    STREAM_THRESHOLDS,
    DatasetSource,
    DriftReference,
    GeneratedSource,
    compare,
    compare_stream,
)
from modelpilot.errors import DataError


def _frame(n: int, *, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(shift, 1.0, n),
            "y": rng.lognormal(0.0, 0.5, n),
            "rooms": rng.integers(1, 4, n).astype(float),
            "city": rng.choice(
                ["paris", "lyon", "nice"], n, p=[0.5 - shift / 4, 0.3, 0.2 + shift / 4]
            ),
        }
    )


def _source(frame: pd.DataFrame, batch_rows: int = 997) -> GeneratedSource:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    return GeneratedSource(
        lambda: iter(table.to_batches(max_chunksize=batch_rows)), schema=table.schema
    )


@pytest.mark.parametrize("method", ["psi", "jensen_shannon", "total_variation", "chi_square"])
def test_binned_statistics_equal_the_in_memory_engine_exactly(method: str) -> None:
    ref, cur = _frame(6000, seed=1), _frame(5000, seed=2, shift=0.4)
    methods = {"x": method, "rooms": method, "city": method}
    if method in ("total_variation", "chi_square"):  # categories only: x has too many values
        methods.pop("x")
    memory = compare(ref, cur, features=list(methods), methods=methods)
    # The current side streams in odd-sized batches, binned (exact_max_rows=0): counts summed.
    stream = compare_stream(
        DriftReference.from_frame(ref),
        _source(cur),
        features=list(methods),
        methods=methods,
        exact_max_rows=0,
    )
    for m, s in zip(memory.features, stream.features, strict=True):
        assert (s.name, s.method) == (m.name, m.method)
        assert s.statistic == m.statistic and s.p_value == m.p_value
        assert s.exact is True and s.error_bound == 0.0


def test_a_file_reference_sampled_whole_gets_the_in_memory_deciles(tmp_path: Path) -> None:
    ref, cur = _frame(4000, seed=3), _frame(3000, seed=4, shift=0.3)
    ref.to_parquet(tmp_path / "ref.parquet")
    memory = compare(ref, cur, features=["x"], methods={"x": "psi"})
    stream = compare_stream(
        tmp_path / "ref.parquet",
        _source(cur),
        features=["x"],
        methods={"x": "psi"},
        exact_max_rows=0,
        sample_size=10_000,
        batch_rows=512,
    )
    assert stream.features[0].statistic == memory.features[0].statistic
    assert stream.features[0].exact is True


@pytest.mark.parametrize("method", ["ks", "wasserstein"])
def test_exact_when_both_sides_fit_and_binned_within_the_bound(method: str) -> None:
    ref, cur = _frame(5000, seed=5), _frame(4000, seed=6, shift=0.2)
    exact = compare_stream(_source(ref), _source(cur), features=["y"], methods={"y": method})
    memory = compare(ref, cur, features=["y"], methods={"y": method})
    assert exact.features[0].exact is True
    assert exact.features[0].statistic == memory.features[0].statistic
    binned = compare_stream(
        _source(ref), _source(cur), features=["y"], methods={"y": method}, exact_max_rows=0
    )
    f = binned.features[0]
    assert f.exact is False and f.error_bound is not None
    assert abs(f.statistic - memory.features[0].statistic) <= f.error_bound + 1e-12


def test_the_bound_holds_against_scipy_and_shrinks_with_finer_bins() -> None:
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies

    @hypothesis.settings(max_examples=12, deadline=None, derandomize=True)
    @hypothesis.given(
        seed=st.integers(0, 10_000),
        shift=st.floats(-1.0, 1.0),
        scale=st.floats(0.5, 2.0),
        rounded=st.booleans(),
    )
    def check(seed: int, shift: float, scale: float, rounded: bool) -> None:
        rng = np.random.default_rng(seed)
        u, v = rng.normal(size=3000), rng.normal(shift, scale, size=2500)
        if rounded:  # ties and atoms on the bin edges
            u, v = np.round(u, 1), np.round(v, 1)
        ks, wd = stats.ks_2samp(u, v).statistic, stats.wasserstein_distance(u, v) / u.std()
        bounds = {}
        for fine in (20, 400):
            report = compare_stream(
                _source(pd.DataFrame({"a": u, "b": u})),
                _source(pd.DataFrame({"a": v, "b": v})),
                methods={"a": "ks", "b": "wasserstein"},
                exact_max_rows=0,
                fine_bins=fine,
            )
            a, b = report.feature("a"), report.feature("b")
            assert a.error_bound is not None and b.error_bound is not None
            assert abs(a.statistic - ks) <= a.error_bound + 1e-9
            assert abs(b.statistic - wd) <= b.error_bound + 1e-9
            bounds[fine] = (a.error_bound, b.error_bound)
        assert bounds[400][0] <= bounds[20][0] and bounds[400][1] < bounds[20][1]
        if not rounded:
            assert bounds[400][0] < 0.01 and bounds[400][1] < 0.05

    check()


def test_categories_beyond_top_k_are_counted_as_other() -> None:
    rng = np.random.default_rng(7)
    ref = pd.DataFrame({"c": rng.choice([f"v{i}" for i in range(50)], 4000)})
    cur = pd.DataFrame({"c": rng.choice([f"v{i}" for i in range(60)], 4000)})
    report = compare_stream(_source(ref), _source(cur), top_k=10)
    f = report.feature("c")
    assert f.exact is False and f.error_bound is None
    assert "51 categories beyond the top 9 counted as other" in f.note
    assert len(f.summary.labels) == 10 and "__other__" in f.summary.labels
    whole = compare_stream(_source(ref), _source(cur))
    assert whole.feature("c").exact is True
    assert whole.feature("c").statistic == compare(ref, cur).feature("c").statistic


def test_a_file_is_read_one_batch_at_a_time(tmp_path: Path) -> None:
    frame = _frame(20_000, seed=8, shift=0.5)
    pq.write_table(pa.Table.from_pandas(frame), tmp_path / "cur.parquet", row_group_size=2_000)
    inner = DatasetSource(tmp_path / "cur.parquet", batch_rows=1_000)
    requested, processed, largest_gap, largest_allocation = [0], [0], [0], [0]

    def counted() -> Iterator[pa.RecordBatch]:
        for batch in inner.batches(list(frame.columns)):
            requested[0] += 1
            largest_gap[0] = max(largest_gap[0], requested[0] - processed[0])
            largest_allocation[0] = max(largest_allocation[0], pa.total_allocated_bytes())
            yield batch

    source = GeneratedSource(counted, schema=inner.schema, n_rows=inner.count_rows())
    baseline = pa.total_allocated_bytes()
    report = compare_stream(
        _source(_frame(5000, seed=9)),
        source,
        exact_max_rows=0,
        on_batch=lambda label, rows: (
            processed.__setitem__(0, processed[0] + 1) if label.startswith("current") else None
        ),
    )
    assert requested[0] == 2 * 20  # two passes of 20 batches
    assert largest_gap[0] == 1  # the next batch is asked for only once the last one is counted
    assert largest_allocation[0] - baseline < 2_000_000  # a 20,000-row table would be 2.5 MB
    assert report.feature("x").drifted and not report.feature("rooms").drifted


def test_defaults_are_effect_size_thresholds() -> None:
    report = compare_stream(_source(_frame(3000, seed=10)), _source(_frame(3000, seed=11)))
    assert {f.name: f.method for f in report.features} == {
        "x": "wasserstein",
        "y": "wasserstein",
        "rooms": "jensen_shannon",
        "city": "jensen_shannon",
    }
    assert all(f.threshold == STREAM_THRESHOLDS[f.method] for f in report.features)
    assert report.engine == "stream" and not report.dataset_drifted
    assert report.to_dict()["features"][0]["exact"] is True


def test_bad_input_gets_a_precise_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="needs every value in memory"):
        compare_stream(
            _source(_frame(100, seed=1)),
            _source(_frame(100, seed=2)),
            methods={"x": "cramer_von_mises"},
        )
    with pytest.raises(
        DataError, match=r"'x' is numeric but the current data holds it as (large_)?string"
    ):
        compare_stream(_frame(100, seed=1), _source(_frame(100, seed=2).assign(x="n/a")))
    with pytest.raises(DataError, match="feature 'x' is not in the current data; it has y"):
        compare_stream(_frame(100, seed=1), _source(_frame(100, seed=2)[["y"]]))
    with pytest.raises(DataError, match="no data files at"):
        compare_stream(_source(_frame(100, seed=1)), str(tmp_path / "none*.parquet"))
    with pytest.raises(DataError, match="more than 2 distinct categories"):
        compare_stream(
            _source(_frame(100, seed=1)),
            _source(_frame(100, seed=2)),
            features=["city", "x"],
            methods={"x": "psi"},
            max_categories=2,
        )


def test_an_s3_glob_and_prefix_are_read_in_batches(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    # The moto server's fake credentials; pyarrow reads the endpoint from AWS_ENDPOINT_URL.
    for key, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": s3_endpoint,
    }.items():
        monkeypatch.setenv(key, value)
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    ref, cur = _frame(3000, seed=12), _frame(3000, seed=13, shift=0.5)
    for i in range(2):
        buffer = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_pandas(cur.iloc[i * 1500 : (i + 1) * 1500]), buffer)
        client.put_object(
            Bucket="logs", Key=f"drift/cur/part-{i}.parquet", Body=buffer.getvalue().to_pybytes()
        )
    memory = compare(ref, cur)
    for location in ("s3://logs/drift/cur/*.parquet", "s3://logs/drift/cur"):
        report = compare_stream(ref, location, batch_rows=500)
        assert [f.statistic for f in report.features] == [f.statistic for f in memory.features]


def test_an_unreachable_object_store_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # nothing listens there
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(DataError, match=r"cannot list 's3://lake/scored/\*.parquet': .*AWS_"):
        DatasetSource("s3://lake/scored/*.parquet")
