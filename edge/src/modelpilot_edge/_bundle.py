"""A verified bundle, answering predictions as the server would, and logging each one.

``Bundle.open`` verifies the signature and every checksum before it reads anything
(``_manifest.py``), loads the model (``_engines.py``) and opens the device's log (``_log.py``).
``predict`` validates with the server's rules (``_validation.py``: the same problems and
messages), answers with the server's per-instance shape (``id``, ``prediction``, and
``probabilities`` and ``confidence`` for classifiers), and appends every answer (or failure)
to the log before it returns.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._engines import Engine, NotAnswerable, load_engine
from ._errors import EdgeError, ModelFailed, ValidationFailed
from ._keys import load_public_key
from ._log import LocalLog, LogPolicy
from ._log_writer import PredictionLogWriter, plain
from ._manifest import load_json, read_bundle
from ._validation import Feature, RecordValidator

if TYPE_CHECKING:
    from ._sync import SyncReport

__all__ = ["DEVICE_PATTERN", "Bundle", "default_device_id", "new_ids"]

#: What a device id may be: it becomes a label on the server, so it is short and plain.
DEVICE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")


def new_ids(n: int, *, clock: Callable[[], float] = time.time) -> list[str]:
    """``n`` unique, time-ordered prediction ids, as the server makes them (48-bit
    milliseconds + 80 random bits, in hex).

    Examples
    --------
    >>> ids = new_ids(2, clock=lambda: 1_700_000_000.0)
    >>> len(ids[0]), ids[0][:12], ids[0] != ids[1]
    (32, '018bcfe56800', True)
    """
    prefix = f"{int(clock() * 1000):012x}"
    if n == 1:  # one record, the common case online
        return [prefix + os.urandom(10).hex()]
    noise = os.urandom(10 * n).hex()
    return [prefix + noise[i * 20 : (i + 1) * 20] for i in range(n)]


def default_device_id(environ: Mapping[str, str] = os.environ) -> str:
    """``MODELPILOT_EDGE_DEVICE``, else the host's name made fit for a label."""
    given = environ.get("MODELPILOT_EDGE_DEVICE")
    if given:
        return given
    if hasattr(os, "uname"):  # POSIX: the host's name without importing socket (~5 ms)
        host = os.uname().nodename
    else:  # pragma: no cover - Windows
        import socket

        host = socket.gethostname()
    name = re.sub(r"[^A-Za-z0-9._:-]", "-", host).strip("-.:_")[:64]
    return name or "device"


class Bundle:
    """A model bundle exported by ``modelpilot export edge``, verified and ready to answer.

    Open one with :meth:`open`. Examples are in ``edge/README.md`` (a bundle comes from a
    registered model, which a doctest cannot make without scikit-learn).
    """

    def __init__(
        self,
        path: Path,
        files: Mapping[str, bytes],
        *,
        log: LocalLog | None,
        device_id: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.metadata: dict[str, Any] = load_json(files, "metadata.json")
        self.model_spec: dict[str, Any] = load_json(files, "model.json")
        schema = load_json(files, "schema.json")
        self.profile: dict[str, Any] = load_json(files, "profile.json")
        self.smoke: dict[str, Any] = load_json(files, "smoke.json")
        self.features = [Feature.from_dict(f) for f in schema["features"]]
        self.max_instances = int(schema["max_instances"])
        pii = schema.get("pii") or {}
        self.validator = RecordValidator(self.features)
        self.names = self.validator.names
        self.engine: Engine = load_engine(self.model_spec, files, self.names)
        self.model = str(self.metadata["name"])
        self.version = int(self.metadata["version"])
        self.deployment = str(self.metadata.get("deployment") or self.model)
        self.sha256 = hashlib.sha256(files["model.json"]).hexdigest()
        self.log = log
        if not DEVICE_PATTERN.match(device_id):
            raise EdgeError(
                f"device id {device_id!r} is not allowed: 1 to 64 letters, digits and . _ : - "
                "(it becomes a label on the server); set MODELPILOT_EDGE_DEVICE or device_id="
            )
        self.device_id = device_id
        self.clock = clock
        self._owns_log = False
        classes = self.engine.classes
        self._class_names = None if classes is None else [str(c) for c in classes]
        self._writer = (
            None
            if log is None
            else PredictionLogWriter(
                log,
                model=self.model,
                version=self.version,
                names=self.names,
                classes=classes,
                pii_fields=[f.name for f in self.features if f.pii],
                pii_mode=str(pii.get("mode", "hash")),
                pii_key=bytes.fromhex(pii["key"]) if pii.get("key") else b"",
                clock=clock,
            )
        )

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        public_key: str | os.PathLike[str] | bytes,
        log_dir: str | os.PathLike[str] | None = None,
        log_policy: LogPolicy | None = None,
        logging: bool = True,
        log: LocalLog | None = None,
        device_id: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> Bundle:
        """Verify and load the bundle at ``path`` (a directory or a zip file).

        ``public_key``: the key's text (``ed25519-public:...``), a file holding it, or its 32
        bytes. Predictions are logged to ``log`` (an open log the caller keeps), else to
        ``log_dir`` (default: ``prediction-log`` beside the bundle), unless ``logging`` is
        false. Raises ``BundleRejected`` when the signature or a checksum fails.
        """
        key = public_key if isinstance(public_key, bytes) else load_public_key(public_key)
        bundle_path = Path(path)
        files = read_bundle(bundle_path, public_key=key)
        owned = None
        if logging and log is None:
            directory = (
                Path(log_dir) if log_dir is not None else bundle_path.parent / "prediction-log"
            )
            log = owned = LocalLog(directory, policy=log_policy)
        try:
            bundle = cls(
                bundle_path,
                files,
                log=log if logging else None,
                device_id=device_id or default_device_id(),
                clock=clock,
            )
        except BaseException:
            if owned is not None:
                owned.close()
            raise
        bundle._owns_log = owned is not None
        return bundle

    # ---- predictions ----------------------------------------------------------------------
    def predict(self, records: Any) -> Any:
        """Answers for one record (a dict: one answer) or a list of records (a list).

        Each answer is ``{"id", "prediction"}`` plus ``probabilities`` and ``confidence`` for
        classifiers, as the server's. Invalid input raises ``ValidationFailed`` with the
        server's problems and message; a model that cannot answer raises ``ModelFailed``.
        """
        # type() first: an ABC's isinstance costs ~1 us, and one record is usually a dict.
        if type(records) is dict:
            return self._answer_one(records)
        if isinstance(records, Mapping):
            return self._answer([records], log=True)[0]
        if not isinstance(records, list):
            raise ValidationFailed(
                [
                    {
                        "field": "instances",
                        "expected": "a list of records",
                        "got": type(records).__name__,
                    }
                ]
            )
        return self._answer(records, log=True)

    def _answer_one(self, record: dict[str, Any]) -> dict[str, Any]:
        """One clean record of an all-numeric schema (online, the common case): what
        :meth:`_answer` does for a list of one, without its loops; anything else takes it."""
        started = time.perf_counter()
        row = self.validator.numeric_row(record)
        if row is None:  # the full rules: their problems, worded as the server's
            return self._answer([record], log=True)[0]
        try:
            predictions, proba = self.engine.answer_rows([row])
        except NotAnswerable as exc:
            raise self._failed(exc, 1, [row], None, started, log=True) from None
        ids = new_ids(1, clock=self.clock)
        item = self._item(ids[0], predictions[0], None if proba is None else proba[0])
        if self._writer is not None:
            latency = (time.perf_counter() - started) * 1000
            self._writer.write(ids, [row], None, predictions, proba, latency)
        return item

    def _item(self, id_: str, prediction: Any, probabilities: Any) -> dict[str, Any]:
        """One answer as the server words it: id, prediction, and for a classifier its
        probabilities by class name and the confidence."""
        item: dict[str, Any] = {"id": id_, "prediction": plain(prediction)}
        names = self._class_names
        if probabilities is not None and names is not None:
            item["probabilities"] = dict(zip(names, probabilities, strict=True))
            item["confidence"] = max(probabilities)
        return item

    def _failed(
        self,
        exc: NotAnswerable,
        n: int,
        rows: list[list[float | int]] | None,
        columns: Mapping[str, Sequence[Any]] | None,
        started: float,
        *,
        log: bool,
    ) -> ModelFailed:
        """The error for inputs the model could not answer, logged with their ids."""
        ids = new_ids(n, clock=self.clock)
        if log and self._writer is not None:
            latency = (time.perf_counter() - started) * 1000
            self._writer.write(ids, rows, columns, [None] * n, None, latency, error=str(exc))
        return ModelFailed(ids, str(exc))

    def _answer(self, records: list[Any], *, log: bool) -> list[dict[str, Any]]:
        n = len(records)
        if not n:
            raise ValidationFailed(
                [{"field": "instances", "expected": "at least one instance", "got": []}]
            )
        if n > self.max_instances:
            raise ValidationFailed(
                [
                    {
                        "field": "instances",
                        "expected": f"at most {self.max_instances} instances",
                        "got": f"{n} instances",
                    }
                ]
            )
        started = time.perf_counter()
        rows = self.validator.numeric_rows(records)
        columns: Mapping[str, Sequence[Any]] | None = None
        if rows is None:
            checked = self.validator.validate_records(records)
            if checked.problems:
                raise ValidationFailed(checked.problems)
            columns = checked.columns
        try:
            predictions, proba = (
                self.engine.answer_rows(rows)
                if rows is not None
                else self.engine.answer_columns(columns or {}, n)
            )
        except NotAnswerable as exc:
            raise self._failed(exc, n, rows, columns, started, log=log) from None
        ids = new_ids(n, clock=self.clock)
        answers = [
            self._item(ids[i], predictions[i], None if proba is None else proba[i])
            for i in range(n)
        ]
        if log and self._writer is not None:
            latency = (time.perf_counter() - started) * 1000
            self._writer.write(ids, rows, columns, predictions, proba, latency)
        return answers

    # ---- checks, drift, sync --------------------------------------------------------------
    def smoke_check(self) -> list[str]:
        """Problems of the bundle on its own smoke rows (holdout rows and the registered
        model's answers, recorded at export); empty when it answers them as expected."""
        tolerance = self.model_spec.get("tolerance") or {}
        problems: list[str] = []
        try:
            got = self._answer(list(self.smoke["records"]), log=False)
        except EdgeError as exc:
            return [f"the smoke rows failed: {exc.message}"]
        for index, (answer, expected) in enumerate(zip(got, self.smoke["answers"], strict=True)):
            why = _differs(answer, expected, tolerance)
            if why:
                problems.append(f"smoke row {index}: {why}")
        return problems

    def drift(self, *, last: int = 1000, threshold: float = 0.1) -> dict[str, Any]:
        """PSI of the last ``last`` logged inputs of this version against the bundle's
        reference profile (``_drift.py``)."""
        if self.log is None:
            raise EdgeError("this bundle was opened with logging=False: it has no inputs to check")
        records = [
            r["inputs"]
            for r in self.log.recent(last)
            if r.get("version") == self.version and r.get("model") == self.model
        ]
        from ._blas import import_numpy

        import_numpy()
        from ._drift import drift_report  # NumPy: imported when a device checks drift

        return drift_report(self.profile, self.features, records, threshold=threshold)

    def sync(
        self,
        url: str,
        token: str | None,
        *,
        batch_size: int = 500,
        retries: int = 3,
        timeout_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> SyncReport:
        """Upload the log's pending predictions to the server at ``url`` (``_sync.py``)."""
        if self.log is None:
            raise EdgeError("this bundle was opened with logging=False: there is no log to sync")
        from ._sync import sync_log  # urllib: only a device that syncs pays for it

        return sync_log(
            self.log,
            url,
            token,
            deployment=self.deployment,
            device=self.device_id,
            batch_size=batch_size,
            retries=retries,
            timeout_s=timeout_s,
            sleep=sleep,
        )

    def describe(self) -> dict[str, Any]:
        """What the bundle is: model, version, engine, deployment, device."""
        return {
            "model": self.model,
            "version": self.version,
            "deployment": self.deployment,
            "engine": self.engine.name,
            "device": self.device_id,
            "path": str(self.path),
        }

    def close(self) -> None:
        """Close the log, if the bundle opened it."""
        if self.log is not None and self._owns_log:
            self.log.close()

    def __enter__(self) -> Bundle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _differs(
    answer: Mapping[str, Any], expected: Mapping[str, Any], tolerance: Mapping[str, Any]
) -> str:
    """Why ``answer`` is not ``expected`` (exact, or within the bundle's tolerance)."""
    got, want = answer.get("prediction"), expected.get("prediction")
    relative = float(tolerance.get("relative", 0.0))
    if isinstance(want, float) and isinstance(got, int | float) and relative:
        if abs(got - want) > relative * max(1.0, abs(want)):
            return f"prediction {got!r}, expected {want!r} (relative tolerance {relative:g})"
    elif got != want:
        return f"prediction {got!r}, expected {want!r}"
    limit = float(tolerance.get("probability", 0.0))
    for name, value in (expected.get("probabilities") or {}).items():
        have = (answer.get("probabilities") or {}).get(name)
        if have is None or abs(have - value) > limit:
            return f"probability of {name} {have!r}, expected {value!r}"
    return ""
