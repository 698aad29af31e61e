"""`modelpilot alias set|history`: move a model's aliases between versions, and their history.

The `alias` group itself (``alias_app``) is made and added to the app in ``_models.py``.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from modelpilot.cli._models import alias_app, when
from modelpilot.cli._root import console, fitted_table, open_project, print_json


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
    table = fitted_table("when", "alias", "from", "to", "by", "reason")
    for row in rows:
        previous = f"v{row['previous_version']}" if row["previous_version"] else "-"
        table.add_row(
            when(row["at"]),
            row["alias"],
            previous,
            f"v{row['version']}",
            Text(row["by"]),
            Text(row["reason"] or ""),
        )
    console.print(table)
