"""`modelpilot review`, `automation` and `retrain`: people in the loop, and the closed loop.

These commands work on the project's database directly (whoever can run them can read the
database anyway), so the review queue can be worked through with or without a running server;
a running server picks every change up within a second.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from modelpilot.cli._remote import Url
from modelpilot.cli._root import app, console, fitted_table, open_project, print_json, working
from modelpilot.errors import ModelpilotError

review_app = typer.Typer(
    help="The human review queue: deferred predictions to decide.", no_args_is_help=True
)
automation_app = typer.Typer(
    help="Degrees of automation: human, shadow, assist, partial, full.", no_args_is_help=True
)
retrain_app = typer.Typer(help="The retraining loop.", invoke_without_command=True)
app.add_typer(review_app, name="review")
app.add_typer(automation_app, name="automation")
app.add_typer(retrain_app, name="retrain")


def _parts() -> tuple[Any, Any, Any]:
    from modelpilot.automation import Ladder, ReviewQueue

    project = open_project()
    queue = ReviewQueue(
        project.engine,
        project.prediction_log,
        tolerance=project.spec.automation.agreement_tolerance,
    )
    ladder = Ladder(project.engine, queue, project.spec.automation, audit=project.registry.audit)
    return project, queue, ladder


def _actor(project: Any) -> str:
    from modelpilot.registry import current_user

    return current_user(project.environ)


def _when(ts: float | None) -> str:
    return "-" if ts is None else dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _show_item(item: Any) -> None:
    console.print(
        Text.assemble(
            ("review ", "bold"),
            item.id,
            f"   {item.deployment} "
            f"v{item.version}   degree {item.degree}   "
            f"queued {_when(item.created_at)}",
        )
    )
    table = Table("feature", "value")
    for name, value in item.inputs.items():
        table.add_row(name, Text(str(value)))
    console.print(table)
    if item.degree in ("assist", "partial") and item.suggestion is not None:
        confidence = "" if item.confidence is None else f" (confidence {item.confidence:.2f})"
        console.print(Text(f"model's suggestion: {item.suggestion}{confidence}"))
    console.print(Text(f"decide with: modelpilot review decide {item.id} VALUE"))


@review_app.command("next")
def review_next(
    deployment: Annotated[str | None, typer.Option(help="Only this deployment.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The oldest pending item, with its inputs and (in assist/partial) the model's suggestion."""
    _, queue, _ = _parts()
    item = queue.next(deployment=deployment)
    if as_json:
        print_json(None if item is None else item.to_dict(show_suggestion=False))
        return
    if item is None:
        console.print("the review queue is empty")
        return
    _show_item(item)


@review_app.command("decide")
def review_decide(
    review_id: Annotated[str, typer.Argument(help="The review id.")],
    value: Annotated[
        str, typer.Argument(help='The decision: a label (JSON, e.g. 412000 or "spam").')
    ],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Decide an item; the decision becomes the prediction's label. Twice is refused."""
    project, queue, _ = _parts()
    try:
        decision: Any = json.loads(value)
    except json.JSONDecodeError:
        decision = value
    item = queue.decide(review_id, decision, actor=_actor(project))
    if as_json:
        print_json(item.to_dict())
        return
    agreed = {True: "agrees with", False: "differs from", None: "no suggestion from"}[item.agreed]
    console.print(Text(f"decided {item.id}: {decision!r} ({agreed} the model)"))


@review_app.command("list")
def review_list(
    status: Annotated[str, typer.Option(help="pending, decided, expired or all.")] = "pending",
    deployment: Annotated[str | None, typer.Option(help="Only this deployment.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The queue, with its length, oldest age and agreement per degree and class."""
    _, queue, _ = _parts()
    items = queue.list(status=None if status == "all" else status, deployment=deployment)
    stats = queue.stats(deployment)
    if as_json:
        print_json({"reviews": [i.to_dict(show_suggestion=False) for i in items], "stats": stats})
        return
    table = fitted_table("id", "deployment", "degree", "status", "queued", "decision", "agreed")
    for item in items:
        table.add_row(
            item.id,
            item.deployment,
            item.degree,
            item.status,
            _when(item.created_at),
            Text("-" if item.decision is None else str(item.decision)),
            {True: "yes", False: "no", None: "-"}[item.agreed],
        )
    console.print(table)
    agreement = (
        ", ".join(f"{d}: {s['rate']:.0%} of {s['cases']}" for d, s in stats["agreement"].items())
        or "no decisions yet"
    )
    console.print(
        Text(
            f"pending {stats['pending']}, oldest {stats['oldest_age_s']:.0f}s; "
            f"agreement {agreement}"
        )
    )


@automation_app.command("show")
def automation_show(
    deployment: Annotated[str, typer.Argument(help="Deployment name.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """A deployment's degree, the ladder's proposal, and the agreement behind it."""
    _, queue, ladder = _parts()
    state = ladder.state(deployment)
    stats = queue.stats(deployment)
    if as_json:
        print_json({**state.to_dict(), "review": stats})
        return
    console.print(
        Text.assemble(
            (f"{deployment}", "bold"),
            f": {state.degree}  (set by "
            f"{state.updated_by}, {_when(state.updated_at)}: {state.reason})",
        )
    )
    if state.proposal:
        console.print(
            Text(
                f"proposed: {state.proposal} — {state.proposal_reason}; apply with "
                f"`modelpilot automation apply {deployment}`"
            )
        )
    for degree, item in stats["agreement"].items():
        console.print(Text(f"agreement at {degree}: {item['rate']:.1%} of {item['cases']} cases"))


@automation_app.command("set")
def automation_set(
    deployment: Annotated[str, typer.Argument(help="Deployment name.")],
    degree: Annotated[str, typer.Argument(help="human, shadow, assist, partial or full.")],
    reason: Annotated[str, typer.Option(help="Why; kept in the audit log.")] = "",
) -> None:
    """Set a deployment's degree of automation (audited)."""
    project, _, ladder = _parts()
    state = ladder.set(deployment, degree, actor=_actor(project), reason=reason or "set by hand")
    console.print(Text(f"{deployment}: {state.degree}"))


@automation_app.command("apply")
def automation_apply(
    deployment: Annotated[str, typer.Argument(help="Deployment name.")],
) -> None:
    """Apply the ladder's proposal."""
    project, _, ladder = _parts()
    state = ladder.state(deployment)
    if not state.proposal:
        raise ModelpilotError(
            f"{deployment} has no proposal; `modelpilot automation show {deployment}` says why"
        )
    state = ladder.set(
        deployment,
        state.proposal,
        actor=_actor(project),
        reason=f"applied proposal: {state.proposal_reason}",
    )
    console.print(Text(f"{deployment}: {state.degree}"))


@retrain_app.callback()
def retrain(
    ctx: typer.Context,
    force: Annotated[
        bool,
        typer.Option("--force", help="Ignore the cooldown, the retry rule and minimum new labels."),
    ] = False,
    reason: Annotated[str, typer.Option(help="Why; kept in the audit log.")] = "manual",
    url: Url = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Retrain now: export data, run the trainer, register, compare with production.

    With the project's server running (or --url), the server runs it, and deploys the new
    version as `retrain.deploy` says, as an alert would; without one it runs here and
    registers the version, and nothing is deployed."""
    if ctx.invoked_subcommand is not None:
        return
    from modelpilot.automation import RetrainLoop
    from modelpilot.cli._remote import address_file, client, read_address

    project = open_project()
    loop = RetrainLoop(project)
    remote = url is not None or read_address(address_file(project.directory)) is not None
    with working("retraining: export, train, register, compare", quiet=as_json):
        if remote:
            with client(url, None, admin=True) as server:
                started = server.retrain(reason=reason, force=force)
            run = _finished(loop, int(started["id"]))
        else:
            run = loop.trigger(reason=reason, actor=_actor(project), force=force, background=False)
    if as_json:
        print_json(run.to_dict())
    else:
        _print_run(run, deployed_here=not remote, deploy=project.spec.retrain.deploy)
    if run.status == "failed":
        raise typer.Exit(1)


def _finished(loop: Any, run_id: int) -> Any:
    """The run the server started, once it has ended (read from the project's database)."""
    deadline = time.monotonic() + loop.settings.timeout_s + 60
    run = loop.get(run_id)
    while run.status == "running" and time.monotonic() < deadline:
        time.sleep(0.5)  # the server trains in a thread of its own; its record tells the end
        run = loop.get(run_id)
    return run


def _print_run(run: Any, *, deployed_here: bool, deploy: str) -> None:
    details = run.details
    console.print(Text(f"retraining run {run.id}: {run.status}"))
    for key in ("error", "reason", "version", "reference_rows", "logged_rows", "holdout_rows"):
        if key in details:
            console.print(Text(f"  {key}: {details[key]}"))
    comparison = details.get("comparison", {})
    for row in comparison.get("metrics", []):
        console.print(
            Text(
                f"  {row['metric']}: candidate {row['candidate']:.4g} vs "
                f"production v{row['production_version']} "
                f"{row['production']:.4g}"
            )
        )
    agreement = comparison.get("expected", {}).get("agreement")
    if agreement:
        console.print(
            Text(
                f"  agreement with production: {agreement['value']:.1%} of "
                f"{agreement['rows']} holdout rows (what the canary will expect)"
            )
        )
    if details.get("deployed"):
        console.print(Text(f"  deployed: {details['deployed']}"))
    elif details.get("deploy_error"):
        console.print(Text(f"  not deployed: {details['deploy_error']}"))
    elif deployed_here and run.status == "succeeded" and deploy != "none":
        console.print(
            Text(
                "  not deployed: no server of this project is running; start `modelpilot "
                "serve` and deploy it (`modelpilot deploy`), or retrain through the server"
            )
        )


def _why(details: dict[str, Any]) -> str:
    """What became of a run: its error, why it was rejected, or its rollout's outcome."""
    rollout = details.get("rollout")
    if isinstance(rollout, dict):
        return f"rollout {rollout['id']} {rollout['status']}: {rollout['reason']}"
    for key in ("error", "reason", "deploy_error"):
        if details.get(key):
            return str(details[key])
    if details.get("rollout_id") is not None:
        return f"rollout {details['rollout_id']} running"
    return "-"


@retrain_app.command("runs")
def retrain_runs(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Past retraining runs."""
    from modelpilot.automation import RetrainLoop

    runs = RetrainLoop(open_project()).runs()
    if as_json:
        print_json([r.to_dict() for r in runs])
        return
    table = fitted_table("run", "trigger", "status", "started", "version", "by", "why")
    for run in runs:
        table.add_row(
            str(run.id),
            run.trigger,
            run.status,
            _when(run.started_at),
            "-" if run.version is None else f"v{run.version}",
            run.started_by,
            _why(run.details),
        )
    console.print(table)
