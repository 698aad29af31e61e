"""The summary of a `modelpilot score` run (either engine) and the --max-rejected check."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from modelpilot.cli._root import console, print_json
from modelpilot.errors import ModelpilotError

if TYPE_CHECKING:
    from modelpilot.inference import ScoringResult
    from modelpilot.registry import ModelVersion
    from modelpilot.spec import DeploymentSpec


class ScoringFailed(ModelpilotError):
    """A run that scored no row, or rejected more rows than --max-rejected allows: exit 1,
    as a failed check (the input was readable; its rows were not fit to score)."""

    exit_code = 1
    kind = "scoring_failed"


def _reasons(result: ScoringResult) -> str:
    return ", ".join(f"{k}: {v:,}" for k, v in sorted(result.reasons.items())) or "none"


def max_rejected_check(limit: str) -> Callable[[ScoringResult], None]:
    """The check ``--max-rejected N|P%`` makes after each chunk: it stops the run at once
    when more than N rows (or P% of the rows read so far) were rejected.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> check = max_rejected_check("10%")
    >>> check(SimpleNamespace(n_rows=100, n_rejected=10, reasons={}))  # 10% is allowed
    >>> check(SimpleNamespace(n_rows=100, n_rejected=11, reasons={"size": 11}))
    Traceback (most recent call last):
    ...
    modelpilot.cli._score_report.ScoringFailed: stopped after 100 rows: 11 rejected (11.0%), ...
    """
    text = limit.strip()
    try:
        if text.endswith("%"):
            share, count = float(text[:-1]) / 100, None
            if not 0 <= share <= 1:
                raise ValueError(text)
        else:
            share, count = None, int(text)
            if count < 0:
                raise ValueError(text)
    except ValueError:
        raise typer.BadParameter(
            f"expected a number of rows (100) or a percentage (5%), got {limit!r}",
            param_hint="'--max-rejected'",
        ) from None

    def check(result: ScoringResult) -> None:
        over = (
            result.n_rejected > count
            if count is not None
            else share is not None and result.n_rejected > share * result.n_rows
        )
        if over:
            raise ScoringFailed(
                f"stopped after {result.n_rows:,} rows: {result.n_rejected:,} rejected "
                f"({result.n_rejected / max(result.n_rows, 1):.1%}), more than --max-rejected "
                f"{text} allows; reasons so far: {_reasons(result)}. No output was written: fix "
                "the input (the reasons name the columns) or raise --max-rejected"
            )

    return check


def print_summary(
    result: ScoringResult,
    *,
    source: str,
    version: ModelVersion,
    spec: DeploymentSpec | None,
    steps: list[str],
    log: bool,
    as_json: bool,
    extra: dict[str, Any],
) -> None:
    """The summary of a run (either engine): a person's lines, or --json's object."""
    if result.n_scored == 0:
        where = f" -> {result.rejects}" if result.rejects else ""
        raise ScoringFailed(
            f"no row of {source} was scored: {result.n_rejected:,} of {result.n_rows:,} "
            f"rejected (reasons: {_reasons(result)}){where}"
            if result.n_rows
            else f"{source} has no rows to score"
        )
    if as_json:
        print_json(
            {
                **result.to_dict(),
                "model": version.name,
                "version": version.version,
                "deployment": spec.name if spec is not None else None,
                "steps": steps,
                **extra,
            }
        )
        return
    through = (
        f" behind the steps of deployment {spec.name} ({', '.join(steps)})"
        if spec is not None and steps
        else ""
    )
    console.print(
        f"scored [bold]{result.n_scored:,}[/] of {result.n_rows:,} rows with "
        f"{version.name} v{version.version}{escape(through)} in {result.seconds:.2f}s "
        f"-> {result.output}"
    )
    if result.unseen:
        unseen = ", ".join(f"{k}: {v:,}" for k, v in sorted(result.unseen.items()))
        console.print(f"[yellow]values outside the declared categories[/]: {escape(unseen)}")
    if result.n_rejected:
        console.print(
            f"[yellow]rejected {result.n_rejected:,} rows[/] ({escape(_reasons(result))}) "
            f"-> {result.rejects}"
        )
        if result.n_failed:
            logged = ", logged as failed predictions" if log else ""
            console.print(
                f"[yellow]{result.n_failed:,} of them failed in the model or a step[/]{logged} "
                "(prediction_id in the rejects file)"
            )
    else:
        console.print("no rows rejected")
    if log:
        console.print(f"logged as batch {result.batch_id}")
