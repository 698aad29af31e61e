"""`modelpilot register`, `models list|show`, `alias set|history`: the registry from the shell.

The `alias` commands live in ``_models_alias.py`` (imported after this module); their group is
added to the app here, after `models`, so `modelpilot --help` keeps its order.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.text import Text

from modelpilot.cli._root import (
    app,
    console,
    err_console,
    fitted_table,
    open_project,
    print_json,
)
from modelpilot.errors import ModelpilotError

if TYPE_CHECKING:
    from modelpilot.registry import ModelVersion

models_app = typer.Typer(help="List and inspect registered models.", no_args_is_help=True)
alias_app = typer.Typer(
    help="Move aliases (production, candidate, ...) between versions.", no_args_is_help=True
)
app.add_typer(models_app, name="models")
app.add_typer(alias_app, name="alias")


def when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return "-" if value is None else str(value)


def _print_assessment(metrics: dict[str, Any]) -> None:
    """What registration measured on the holdout besides the metrics: the features' shares of
    the permutation importance, and whether the performance estimate can be trusted."""
    importance = metrics.get("importance")
    if isinstance(importance, dict) and importance:
        ranked = sorted(importance.items(), key=lambda item: -float(item[1]))
        console.print(
            "  importance: " + ", ".join(f"{k} {float(v):.0%}" for k, v in ranked),
            markup=False,
            emoji=False,
        )
    calibration = metrics.get("calibration")
    if isinstance(calibration, dict):
        verdict = "trusted" if calibration.get("trusted") else "not trusted"
        console.print(
            f"  performance estimate without labels: {verdict} ({calibration.get('reason')})",
            markup=False,
            emoji=False,
        )


def _parse_tags(tags: list[str]) -> dict[str, str]:
    out = {}
    for tag in tags:
        key, sep, value = tag.partition("=")
        if not sep or not key:
            raise ModelpilotError(f"tag {tag!r} is not KEY=VALUE (for example --tag team=pricing)")
        out[key] = value
    return out


def print_checks(version: ModelVersion) -> None:
    if not version.checks:
        console.print("  no key metrics declared in modelpilot.yaml")
    for check in version.checks:
        mark = "[green]pass[/]" if check["passed"] else "[red]FAIL[/]"
        value = _fmt(check["value"]) if check["value"] is not None else check.get("reason", "-")
        console.print(
            f"  {mark}  {check['metric']} = {value}  (target {check['op']} {_fmt(check['target'])})"
        )


@app.command()
def register(
    artifact: Annotated[
        Path,
        typer.Argument(
            help="Model file (.skops, .onnx, .joblib/.pkl with --trust, XGBoost .json/.ubj, "
            "LightGBM .txt, CatBoost .cbm) or an MLflow model directory."
        ),
    ],
    flavor: Annotated[
        str | None,
        typer.Option(
            "--flavor",
            help="The file's format where its name does not tell: skops, joblib, pickle, onnx, "
            "mlflow, xgboost, lightgbm, catboost.",
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Model name (default: the project's model).")
    ] = None,
    eval_file: Annotated[
        Path | None,
        typer.Option("--eval", help="Holdout CSV/Parquet with the target column: offline metrics."),
    ] = None,
    data_file: Annotated[
        Path | None,
        typer.Option("--data", help="Training data: the reference profile for drift checks."),
    ] = None,
    trust: Annotated[
        bool,
        typer.Option("--trust", help="Allow pickle/joblib files, which can run code when loaded."),
    ] = False,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="KEY=VALUE, repeatable.")] = None,
    alias: Annotated[
        list[str] | None,
        typer.Option("--alias", help="Point this alias at the new version, repeatable."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Store a new immutable version with its hash, schema, profile, metrics and lineage."""
    from modelpilot.registry import register_model

    project = open_project()
    version = register_model(
        project,
        artifact,
        name=name,
        eval_file=eval_file,
        data_file=data_file,
        trust=trust,
        tags=_parse_tags(tag or []),
        flavor=flavor,
    )
    if version.rejected and alias:
        # Registered, but not given the alias: say what it scored and what it missed.
        _print_registered(version, as_json=as_json)
        raise ModelpilotError(
            f"{version.name} v{version.version} was registered as rejected "
            f"({'; '.join(version.failed_checks)}), so alias {', '.join(alias)} was not moved; "
            f"`modelpilot alias set {version.name} {alias[0]} {version.version} --force` "
            "insists, or improve the model and register it again"
        )
    for alias_name in alias or []:
        version = project.registry.set_alias(
            version.name,
            alias_name,
            version.version,
            actor=version.created_by,
            reason="register --alias",
        )
    _print_registered(version, as_json=as_json)


def _print_registered(version: ModelVersion, *, as_json: bool) -> None:
    if as_json:
        print_json(version.summary())
        return
    inferred = version.lineage.get("schema_inferred_from")
    if inferred:
        err_console.print(
            f"modelpilot.yaml declared no features: inferred {len(version.features)} from "
            f"{inferred} and wrote them to modelpilot.yaml (check them: types, categories)",
            markup=False,
            highlight=False,
        )
    unused = version.lineage.get("features_unused_by_model")
    if unused:
        err_console.print(
            f"warning: the model does not use {', '.join(unused)} (declared in modelpilot.yaml: "
            "still validated and logged)",
            markup=False,
            highlight=False,
        )
    status = "[red]rejected[/]" if version.rejected else "[green]registered[/]"
    console.print(
        f"{status} [bold]{version.name} v{version.version}[/] ({version.flavor}, "
        f"sha256 {version.artifact.sha256[:12]})"
    )
    print_checks(version)
    if version.rejected:
        console.print("  deploying or scoring with it needs --force")


_STATUS_STYLE = {"registered": "green", "rejected": "red", "archived": "dim"}


@models_app.command("list")
def models_list(
    show_all: Annotated[bool, typer.Option("--all", help="Also list archived versions.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Every registered model: each version with its status and aliases."""
    rows = open_project().registry.list_models()
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no models registered yet; run `modelpilot register`")
        return
    table = fitted_table("model", "version", "status", "aliases", "updated")
    hidden = 0
    for row in rows:
        by_version: dict[int, list[str]] = {}
        for alias_name, number in sorted(row["aliases"].items()):
            by_version.setdefault(number, []).append(alias_name)
        first = True
        for number, status in sorted(row["status"].items(), reverse=True):
            if status == "archived" and not show_all:
                hidden += 1
                continue
            table.add_row(
                Text(row["name"] if first else ""),
                f"v{number}",
                Text(status, style=_STATUS_STYLE.get(status, "")),
                Text(", ".join(by_version.get(number, [])) or "-"),
                when(row["updated_at"]) if first else "",
            )
            first = False
    console.print(table)
    if hidden:
        console.print(f"{hidden} archived version(s) not shown; --all lists them")


@models_app.command("evaluate")
def models_evaluate(
    ref: Annotated[str, typer.Argument(help="NAME:VERSION (or NAME@ALIAS).")],
    eval_file: Annotated[
        Path, typer.Option("--eval", help="Holdout CSV/Parquet with the target column.")
    ],
    trust: Annotated[
        bool, typer.Option("--trust", help="Allow pickle/joblib files, which can run code.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Re-check a version against today's key-metric targets in modelpilot.yaml.

    Its metrics are replaced and its status follows them: a rejected version that now meets
    every target becomes registered (audited). A version in use is never demoted to rejected.
    """
    from modelpilot.registry import current_user, reevaluate

    project = open_project()
    version = project.registry.resolve(ref)
    updated, change = reevaluate(
        project,
        version.name,
        version.version,
        eval_file,
        actor=current_user(project.environ),
        trust=trust,
    )
    if as_json:
        print_json({**updated.summary(), "previous_status": change["previous_status"]})
        return
    before, after = change["previous_status"], updated.status
    moved = f"{before} -> {after}" if before != after else f"still {after}"
    console.print(
        f"[bold]{updated.name} v{updated.version}[/] on {escape(str(eval_file))}: {moved}",
        highlight=False,
    )
    print_checks(updated)
    if change["kept_because_in_use"]:
        console.print(
            "[yellow]it misses today's targets but is in use ("
            + escape("; ".join(change["kept_because_in_use"]))
            + "), so it stays registered; deploy a better version[/]"
        )


@models_app.command("archive")
def models_archive(
    ref: Annotated[str, typer.Argument(help="NAME:VERSION.")],
    reason: Annotated[str, typer.Option("--reason", help="Why; kept in the audit log.")] = "",
) -> None:
    """Hide a version from `models list` and from a bare model name (refused while an alias
    or a deployment uses it). NAME:VERSION still finds it."""
    from modelpilot.registry import archive_version, current_user, parse_ref

    parsed = parse_ref(ref)
    if parsed.version is None:
        raise ModelpilotError(
            f"{ref!r} names no version; archive one at a time as NAME:VERSION "
            f"(for example {parsed.name}:1)"
        )
    project = open_project()
    archived = archive_version(
        project.registry,
        parsed.name,
        parsed.version,
        actor=current_user(project.environ),
        reason=reason,
    )
    console.print(Text(f"archived {archived.name} v{archived.version}"))


@models_app.command("show")
def models_show(
    ref: Annotated[str, typer.Argument(help="NAME, NAME:VERSION or NAME@ALIAS.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """One model's versions, or one version in detail."""
    registry = open_project().registry
    if ":" in ref or "@" in ref:
        version = registry.resolve(ref)
        if as_json:
            print_json({**version.summary(), "profile": version.profile})
            return
        console.print(
            f"[bold]{version.name} v{version.version}[/]  status: {version.status}  "
            f"aliases: {', '.join(version.aliases) or '-'}"
        )
        # User text (file names, paths, feature names, tags, reasons) is printed literally:
        # rich would drop "[urgent]" as markup, fail on "[/]" and turn ":b:" into an emoji.
        console.print(
            f"  artifact: {version.artifact.filename} ({version.flavor}, "
            f"{version.artifact.size_bytes:,} bytes, sha256 {version.artifact.sha256})",
            markup=False,
            emoji=False,
        )
        console.print(
            f"  created: {when(version.created_at)} by {version.created_by}",
            markup=False,
            emoji=False,
        )
        lineage = version.lineage
        for key in ("git_commit", "data_path", "data_sha256", "data_rows", "eval_path"):
            if lineage.get(key) is not None:
                console.print(f"  {key}: {lineage[key]}", markup=False, emoji=False)
        console.print(
            f"  features: {', '.join(f.name for f in version.features) or '-'}",
            markup=False,
            emoji=False,
        )
        console.print("  key metrics:")
        print_checks(version)
        others = {
            k: v
            for k, v in version.metrics.items()
            if k not in {c["metric"] for c in version.checks} and not isinstance(v, dict)
        }
        if others:
            console.print(
                "  other metrics: " + ", ".join(f"{k}={_fmt(v)}" for k, v in others.items())
            )
        _print_assessment(version.metrics)
        if version.tags:
            console.print(
                "  tags: " + ", ".join(f"{k}={v}" for k, v in version.tags.items()),
                markup=False,
                emoji=False,
            )
        return
    versions = [v for v in registry.list_versions(ref) if not v.archived]
    if as_json:
        print_json([v.summary() for v in versions])
        return
    table = fitted_table("version", "status", "flavor", "aliases", "key metrics", "created", "by")
    for v in versions:
        metrics = ", ".join(f"{c['metric']}={_fmt(c['value'])}" for c in v.checks) or "-"
        status = Text(v.status, style=_STATUS_STYLE.get(v.status, ""))
        table.add_row(
            f"v{v.version}",
            status,
            v.flavor,
            ", ".join(v.aliases) or "-",
            metrics,
            when(v.created_at),
            Text(v.created_by),
        )
    console.print(table)
