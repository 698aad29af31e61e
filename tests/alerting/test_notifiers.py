"""Notifiers: the log, a webhook on a real local HTTP server (retries, backoff, a failing and a
hanging endpoint that must not hold up anything else), and a command."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

import pytest
from alerting_helpers import DEPLOYMENT, HookServer, RecordingNotifier, feed

from fake_clock import FakeClock
from modelpilot.alerting import (
    AlertEngine,
    CommandNotifier,
    Notifier,
    WebhookNotifier,
    build_notifiers,
)
from modelpilot.spec import AlertRuleSpec, NotifierSpec

RULE = AlertRuleSpec(name="slow", metric="latency_p99_ms", threshold=100.0, window_s=10.0)


def fire(engine: AlertEngine, clock: FakeClock, *, deployment: str = DEPLOYMENT) -> float:
    """Make ``slow`` fire on ``deployment``; returns how long ``evaluate`` took (seconds)."""
    started = time.monotonic()
    feed(engine, clock, "latency_p99_ms", [150.0], deployment=deployment)
    return time.monotonic() - started


def test_the_log_notifier_writes_firing_as_a_warning_and_resolved_as_info(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    engine = AlertEngine([RULE], clock=clock, notifiers=build_notifiers([NotifierSpec(kind="log")]))
    with caplog.at_level(logging.INFO, logger="modelpilot.alerting"):
        feed(engine, clock, "latency_p99_ms", [150.0, 150.0, 40.0])
    records = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert records == [
        ("WARNING", "alert slow firing on houses: latency_p99_ms 150 > 100 [warning]"),
        ("INFO", "alert slow resolved on houses: latency_p99_ms 40 > 100 [warning]"),
    ]


def test_a_webhook_gets_the_alert_as_json(clock: FakeClock, hooks: HookServer) -> None:
    hook = WebhookNotifier(f"{hooks.url}/ok", timeout_s=5)
    engine = AlertEngine(
        [RULE.model_copy(update={"annotations": {"team": "ml"}})],
        clock=clock,
        notifiers=[hook],
        project="houses-project",
    )
    fire(engine, clock)
    assert hook.flush(10)
    (received,) = hooks.on("/ok")
    body = received.body
    assert (body["status"], body["rule"], body["deployment"], body["value"]) == (
        "firing",
        "slow",
        DEPLOYMENT,
        150.0,
    )
    assert (body["threshold"], body["severity"], body["annotations"], body["project"]) == (
        100.0,
        "warning",
        {"team": "ml"},
        "houses-project",
    )
    assert body["fired_at"] == clock()
    assert (hook.delivered, hook.failed) == (1, 0)
    hook.close()


def test_a_failing_webhook_is_retried_with_exponential_backoff(
    clock: FakeClock, hooks: HookServer
) -> None:
    waits: list[float] = []
    hooks.script = [500, 503, 500]
    hook = WebhookNotifier(f"{hooks.url}/script", retries=4, backoff_s=0.5, sleep=waits.append)
    engine = AlertEngine([RULE], clock=clock, notifiers=[hook])
    fire(engine, clock)
    assert hook.flush(10)
    assert len(hooks.on("/script")) == 4  # three failures, then 200
    assert waits == [0.5, 1.0, 2.0]
    assert (hook.delivered, hook.failed) == (1, 0)
    hook.close()


def test_the_backoff_really_waits_between_tries(clock: FakeClock, hooks: HookServer) -> None:
    hooks.script = [500]
    hook = WebhookNotifier(f"{hooks.url}/script", retries=1, backoff_s=0.2)
    engine = AlertEngine([RULE], clock=clock, notifiers=[hook])
    fire(engine, clock)
    assert hook.flush(10)
    first, second = hooks.on("/script")
    assert second.at - first.at >= 0.2
    assert hook.delivered == 1
    hook.close()


def test_a_webhook_gives_up_after_its_retries_and_does_not_retry_a_4xx(
    clock: FakeClock, hooks: HookServer, caplog: pytest.LogCaptureFixture
) -> None:
    waits: list[float] = []
    broken = WebhookNotifier(f"{hooks.url}/fail", retries=2, backoff_s=1.0, sleep=waits.append)
    hooks.script = [404]
    wrong = WebhookNotifier(f"{hooks.url}/script", retries=5, sleep=waits.append)
    engine = AlertEngine([RULE], clock=clock, notifiers=[broken, wrong])
    with caplog.at_level(logging.WARNING, logger="modelpilot.alerting"):
        fire(engine, clock)
        assert broken.flush(10) and wrong.flush(10)
    assert len(hooks.on("/fail")) == 3 and len(hooks.on("/script")) == 1
    assert waits == [1.0, 2.0]
    assert (broken.failed, wrong.failed) == (1, 1)
    messages = [r.getMessage() for r in caplog.records]
    assert any("gave up after 3 attempt(s): HTTP 500" in m for m in messages), messages
    assert any("gave up after 1 attempt(s): HTTP 404" in m for m in messages), messages
    broken.close()
    wrong.close()


def test_a_hanging_webhook_blocks_neither_the_engine_nor_the_other_notifiers(
    clock: FakeClock, hooks: HookServer
) -> None:
    hanging = WebhookNotifier(f"{hooks.url}/hang", timeout_s=30, retries=0)
    healthy = WebhookNotifier(f"{hooks.url}/ok", timeout_s=30)
    recorder = RecordingNotifier()
    notifiers: list[Notifier] = [hanging, healthy, recorder]
    engine = AlertEngine([RULE], clock=clock, notifiers=notifiers)
    for number, deployment in enumerate(("houses", "flats"), start=1):
        took = fire(engine, clock, deployment=deployment)
        assert took < 1.0, f"evaluate took {took:.2f}s"
        sent = time.monotonic()
        arrived = hooks.wait_for("/ok", number, timeout=10)[-1].at
        assert arrived - sent < 5.0, f"the healthy webhook took {arrived - sent:.2f}s"
    # Both alerts reached the healthy webhook while the hanging one is still stuck on the first.
    assert len(hooks.wait_for("/hang", 1)) == 1  # the first one's request, still unanswered
    assert (hanging.delivered, hanging.failed) == (0, 0)
    assert not hanging.flush(0.05)
    assert [e["deployment"] for e in recorder.events] == ["houses", "flats"]
    assert healthy.flush(10) and healthy.delivered == 2
    hooks.release.set()  # the endpoint answers at last: both are delivered, in order
    assert hanging.flush(30)
    assert [r.body["deployment"] for r in hooks.on("/hang")] == ["houses", "flats"]
    assert hanging.delivered == 2
    hanging.close()
    healthy.close()


def test_a_hanging_webhook_gives_up_at_its_timeout(clock: FakeClock, hooks: HookServer) -> None:
    hanging = WebhookNotifier(f"{hooks.url}/hang", timeout_s=0.3, retries=0)
    engine = AlertEngine([RULE], clock=clock, notifiers=[hanging])
    started = time.monotonic()
    fire(engine, clock)
    assert hanging.flush(30)
    assert time.monotonic() - started >= 0.3
    assert (hanging.delivered, hanging.failed) == (0, 1)
    hanging.close()


def test_a_notifier_that_raises_does_not_silence_the_others(clock: FakeClock) -> None:
    class Broken:
        def notify(self, event: object) -> None:
            raise RuntimeError("boom")

        def close(self, timeout: float = 5.0) -> None:
            return None

    recorder = RecordingNotifier()
    engine = AlertEngine([RULE], clock=clock, notifiers=[Broken(), recorder])
    fire(engine, clock)
    assert recorder.statuses() == [("slow", "firing")]


# ---- commands -----------------------------------------------------------------------------------
WRITE_ALERT = (
    "import json, os, sys; "
    "alert = json.load(sys.stdin); "
    "env = {k: v for k, v in os.environ.items() if k.startswith(('MODELPILOT_ALERT_', 'KEEP'))}; "
    "open(sys.argv[1], 'w').write(json.dumps({'alert': alert, 'env': env}))"
)


def test_a_command_gets_the_alert_on_stdin_and_in_its_environment(
    clock: FakeClock, tmp_path: Path
) -> None:
    out = tmp_path / "alert.json"
    command = CommandNotifier(
        [sys.executable, "-c", WRITE_ALERT, str(out)],
        timeout_s=30,
        environ={"PATH": os.environ.get("PATH", ""), "KEEP": "kept"},
    )
    rule = RULE.model_copy(update={"labels": {"feature": "size"}, "metric": "missing_rate"})
    engine = AlertEngine([rule], clock=clock, notifiers=[command])
    feed(engine, clock, "missing_rate", [150.0], labels="feature=size")
    assert command.flush(30)
    written = json.loads(out.read_text())
    assert (written["alert"]["rule"], written["alert"]["status"]) == ("slow", "firing")
    assert written["alert"]["labels"] == {"feature": "size"}
    env = written["env"]
    assert env["KEEP"] == "kept"
    assert (env["MODELPILOT_ALERT_RULE"], env["MODELPILOT_ALERT_STATUS"]) == ("slow", "firing")
    assert (env["MODELPILOT_ALERT_DEPLOYMENT"], env["MODELPILOT_ALERT_LABELS"]) == (
        DEPLOYMENT,
        "feature=size",
    )
    assert float(env["MODELPILOT_ALERT_VALUE"]) == 150.0
    assert env["MODELPILOT_ALERT_SEVERITY"] == "warning"
    assert command.delivered == 1
    command.close()


def test_a_command_that_hangs_is_killed_at_its_timeout_with_its_children(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    # The shell waits for its child `sleep`: killing only the shell would leave the pipes open.
    command = CommandNotifier(["sh", "-c", "sleep 30; echo done"], timeout_s=0.5, retries=0)
    engine = AlertEngine([RULE], clock=clock, notifiers=[command])
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="modelpilot.alerting"):
        fire(engine, clock)
        assert command.flush(10)
    assert time.monotonic() - started < 10  # not the 30 s of the sleep
    assert command.failed == 1
    assert any("timed out after 0.5s" in r.getMessage() for r in caplog.records)
    command.close()


def test_a_failing_command_is_retried_and_its_error_output_logged(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    waits: list[float] = []
    failing = [sys.executable, "-c", "import sys; sys.exit('no pager configured')"]
    command = CommandNotifier(failing, timeout_s=30, retries=1, backoff_s=2, sleep=waits.append)
    engine = AlertEngine([RULE], clock=clock, notifiers=[command])
    with caplog.at_level(logging.WARNING, logger="modelpilot.alerting"):
        fire(engine, clock)
        assert command.flush(30)
    assert (waits, command.failed) == ([2], 1)
    assert any(
        "gave up after 2 attempt(s): exit code 1: no pager configured" in r.getMessage()
        for r in caplog.records
    )
    command.close()
