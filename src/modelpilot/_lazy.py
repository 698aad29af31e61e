"""Lazy re-exports for the subpackages' ``__init__`` (PEP 562).

A command pays only for the parts it uses: ``modelpilot review list`` should not import the
retraining loop, nor ``--help`` scikit-learn.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str,
    sources: Mapping[str, Sequence[str]],
    namespace: MutableMapping[str, Any],
    public: Sequence[str],
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module ``__getattr__`` and ``__dir__`` that import each name on first use.

    ``sources`` maps a private module of ``package`` to the public names it defines.

    Examples
    --------
    >>> namespace: dict[str, Any] = {}
    >>> getattr_, dir_ = lazy_exports("modelpilot", {"errors": ["NotFoundError"]}, namespace,
    ...                               ["NotFoundError"])
    >>> getattr_("NotFoundError").__name__, "NotFoundError" in namespace
    ('NotFoundError', True)
    """
    module_of = {name: module for module, names in sources.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = module_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value  # later look-ups find it without coming here
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *public})

    return __getattr__, __dir__
