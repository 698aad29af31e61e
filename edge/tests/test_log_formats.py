"""The log's two line formats: packed predictions (format 2) read back as the JSON records
of format 1, and logs written by earlier runners (format 1 only) still read."""

from __future__ import annotations

from pathlib import Path

from edge_helpers import linear_files, tree_files, write_signed
from modelpilot_edge import Bundle, KeyPair, LocalLog, LogPolicy
from modelpilot_edge._log_lines import RowFormat, decode_line, encode_line


def _segment(log_dir: Path) -> Path:
    (segment,) = (log_dir / "segments").glob("*.log")
    return segment


def test_a_packed_prediction_reads_back_as_the_json_record(tmp_path: Path, keys: KeyPair) -> None:
    bundle_path = write_signed(tmp_path / "b.zip", linear_files(), keys)
    log_dir = tmp_path / "log"
    with Bundle.open(bundle_path, public_key=keys.public, log_dir=log_dir, clock=lambda: 1e9) as b:
        answer = b.predict({"size": 170, "rooms": 4})
        assert b.log is not None
        (logged,), _ = b.log.pending(10)
    lines = _segment(log_dir).read_bytes().splitlines()
    assert [line[9:10] for line in lines] == [b"H", b"P"]  # a header, then the prediction
    assert logged == {
        "id": answer["id"],
        "ts": 1e9,
        "model": "houses",
        "version": 1,
        "inputs": {"size": 170.0, "rooms": 4.0},
        "outputs": {"prediction": "yes", "probabilities": answer["probabilities"]},
        "latency_ms": logged["latency_ms"],
    }
    assert isinstance(logged["latency_ms"], float) and logged["latency_ms"] >= 0


def test_a_regressors_packed_line_and_what_format_2_leaves_to_json() -> None:
    form = RowFormat(model="m", version=2, inputs=["a"], classes=None)
    headers: dict[bytes, dict] = {}
    assert decode_line(form.header[:-1], headers) == {}
    line = form.line("p1", 5.0, 0.5, [3], 7.25, None)
    assert line is not None
    record = decode_line(line[:-1], headers)
    assert record is not None and record["outputs"] == {"prediction": 7.25}
    assert record["inputs"] == {"a": 3.0}
    assert form.line("p1", 5.0, 0.5, [3], [7.25, 1.0], None) is None  # several outputs
    classifier = RowFormat(model="m", version=2, inputs=["a"], classes=[0, 1])
    assert classifier.line("p1", 5.0, 0.5, [3], 2, [0.5, 0.5]) is None  # not a class
    assert classifier.line("p1", 5.0, 0.5, [3], True, [0.5, 0.5]) is None  # another type
    assert decode_line(line[:-1], {}) is None  # its header was not read: not a record


def test_records_written_as_json_and_packed_read_in_order(tmp_path: Path, keys: KeyPair) -> None:
    """pii inputs (hashed into text) stay JSON lines; numeric rows are packed; one log."""
    log_dir = tmp_path / "log"
    trees = write_signed(tmp_path / "t.zip", tree_files(), keys)
    linear = write_signed(tmp_path / "l.zip", linear_files(version=2), keys)
    with LocalLog(log_dir) as log:
        with Bundle.open(trees, public_key=keys.public, log=log) as b:
            b.predict({"size": 1, "rooms": 1, "city": "a", "garage": False, "email": "a@b.c"})
        with Bundle.open(linear, public_key=keys.public, log=log) as b:
            b.predict([{"size": 170, "rooms": 4}, {"size": 10, "rooms": 1}])
        assert log.pending_count() == 3
        records, cursor = log.pending(2)
        log.acknowledge(cursor)
    assert [r["version"] for r in records] == [1, 2]
    assert records[0]["inputs"]["email"].startswith("hmac:")
    # Reopened: the cursor is past the header; the next record still finds it, and a new
    # append writes the header again (the writer does not know what the segment holds).
    with LocalLog(log_dir) as log:
        with Bundle.open(linear, public_key=keys.public, log=log) as b:
            b.predict({"size": 300, "rooms": 2})
        rest, _ = log.pending(10)
        assert [r["inputs"] for r in rest] == [
            {"size": 10.0, "rooms": 1.0},
            {"size": 300.0, "rooms": 2.0},
        ]
        assert log.recent(4)[0]["inputs"]["email"].startswith("hmac:")
        assert [r["version"] for r in log.recent(4)] == [1, 2, 2, 2]
    headers = [x for x in _segment(log_dir).read_bytes().splitlines() if x[9:10] == b"H"]
    assert len(headers) == 2


def test_a_log_an_earlier_runner_wrote_still_reads(tmp_path: Path, keys: KeyPair) -> None:
    """Format 1 only (JSON lines), and its state: read, synced, and appended to."""
    segments = tmp_path / "log" / "segments"
    segments.mkdir(parents=True)
    old = [
        {
            "id": f"old{i}",
            "ts": 1.0,
            "model": "houses",
            "version": 1,
            "inputs": {"size": 1.0, "rooms": 2.0},
            "outputs": {"prediction": "no", "probabilities": {"no": 0.75, "yes": 0.25}},
            "latency_ms": 0.1,
        }
        for i in range(3)
    ]
    (segments / "0000000001.log").write_bytes(b"".join(map(encode_line, old)))
    (tmp_path / "log" / "state.json").write_text('{"cursor": [1, 0], "dropped": 0, "corrupt": 0}')
    bundle = write_signed(tmp_path / "b.zip", linear_files(), keys)
    with Bundle.open(bundle, public_key=keys.public, log_dir=tmp_path / "log") as b:
        b.predict({"size": 170, "rooms": 4})
        assert b.log is not None
        records, _ = b.log.pending(10)
        assert b.log.stats()["corrupt"] == 0
    assert records[:3] == old and records[3]["inputs"] == {"size": 170.0, "rooms": 4.0}


def test_the_size_bound_counts_predictions_not_headers(tmp_path: Path, keys: KeyPair) -> None:
    bundle = write_signed(tmp_path / "b.zip", linear_files(), keys)
    policy = LogPolicy(segment_bytes=1024, max_bytes=2048)
    with Bundle.open(
        bundle, public_key=keys.public, log_dir=tmp_path / "log", log_policy=policy
    ) as b:
        for i in range(60):
            b.predict({"size": float(i), "rooms": 1})
        assert b.log is not None
        stats = b.log.stats()
    assert stats["dropped"] > 0 and stats["pending"] + stats["dropped"] == 60
