"""The files of a scoring run on Dask: where the input's partitions are, and how a part file
is committed in the output directory (a local directory or ``s3://``).

pyarrow's file systems do both (local and S3, with the usual ``AWS_*`` variables and
``AWS_ENDPOINT_URL`` for an S3-compatible store): pyarrow is already how modelpilot reads
Parquet, so no fsspec/s3fs stack is added for it.

An output directory holds ``part-NNNNN.parquet`` (the scored rows of partition N),
``rejects/part-NNNNN.parquet`` (its rejected rows, when it has any), ``_RUN.json`` (the run:
its id, model and partitions, written first), ``_parts/part-NNNNN.json`` (a partition's counts),
``_attempts/part-NNNNN`` (a partition whose rows may have been logged) and ``_SUCCESS`` (the
run's manifest, written last).
"""

from __future__ import annotations

import fnmatch
import functools
import glob
import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from modelpilot.errors import DataError, NotFoundError

__all__ = ["Part", "PartWriter", "RunFiles", "filesystem", "plan_parts"]

_GLOB = set("*?[")


def filesystem(
    url: str, *, environ: Mapping[str, str] | None = None
) -> tuple[pafs.FileSystem, str]:
    """The file system of ``url`` (a local path or ``s3://bucket/key``) and the path in it.

    Examples
    --------
    >>> fs, path = filesystem("/tmp/scored")
    >>> fs.type_name, path
    ('local', '/tmp/scored')
    """
    env = os.environ if environ is None else environ
    if url.startswith(("s3://", "s3a://")):
        parsed = urlparse(url)
        endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
        options: dict[str, Any] = {
            "region": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        }
        if env.get("AWS_ACCESS_KEY_ID"):
            options["access_key"] = env["AWS_ACCESS_KEY_ID"]
            options["secret_key"] = env.get("AWS_SECRET_ACCESS_KEY", "")
            options["session_token"] = env.get("AWS_SESSION_TOKEN")
        if endpoint:
            target = urlparse(endpoint)
            options["endpoint_override"] = target.netloc or endpoint
            options["scheme"] = target.scheme or "https"
        return pafs.S3FileSystem(**options), f"{parsed.netloc}{parsed.path}".rstrip("/")
    return pafs.LocalFileSystem(), str(Path(url).resolve())


def _join(url: str, path: str) -> str:
    """``path`` of the file system of ``url`` as a URL again (the workers resolve it)."""
    return f"s3://{path}" if url.startswith(("s3://", "s3a://")) else path


def input_files(url: str) -> list[str]:
    """The Parquet files ``url`` names (a file, a directory or a glob), sorted."""
    fs, path = filesystem(url)
    if not any(c in _GLOB for c in path):
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.File:
            return [url]
        if info.type != pafs.FileType.Directory:
            raise NotFoundError("file", url, hint="check the path (a file, directory or glob)")
        pattern = f"{path}/*.parquet"
    else:
        pattern = path
    if fs.type_name == "local":
        found = sorted(glob.glob(pattern))
    else:
        base = pattern[: min(pattern.index(c) for c in _GLOB if c in pattern)].rsplit("/", 1)[0]
        infos = fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
        found = sorted(
            i.path
            for i in infos
            if i.type == pafs.FileType.File and fnmatch.fnmatch(i.path, pattern)
        )
    if not found:
        raise NotFoundError("file", url, hint="no Parquet file matches it")
    return [_join(url, f) for f in found]


@dataclass(frozen=True)
class Part:
    """One partition: row groups of one Parquet file, ``first_row`` its first row in it."""

    index: int
    file: str
    row_groups: tuple[int, ...]
    first_row: int
    n_rows: int

    @property
    def name(self) -> str:
        return f"part-{self.index:05d}"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Part:
        return cls(
            int(data["index"]),
            str(data["file"]),
            tuple(int(g) for g in data["row_groups"]),
            int(data["first_row"]),
            int(data["n_rows"]),
        )


def plan_parts(url: str, *, partition_rows: int) -> list[Part]:
    """The partitions of the Parquet input ``url``: consecutive row groups of one file, about
    ``partition_rows`` rows each (a row group is never split: it is Parquet's unit of reading).

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> path = tempfile.mkdtemp() + "/rows.parquet"
    >>> pd.DataFrame({"x": range(10)}).to_parquet(path, row_group_size=3)
    >>> [(p.row_groups, p.first_row, p.n_rows) for p in plan_parts(path, partition_rows=5)]
    [((0, 1), 0, 6), ((2, 3), 6, 4)]
    """
    parts: list[Part] = []
    for file in input_files(url):
        if not file.endswith(".parquet"):
            raise DataError(
                f"{file}: --engine dask reads Parquet files (partitions are their row groups); "
                "score a CSV file with --engine local, or convert it to Parquet"
            )
        fs, path = filesystem(file)
        with fs.open_input_file(path) as handle:
            metadata = pq.ParquetFile(handle).metadata
        groups: list[int] = []
        first = rows = 0
        for group in range(metadata.num_row_groups):
            groups.append(group)
            rows += metadata.row_group(group).num_rows
            if rows >= partition_rows or group == metadata.num_row_groups - 1:
                parts.append(Part(len(parts), file, tuple(groups), first, rows))
                first, groups, rows = first + rows, [], 0
    return parts


class PartWriter:
    """Appends DataFrames to a Parquet file under ``_tmp/``; :meth:`commit` moves it to its
    name (a rename on disk, a server-side copy on S3: the part appears whole or not at all)."""

    def __init__(self, fs: pafs.FileSystem, path: str, tmp_dir: str) -> None:
        self.fs, self.path = fs, path
        self.tmp = f"{tmp_dir}/{uuid.uuid4().hex}.parquet"
        self._writer: pq.ParquetWriter | None = None
        self.rows = 0

    def write(self, frame: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.tmp, table.schema, filesystem=self.fs)
        elif table.schema != self._writer.schema:
            table = table.cast(self._writer.schema)
        self._writer.write_table(table)
        self.rows += len(frame)

    def commit(self, empty_columns: list[str]) -> None:
        if self._writer is None:
            empty = pa.table({c: pa.array([], pa.string()) for c in empty_columns})
            pq.write_table(empty, self.tmp, filesystem=self.fs)
        else:
            self._writer.close()
        self.fs.move(self.tmp, self.path)


@dataclass(frozen=True)
class RunFiles:
    """The output directory of a run (see the module's docstring)."""

    url: str

    @functools.cached_property
    def fs_path(self) -> tuple[pafs.FileSystem, str]:
        return filesystem(self.url)

    def part(self, part: Part) -> str:
        return f"{self.fs_path[1]}/{part.name}.parquet"

    def rejects(self, part: Part) -> str:
        return f"{self.fs_path[1]}/rejects/{part.name}.parquet"

    def _file(self, name: str) -> str:
        return f"{self.fs_path[1]}/{name}"

    def prepare(self) -> None:
        fs, root = self.fs_path
        for sub in ("", "/rejects", "/_parts", "/_attempts", "/_tmp"):
            fs.create_dir(root + sub, recursive=True)

    def exists(self, name: str) -> bool:
        fs, _ = self.fs_path
        return bool(fs.get_file_info(self._file(name)).type == pafs.FileType.File)

    def read_json(self, name: str) -> Any:
        fs, _ = self.fs_path
        with fs.open_input_stream(self._file(name)) as stream:
            return json.loads(stream.read().decode())

    def write_json(self, name: str, value: Any) -> None:
        fs, _ = self.fs_path
        # Written under _tmp/ and moved: a reader never sees half of it.
        tmp = self._file(f"_tmp/{uuid.uuid4().hex}.json")
        with fs.open_output_stream(tmp) as stream:
            stream.write(json.dumps(value, indent=2).encode())
        fs.move(tmp, self._file(name))

    def committed(self, parts: list[Part]) -> set[int]:
        """The partitions whose part file (and so their counts and log rows) is committed."""
        fs, root = self.fs_path
        infos = fs.get_file_info(pafs.FileSelector(root, allow_not_found=True))
        names = {Path(i.path).name for i in infos if i.type == pafs.FileType.File}
        return {p.index for p in parts if f"{p.name}.parquet" in names}

    def clean(self) -> None:
        fs, root = self.fs_path
        if fs.get_file_info(f"{root}/_tmp").type == pafs.FileType.Directory:
            fs.delete_dir(f"{root}/_tmp")


def part_dicts(parts: list[Part]) -> list[dict[str, Any]]:
    return [asdict(p) for p in parts]
