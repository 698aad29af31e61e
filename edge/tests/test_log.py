"""The device's log: crash-safe appends, the sync cursor, the size bound, kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from edge_helpers import linear_files, write_signed
from modelpilot_edge import Bundle, KeyPair, LocalLog, LogPolicy
from modelpilot_edge._log import encode_line


def test_a_torn_last_line_is_cut_and_later_appends_are_whole(tmp_path: Path) -> None:
    with LocalLog(tmp_path) as log:
        log.append([{"id": "a"}, {"id": "b"}])
    segment = next((tmp_path / "segments").glob("*.log"))
    with open(segment, "ab") as handle:  # a write a crash interrupted
        handle.write(encode_line({"id": "c"})[:7])
    with LocalLog(tmp_path) as log:
        log.append([{"id": "d"}])
        records, _ = log.pending(10)
    assert [r["id"] for r in records] == ["a", "b", "d"]


def test_a_damaged_line_is_skipped_and_counted(tmp_path: Path) -> None:
    with LocalLog(tmp_path) as log:
        log.append([{"id": "a"}, {"id": "b"}, {"id": "c"}])
    segment = next((tmp_path / "segments").glob("*.log"))
    data = segment.read_bytes().replace(b'"b"', b'"B"')  # the checksum no longer matches
    segment.write_bytes(data)
    with LocalLog(tmp_path) as log:
        records, cursor = log.pending(10)
        log.acknowledge(cursor)
        assert [r["id"] for r in records] == ["a", "c"]
        assert log.stats()["corrupt"] == 1


def test_the_cursor_survives_a_restart(tmp_path: Path) -> None:
    with LocalLog(tmp_path) as log:
        log.append([{"id": str(i)} for i in range(5)])
        _, cursor = log.pending(3)
        log.acknowledge(cursor)
    with LocalLog(tmp_path) as log:
        rest, _ = log.pending(10)
        assert [r["id"] for r in rest] == ["3", "4"]
        assert log.pending_count() == 2


def test_the_oldest_segments_go_first_and_unsynced_losses_are_counted(tmp_path: Path) -> None:
    policy = LogPolicy(segment_bytes=1024, max_bytes=4096)
    record = {"id": "x" * 20, "inputs": {"size": 1.0}, "pad": "p" * 40}
    with LocalLog(tmp_path, policy=policy) as log:
        log.append([record] * 10)
        _, cursor = log.pending(5)
        log.acknowledge(cursor)  # five synced
        for _ in range(100):
            log.append([record])
        stats = log.stats()
        assert stats["bytes"] <= policy.max_bytes
        assert stats["segments"] > 1  # the newest, and some of the ones before
        lost = stats["dropped"]
        assert lost > 0
        # Every record is either still there (pending), synced (5) or counted as dropped.
        assert stats["pending"] + 5 + lost == 110
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["dropped"] == lost


def test_one_process_at_a_time(tmp_path: Path) -> None:
    with LocalLog(tmp_path):
        other = subprocess.run(
            [
                sys.executable,
                "-c",
                f"from modelpilot_edge import LocalLog; LocalLog({str(tmp_path)!r})",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert other.returncode != 0
    assert "another process writes to the log" in other.stderr


_PREDICT_FOREVER = """
import sys
from modelpilot_edge import Bundle, LogPolicy
bundle = Bundle.open(sys.argv[1], public_key=sys.argv[2], log_dir=sys.argv[3],
                     log_policy=LogPolicy(fsync="never"))
i = 0
while True:
    answer = bundle.predict({"size": float(i % 900), "rooms": 2})
    print(answer["id"], flush=True)
    i += 1
"""


def test_kill_9_loses_nothing_that_was_answered(tmp_path: Path, keys: KeyPair) -> None:
    """fsync never: the page cache alone carries the log through a killed process."""
    bundle = write_signed(tmp_path / "b.zip", linear_files(), keys)
    log_dir = tmp_path / "log"
    child = subprocess.Popen(
        [sys.executable, "-c", _PREDICT_FOREVER, str(bundle), keys.public, str(log_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    answered = []
    for line in child.stdout:
        answered.append(line.strip())
        if len(answered) == 300:
            break
    os.kill(child.pid, signal.SIGKILL)
    child.wait(30)
    assert child.returncode == -signal.SIGKILL
    answered += [line.strip() for line in child.stdout.read().splitlines() if line.strip()]
    child.stdout.close()
    assert child.stderr is not None
    child.stderr.close()
    with Bundle.open(bundle, public_key=keys.public, log_dir=log_dir) as reopened:
        assert reopened.log is not None
        logged, _ = reopened.log.pending(100_000)
    ids = [r["id"] for r in logged]
    assert set(answered) <= set(ids), "an answered prediction is missing from the log"
    assert len(ids) - len(answered) <= 1  # at most the one being answered when killed
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("fsync", ["always", "interval", "never"])
def test_every_fsync_policy_keeps_what_it_wrote(tmp_path: Path, fsync: str) -> None:
    with LocalLog(tmp_path, policy=LogPolicy(fsync=fsync)) as log:  # type: ignore[arg-type]
        log.append([{"id": "a"}])
    with LocalLog(tmp_path) as log:
        assert log.pending_count() == 1


def test_pii_features_are_logged_hashed(tmp_path: Path, keys: KeyPair) -> None:
    from edge_helpers import tree_files

    bundle_path = write_signed(tmp_path / "t.zip", tree_files(), keys)
    record = {"size": 1, "rooms": 1, "city": "a", "garage": False, "email": "a@b.c"}
    with Bundle.open(bundle_path, public_key=keys.public, log_dir=tmp_path / "log") as bundle:
        bundle.predict(record)
        assert bundle.log is not None
        (logged,), _ = bundle.log.pending(10)
    assert logged["inputs"]["email"].startswith("hmac:") and "a@b.c" not in json.dumps(logged)
    assert logged["inputs"]["city"] == "a" and logged["inputs"]["garage"] is False
