"""Where alert notifications go: the log, a webhook, a command.

A notification must never hold up serving or another notification: webhooks and commands run
on a background thread of their own (one per notifier) fed by a bounded queue, so a hanging
endpoint delays only its own later messages, and a full queue drops a message (with a warning)
instead of blocking the caller.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import shlex
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

import httpx

from modelpilot.spec import NotifierSpec

__all__ = [
    "CommandNotifier",
    "LogNotifier",
    "Notifier",
    "WebhookNotifier",
    "build_notifiers",
]

logger = logging.getLogger("modelpilot.alerting")
_MAX_BACKOFF_S = 60.0


class Failure(NamedTuple):
    """One failed try: what went wrong and whether another try may help."""

    message: str
    retry: bool = True


class Notifier(Protocol):
    """Anything that takes an alert notification (the alert's ``to_dict()`` with ``status``).

    ``notify`` must return at once; ``close`` delivers what is queued within ``timeout``.
    """

    def notify(self, event: Mapping[str, Any]) -> None: ...

    def close(self, timeout: float = 5.0) -> None: ...


def _summary(event: Mapping[str, Any]) -> str:
    labels = event.get("labels") or {}
    where = event.get("deployment") or "(process)"
    if labels:
        where += "{" + ",".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}"
    value = event.get("value")
    shown = "n/a" if value is None else f"{value:.4g}"
    return (
        f"alert {event.get('rule')} {event.get('status')} on {where}: {event.get('metric')} "
        f"{shown} {event.get('comparison')} {event.get('threshold'):g} "
        f"[{event.get('severity')}]"
    )


class LogNotifier:
    """Writes each notification to the ``modelpilot.alerting`` logger (at once: it is cheap).

    Examples
    --------
    >>> LogNotifier().notify({"rule": "slow", "status": "firing", "deployment": "houses",
    ...     "metric": "latency_p99_ms", "value": 180.0, "comparison": ">", "threshold": 100.0,
    ...     "severity": "warning"})
    """

    def __init__(self, *, name: str = "modelpilot.alerting") -> None:
        self.logger = logging.getLogger(name)

    def notify(self, event: Mapping[str, Any]) -> None:
        level = logging.INFO if event.get("status") == "resolved" else logging.WARNING
        self.logger.log(level, "%s", _summary(event))

    def close(self, timeout: float = 5.0) -> None:
        return None


class _QueuedNotifier:
    """A worker thread and a bounded queue; subclasses implement ``_deliver_once``.

    Deliveries are tried ``1 + retries`` times, waiting ``backoff_s``, ``2 * backoff_s``, ...
    between tries (at most a minute). ``sleep`` is injectable so tests see the waits without
    waiting; by default it is a wait that ``close`` cuts short.
    """

    name = "notifier"

    def __init__(
        self,
        *,
        retries: int = 3,
        backoff_s: float = 1.0,
        max_queue: int = 1000,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.retries = retries
        self.backoff_s = backoff_s
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self._queue: queue.Queue[Mapping[str, Any] | None] = queue.Queue(maxsize=max_queue)
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._unfinished = 0
        self._thread: threading.Thread | None = None

    def notify(self, event: Mapping[str, Any]) -> None:
        with self._lock:
            if self._stop.is_set():
                logger.warning("%s is closed; dropped: %s", self.name, _summary(event))
                return
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"modelpilot-{self.name}", daemon=True
                )
                self._thread.start()
            try:
                self._queue.put_nowait(dict(event))
            except queue.Full:
                self.dropped += 1
                logger.warning("%s is backed up; dropped: %s", self.name, _summary(event))
                return
            self._unfinished += 1

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued notification was delivered or given up; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._unfinished == 0, timeout=timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (within ``timeout``), then stop the thread."""
        self.flush(timeout)
        with self._lock:
            self._stop.set()
            thread = self._thread
        if thread is not None:
            try:
                self._queue.put_nowait(None)
            except queue.Full:
                pass
            thread.join(timeout=max(0.1, timeout))

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                self._finish()
                return
            try:
                self._deliver(event)
            except Exception:  # a bug in one delivery must not end the thread
                logger.exception("%s failed", self.name)
                self.failed += 1
            finally:
                with self._idle:
                    self._unfinished -= 1
                    self._idle.notify_all()

    def _deliver(self, event: Mapping[str, Any]) -> None:
        attempts = self.retries + 1
        failure = Failure("not tried")
        for attempt in range(attempts):
            outcome = self._deliver_once(event)
            if outcome is None:
                self.delivered += 1
                return
            failure = outcome
            if attempt + 1 == attempts or not failure.retry:
                break
            delay = min(self.backoff_s * 2**attempt, _MAX_BACKOFF_S)
            logger.info("%s: %s; retrying in %.1fs", self.name, failure.message, delay)
            self._sleep(delay)
            if self._stop.is_set():  # closing: give up rather than hold the shutdown
                break
        self.failed += 1
        logger.warning(
            "%s gave up after %d attempt(s): %s (%s)",
            self.name,
            attempt + 1,
            failure.message,
            _summary(event),
        )

    def _deliver_once(self, event: Mapping[str, Any]) -> Failure | None:
        """Try once; None when delivered, else what went wrong."""
        raise NotImplementedError

    def _finish(self) -> None:
        """Release what the worker thread held (called on that thread as it ends)."""


class WebhookNotifier(_QueuedNotifier):
    """POSTs each notification as JSON to ``url``; retries timeouts, connection errors and
    5xx/408/429 answers with exponential backoff, on a background thread.

    Examples
    --------
    >>> hook = WebhookNotifier("http://127.0.0.1:9/alerts", timeout_s=0.5, retries=0)
    >>> hook.url
    'http://127.0.0.1:9/alerts'
    >>> hook.close()
    """

    name = "webhook"

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 5.0,
        retries: int = 3,
        backoff_s: float = 1.0,
        max_queue: int = 1000,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__(retries=retries, backoff_s=backoff_s, max_queue=max_queue, sleep=sleep)
        self.url = url
        self.timeout_s = timeout_s
        self.name = f"webhook {url}"
        self._client: httpx.Client | None = None  # the worker thread's, kept alive

    def _deliver_once(self, event: Mapping[str, Any]) -> Failure | None:
        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout_s)
        try:
            response = self._client.post(self.url, json=dict(event))
        except httpx.HTTPError as exc:
            return Failure(f"{type(exc).__name__}: {exc}")
        if response.is_success:
            return None
        # A 4xx other than "timeout" or "too many requests" will fail the same way again.
        retry = response.status_code >= 500 or response.status_code in (408, 429)
        return Failure(f"HTTP {response.status_code}", retry)

    def _finish(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class CommandNotifier(_QueuedNotifier):
    """Runs a command (no shell) per notification: the alert as JSON on stdin and as
    ``MODELPILOT_ALERT_*`` environment variables; a non-zero exit or ``timeout_s`` is a
    failed try.

    Examples
    --------
    >>> CommandNotifier("notify-send modelpilot").args
    ['notify-send', 'modelpilot']
    """

    name = "command"

    def __init__(
        self,
        command: str | Sequence[str],
        *,
        timeout_s: float = 5.0,
        retries: int = 0,
        backoff_s: float = 1.0,
        environ: Mapping[str, str] | None = None,
        max_queue: int = 1000,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__(retries=retries, backoff_s=backoff_s, max_queue=max_queue, sleep=sleep)
        self.args = shlex.split(command) if isinstance(command, str) else list(command)
        if not self.args:
            raise ValueError("a command notifier needs a command to run")
        self.timeout_s = timeout_s
        self.environ = os.environ if environ is None else environ
        self.name = f"command {self.args[0]}"

    def _deliver_once(self, event: Mapping[str, Any]) -> Failure | None:
        env = dict(self.environ)
        env.update(alert_environ(event))
        try:
            # A session of its own: on timeout the whole process group is killed, so a shell
            # script's children cannot keep the pipes (and this thread) open.
            process = subprocess.Popen(
                self.args,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            return Failure(f"could not run {self.args[0]!r}: {exc}", retry=False)
        payload = json.dumps(dict(event), default=str).encode()
        try:
            _, stderr = process.communicate(payload, timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            process.communicate()
            return Failure(f"timed out after {self.timeout_s:g}s")
        if process.returncode != 0:
            tail = stderr.decode(errors="replace").strip()[-300:]
            return Failure(f"exit code {process.returncode}" + (f": {tail}" if tail else ""))
        return None


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (AttributeError, ProcessLookupError, PermissionError):  # no process groups here
        process.kill()


def alert_environ(event: Mapping[str, Any]) -> dict[str, str]:
    """The ``MODELPILOT_ALERT_*`` variables a command notifier sets.

    Examples
    --------
    >>> alert_environ({"rule": "slow", "status": "firing", "value": 1.5,
    ...                "labels": {"feature": "size"}})["MODELPILOT_ALERT_LABELS"]
    'feature=size'
    """
    labels = event.get("labels") or {}
    fields = {
        "ID": event.get("id"),
        "RULE": event.get("rule"),
        "STATUS": event.get("status"),
        "STATE": event.get("state"),
        "DEPLOYMENT": event.get("deployment"),
        "SEVERITY": event.get("severity"),
        "METRIC": event.get("metric"),
        "VALUE": event.get("value"),
        "THRESHOLD": event.get("threshold"),
        "COMPARISON": event.get("comparison"),
        "STARTED_AT": event.get("started_at"),
        "FIRED_AT": event.get("fired_at"),
        "RESOLVED_AT": event.get("resolved_at"),
        "LABELS": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
    }
    return {f"MODELPILOT_ALERT_{k}": "" if v is None else str(v) for k, v in fields.items()}


def build_notifiers(
    specs: Sequence[NotifierSpec], *, environ: Mapping[str, str] | None = None
) -> list[Notifier]:
    """Notifiers from the project file's ``alerts.notifiers``.

    Examples
    --------
    >>> [type(n).__name__ for n in build_notifiers([NotifierSpec(kind="log")])]
    ['LogNotifier']
    """
    notifiers: list[Notifier] = []
    for spec in specs:
        if spec.kind == "log":
            notifiers.append(LogNotifier())
        elif spec.kind == "webhook":
            notifiers.append(
                WebhookNotifier(
                    spec.url or "",
                    timeout_s=spec.timeout_s,
                    retries=spec.retries,
                    backoff_s=spec.backoff_s,
                )
            )
        else:
            notifiers.append(
                CommandNotifier(
                    spec.command or [],
                    timeout_s=spec.timeout_s,
                    retries=spec.retries,
                    backoff_s=spec.backoff_s,
                    environ=environ,
                )
            )
    return notifiers
