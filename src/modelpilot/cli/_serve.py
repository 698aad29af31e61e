"""`modelpilot serve` and `token`: the online service and its credentials."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from modelpilot.cli._remote import address_file, bind, remove_address, url_of, write_address
from modelpilot.cli._root import app, console, open_project
from modelpilot.errors import ModelpilotError

if TYPE_CHECKING:
    from modelpilot.server import TokenStore

token_app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Bind address (default from modelpilot.yaml: 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Worker processes.")] = None,
    trust: Annotated[bool, typer.Option("--trust", help="Allow pickle/joblib models.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Allow rejected versions.")] = False,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error.")] = "info",
) -> None:
    """Serve the project's deployments over HTTP (JSON API and Open Inference Protocol V2)."""
    from modelpilot.server import TokenStore
    from modelpilot.server import serve as run_server

    project = open_project()
    settings = project.spec.serving
    tokens = TokenStore(
        path=project.resolve(project.spec.serving.tokens_file),
        environ=project.environ,
        open_predict=project.spec.serving.open_predict,
    )
    if not any(tokens.configured.values()) and not project.spec.serving.open_predict:
        console.print(
            "[yellow]no tokens configured: every call will get 401. Create one with "
            "`modelpilot token create NAME --role predict` (or set "
            "MODELPILOT_PREDICT_TOKEN), or set serving.open_predict: true[/]"
        )
    # Bound here, not by uvicorn: the address it got (port 0 too) is recorded for the other
    # commands before the first request can arrive, and removed when the server stops.
    sock = bind(host or settings.host, settings.port if port is None else port)
    url = url_of(sock)
    recorded = address_file(project.directory)
    write_address(recorded, url)
    console.print(f"listening on [bold]{url}[/] (recorded in {recorded})", highlight=False)
    try:
        run_server(
            project,
            host=host,
            port=port,
            workers=workers,
            trust=trust,
            force=force,
            log_level=log_level,
            sock=sock,
        )
    finally:
        remove_address(recorded)
        sock.close()


def _tokens() -> TokenStore:
    from modelpilot.server import TokenStore

    project = open_project()
    return TokenStore(path=project.resolve(project.spec.serving.tokens_file), environ={})


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="Who uses it (kept in the audit log).")],
    role: Annotated[
        str,
        typer.Option(
            help="predict (predictions, read-only endpoints), review (the review queue only) "
            "or admin (everything)."
        ),
    ] = "predict",
) -> None:
    """Create a token; it is printed once and only its hash is stored."""
    from modelpilot.server import ROLES  # not at the top: `modelpilot --help` stays light

    if role not in ROLES:
        raise ModelpilotError(f"--role must be one of {', '.join(ROLES)}, got {role!r}")
    secret = _tokens().create(name, role)
    console.print(f"token for [bold]{name}[/] ({role}); store it now, it is not shown again:")
    print(secret)


@token_app.command("list")
def token_list() -> None:
    """The tokens' names and roles (never the tokens)."""
    table = Table("name", "role")
    for entry in _tokens().list():
        table.add_row(entry["name"], entry["role"])
    console.print(table)


@token_app.command("revoke")
def token_revoke(name: Annotated[str, typer.Argument(help="Token name.")]) -> None:
    """Revoke a token; a running server stops accepting it within a second."""
    _tokens().revoke(name)
    console.print(f"revoked {name}")
