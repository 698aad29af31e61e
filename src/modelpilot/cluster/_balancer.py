"""HAProxy in front of the replicas: round robin, health checks on ``/readyz``.

A replica that drains answers 503 on ``/readyz`` at once (``server/_drain.py``); with a check
every 500 ms and ``fall 1`` HAProxy stops sending it requests within about half a second,
well inside the replica's ``serving.drain_s``. ``retry-on conn-failure`` sends a request whose
connection could not even be opened (a replica that just stopped listening) to the next
replica: it never reached a server, so retrying it cannot duplicate a prediction. Requests
that reached a replica that then died (kill -9) are not retried: they may have been answered
and logged already.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from modelpilot.cluster._process import ChildProcess, ClusterError

__all__ = ["haproxy_config", "start_haproxy"]


def haproxy_config(port: int, replicas: Sequence[int], *, check_ms: int = 500) -> str:
    """The configuration of a load balancer on 127.0.0.1:``port`` over ``replicas`` (ports).

    Examples
    --------
    >>> print(haproxy_config(8000, [8001]).splitlines()[-1])
        server replica-0 127.0.0.1:8001 check
    """
    servers = "\n".join(
        f"    server replica-{i} 127.0.0.1:{p} check" for i, p in enumerate(replicas)
    )
    return f"""global
    maxconn 4096

defaults
    mode http
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    retries 3
    retry-on conn-failure
    option redispatch

frontend modelpilot
    bind 127.0.0.1:{port}
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter {check_ms}ms fall 1 rise 2
{servers}
"""


def start_haproxy(directory: Path, port: int, replicas: Sequence[int]) -> ChildProcess:
    """``haproxy -db`` (in the foreground) with :func:`haproxy_config`."""
    import shutil

    program = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(program).exists():
        raise ClusterError("haproxy was not found; install it (`apt-get install haproxy`)")
    config = directory / "haproxy.cfg"
    config.write_text(haproxy_config(port, replicas), encoding="utf-8")
    return ChildProcess(
        "haproxy", [program, "-db", "-f", str(config)], directory / "haproxy.log"
    ).start()
