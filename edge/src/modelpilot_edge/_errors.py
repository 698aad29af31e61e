"""The runner's errors: each builds its message from its arguments, as modelpilot's do.

A validation error is the server's own: the same ``problems`` and the same message, built by
:func:`problems_message`, which modelpilot's ``ValidationFailed`` uses too (one wording).
Nothing here imports NumPy: modelpilot's error module imports this one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "BundleRejected",
    "EdgeError",
    "KeyRejected",
    "ModelFailed",
    "SyncFailed",
    "UpdateFailed",
    "ValidationFailed",
    "problems_message",
]


class EdgeError(Exception):
    """Root of every error the runner raises on purpose; ``kind`` and ``to_dict`` as the
    server's error bodies."""

    kind: str = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.kind, "message": self.message}


def _plain(value: Any) -> Any:
    """A NumPy scalar as the Python value it holds, so messages say -5.0, not np.float64(-5.0)."""
    item = getattr(value, "item", None)
    return item() if callable(item) and getattr(value, "shape", None) == () else value


def _describe(problem: dict[str, Any]) -> str:
    where = problem.get("field", "?")
    if "instance" in problem:
        where = f"instances[{problem['instance']}].{where}"
    return f"{where}: expected {problem.get('expected')}, got {_plain(problem.get('got'))!r}"


def problems_message(problems: Sequence[dict[str, Any]]) -> str:
    """The one-line message of a list of input problems (the first five, then a count).

    Examples
    --------
    >>> problems_message([{"instance": 0, "field": "size", "expected": "a number", "got": "x"}])
    "1 invalid input value(s): instances[0].size: expected a number, got 'x'"
    """
    shown = "; ".join(_describe(p) for p in problems[:5])
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    return f"{len(problems)} invalid input value(s): {shown}{more}"


class ValidationFailed(EdgeError):
    """Input records failed the schema's rules; ``problems`` lists every one of them, as the
    server's 422 does.

    Examples
    --------
    >>> error = ValidationFailed([{"field": "instances", "expected": "at least one instance",
    ...                            "got": []}])
    >>> error.to_dict()["message"]
    '1 invalid input value(s): instances: expected at least one instance, got []'
    """

    kind = "validation_error"

    def __init__(self, problems: Sequence[dict[str, Any]]) -> None:
        self.problems = list(problems)
        super().__init__(problems_message(self.problems))

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.kind, "message": self.message, "problems": self.problems}


class ModelFailed(EdgeError):
    """The model could not answer valid records; the ids find them in the local log."""

    kind = "model_error"

    def __init__(self, ids: Sequence[str], why: str) -> None:
        self.prediction_ids = list(ids)
        super().__init__(
            f"the model failed on this request ({why}); the runner keeps serving. Prediction "
            f"id(s) {', '.join(self.prediction_ids[:5])} identify it in the local log"
        )

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.kind, "message": self.message, "prediction_ids": self.prediction_ids}


class BundleRejected(EdgeError):
    """A bundle that is not what its signer wrote: a bad signature, a changed, missing or extra
    file, or an unknown format. Nothing of it is loaded.

    Examples
    --------
    >>> print(BundleRejected("b.zip", "model/trees.npz changed (sha256 differs)"))
    bundle b.zip refused: model/trees.npz changed (sha256 differs); nothing of it was loaded. ...
    """

    kind = "bundle_rejected"

    def __init__(self, where: str, why: str) -> None:
        super().__init__(
            f"bundle {where} refused: {why}; nothing of it was loaded. Export it again "
            "(`modelpilot export edge`) or check that the public key is the one it was "
            "signed with"
        )


class KeyRejected(EdgeError):
    """A key that cannot be read: neither a key nor a file holding one, or the other kind."""

    kind = "bad_key"


class SyncFailed(EdgeError):
    """Uploading the log did not finish; what was acknowledged stays synced, the rest waits
    for the next sync."""

    kind = "sync_failed"


class UpdateFailed(EdgeError):
    """An update could not be fetched or verified; the device keeps its current bundle."""

    kind = "update_failed"
