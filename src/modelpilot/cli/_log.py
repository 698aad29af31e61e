"""`modelpilot log`: the prediction log's size, and merging its small segments."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.table import Table

from modelpilot.cli._root import app, console, open_project, print_json

log_app = typer.Typer(help="The prediction log: its size; compaction.", no_args_is_help=True)
app.add_typer(log_app, name="log")


@log_app.command("stats")
def log_stats_command(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Rows, segments and stored bytes of the prediction log."""
    from modelpilot.store import log_stats

    stats = log_stats(open_project().engine)
    row = {
        "rows": stats.rows,
        "segments": stats.segments,
        "rows_per_segment": round(stats.rows_per_segment, 1),
        "payload_bytes": stats.payload_bytes,
    }
    if as_json:
        print_json(row)
        return
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
    transaction of its own, and rows, ids and labels stay as they were."""
    from modelpilot.store import compact_segments, log_stats

    project = open_project()
    rows = target_rows or project.spec.logging.compact_rows
    before = log_stats(project.engine)
    started = time.perf_counter()
    result = compact_segments(
        project.engine, older_than=time.time() - older_than_s, target_rows=rows
    )
    seconds = time.perf_counter() - started
    after = log_stats(project.engine)
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
