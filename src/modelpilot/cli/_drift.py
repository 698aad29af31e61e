"""`modelpilot drift`: compare current data with a reference, feature by feature.

The reference is a CSV/Parquet file or, with ``--model NAME@ALIAS``, the profile stored with a
registered version; the current data is a file or, with ``--window 1h``, the last hour of the
project's prediction log. Exit code 0: no dataset drift; 1: dataset drift; 2: bad input.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.table import Table

from modelpilot.cli._root import (
    app,
    console,
    open_project,
    print_json,
    progress_bar,
    state,
    working,
)
from modelpilot.errors import ConfigError, DataError, ModelpilotError

if TYPE_CHECKING:
    import pandas as pd
    from rich.progress import TaskID

    from modelpilot.drift import DriftReport
    from modelpilot.project import Project
    from modelpilot.spec import FeatureSpec

_WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


class _DatasetDrift(ModelpilotError):
    """The dataset drifted: exit code 1.

    An error rather than ``typer.Exit(1)``: typer raises its own ``Exit``, which
    ``cli._app.main`` does not catch, so the exit code would be lost (as in ``cli/_data.py``).
    """

    exit_code = 1
    kind = "dataset_drift"


def parse_window(text: str) -> float:
    """Seconds in a window such as ``30m``, ``1h`` or ``2d``.

    Examples
    --------
    >>> parse_window("30m"), parse_window("2d")
    (1800.0, 172800.0)
    """
    match = _WINDOW.match(text)
    if match is None or float(match.group(1)) <= 0:
        raise ModelpilotError(
            f"--window {text!r} is not a duration; use a number and a unit: s, m, h, d or w "
            "(for example 30m, 1h or 2d)"
        )
    return float(match.group(1)) * _UNITS[match.group(2)]


def _parse_methods(items: list[str]) -> dict[str, str]:
    methods = {}
    for item in items:
        feature, sep, method = item.partition("=")
        if not sep or not feature.strip() or not method.strip():
            raise ModelpilotError(
                f"--method {item!r} is not FEATURE=METHOD (for example --method size_sqft=psi)"
            )
        methods[feature.strip()] = method.strip()
    return methods


def _project_or_none() -> Project | None:
    """The project when there is one; a missing project file is fine, a broken one is not."""
    from modelpilot.spec import find_project_dir

    if state.project_dir is None and not os.environ.get("MODELPILOT_PROJECT"):
        try:
            find_project_dir()
        except ConfigError:
            return None
    return open_project()


def _opened(project: Project | None) -> Project:
    # --model and --window open the project up front; this only narrows the type.
    if project is None:
        raise ConfigError(
            "modelpilot.yaml",
            ["--model and --window need a project; run `modelpilot init` or pass --project DIR"],
        )
    return project


def _schema(project: Project | None, only: list[str]) -> list[FeatureSpec] | None:
    if project is None or not project.spec.features:
        return None
    features = [f for f in project.spec.features if f.type != "text"]
    if only:
        by_name = {f.name: f for f in features}
        unknown = [name for name in only if name not in by_name]
        if unknown:
            raise DataError(
                f"--feature {unknown[0]!r} is not a numeric, categorical or boolean feature of "
                f"the project; it has {', '.join(by_name) or 'none'}"
            )
        features = [by_name[name] for name in only]
    return features


def _read(path: Path, features: list[FeatureSpec] | None) -> pd.DataFrame:
    from modelpilot.data import read_table

    types = {f.name: f.type for f in features} if features else None
    return read_table(path, types=types)


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.2e}"
    return f"{value:.4f}"


def _print_report(report: DriftReport) -> None:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("feature", overflow="ellipsis", no_wrap=True, max_width=24)
    table.add_column("method", no_wrap=True)
    # The verdict compares the corrected p-value with the threshold, so that is the one shown;
    # --json has both.
    p_header = "p-value" if report.correction == "none" else f"p ({report.correction})"
    streamed = report.engine == "stream"
    headers = ["statistic", *(["± bound"] if streamed else []), p_header, "threshold"]
    for header in headers:
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("drifted", no_wrap=True)
    for f in report.features:
        # The streaming engine says how far a binned statistic can be from the exact one.
        bound = ["exact" if f.exact else _fmt(f.error_bound)] if streamed else []
        table.add_row(
            f.name,
            f.method,
            _fmt(f.statistic),
            *bound,
            _fmt(f.p_value_adjusted),
            _fmt(f.threshold),
            "[bold red]yes[/]" if f.drifted else "no",
        )
    console.print(table)
    verdict = (
        "[bold red]dataset drift[/]" if report.dataset_drifted else "[green]no dataset drift[/]"
    )
    console.print(
        f"{verdict}: {report.n_drifted} of {report.n_features} features drifted "
        f"({report.share_drifted:.0%}; threshold {report.dataset_threshold:.0%}, "
        f"correction {report.correction})"
    )
    if report.domain_classifier is not None:
        d = report.domain_classifier
        console.print(
            f"domain classifier: ROC AUC {d.roc_auc:.3f} ± {d.roc_auc_std:.3f} "
            f"({'drift' if d.drifted else 'no drift'} above {d.threshold})"
        )


@app.command()
def drift(
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[REFERENCE] [CURRENT]",
            help="Reference and current CSV/Parquet files (leave out REFERENCE with --model, "
            "CURRENT with --window); with --engine stream also globs, directories and s3:// "
            "URLs.",
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="NAME@ALIAS or NAME:VERSION: use that registered "
            "version's reference profile instead of a REFERENCE file.",
        ),
    ] = None,
    window: Annotated[
        str | None,
        typer.Option(
            "--window",
            "-w",
            help="Use the last window of the prediction log (30m, "
            "1h, 2d) instead of a CURRENT file.",
        ),
    ] = None,
    method: Annotated[
        list[str] | None,
        typer.Option(
            "--method",
            help="FEATURE=METHOD, repeatable: ks, wasserstein, psi, "
            "jensen_shannon, cramer_von_mises, anderson_darling, chi_square, "
            "total_variation.",
        ),
    ] = None,
    feature: Annotated[
        list[str] | None, typer.Option("--feature", "-f", help="Only this feature, repeatable.")
    ] = None,
    correction: Annotated[
        str,
        typer.Option("--correction", help="Multiple-testing correction: bh, bonferroni or none."),
    ] = "bh",
    dataset_threshold: Annotated[
        float,
        typer.Option(
            "--dataset-threshold", help="Share of drifted features that makes the dataset drifted."
        ),
    ] = 0.5,
    domain_classifier: Annotated[
        bool,
        typer.Option(
            "--domain-classifier",
            help="Also train a reference-vs-current classifier (needs a REFERENCE file).",
        ),
    ] = False,
    html: Annotated[
        Path | None, typer.Option("--html", help="Write a self-contained HTML report here.")
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="memory: load both sides (p-value tests on small data); stream: read the "
            "files batch by batch in two passes, for data larger than memory (effect-size "
            "thresholds; docs/scale-out.md).",
        ),
    ] = "memory",
    fine_bins: Annotated[
        int,
        typer.Option("--fine-bins", help="--engine stream: bins of the binned KS and Wasserstein."),
    ] = 2000,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Compare CURRENT data with a REFERENCE; exit 1 when the dataset drifted."""
    from modelpilot.drift import compare
    from modelpilot.registry import parse_ref

    files = list(paths or [])
    expected = (model is None) + (window is None)
    if len(files) != expected:
        wanted = {
            2: "REFERENCE and CURRENT files",
            1: "one file, " + ("CURRENT" if model is not None else "REFERENCE"),
            0: "no file",
        }[expected]
        flags = " and ".join(f for f, v in (("--model", model), ("--window", window)) if v)
        raise ModelpilotError(
            f"expected {wanted}{' with ' + flags if flags else ''}, but got {len(files)} "
            "path(s); the forms are `drift REFERENCE CURRENT`, `drift --model NAME@ALIAS "
            "CURRENT`, `drift REFERENCE --window 1h` and `drift --model NAME@ALIAS --window 1h`"
        )
    if engine not in ("memory", "stream"):
        raise ModelpilotError(f"--engine must be memory or stream; got {engine!r}")
    seconds = parse_window(window) if window is not None else None
    methods = _parse_methods(method or [])
    project = _project_or_none() if model is None and window is None else open_project()
    features = _schema(project, feature or [])
    selected: list[Any] | None = features if features is not None else (feature or None)
    if engine == "stream":
        if window is not None or domain_classifier:
            raise ModelpilotError(
                "--engine stream reads a CURRENT file, glob, directory or s3:// URL; --window "
                "and --domain-classifier need the in-memory engine (leave out --engine)"
            )
        profile = _profile(_opened(project), model) if model is not None else None
        report = _stream(
            profile if profile is not None else files[0],
            files[-1],
            selected=selected,
            methods=methods,
            dataset_threshold=dataset_threshold,
            fine_bins=fine_bins,
            quiet=as_json,
        )
        _finish(report, html=html, as_json=as_json)
        return
    reference: pd.DataFrame | dict[str, Any]
    if model is not None:
        reference = _profile(_opened(project), model)
    else:
        reference = _read(Path(files.pop(0)), features)
    if seconds is not None:
        log_project = _opened(project)
        name = parse_ref(model).name if model is not None else log_project.spec.model_name
        current = log_project.prediction_log.window(model=name, start=time.time() - seconds)
        if current.empty:
            raise DataError(
                f"no predictions of model {name!r} were logged in the last {window}; widen "
                "--window, or pass a CURRENT file"
            )
    else:
        current = _read(Path(files.pop(0)), features)
    with working("comparing", quiet=as_json):
        report = compare(
            reference,
            current,
            features=selected,
            methods=methods or None,
            correction=correction,
            dataset_threshold=dataset_threshold,
            domain_classifier=domain_classifier,
        )
    _finish(report, html=html, as_json=as_json)


def _profile(project: Project, model: str) -> dict[str, Any]:
    version = project.registry.resolve(model)
    if not version.profile.get("features"):
        raise DataError(
            f"{version.name} v{version.version} has no reference profile; register it with "
            "--data TRAINING_FILE, or pass a REFERENCE file instead of --model"
        )
    return version.profile


def _stream(
    reference: str | dict[str, Any],
    current: str,
    *,
    selected: list[Any] | None,
    methods: dict[str, str],
    dataset_threshold: float,
    fine_bins: int,
    quiet: bool,
) -> DriftReport:
    """The out-of-core engine, with one progress bar per pass counting rows."""
    from modelpilot.drift import compare_stream, open_source

    sources = {"current": open_source(current)}
    if isinstance(reference, str):
        sources["reference"] = open_source(reference)
    totals = {side: source.count_rows() for side, source in sources.items()}
    with progress_bar("drift: {task.description}", quiet=quiet) as bar:
        tasks: dict[str, TaskID] = {}

        def advance(label: str, rows: int) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(label, total=totals[label.split(",")[0]])
            bar.advance(tasks[label], rows)

        return compare_stream(
            sources.get("reference", reference),
            sources["current"],
            features=selected,
            methods=methods or None,
            dataset_threshold=dataset_threshold,
            fine_bins=fine_bins,
            on_batch=advance,
        )


def _finish(report: DriftReport, *, html: Path | None, as_json: bool) -> None:
    if html is not None:
        html.write_text(report.to_html(), encoding="utf-8")
    if as_json:
        print_json(report.to_dict())
    else:
        _print_report(report)
        if html is not None:
            console.print(f"wrote {html}")
    if report.dataset_drifted:
        raise _DatasetDrift(
            f"dataset drift: {report.n_drifted} of {report.n_features} features drifted "
            f"({', '.join(report.drifted_features)})"
        )
