"""The runner needs NumPy and PyNaCl only, and this virtualenv holds nothing more."""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

import pytest

import modelpilot_edge

PACKAGE = Path(modelpilot_edge.__file__).parent
ALLOWED = {"numpy", "nacl", "onnxruntime"} | set(sys.stdlib_module_names)


@pytest.mark.parametrize(
    "module", sorted(p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py"))
)
def test_the_runner_imports_only_numpy_pynacl_and_the_standard_library(module: str) -> None:
    tree = ast.parse((PACKAGE / module).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            imported.add((node.module or "").split(".")[0])
    assert imported <= ALLOWED, f"{module} imports {sorted(imported - ALLOWED)}"


def test_the_kernels_import_nothing_but_numpy_and_each_other() -> None:
    """modelpilot's server imports them from here: they stay free of everything else."""
    for path in (PACKAGE / "kernels").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                assert (node.module or "").split(".")[0] in {
                    "__future__",
                    "collections",
                    "dataclasses",
                    "functools",
                    "typing",
                    "numpy",
                }, (path.name, node.module)


@pytest.mark.parametrize("heavy", ["sklearn", "scipy", "pandas", "starlette", "modelpilot"])
def test_this_virtualenv_is_the_minimal_one(heavy: str) -> None:
    assert importlib.util.find_spec(heavy) is None, f"{heavy} is installed beside the runner"
