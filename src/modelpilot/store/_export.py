"""Writing a stream of log chunks to one Parquet or CSV file, in bounded memory.

``modelpilot log export`` reads the log a chunk at a time (:class:`~modelpilot.store.LogScan`),
and two chunks may disagree on their columns: a feature added in the middle of the window, a
column that is null in one chunk (Arrow type ``null``) and text in the next. A Parquet writer
takes one schema, so chunks are written as parts (a new part whenever the schema changes, most
exports have one) beside the output; when there is more than one, the parts are read back as a
single dataset under their unified schema (missing columns become nulls, an integer column met
as float becomes float) and streamed into the output. Nothing holds more than one chunk. pandas
or pyarrow alone would need the whole export in memory to agree on its columns: that is why
this is written here.
"""

from __future__ import annotations

import shutil
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

__all__ = ["newest_rows", "write_frames"]


def newest_rows(frames: Iterable[pd.DataFrame], n: int) -> Iterator[pd.DataFrame]:
    """The last ``n`` rows of a stream of frames, holding at most ``n`` rows plus one frame.

    Examples
    --------
    >>> frames = [pd.DataFrame({"x": [1, 2]}), pd.DataFrame({"x": [3, 4, 5]})]
    >>> [f["x"].tolist() for f in newest_rows(frames, 4)]
    [[2], [3, 4, 5]]
    """
    kept: deque[pd.DataFrame] = deque()
    held = 0
    for frame in frames:
        kept.append(frame)
        held += len(frame)
        while kept and held - len(kept[0]) >= n:
            held -= len(kept.popleft())
    if kept and held > n:
        kept[0] = kept[0].iloc[held - n :]
    yield from kept


def write_frames(
    frames: Iterable[pd.DataFrame], output: Path, *, kind: str, empty: pd.DataFrame
) -> int:
    """Write ``frames`` to ``output`` (``kind`` ``parquet`` or ``csv``) under a temporary name
    renamed at the end (an interrupted export leaves no half-written file); the rows written.
    ``empty`` is written when no frame has a row, so the file still has its columns.

    Examples
    --------
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "log.parquet"
    >>> chunks = [pd.DataFrame({"x": [1, 2]}), pd.DataFrame({"x": [3.5], "y": ["a"]})]
    >>> write_frames(chunks, out, kind="parquet", empty=pd.DataFrame())
    3
    >>> back = pd.read_parquet(out)
    >>> back["x"].tolist(), back["y"].isna().tolist()
    ([1.0, 2.0, 3.5], [True, True, False])
    """
    output.parent.mkdir(parents=True, exist_ok=True)
    parts_dir = output.with_name(f".{output.name}.parts")
    shutil.rmtree(parts_dir, ignore_errors=True)
    parts_dir.mkdir()
    tmp = output.with_name(f".{output.name}.tmp")
    try:
        parts, rows = _write_parts(frames, parts_dir)
        if not parts:
            _write_one(empty, tmp, kind=kind)
        elif len(parts) == 1 and kind == "parquet":
            parts[0].replace(tmp)
        else:
            _merge(parts, tmp, kind=kind)
        tmp.replace(output)
        return rows
    finally:
        shutil.rmtree(parts_dir, ignore_errors=True)
        tmp.unlink(missing_ok=True)


def _table(frame: pd.DataFrame) -> pa.Table:
    # Without pandas' metadata: two chunks differ only when their columns or types do.
    return pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)


def _write_parts(frames: Iterable[pd.DataFrame], parts_dir: Path) -> tuple[list[Path], int]:
    parts: list[Path] = []
    writer: pq.ParquetWriter | None = None
    rows = 0
    try:
        for frame in frames:
            if frame.empty:
                continue
            table = _table(frame)
            if writer is None or not table.schema.equals(writer.schema):
                if writer is not None:
                    writer.close()
                parts.append(parts_dir / f"part-{len(parts):05d}.parquet")
                writer = pq.ParquetWriter(parts[-1], table.schema)
            writer.write_table(table)
            rows += table.num_rows
    finally:
        if writer is not None:
            writer.close()
    return parts, rows


def _merge(parts: list[Path], tmp: Path, *, kind: str) -> None:
    schema = pa.unify_schemas(
        [pq.read_schema(part) for part in parts], promote_options="permissive"
    )
    # Columns in their order of first appearance, as pandas would concatenate them.
    dataset = pads.dataset([str(p) for p in parts], schema=schema, format="parquet")
    batches = dataset.to_batches(batch_size=64_000)
    if kind == "parquet":
        with pq.ParquetWriter(tmp, schema) as writer:
            for batch in batches:
                writer.write_batch(batch)
        return
    first = True
    for batch in batches:
        _append_csv(batch.to_pandas(), tmp, header=first)
        first = False


def _append_csv(frame: pd.DataFrame, path: Path, *, header: bool) -> None:
    # pandas writes the CSV (not pyarrow's writer): times and floats keep the format the
    # export has always had.
    frame.to_csv(path, index=False, header=header, mode="w" if header else "a")


def _write_one(frame: pd.DataFrame, tmp: Path, *, kind: str) -> None:
    if kind == "parquet":
        frame.to_parquet(tmp, index=False)
    else:
        _append_csv(frame, tmp, header=True)
