"""`modelpilot cluster`: several replicas of a project on one machine, behind HAProxy."""

from __future__ import annotations

import dataclasses
import signal
import tempfile
import threading
from pathlib import Path
from typing import Annotated

import typer

from modelpilot.cli._root import app, console, print_json

cluster_app = typer.Typer(
    help="A local multi-replica setup: PostgreSQL, replicas, HAProxy, Prometheus.",
    no_args_is_help=True,
)
app.add_typer(cluster_app, name="cluster")

Replicas = Annotated[int, typer.Option(min=1, max=16, help="Replicas to run.")]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        help="An empty PostgreSQL database to use (default: a throwaway server, initdb'd in "
        "a temporary directory)."
    ),
]


@cluster_app.command("demo")
def cluster_demo(
    replicas: Replicas = 3,
    database_url: DatabaseUrl = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Start PostgreSQL, replicas, HAProxy and Prometheus on 127.0.0.1; send traffic; kill the
    leading replica; restart every replica one at a time; show that no answered prediction was
    lost; stop everything it started."""
    from modelpilot.cluster import run_demo

    def say(text: str) -> None:
        if not json_output:
            console.print(text, highlight=False)

    report = run_demo(say, replicas=replicas, database_url=database_url)
    if json_output:
        print_json(dataclasses.asdict(report) | {"ok": report.ok})
    if not report.ok:
        raise typer.Exit(1)


@cluster_app.command("up")
def cluster_up(
    replicas: Replicas = 3,
    database_url: DatabaseUrl = None,
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Where to keep the cluster's files.")
    ] = None,
) -> None:
    """Start the same setup and keep it running until Ctrl-C (or SIGTERM); then stop it all."""
    from modelpilot.cluster import LocalCluster

    with tempfile.TemporaryDirectory(prefix="modelpilot-cluster-") as scratch:
        root = directory or Path(scratch)
        with LocalCluster(root, replicas=replicas, database_url=database_url) as cluster:
            console.print(
                f"HAProxy: {cluster.url} (dashboard at /), Prometheus: {cluster.prometheus_url}\n"
                "replicas: " + ", ".join(r.url for r in cluster.replicas) + f"\nfiles: {root}\n"
                "Ctrl-C stops everything.",
                highlight=False,
            )
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            try:
                stop.wait()
            except KeyboardInterrupt:
                pass
