"""The one error hierarchy of modelpilot.

Every error a person can meet is a :class:`ModelpilotError`. Each subclass builds its message
from its arguments (what was wrong, what is allowed, what was received, what to do next) and
carries the HTTP status the server answers with and the exit code the CLI ends with. The
translation to a response or an exit code happens in exactly one place each
(``modelpilot.server._errors`` and ``modelpilot.cli``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from modelpilot_edge import problems_message

__all__ = [
    "ArtifactError",
    "AuthError",
    "ConfigError",
    "ConflictError",
    "DataError",
    "ModelpilotError",
    "NotFoundError",
    "RejectedVersionError",
    "ServerUnreachableError",
    "UntrustedArtifactError",
    "ValidationFailed",
]


class ModelpilotError(Exception):
    """Root of every error modelpilot raises on purpose.

    Examples
    --------
    >>> err = NotFoundError("model", "house-prices", hint="run `modelpilot models list`")
    >>> print(err)
    model 'house-prices' was not found; run `modelpilot models list`
    >>> err.http_status, err.exit_code
    (404, 2)
    """

    http_status: int = 400
    exit_code: int = 2
    kind: str = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.kind, "message": self.message}


class ConfigError(ModelpilotError):
    """The project file (or another configuration) is wrong; lists every problem at once."""

    kind = "config_error"

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        n = len(self.problems)
        super().__init__(
            f"{source} has {n} problem{'s' if n != 1 else ''}:\n{lines}\n"
            "Fix the file and run the command again "
            "(`modelpilot init` writes a commented example)."
        )

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.kind, "message": self.message, "problems": self.problems}


class DataError(ModelpilotError):
    """A data file cannot be read or does not have the expected shape."""

    kind = "data_error"


class AuthError(ModelpilotError):
    """Missing (401) or insufficient (403) credentials."""

    kind = "unauthorized"

    def __init__(self, message: str, *, status: int = 401) -> None:
        super().__init__(message)
        self.http_status = status
        if status == 403:
            self.kind = "forbidden"


class NotFoundError(ModelpilotError):
    """A named thing (model, version, alias, file, deployment, prediction) does not exist."""

    http_status = 404
    kind = "not_found"

    def __init__(self, what: str, name: str, *, hint: str = "") -> None:
        self.what = what
        self.name = name
        message = f"{what} {name!r} was not found"
        if hint:
            message += f"; {hint}"
        super().__init__(message)


class ConflictError(ModelpilotError):
    """The action conflicts with the current state (a race, a duplicate decision)."""

    http_status = 409
    kind = "conflict"


class ArtifactError(ModelpilotError):
    """A model artifact is corrupt, of an unknown format, or fails to load.

    Over HTTP (a reload, a deploy) it is the server's files that are wrong, not the request:
    409, with the reason."""

    http_status = 409
    kind = "artifact_error"


class UntrustedArtifactError(ArtifactError):
    """An artifact whose loading can run arbitrary code (pickle, joblib, an MLflow model with
    pickled parts) was to be loaded without the user's explicit trust.

    Examples
    --------
    >>> print(UntrustedArtifactError("m.pkl"))  # doctest: +ELLIPSIS
    m.pkl is a pickle/joblib file, which can run arbitrary code when loaded; modelpilot ...
    """

    kind = "untrusted_artifact"

    def __init__(
        self,
        path: str,
        *,
        why: str = "is a pickle/joblib file, which can run arbitrary code when loaded",
        instead: str = "or save the model with skops (`skops.io.dump`) or as ONNX instead",
    ) -> None:
        super().__init__(
            f"{path} {why}; modelpilot loads it only when you trust it: pass --trust "
            f"(or trust=True), {instead}"
        )


class ServerUnreachableError(ModelpilotError):
    """No answer from a modelpilot server: nothing listens there, the name does not resolve,
    or it did not answer in time.

    Examples
    --------
    >>> print(ServerUnreachableError("http://127.0.0.1:8000"))
    cannot reach http://127.0.0.1:8000: is `modelpilot serve` running? set --url or MODELPILOT_URL
    >>> print(ServerUnreachableError("http://127.0.0.1:8000", timeout_s=30))
    http://127.0.0.1:8000 did not answer within 30 s: is the server overloaded? ...
    """

    http_status = 503
    kind = "server_unreachable"

    def __init__(self, url: str, *, timeout_s: float | None = None) -> None:
        self.url = url
        if timeout_s is None:
            message = (
                f"cannot reach {url}: is `modelpilot serve` running? set --url or MODELPILOT_URL"
            )
        else:
            message = (
                f"{url} did not answer within {timeout_s:g} s: is the server overloaded? "
                "try again, or raise the client's timeout"
            )
        super().__init__(message)


class RejectedVersionError(ModelpilotError):
    """A version that missed its key-metric targets was to be used without ``--force``."""

    http_status = 409
    kind = "rejected_version"

    def __init__(self, model: str, version: int, reasons: Sequence[str]) -> None:
        why = "; ".join(reasons) if reasons else "it missed its key-metric targets"
        super().__init__(f"{model} v{version} is rejected ({why}); pass --force to use it anyway")


class ValidationFailed(ModelpilotError):
    """Input records failed schema validation; ``problems`` lists every one of them."""

    http_status = 422
    kind = "validation_error"

    def __init__(self, problems: Sequence[dict[str, Any]]) -> None:
        self.problems = list(problems)
        # The device runner's wording: a device refuses a record with the server's message.
        super().__init__(problems_message(self.problems))

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.kind, "message": self.message, "problems": self.problems}
