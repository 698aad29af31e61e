"""The runner imports NumPy with one BLAS thread only where it is first and nobody said
otherwise (modelpilot_edge/_blas.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge_helpers import tree_files, write_signed
from modelpilot_edge import KeyPair
from modelpilot_edge._blas import THREAD_VARIABLES

_OPEN = """
import json, os, sys
if sys.argv[3] == "numpy-first":
    import numpy
from modelpilot_edge import Bundle
with Bundle.open(sys.argv[1], public_key=sys.argv[2], logging=False):
    pass
print(json.dumps({
    "threads": len(os.listdir("/proc/self/task")),
    "variable": os.environ.get("OPENBLAS_NUM_THREADS"),
}))
"""
_NUMPY = "import os, numpy; print(len(os.listdir('/proc/self/task')))"


def _run(code: str, *args: str, environ: dict[str, str]) -> str:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env=environ,
    ).stdout


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc")
def test_one_blas_thread_only_when_the_runner_imports_numpy_first(
    tmp_path: Path, keys: KeyPair
) -> None:
    bundle = str(write_signed(tmp_path / "t.zip", tree_files(), keys))
    clean = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    numpy_alone = int(_run(_NUMPY, environ=clean))

    def opened(order: str, environ: dict[str, str]) -> dict[str, object]:
        found: dict[str, object] = json.loads(
            _run(_OPEN, bundle, keys.public, order, environ=environ)
        )
        return found

    # The runner first, nothing set: one thread, and no variable left for child processes.
    assert opened("runner-first", clean) == {"threads": 1, "variable": None}
    # A host that imported NumPy first keeps NumPy's own pool.
    assert opened("numpy-first", clean) == {"threads": numpy_alone, "variable": None}
    # A thread count the user set is theirs.
    two = {**clean, "OPENBLAS_NUM_THREADS": "2"}
    assert opened("runner-first", two) == {"threads": 2, "variable": "2"}
