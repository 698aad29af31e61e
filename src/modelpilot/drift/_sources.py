"""Where the out-of-core drift engine reads its data: a stream of Arrow record batches.

A :class:`BatchSource` can be read more than once (the engine makes two passes) and never hands
over more than one batch at a time. :class:`DatasetSource` reads a Parquet/CSV file, a glob, a
directory or an ``s3://`` URL through ``pyarrow.dataset``; :class:`GeneratedSource` wraps a
function that yields batches (a generator of synthetic data, another engine's output).
"""

from __future__ import annotations

import glob
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from fnmatch import fnmatch
from pathlib import Path
from typing import Protocol, runtime_checkable

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs

from modelpilot.errors import DataError

__all__ = ["BatchSource", "DatasetSource", "GeneratedSource", "open_source"]

#: Rows per batch read from files: 64 MB for eight float64 columns.
DEFAULT_BATCH_ROWS = 1_000_000


@runtime_checkable
class BatchSource(Protocol):
    """Record batches that can be read again from the start, one batch at a time."""

    @property
    def schema(self) -> pa.Schema:
        """The columns and their Arrow types."""
        ...

    def count_rows(self) -> int | None:
        """Rows in all, when known without reading the data (Parquet metadata), else None."""
        ...

    def batches(self, columns: Sequence[str]) -> Iterator[pa.RecordBatch]:
        """The data, in batches holding ``columns`` only."""
        ...


class GeneratedSource:
    """Batches from a function called afresh for every pass.

    Examples
    --------
    >>> import pyarrow as pa
    >>> def make():
    ...     for start in range(0, 6, 2):
    ...         yield pa.record_batch({"x": [float(start), float(start + 1)]})
    >>> source = GeneratedSource(make, schema=pa.schema([("x", pa.float64())]), n_rows=6)
    >>> [batch.num_rows for batch in source.batches(["x"])], source.count_rows()
    ([2, 2, 2], 6)
    """

    def __init__(
        self,
        make: Callable[[], Iterable[pa.RecordBatch]],
        *,
        schema: pa.Schema,
        n_rows: int | None = None,
    ) -> None:
        self._make = make
        self._schema = schema
        self._n_rows = n_rows

    @property
    def schema(self) -> pa.Schema:
        return self._schema

    def count_rows(self) -> int | None:
        return self._n_rows

    def batches(self, columns: Sequence[str]) -> Iterator[pa.RecordBatch]:
        for batch in self._make():
            yield batch.select(list(columns))


class DatasetSource:
    """A file, glob, directory or ``s3://`` URL read with ``pyarrow.dataset``, batch by batch.

    Examples
    --------
    >>> import tempfile, pathlib, pyarrow as pa, pyarrow.parquet as pq
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> pq.write_table(pa.table({"x": [1.0, 2.0, 3.0]}), folder / "part.parquet")
    >>> source = DatasetSource(str(folder / "*.parquet"), batch_rows=2)
    >>> source.count_rows(), [b.num_rows for b in source.batches(["x"])]
    (3, [2, 1])
    """

    def __init__(self, location: str | Path, *, batch_rows: int = DEFAULT_BATCH_ROWS) -> None:
        self.location = str(location)
        self.batch_rows = batch_rows
        self._dataset = _open_dataset(self.location)

    @property
    def schema(self) -> pa.Schema:
        return self._dataset.schema

    def count_rows(self) -> int | None:
        if self._dataset.format.default_extname == "parquet":
            return int(self._dataset.count_rows())
        return None  # counting a CSV means reading it

    def batches(self, columns: Sequence[str]) -> Iterator[pa.RecordBatch]:
        # No readahead: the engine holds one batch at a time, and so should the reader.
        yield from self._dataset.to_batches(
            columns=list(columns),
            batch_size=self.batch_rows,
            batch_readahead=0,
            fragment_readahead=0,
        )

    def __repr__(self) -> str:
        return f"DatasetSource({self.location!r})"


def _format(paths: Sequence[str], location: str) -> str:
    suffixes = {Path(p).suffix.lower() for p in paths}
    if suffixes <= {".parquet", ".pq"}:
        return "parquet"
    if suffixes <= {".csv"}:
        return "csv"
    raise DataError(
        f"{location!r} holds {', '.join(sorted(s or '(no suffix)' for s in suffixes))} files; "
        "the streaming drift engine reads .parquet or .csv files (one format per source)"
    )


def _remote_paths(location: str) -> tuple[pafs.FileSystem, list[str]]:
    scheme, rest = location.split("://", 1)
    filesystem, _ = pafs.FileSystem.from_uri(f"{scheme}://{rest.split('/', 1)[0]}")
    wild = re.search(r"[*?\[]", rest)
    if wild:
        root = rest[: wild.start()].rsplit("/", 1)[0]
        listing = filesystem.get_file_info(pafs.FileSelector(root, recursive=True))
        return filesystem, sorted(i.path for i in listing if i.is_file and fnmatch(i.path, rest))
    info = filesystem.get_file_info(rest)
    if info.type == pafs.FileType.Directory:
        listing = filesystem.get_file_info(pafs.FileSelector(rest, recursive=True))
        return filesystem, sorted(i.path for i in listing if i.is_file)
    return filesystem, [rest] if info.type == pafs.FileType.File else []


def _open_dataset(location: str) -> pads.Dataset:
    if "://" in location:
        try:
            filesystem, paths = _remote_paths(location)
        except (OSError, pa.ArrowInvalid) as exc:  # unreachable store, bad credentials, ...
            raise DataError(
                f"cannot list {location!r}: {exc}; check the URL, the AWS_* credentials and, "
                "for an S3-compatible store, AWS_ENDPOINT_URL"
            ) from None
    else:
        filesystem = pafs.LocalFileSystem()
        if Path(location).is_dir():
            paths = sorted(str(p) for p in Path(location).rglob("*") if p.is_file())
        else:
            paths = sorted(glob.glob(location))
    # Hidden and underscore files are metadata (_SUCCESS, .crc), not data.
    paths = [p for p in paths if not Path(p).name.startswith((".", "_"))]
    if not paths:
        raise DataError(
            f"no data files at {location!r}; give a .parquet or .csv file, a glob such as "
            "'data/*.parquet', a directory, or an s3:// URL"
        )
    return pads.dataset(paths, format=_format(paths, location), filesystem=filesystem)


def open_source(
    data: str | Path | BatchSource, *, batch_rows: int = DEFAULT_BATCH_ROWS
) -> BatchSource:
    """A :class:`BatchSource` from a location, or the source itself."""
    if isinstance(data, str | Path):
        return DatasetSource(data, batch_rows=batch_rows)
    if isinstance(data, BatchSource):
        return data
    raise DataError(
        "streamed data must be a path, a glob, a directory, an s3:// URL or a BatchSource; "
        f"got {type(data).__name__}"
    )
