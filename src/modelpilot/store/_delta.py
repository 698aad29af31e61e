"""The prediction log as Delta Lake tables on a local disk or object storage (delta-rs).

``logging.backend: delta`` keeps the log out of the metadata database: at ~280 bytes a
prediction in PostgreSQL, ten million predictions a day is about a terabyte a year in the
database that also holds the rollout state. Here the log is two append-only tables under
``logging.delta.uri`` (a directory, or ``s3://bucket/prefix`` with an S3-compatible store):

- ``predictions``, partitioned by ``day`` and ``model`` (layout: ``_delta_rows.py``);
- ``labels``, appended to and joined with the predictions on ``prediction_id`` when read
  (``_delta_labels.py``). A MERGE of each label into the predictions would rewrite their files
  (measured: 30 files for one merge), so labels never touch the predictions table.

Appends are Delta commits. In the server they are spooled to a local disk first and committed
every ``logging.delta.commit_interval_s`` per process (``_delta_spool.py``): a commit per
micro-batch would make thousands of tiny files and commits an hour. The leader compacts
(OPTIMIZE) and vacuums (:meth:`DeltaPredictionLog.compact`, ``_delta_upkeep.py``).

Delta has no unique index: ids are unique by construction (80 random bits each), and a spooled
commit that is retried after a crash is recognised by its transaction id and not repeated.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from modelpilot.store._delta_labels import DeltaLabels
from modelpilot.store._delta_rows import (
    META_SCHEMA,
    day_chunks,
    day_of,
    delta_rows,
    fit_rows,
    id_days,
    rows_frame,
)
from modelpilot.store._delta_upkeep import DeltaUpkeep
from modelpilot.store._logstore import LogScan
from modelpilot.store._segments import PredictionBatch, PredictionRecord, as_batches
from modelpilot.types import Clock

if TYPE_CHECKING:
    from deltalake import DeltaTable

    from modelpilot.store._delta_spool import Spool

__all__ = ["DeltaPredictionLog"]

logger = logging.getLogger("modelpilot.store")

PARTITIONS = ["day", "model"]


def _deltalake() -> Any:
    try:
        import deltalake
    except ImportError:  # pragma: no cover - depends on the installation
        from modelpilot.errors import ConfigError

        raise ConfigError(
            "logging.backend",
            [
                "logging.backend: delta needs the deltalake package; install it with "
                "pip install 'modelpilot[delta]'"
            ],
        ) from None
    return deltalake


@dataclass
class DeltaPredictionLog(DeltaLabels, DeltaUpkeep):
    """The prediction log in Delta tables at ``uri`` (``logging.backend: delta``).

    ``spool`` (a local directory) makes appends land on local disk and commit every
    ``commit_interval`` seconds once :meth:`start` ran (the server's log writer starts it);
    without it, or before :meth:`start`, each append is a commit of its own.

    Examples
    --------
    >>> import tempfile
    >>> from modelpilot.store import FeedbackItem
    >>> log = DeltaPredictionLog(tempfile.mkdtemp(), clock=lambda: 50.0)
    >>> rec = PredictionRecord(id="a1", ts=10.0, model="m", version=1,
    ...                        inputs={"x": 1.5}, outputs={"prediction": 3.0})
    >>> log.append([rec])
    1
    >>> log.window(model="m")[["id", "x", "prediction"]].to_dict("records")
    [{'id': 'a1', 'x': 1.5, 'prediction': 3.0}]
    >>> [r.accepted for r in log.add_feedback([FeedbackItem("a1", 3.5), FeedbackItem("zz", 1)])]
    [True, False]
    """

    uri: str
    storage_options: Mapping[str, str] = field(default_factory=dict)
    clock: Clock = field(default=time.time)
    spool: Path | None = None
    commit_interval: float = 10.0
    vacuum_retention_hours: float = 168.0

    def __post_init__(self) -> None:
        self.uri = str(self.uri).rstrip("/")
        self._lock = threading.Lock()
        self._tables: dict[str, DeltaTable] = {}
        self._spool: Spool | None = None

    # ---- tables ---------------------------------------------------------------------
    def _path(self, name: str) -> str:
        return f"{self.uri}/{name}"

    def _table(self, name: str) -> DeltaTable | None:
        """The table ``name`` at its newest version, or None before its first commit."""
        deltalake = _deltalake()
        with self._lock:
            table = self._tables.get(name)
            if table is None:
                # Not DeltaTable.is_deltatable: against some S3-compatible stores (moto) it
                # waits for a retry timeout instead of answering no.
                try:
                    table = deltalake.DeltaTable(
                        self._path(name), storage_options=dict(self.storage_options)
                    )
                except deltalake.exceptions.TableNotFoundError:
                    return None
                self._tables[name] = table
            else:
                table.update_incremental()
            return table

    def _dataset(self, name: str) -> pads.Dataset | None:
        table = self._table(name)
        return None if table is None else table.to_pyarrow_dataset()

    def _schema(self, name: str) -> pa.Schema | None:
        table = self._table(name)
        return None if table is None else pa.schema(table.schema().to_arrow())

    def write(self, name: str, rows: pa.Table, *, txn: tuple[str, int] | None = None) -> None:
        """Append ``rows`` to table ``name`` in one commit (``txn``: the writer's id and the
        number of this commit, recorded so the commit is never made twice)."""
        deltalake = _deltalake()
        if txn is not None and name == "predictions" and rows.num_rows:
            # A spool's commit (``txn``): its rows were fitted to the table when spooled, and
            # another process may have committed a new column with another type since. Cast
            # where nothing is lost; otherwise a DataError (permanent, not a retry). A direct
            # append was fitted just now, by ``append``.
            existing = self._schema(name)
            if existing is not None:
                rows = fit_rows(rows, existing, str(rows["model"][0]))
        properties = None
        if txn is not None:
            properties = deltalake.CommitProperties(
                app_transactions=[deltalake.Transaction(app_id=txn[0], version=txn[1])]
            )
        deltalake.write_deltalake(
            self._path(name),
            rows,
            partition_by=PARTITIONS if name == "predictions" else ["day"],
            mode="append",
            schema_mode="merge",
            storage_options=dict(self.storage_options),
            commit_properties=properties,
        )

    def committed_version(self, app_id: str) -> int | None:
        """The newest commit number writer ``app_id`` made to the predictions table."""
        table = self._table("predictions")
        if table is None:
            return None
        version = table.transaction_version(app_id)
        return None if version is None else int(version)

    # ---- appending ------------------------------------------------------------------
    def append(self, items: PredictionBatch | Sequence[PredictionBatch | PredictionRecord]) -> int:
        """Append batches (or records, grouped into batches): one commit, or, while the spool
        runs, one fsync'd spool file committed with the next upload; returns rows."""
        batches = [b for b in as_batches([items] if isinstance(items, PredictionBatch) else items)]
        batches = [b for b in batches if len(b)]
        if not batches:
            return 0
        existing = self._schema("predictions")
        tables = [delta_rows(batch, existing) for batch in batches]
        rows = pa.concat_tables(tables, promote_options="permissive")
        if self._spool is not None:
            self._spool.add(rows)
        else:
            self.write("predictions", rows)
        return int(rows.num_rows)

    def start(self) -> None:
        """Spool appends to ``spool`` and commit them every ``commit_interval`` seconds;
        first commit what an earlier process left in the spool (a crash, a kill -9)."""
        if self.spool is None or self._spool is not None:
            return
        from modelpilot.store._delta_spool import Spool

        spool = Spool(self.spool, self, interval=self.commit_interval)
        spool.open()
        self._spool = spool

    def stop(self, timeout: float = 30.0) -> bool:
        """Commit everything spooled and stop; whether everything was committed (what is not
        stays in the spool, and the next start commits it)."""
        spool, self._spool = self._spool, None
        return True if spool is None else spool.close(timeout)

    # ---- reading --------------------------------------------------------------------
    def _filter(
        self,
        *,
        model: str | None = None,
        version: int | None = None,
        start: float | None = None,
        end: float | None = None,
        source: str | None = None,
        days: Sequence[str] | None = None,
    ) -> pc.Expression | None:
        # Partition columns first: pyarrow drops the files of other days and models unread.
        terms: list[pc.Expression] = []
        if model is not None:
            terms.append(pc.field("model") == model)
        if start is not None:
            terms.append(pc.field("day") >= day_of(start))
            terms.append(pc.field("ts") >= start)
        if end is not None:
            terms.append(pc.field("day") <= day_of(end))
            terms.append(pc.field("ts") < end)
        if days is not None:
            terms.append(pc.field("day").isin(pa.array(list(days), pa.string())))
        if version is not None:
            terms.append(pc.field("version") == version)
        if source is not None:
            terms.append(pc.field("source") == source)
        if not terms:
            return None
        expression = terms[0]
        for term in terms[1:]:
            expression = expression & term
        return expression

    def _read(self, columns: list[str] | None = None, **where: Any) -> pa.Table:
        dataset = self._dataset("predictions")
        if dataset is None:
            names = columns or META_SCHEMA.names
            return pa.table({n: pa.array([], META_SCHEMA.field(n).type) for n in names})
        return dataset.to_table(columns=columns, filter=self._filter(**where))

    def count(self, *, model: str | None = None, source: str | None = None) -> int:
        dataset = self._dataset("predictions")
        if dataset is None:
            return 0
        return int(dataset.count_rows(filter=self._filter(model=model, source=source)))

    def window(
        self,
        *,
        model: str | None = None,
        version: int | None = None,
        start: float | None = None,
        end: float | None = None,
        source: str | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """Predictions with ``start <= ts < end`` as one DataFrame, oldest first (the columns
        of :meth:`PredictionLog.window <modelpilot.store.PredictionLog.window>`)."""
        table = self._read(model=model, version=version, start=start, end=end, source=source)
        return rows_frame(table, start=start, end=end, limit=limit)

    def scan(
        self,
        *,
        model: str | None = None,
        version: int | None = None,
        start: float | None = None,
        end: float | None = None,
        source: str | None = None,
        chunk_rows: int = 100_000,
    ) -> LogScan:
        """:meth:`window` as record batches of the matching files, day by day (partition
        pruning as in :meth:`window`); the total is counted from the files first."""
        dataset = self._dataset("predictions")
        if dataset is None:
            return LogScan(0, iter(()))
        where = functools.partial(
            self._filter, model=model, version=version, start=start, end=end, source=source
        )
        chunks = day_chunks(
            dataset,
            [where(days=[day]) for day in self._days()],
            start=start,
            end=end,
            chunk_rows=chunk_rows,
        )
        return LogScan(int(dataset.count_rows(filter=where())), chunks)

    def _by_ids(self, ids: Sequence[str], columns: list[str] | None) -> pa.Table:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return self._read(columns=columns or ["id"], days=[])
        table = self._read(columns=columns, days=id_days(wanted))
        return table.filter(pc.is_in(table["id"], pa.array(wanted, pa.string())))

    def get(self, ids: Sequence[str]) -> pd.DataFrame:
        """The logged rows of ``ids`` (unknown ids are absent from the result)."""
        return rows_frame(self._by_ids(ids, None), start=None, end=None, limit=None)

    def exists(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` are logged predictions (committed, or spooled by this process)."""
        pending = self._spooled(ids)
        rest = [pid for pid in ids if pid not in pending]
        return set(pending) | set(self._by_ids(rest, ["id"])["id"].to_pylist())

    def _spooled(self, ids: Sequence[str]) -> dict[str, tuple[str, int]]:
        spool = self._spool
        return spool.spooled(set(ids)) if spool is not None else {}

    def versions_of(self, ids: Sequence[str]) -> dict[str, tuple[str, int]]:
        """The model and version that made each logged prediction of ``ids``."""
        pending = self._spooled(ids)
        table = self._by_ids([pid for pid in ids if pid not in pending], ["id", "model", "version"])
        return pending | {
            pid: (str(model), int(version))
            for pid, model, version in zip(
                table["id"].to_pylist(),
                table["model"].to_pylist(),
                table["version"].to_pylist(),
                strict=True,
            )
        }

    def _days(self) -> list[str]:
        """The ``day`` partitions that hold data, oldest first."""
        table = self._table("predictions")
        if table is None:
            return []
        return sorted({p["day"] for p in table.partitions()})

    def latest(
        self,
        n: int,
        *,
        model: str | None = None,
        version: int | None = None,
        source: str | None = None,
    ) -> pd.DataFrame:
        """The newest ``n`` predictions, oldest first, reading days from the newest back
        until there are enough (a look at the end of a large log reads only its end)."""
        parts: list[pa.Table] = []
        total = 0
        for day in reversed(self._days()):
            part = self._read(model=model, version=version, source=source, days=[day])
            parts.append(part)
            total += part.num_rows
            if total >= n:
                break
        if not parts:
            return rows_frame(self._read(days=[]), start=None, end=None, limit=None)
        table = pa.concat_tables(parts[::-1], promote_options="permissive")
        frame = rows_frame(table, start=None, end=None, limit=None)
        return frame.tail(n).reset_index(drop=True)

    def __repr__(self) -> str:
        return f"DeltaPredictionLog({self.uri!r})"
