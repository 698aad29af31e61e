"""`modelpilot alerts` and `modelpilot monitor`: alerts and live measurements from the database.

Both read the metadata database the server writes to, so they work without a running server
(and on another machine that can reach a shared database).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from modelpilot.cli._root import app, console, fitted_table, open_project, print_json
from modelpilot.errors import NotFoundError

if TYPE_CHECKING:
    from modelpilot.alerting import Alert
    from modelpilot.monitoring import Point
    from modelpilot.project import Project

_STATE_STYLE = {"firing": "bold red", "pending": "yellow", "resolved": "green"}
_SEVERITY_STYLE = {"critical": "red", "warning": "yellow", "info": "cyan"}
# What the live view shows per deployment: (time series, column heading, format).
_COLUMNS = (
    ("request_rate", "req/s", "{:.2f}"),
    ("error_rate", "errors", "{:.2%}"),
    ("latency_p50_ms", "p50 ms", "{:.1f}"),
    ("latency_p99_ms", "p99 ms", "{:.1f}"),
    ("drift_share", "drift share", "{:.0%}"),
)


def _when(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _value(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _labels(text: str) -> str:
    from modelpilot.monitoring import parse_labels

    return ",".join(f"{k}={v}" for k, v in parse_labels(text).items()) or "-"


def _alert_table(alerts: list[Alert], *, title: str, past: bool = False) -> Table:
    table = fitted_table(
        "state",
        "severity",
        "rule",
        "deployment",
        "labels",
        "value",
        "threshold",
        "started",
        "resolved" if past else "fired",
        "actions",
        title=title,
    )
    for alert in alerts:
        actions = ", ".join(
            f"{name}: {record['status']}"
            for name, record in alert.details.get("actions", {}).items()
        )
        comparison = alert.details.get("comparison", "")
        table.add_row(
            Text(alert.state, style=_STATE_STYLE.get(alert.state, "")),
            Text(alert.severity, style=_SEVERITY_STYLE.get(alert.severity, "")),
            # Text, not markup: a label value may hold brackets.
            Text(alert.rule),
            Text(alert.deployment or "(process)"),
            Text(_labels(alert.labels)),
            _value(alert.value),
            Text(f"{comparison} {alert.threshold:g}".strip()),
            _when(alert.started_at),
            _when(alert.resolved_at if past else alert.fired_at),
            Text(actions or "-"),
        )
    return table


@app.command()
def alerts(
    show_all: Annotated[
        bool, typer.Option("--all", help="Also list resolved alerts, newest first.")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, help="At most this many resolved alerts.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Active (pending and firing) alerts, and with --all the resolved ones (from the database)."""
    from modelpilot.alerting import AlertStore

    store = AlertStore(open_project().engine)
    active = store.open()
    active.sort(key=lambda a: (a.state != "firing", a.started_at))
    past = store.resolved(limit=limit) if show_all else []
    if as_json:
        body: dict[str, Any] = {"active": [a.to_dict() for a in active]}
        if show_all:
            body["recent"] = [a.to_dict() for a in past]
        print_json(body)
        return
    if active:
        console.print(_alert_table(active, title=f"{len(active)} active alert(s)"))
    else:
        console.print("no active alerts")
    if show_all:
        if past:
            console.print(_alert_table(past, title=f"{len(past)} resolved alert(s)", past=True))
        else:
            console.print("no resolved alerts")


# ---- the live view ------------------------------------------------------------------------------
def _newest(points: list[Point]) -> dict[str, Point]:
    return {p.deployment: p for p in points if not p.labels}


def monitor_frame(project: Project, *, deployment: str | None = None) -> Group:
    """One frame of `modelpilot monitor`: per deployment the newest measurements, then the
    process's and the active alerts."""
    from modelpilot.alerting import AlertStore
    from modelpilot.monitoring import TimeSeriesStore, parse_labels

    series = TimeSeriesStore(project.engine)
    newest = {name: _newest(series.latest(name)) for name, _, _ in _COLUMNS}
    key_metrics: dict[str, dict[str, Point]] = {}
    for point in series.latest("key_metric"):
        metric = parse_labels(point.labels).get("metric", "?")
        key_metrics.setdefault(point.deployment, {})[metric] = point
    seen = {d for points in newest.values() for d in points} | set(key_metrics)
    names = sorted({d.name for d in project.spec.deployment_specs} | seen - {""})
    if deployment is not None:
        if deployment not in names:
            raise NotFoundError(
                "deployment",
                deployment,
                hint=f"known deployments: {', '.join(names) or '(none)'}",
            )
        names = [deployment]
    targets = {k.name: k for k in project.spec.key_metrics}
    table = Table(title="deployments (newest measurements of the last hour)", title_justify="left")
    table.add_column("deployment")
    for _, heading, _ in _COLUMNS:
        table.add_column(heading, justify="right")
    table.add_column("key metrics")
    table.add_column("updated")
    now = time.time()
    for name in names:
        row = [Text(name)]
        stamps: list[float] = []
        for metric, _, fmt in _COLUMNS:
            found = newest[metric].get(name)
            shown = "-" if found is None or found.value is None else fmt.format(found.value)
            row.append(Text(shown))
            if found is not None:
                stamps.append(found.ts)
        keys = Text()
        for metric, point in sorted(key_metrics.get(name, {}).items()):
            stamps.append(point.ts)
            target = targets.get(metric)
            missed = (
                target is not None and point.value is not None and not target.passes(point.value)
            )
            if keys:
                keys.append(", ")
            text = f"{metric}={_value(point.value)}" + (f" ({target})" if target else "")
            keys.append(text, style="red" if missed else "")
        row.append(keys or Text("-"))
        row.append(Text(f"{now - max(stamps):.0f}s ago" if stamps else "no data"))
        table.add_row(*row)
    parts: list[Any] = [table]
    process = {
        name: _newest(series.latest(name, deployment="")).get("")
        for name in ("log_lag_seconds", "log_queue_depth", "memory_rss_bytes", "cpu_percent")
    }
    facts = []
    for name, label, fmt, scale in (
        ("log_lag_seconds", "log lag", "{:.1f}s", 1.0),
        ("log_queue_depth", "log queue", "{:.0f}", 1.0),
        ("memory_rss_bytes", "memory", "{:.0f} MiB", 1 / 2**20),
        ("cpu_percent", "cpu", "{:.0f}%", 1.0),
    ):
        measured = process[name]
        if measured is not None and measured.value is not None:
            facts.append(f"{label} {fmt.format(measured.value * scale)}")
    parts.append(Text("server: " + ("   ".join(facts) if facts else "no data")))
    active = [a for a in AlertStore(project.engine).open() if deployment in (None, a.deployment)]
    active.sort(key=lambda a: (a.state != "firing", a.started_at))
    if active:
        parts.append(_alert_table(active, title=f"{len(active)} active alert(s)"))
    else:
        parts.append(Text("no active alerts", style="green"))
    if not seen:
        parts.append(
            Text(
                "no measurements in the last hour: is `modelpilot serve` running on this "
                "project's database?",
                style="yellow",
            )
        )
    return Group(*parts)


@app.command()
def monitor(
    deployment: Annotated[
        str | None, typer.Option("--deployment", "-d", help="Only this deployment.")
    ] = None,
    refresh: Annotated[
        float, typer.Option(min=0.2, help="Seconds between refreshes of the live view.")
    ] = 2.0,
    once: Annotated[bool, typer.Option("--once", help="Print one frame and exit.")] = False,
) -> None:
    """A live terminal view: request rate, errors, latency, drift, key metrics, alerts."""
    project = open_project()
    frame = monitor_frame(project, deployment=deployment)
    if once:
        console.print(frame)
        return
    with Live(frame, console=console, refresh_per_second=4) as live:
        try:
            while True:
                time.sleep(refresh)
                live.update(monitor_frame(project, deployment=deployment))
        except KeyboardInterrupt:
            pass
