"""Running the server: uvicorn on the project's host and port, one or several workers."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
from types import FrameType
from typing import Any

import uvicorn

from modelpilot.errors import ModelpilotError
from modelpilot.project import Project
from modelpilot.server._app import ServingApp, create_app
from modelpilot.server._http import PredictionProtocol
from modelpilot.server._state import ServerState, build_state

__all__ = ["WORKER_HEALTHCHECK_S", "app_factory", "serve"]

WORKER_HEALTHCHECK_S = 60


def app_factory() -> ServingApp:
    """For uvicorn's ``--factory`` (one call per worker process); reads its options from env."""
    project = Project.open(os.environ.get("MODELPILOT_PROJECT"))
    trust = os.environ.get("MODELPILOT_SERVE_TRUST") == "1"
    force = os.environ.get("MODELPILOT_SERVE_FORCE") == "1"
    app = _server_app(project, trust=trust, force=force)
    app.state.accept_when_loaded = True
    return app


def _server_app(project: Project, *, trust: bool, force: bool) -> ServingApp:
    state = build_state(project, trust=trust, force=force)
    state.tune_gc = True  # this process only serves: see _lifespan._tune_gc
    return create_app(state)


def serve(
    project: Project,
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
    trust: bool = False,
    force: bool = False,
    log_level: str = "info",
    sock: socket.socket | None = None,
) -> None:
    """Run the server until it is stopped. ``sock``: a listening socket the caller bound
    already (``modelpilot serve`` binds its own, to learn the port it got, port 0 included);
    ``host`` and ``port`` are then not used."""
    settings = project.spec.serving
    n_workers = workers or settings.workers
    options: dict[str, Any] = {
        "host": host or settings.host,
        "port": settings.port if port is None else port,
        "log_level": log_level,
        "access_log": False,
        "timeout_graceful_shutdown": 30,
        "timeout_keep_alive": settings.keep_alive_s,
        "lifespan": "on",
        # uvicorn's httptools protocol with a direct path for the prediction routes.
        "http": PredictionProtocol,
    }
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    if n_workers > 1:
        os.environ["MODELPILOT_PROJECT"] = str(project.directory)
        os.environ["MODELPILOT_SERVE_TRUST"] = "1" if trust else "0"
        os.environ["MODELPILOT_SERVE_FORCE"] = "1" if force else "0"
        _run(
            "modelpilot.server._serve:app_factory",
            sock,
            {
                **options,
                "factory": True,
                "workers": n_workers,
                # uvicorn kills a worker that does not answer its health check within this
                # time. Its 5 s default killed workers that were loading their models on a busy
                # machine (2 cores, load 9): they never started serving, restarted for ever.
                "timeout_worker_healthcheck": WORKER_HEALTHCHECK_S,
            },
        )
        return
    app = _server_app(project, trust=trust, force=force)
    _check_something_to_serve(app.state)
    if threading.current_thread() is not threading.main_thread():
        _run(app, sock, options)
        _check_log_complete(app.state)
        return
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again, which kills the
    # process with status -15. A drained stop is a success: with this handler in place while
    # uvicorn runs, the re-raised signal lands here and `modelpilot serve` exits with 0.
    previous = signal.signal(signal.SIGTERM, _stopped)
    try:
        _run(app, sock, options)
    finally:
        signal.signal(signal.SIGTERM, previous)
    _check_log_complete(app.state)


class NothingToServe(ModelpilotError):
    """No deployment of the project names a registered version: the server would serve
    nothing, so it does not start."""

    kind = "nothing_to_serve"

    def __init__(self, problems: dict[str, str], registered: list[str]) -> None:
        reasons = "; ".join(f"deployment {name!r}: {why}" for name, why in problems.items())
        models = ", ".join(registered) or "none yet"
        super().__init__(
            f"no deployment can be served ({reasons}). Registered models: {models}. Register "
            "the model and set its alias (`modelpilot register MODEL_FILE --alias production`"
            "), or name the registered model in modelpilot.yaml (`model:`, or a `deployments:`"
            " section)"
        )


class LogIncomplete(ModelpilotError):
    """The server stopped with prediction-log records outside the database."""

    kind = "log_incomplete"
    exit_code = 1

    def __init__(self, dead_lettered: int, lost: int, path: object) -> None:
        lost_text = f"; {lost:,} are lost (see the server log)" if lost else ""
        super().__init__(
            f"{dead_lettered + lost:,} prediction-log records could not be committed: "
            f"{dead_lettered:,} are in the dead-letter file {path}{lost_text}. Fix the "
            "database; the file holds one JSON record per line, with the error that kept it "
            "out, to inspect or load back"
        )


def _check_something_to_serve(state: ServerState) -> None:
    problems = state.manager.unresolved()
    if problems and len(problems) == len(state.manager.specs):
        registered = [m["name"] for m in state.project.registry.list_models()]
        raise NothingToServe(problems, registered)


def _check_log_complete(state: ServerState) -> None:
    stats = state.writer.stats
    if state.writer.failed:
        raise LogIncomplete(stats.dead_lettered, stats.lost, state.writer.dead_letter_path)


def _run(app: Any, sock: socket.socket | None, options: dict[str, Any]) -> None:
    """``uvicorn.run``, or what it does on a socket the caller bound."""
    if sock is None:
        uvicorn.run(app, **options)
        return
    config = uvicorn.Config(app, **options)
    server = uvicorn.Server(config)
    try:
        if config.workers > 1:
            from uvicorn.supervisors import Multiprocess

            Multiprocess(config, sockets=[sock]).run()
            return
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    if not server.started:
        sys.exit(3)  # uvicorn's STARTUP_FAILURE, as uvicorn.run ends


def _stopped(signum: int, frame: FrameType | None) -> None:
    """SIGTERM after uvicorn's graceful shutdown: nothing left to do."""
