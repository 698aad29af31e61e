"""Writing log chunks to one file: chunks that disagree on columns or types still make one
file (through parts merged under one schema), and --limit's newest rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from modelpilot.store import newest_rows, write_frames

CHUNKS = [
    pd.DataFrame({"id": ["a", "b"], "size": [1, 2], "note": [None, None]}),
    pd.DataFrame({"id": ["c"], "size": [2.5], "note": ["x"], "rooms": [3]}),
    pd.DataFrame({"id": ["d"], "size": [4], "note": [None]}),
]


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_chunks_with_different_columns_make_one_file(tmp_path: Path, kind: str) -> None:
    out = tmp_path / f"log.{kind}"
    assert write_frames(iter(CHUNKS), out, kind=kind, empty=pd.DataFrame()) == 4
    back = pd.read_parquet(out) if kind == "parquet" else pd.read_csv(out)
    assert back["id"].tolist() == ["a", "b", "c", "d"]
    assert back["size"].tolist() == [1.0, 2.0, 2.5, 4.0]
    assert back["note"].isna().tolist() == [True, True, False, True]
    assert back["note"][2] == "x"
    assert back["rooms"].fillna(-1).tolist() == [-1, -1, 3, -1]
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no parts left behind


def test_one_schema_is_written_once_and_kept_exactly(tmp_path: Path) -> None:
    out = tmp_path / "log.parquet"
    chunks = [pd.DataFrame({"x": [i, i + 1]}) for i in range(0, 6, 2)]
    assert write_frames(chunks, out, kind="parquet", empty=pd.DataFrame()) == 6
    back = pd.read_parquet(out)
    assert back["x"].tolist() == [0, 1, 2, 3, 4, 5] and back["x"].dtype == "int64"


def test_no_rows_still_writes_the_columns(tmp_path: Path) -> None:
    out = tmp_path / "log.csv"
    empty = pd.DataFrame({"id": pd.Series(dtype=object), "ts": pd.Series(dtype=float)})
    assert write_frames([empty.iloc[:0]], out, kind="csv", empty=empty) == 0
    assert out.read_text().strip() == "id,ts"


def test_a_failed_export_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "log.parquet"

    def failing() -> object:
        yield CHUNKS[0]
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        write_frames(failing(), out, kind="parquet", empty=pd.DataFrame())  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_newest_rows_keeps_the_last_n_across_chunks() -> None:
    frames = [pd.DataFrame({"x": range(i, i + 3)}) for i in range(0, 9, 3)]
    kept = pd.concat(list(newest_rows(iter(frames), 4)))
    assert kept["x"].tolist() == [5, 6, 7, 8]
    assert pd.concat(list(newest_rows(iter(frames), 100)))["x"].tolist() == list(range(9))
    assert list(newest_rows(iter([]), 3)) == []
