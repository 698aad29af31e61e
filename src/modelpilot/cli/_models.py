"""`modelpilot register`, `models list|show`, `alias set|history`: the registry from the shell."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from modelpilot.cli._app import app, console, open_project, print_json
from modelpilot.errors import ModelpilotError

if TYPE_CHECKING:
    from modelpilot.registry import ModelVersion

models_app = typer.Typer(help="List and inspect registered models.", no_args_is_help=True)
alias_app = typer.Typer(
    help="Move aliases (production, candidate, ...) between versions.", no_args_is_help=True
)
app.add_typer(models_app, name="models")
app.add_typer(alias_app, name="alias")


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return "-" if value is None else str(value)


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
    for alias_name in alias or []:
        if version.rejected:
            raise ModelpilotError(
                f"{version.name} v{version.version} was registered as rejected, so alias "
                f"{alias_name!r} was not moved; use `modelpilot alias set ... --force` to insist"
            )
        version = project.registry.set_alias(
            version.name,
            alias_name,
            version.version,
            actor=version.created_by,
            reason="register --alias",
        )
    if as_json:
        print_json(version.summary())
        return
    status = "[red]rejected[/]" if version.rejected else "[green]registered[/]"
    console.print(
        f"{status} [bold]{version.name} v{version.version}[/] ({version.flavor}, "
        f"sha256 {version.artifact.sha256[:12]})"
    )
    print_checks(version)
    if version.rejected:
        console.print("  deploying or scoring with it needs --force")


@models_app.command("list")
def models_list(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Every registered model with its versions and aliases."""
    rows = open_project().registry.list_models()
    if as_json:
        print_json(rows)
        return
    table = Table("model", "versions", "latest", "aliases", "updated")
    for row in rows:
        aliases = ", ".join(f"{a}->v{v}" for a, v in sorted(row["aliases"].items())) or "-"
        table.add_row(
            row["name"],
            str(row["versions"]),
            f"v{row['latest']}",
            aliases,
            _when(row["updated_at"]),
        )
    console.print(table if rows else "no models registered yet; run `modelpilot register`")


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
            f"  created: {_when(version.created_at)} by {version.created_by}",
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
            if k not in {c["metric"] for c in version.checks}
        }
        if others:
            console.print(
                "  other metrics: " + ", ".join(f"{k}={_fmt(v)}" for k, v in others.items())
            )
        if version.tags:
            console.print(
                "  tags: " + ", ".join(f"{k}={v}" for k, v in version.tags.items()),
                markup=False,
                emoji=False,
            )
        return
    versions = registry.list_versions(ref)
    if as_json:
        print_json([v.summary() for v in versions])
        return
    table = Table("version", "status", "flavor", "aliases", "key metrics", "created", "by")
    for v in versions:
        metrics = ", ".join(f"{c['metric']}={_fmt(c['value'])}" for c in v.checks) or "-"
        status = "[red]rejected[/]" if v.rejected else v.status
        table.add_row(
            f"v{v.version}",
            status,
            v.flavor,
            ", ".join(v.aliases) or "-",
            metrics,
            _when(v.created_at),
            Text(v.created_by),
        )
    console.print(table)


@alias_app.command("set")
def alias_set(
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias: Annotated[str, typer.Argument(help="Alias, e.g. production or candidate.")],
    version: Annotated[int, typer.Argument(help="Version number.")],
    reason: Annotated[str, typer.Option("--reason", help="Why; kept in the history.")] = "",
    force: Annotated[bool, typer.Option("--force", help="Allow a rejected version.")] = False,
) -> None:
    """Point an alias at a version; the previous target stays in the history."""
    project = open_project()
    from modelpilot.registry import current_user

    result = project.registry.set_alias(
        name, alias, version, actor=current_user(project.environ), reason=reason, force=force
    )
    console.print(f"{name}@{alias} -> v{result.version}")


@alias_app.command("history")
def alias_history(
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias: Annotated[str | None, typer.Argument(help="Only this alias.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Every move of a model's aliases: when, by whom, from which version to which."""
    registry = open_project().registry
    registry.list_versions(name)  # a clear error for an unknown model
    rows = registry.alias_history(name, alias)
    if as_json:
        print_json(rows)
        return
    table = Table("when", "alias", "from", "to", "by", "reason")
    for row in rows:
        previous = f"v{row['previous_version']}" if row["previous_version"] else "-"
        table.add_row(
            _when(row["at"]),
            row["alias"],
            previous,
            f"v{row['version']}",
            Text(row["by"]),
            Text(row["reason"] or ""),
        )
    console.print(table)
