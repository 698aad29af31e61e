"""`modelpilot log`: read the prediction log back (export, show), its size, and merging its
small segments."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from modelpilot.cli._root import (
    app,
    console,
    err_console,
    fitted_table,
    open_project,
    print_json,
    progress_bar,
)
from modelpilot.errors import NotFoundError

if TYPE_CHECKING:
    import pandas as pd
    from rich.progress import Progress, TaskID

    from modelpilot.project import Project

log_app = typer.Typer(
    help="The prediction log: export it, show its newest rows, its size; compaction.",
    no_args_is_help=True,
)
app.add_typer(log_app, name="log")


@log_app.command("stats")
def log_stats_command(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Rows, segments (Delta: data files) and stored bytes of the prediction log."""
    stats = open_project().prediction_log.stats()
    row = {
        "rows": stats.rows,
        "segments": stats.segments,
        "rows_per_segment": round(stats.rows_per_segment, 1),
        "payload_bytes": stats.payload_bytes,
        "conflicting_rows": stats.conflicting_rows,
    }
    if as_json:
        print_json(row)
        return
    if stats.conflicting_rows:
        err_console.print(
            f"[bold red]{stats.conflicting_rows:,} spooled predictions[/] conflict with the "
            "Delta table's column types and wait in the spool's conflicts/ directories "
            "(see docs/delta-log.md)"
        )
    table = Table("rows", "segments", "rows per segment", "stored")
    table.add_row(
        f"{stats.rows:,}",
        f"{stats.segments:,}",
        f"{stats.rows_per_segment:,.1f}",
        f"{stats.payload_bytes / 1e6:,.1f} MB",
    )
    console.print(table)


@log_app.command("compact")
def log_compact_command(
    older_than_s: Annotated[
        float,
        typer.Option("--older-than-s", min=0, help="Only segments whose rows are this old."),
    ] = 60.0,
    target_rows: Annotated[
        int | None,
        typer.Option(
            "--target-rows",
            min=2,
            help="Largest merged segment (default: logging.compact_rows of the project).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Merge the log's small segments into large ones (the server also does it on its own,
    every logging.compact_interval_s). Safe while a server writes: each merge is a short
    transaction of its own, and rows, ids and labels stay as they were. On the Delta backend:
    OPTIMIZE (small files rewritten into large ones), then VACUUM."""
    project = open_project()
    log = project.prediction_log
    rows = target_rows or project.spec.logging.compact_rows
    before = log.stats()
    started = time.perf_counter()
    with progress_bar("compacting", quiet=as_json) as bar:
        task = bar.add_task("compacting", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = log.compact(
            older_than=time.time() - older_than_s, target_rows=rows, progress=progress
        )
    seconds = time.perf_counter() - started
    after = log.stats()
    report = {
        "segments_before": before.segments,
        "segments_after": after.segments,
        "segments_merged": result.segments_merged,
        "segments_written": result.segments_written,
        "rows_moved": result.rows,
        "runs_skipped": result.runs_skipped,
        "seconds": round(seconds, 3),
    }
    if as_json:
        print_json(report)
        return
    console.print(
        f"{result.segments_merged:,} segments merged into {result.segments_written:,} "
        f"({result.rows:,} rows) in {seconds:.2f} s; the log now has {after.segments:,} "
        f"segments for {after.rows:,} rows"
        + (
            f"; {result.runs_skipped} runs changed meanwhile, left for next time"
            if result.runs_skipped
            else ""
        )
    )


# ---- reading the log back ------------------------------------------------------------------
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_moment(text: str, *, now: float, option: str) -> float:
    """``--since``/``--until``: an age (``90s``, ``30m``, ``12h``, ``1d``, ``2w``) before
    ``now``, or a date or time (ISO 8601, local time unless it names a zone).

    Examples
    --------
    >>> parse_moment("1d", now=100_000.0, option="--since")
    13600.0
    >>> parse_moment("1970-01-02T00:00:00+00:00", now=0.0, option="--since")
    86400.0
    """
    value = text.strip()
    unit = _UNITS.get(value[-1:].lower())
    if unit is not None:
        try:
            return now - float(value[:-1]) * unit
        except ValueError:
            pass
    try:
        return dt.datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise typer.BadParameter(
            f"expected an age such as 30m, 12h, 1d or 2w, or a date such as 2026-12-01 or "
            f"2026-12-01T08:00, got {text!r}",
            param_hint=f"'{option}'",
        ) from None


def _model_of(project: Project, deployment: str | None, model: str | None) -> str | None:
    if deployment is None:
        return model
    specs = project.spec.deployment_specs
    spec = next((s for s in specs if s.name == deployment), None)
    if spec is None:
        raise NotFoundError(
            "deployment",
            deployment,
            hint=f"the project's deployments: {', '.join(s.name for s in specs) or '(none)'}",
        )
    return spec.model


def _as_timestamps(frame: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    out = frame.copy()
    for column in ("ts", "label_ts"):
        if column in out:
            out[column] = pd.to_datetime(out[column], unit="s", utc=True)
    return out


Deployment = Annotated[
    str | None,
    typer.Option("--deployment", "-d", help="Only this deployment's model.", show_default=False),
]
Model = Annotated[str | None, typer.Option("--model", "-m", help="Only this model.")]
Version = Annotated[int | None, typer.Option("--version", "-v", help="Only this version.")]
Source = Annotated[
    str | None,
    typer.Option(help="Only online, batch or shadow rows (default: online and batch)."),
]


@log_app.command("export")
def log_export(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="A .parquet or .csv file to write.")
    ],
    since: Annotated[
        str | None, typer.Option(help="From this age (1d, 12h) or date on.", show_default=False)
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Up to this age or date.", show_default=False)
    ] = None,
    deployment: Deployment = None,
    model: Model = None,
    version: Version = None,
    source: Source = None,
    with_labels: Annotated[
        bool,
        typer.Option("--with-labels", help="Add each prediction's label and label_ts (or null)."),
    ] = False,
    labeled_only: Annotated[
        bool, typer.Option("--labeled-only", help="Only predictions that have a label.")
    ] = False,
    limit: Annotated[
        int | None, typer.Option(min=1, help="At most the newest N rows.", show_default=False)
    ] = None,
) -> None:
    """Write logged predictions (inputs, outputs and, with --with-labels, their labels) to
    a Parquet or CSV file. Times are UTC timestamps; labels keep their type. The log is read
    a chunk at a time (a bar shows the rows read), so an export of any size fits in memory."""
    from modelpilot.data import file_format
    from modelpilot.store import newest_rows, write_frames

    kind = file_format(output)
    project = open_project()
    log = project.prediction_log
    now = time.time()
    scan = log.scan(
        model=_model_of(project, deployment, model),
        version=version,
        source=source,
        start=parse_moment(since, now=now, option="--since") if since else None,
        end=parse_moment(until, now=now, option="--until") if until else None,
    )

    def read(bar: Progress, task: TaskID) -> Iterator[pd.DataFrame]:
        for frame, read in scan.chunks:
            bar.advance(task, read)
            # A shadow's rows repeat the ids of the predictions it shadowed.
            yield frame if source is not None else frame[frame["source"] != "shadow"]

    def shaped(frames: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for frame in frames:  # --limit first: the newest N rows, then those with labels
            if with_labels or labeled_only:
                frame = log.attach_labels(frame)
                if labeled_only:
                    frame = frame[frame["label"].notna()]
            yield _as_timestamps(frame.reset_index(drop=True))

    with progress_bar("exporting") as bar:
        rows = read(bar, bar.add_task("exporting", total=scan.total_rows))
        written = write_frames(
            shaped(newest_rows(rows, limit) if limit is not None else rows),
            output,
            kind=kind,
            empty=_as_timestamps(log.window(end=0.0)),
        )
    console.print(f"wrote {written:,} rows to {escape(str(output))}", highlight=False)


@log_app.command("show")
def log_show(
    rows: Annotated[int, typer.Option("--rows", "-n", min=1, help="How many rows.")] = 20,
    deployment: Deployment = None,
    model: Model = None,
    version: Version = None,
    source: Source = None,
    inputs: Annotated[bool, typer.Option("--inputs", help="Also show the inputs.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """The newest predictions, with their labels where they arrived."""
    project = open_project()
    log = project.prediction_log
    frame = log.latest(
        rows * 2 if source is None else rows,  # room for the shadow rows dropped below
        model=_model_of(project, deployment, model),
        version=version,
        source=source,
    )
    if source is None:
        frame = frame[frame["source"] != "shadow"]
    frame = log.attach_labels(frame.tail(rows).reset_index(drop=True))
    if as_json:
        print_json(frame.to_dict(orient="records"))
        return
    if frame.empty:
        console.print("no predictions logged yet")
        return
    meta = {"id", "ts", "model", "version", "source", "batch_id", "latency_ms", "label_ts"}
    outputs = [c for c in frame.columns if c == "prediction" or c.startswith("proba_")]
    features = [c for c in frame.columns if c not in meta and c not in outputs and c != "label"]
    table = fitted_table(
        "time", "id", "model", "source", *(features if inputs else []), "prediction", "label"
    )
    for record in frame.to_dict(orient="records"):
        when = dt.datetime.fromtimestamp(record["ts"]).strftime("%m-%d %H:%M:%S")
        cells = [when, record["id"][-8:], f"{record['model']} v{record['version']}"]
        cells.append(str(record["source"]))
        cells += [_cell(record[f]) for f in features] if inputs else []
        cells += [_cell(record.get("prediction")), _cell(record.get("label"))]
        table.add_row(*(Text(c) for c in cells))
    console.print(table)
    console.print(
        Text("ids end with the 8 characters shown; `modelpilot log show --json` has them whole")
    )


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, float):
        return f"{value:,.6g}"
    return str(value)
