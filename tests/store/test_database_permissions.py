"""The metadata database holds the prediction log, inputs included: owner-only on disk."""

from __future__ import annotations

import stat
from pathlib import Path

from modelpilot.store import PredictionLog, PredictionRecord, create_database


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_database_and_its_directory_are_created_owner_only(tmp_path: Path) -> None:
    engine = create_database("sqlite:///.modelpilot/modelpilot.db", base_dir=tmp_path)
    try:
        PredictionLog(engine).append([PredictionRecord("p1", 1.0, "m", 1, {"x": 1}, {"y": 2})])
        state = tmp_path / ".modelpilot"
        assert _mode(state) == 0o700
        files = sorted(state.glob("modelpilot.db*"))
        assert files and all(_mode(f) == 0o600 for f in files), {
            f.name: oct(_mode(f)) for f in files
        }
    finally:
        engine.dispose()
