"""`modelpilot serve`, `predict`, `feedback` and `token`: the online service from the shell."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from modelpilot.cli._root import app, console, open_project, print_json
from modelpilot.errors import ModelpilotError

if TYPE_CHECKING:
    from modelpilot.client import Client
    from modelpilot.serving import TokenStore

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
    from modelpilot.serving import TokenStore
    from modelpilot.serving import serve as run_server

    project = open_project()
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
    run_server(
        project,
        host=host,
        port=port,
        workers=workers,
        trust=trust,
        force=force,
        log_level=log_level,
    )


def _client(url: str | None, token: str | None) -> Client:
    from modelpilot.client import Client

    if url is None:
        settings = open_project().spec.serving
        url = f"http://{settings.host}:{settings.port}"
    return Client(url, token=token or os.environ.get("MODELPILOT_TOKEN"))


@app.command()
def predict(
    deployment: Annotated[str, typer.Argument(help="Deployment name.")],
    data: Annotated[str, typer.Option("--json", help="One record or a list of records, as JSON.")],
    url: Annotated[str | None, typer.Option(help="Server URL (default from the project).")] = None,
    token: Annotated[str | None, typer.Option(help="Token (default $MODELPILOT_TOKEN).")] = None,
    key: Annotated[str | None, typer.Option(help="Sticky routing key, e.g. a user id.")] = None,
) -> None:
    """Ask a running server for predictions and print them as JSON."""
    try:
        instances: Any = json.loads(data)
    except json.JSONDecodeError as exc:
        raise ModelpilotError(f"--json is not valid JSON ({exc})") from None
    if not isinstance(instances, dict | list):
        raise ModelpilotError("--json must be one record {...} or a list of records [...]")
    with _client(url, token) as client:
        print_json(client.predict(deployment, instances, key=key))


@app.command()
def feedback(
    prediction_id: Annotated[str, typer.Argument(help="The prediction's id.")],
    label: Annotated[str, typer.Argument(help='The true label (JSON, e.g. 250000 or "spam").')],
    url: Annotated[str | None, typer.Option(help="Server URL.")] = None,
    token: Annotated[str | None, typer.Option(help="Token (default $MODELPILOT_TOKEN).")] = None,
) -> None:
    """Send the ground-truth label of a prediction."""
    try:
        value = json.loads(label)
    except json.JSONDecodeError:
        value = label
    with _client(url, token) as client:
        result = client.feedback(prediction_id, value)
    print_json(result)
    if result.get("rejected"):
        raise _FeedbackRejected(int(result["rejected"]), len(result.get("results", [])))


class _FeedbackRejected(ModelpilotError):
    """Exit code 1 when the server rejected a label. An error, not ``typer.Exit(1)``: typer
    raises its own ``Exit``, which ``cli._app.main`` does not translate, so it returned 0."""

    exit_code = 1
    kind = "feedback_rejected"

    def __init__(self, rejected: int, total: int) -> None:
        super().__init__(f"{rejected} of {total} label(s) rejected; the results above say why")


def _tokens() -> TokenStore:
    from modelpilot.serving import TokenStore

    project = open_project()
    return TokenStore(path=project.resolve(project.spec.serving.tokens_file), environ={})


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="Who uses it (kept in the audit log).")],
    role: Annotated[str, typer.Option(help="predict or admin.")] = "predict",
) -> None:
    """Create a token; it is printed once and only its hash is stored."""
    if role not in ("predict", "admin"):
        raise ModelpilotError(f"--role must be predict or admin, got {role!r}")
    secret = _tokens().create(name, role)  # type: ignore[arg-type]
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
