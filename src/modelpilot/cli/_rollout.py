"""`modelpilot deploy | rollback | promote | pause | resume | abort | status` over the admin API."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Group
from rich.live import Live
from rich.text import Text

from modelpilot.cli._remote import Url, client
from modelpilot.cli._root import app, console, fitted_table, print_json

if TYPE_CHECKING:
    from modelpilot.client import Client

Token = Annotated[
    str | None,
    typer.Option(help="Admin token (default $MODELPILOT_ADMIN_TOKEN or $MODELPILOT_TOKEN)."),
]
Reason = Annotated[str, typer.Option(help="Why; kept in the audit log.")]


def _client(url: str | None, token: str | None) -> Client:
    return client(url, token, admin=True)


def _render(status: dict[str, Any]) -> Group:
    lines: list[Any] = []
    routing = status["routing"]
    split = ", ".join(f"v{v}: {w:g}%" for v, w in routing["traffic"].items())
    head = Text.assemble(
        (f"{status['deployment']}", "bold"),
        f"  serving v{status['version']} ({status['model']})   traffic {split}",
    )
    if routing.get("shadow"):
        head.append(f"   shadow v{routing['shadow']}")
    lines.append(head)
    rollout = status.get("rollout")
    if rollout is None:
        lines.append(Text("no rollout in progress"))
    else:
        text = f"{rollout['strategy']} of v{rollout['candidate_version']}: {rollout['status']}" + (
            " (paused)" if rollout["paused"] else ""
        )
        if rollout["strategy"] == "canary":
            nxt = rollout.get("next_step_in_s")
            text += f"   step {rollout['step_of']} at {rollout['weight']:g}%" + (
                f"   next step in {nxt:.0f}s" if nxt is not None else ""
            )
        lines.append(Text(text))
        if rollout.get("gates"):
            table = fitted_table("gate", "status", "value", "threshold", "samples", "detail")
            for gate in rollout["gates"]:
                colour = {"pass": "green", "fail": "red"}.get(gate["status"], "yellow")
                value = "-" if gate["value"] is None else f"{gate['value']:.4g}"
                table.add_row(
                    gate["metric"],
                    f"[{colour}]{gate['status']}[/]",
                    value,
                    f"{gate['threshold']:g}",
                    str(gate["samples"]),
                    gate["detail"],
                )
            lines.append(table)
        decision = rollout.get("decision")
        if decision:
            lines.append(
                Text(
                    f"decision: {decision['outcome']} on {decision['evidence']}: "
                    f"{decision['reason']}"
                )
            )
        if rollout.get("shadow"):
            shadow = rollout["shadow"]
            lines.append(
                Text(
                    "shadow comparison: "
                    + ", ".join(
                        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in shadow.items()
                    )
                )
            )
        if rollout.get("standby_version") is not None:
            left = float(rollout["standby_until"] or 0) - time.time()
            lines.append(
                Text(
                    f"v{rollout['standby_version']} stays loaded for instant rollback "
                    f"for {max(0.0, left):.0f}s more"
                )
            )
        if rollout.get("workers"):
            lines.append(
                Text(
                    "workers: "
                    + ", ".join(
                        f"{w['worker_id']}=v{w['version']}{'' if w['healthy'] else ' (unhealthy)'}"
                        for w in rollout["workers"]
                    )
                )
            )
    recent = [
        r for r in status.get("recent", []) if r["status"] not in ("running", "paused", "switched")
    ]
    if recent:
        last = recent[0]
        lines.append(
            Text(
                f"last finished: {last['strategy']} of v{last['candidate_version']} "
                f"{last['status']}: {last['reason']}",
                style="dim",
            )
        )
    return Group(*lines)


def _show(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(result)
    else:
        console.print(_render(result))


@app.command()
def deploy(
    deployment: Annotated[str, typer.Argument(help="Deployment name.")],
    version: Annotated[int, typer.Option("--version", "-v", help="Model version to deploy.")],
    strategy: Annotated[
        str, typer.Option("--strategy", "-s", help="direct, shadow, canary, blue-green or rolling.")
    ] = "canary",
    force: Annotated[
        bool, typer.Option("--force", help="Allow direct replacement and rejected versions.")
    ] = False,
    reason: Reason = "",
    url: Url = None,
    token: Token = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Deploy a version with a rollout strategy (admin)."""
    with _client(url, token) as client:
        _show(
            client.deploy(deployment, version, strategy=strategy, force=force, reason=reason),
            as_json,
        )


def _action(action: str, help_text: str) -> None:
    def command(
        deployment: Annotated[str, typer.Argument(help="Deployment name.")],
        reason: Reason = "",
        url: Url = None,
        token: Token = None,
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        body = {"reason": reason} if action not in ("pause", "resume") else {}
        with _client(url, token) as client:
            _show(client.admin(deployment, action, **body), as_json)

    command.__doc__ = help_text
    app.command(name=action)(command)


_action("rollback", "Go back to the last good version at once, whatever the rollout's state.")
_action("promote", "Finish the rollout now: the candidate becomes the serving version.")
_action("pause", "Hold the canary at its current step.")
_action("resume", "Continue a paused canary.")
_action("abort", "Stop the rollout; all traffic back to the serving version.")


@app.command()
def status(
    deployment: Annotated[str, typer.Argument(help="Deployment name.")],
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Refresh every second.")] = False,
    url: Url = None,
    token: Token = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """A deployment's rollout: step, traffic split, gate results, time to the next step."""
    with _client(url, token) as client:
        if not watch:
            _show(client.status(deployment), as_json)
            return
        with Live(
            _render(client.status(deployment)), console=console, refresh_per_second=2
        ) as live:
            while True:
                time.sleep(1.0)
                live.update(_render(client.status(deployment)))
