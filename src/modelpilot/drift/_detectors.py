"""Uniform wrappers over river's drift detectors: one ``update(x) -> bool`` protocol.

river does the statistics (:class:`river.drift.ADWIN`, :class:`river.drift.binary.DDM`,
:class:`river.drift.PageHinkley`); these wrappers add what a monitor needs on top: a name, the
count of updates, the indices of every detection, a ``reset``, input checks with messages a
person can act on, and one factory, :func:`make_detector`.

What each detector expects:

* ``ddm`` takes a 0/1 error stream (1 = the prediction was wrong): classification only.
* ``adwin`` and ``page_hinkley`` take a real-valued stream: the absolute error for regression
  (best scaled to about 1, see ``ConceptDriftMonitor``), the 0/1 error for classification.
"""

from __future__ import annotations

import difflib
import inspect
import math
import numbers
from collections.abc import Callable
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

from river import drift as river_drift

from modelpilot.errors import DataError, ModelpilotError

__all__ = [
    "DETECTORS",
    "ADWINDetector",
    "DDMDetector",
    "DriftDetector",
    "PageHinkleyDetector",
    "make_detector",
]

InputKind = Literal["binary", "real"]


@runtime_checkable
class DriftDetector(Protocol):
    """What every drift detector answers, whatever algorithm is behind it."""

    @property
    def name(self) -> str: ...

    @property
    def input_kind(self) -> InputKind: ...

    @property
    def drift_detected(self) -> bool: ...

    @property
    def n_updates(self) -> int: ...

    @property
    def detections(self) -> list[int]: ...

    def update(self, x: float) -> bool: ...

    def reset(self) -> None: ...


def _check(owner: str, param: str, value: Any, test: Callable[[Any], bool], allowed: str) -> None:
    """Raise unless ``value`` is a number (an int when ``allowed`` says so) passing ``test``."""
    is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if allowed.startswith("an int"):
        is_number = is_number and isinstance(value, numbers.Integral)
    if not (is_number and test(value)):
        raise _fail(owner, param, value, allowed)


def _fail(owner: str, param: str, value: Any, allowed: str) -> ModelpilotError:
    return ModelpilotError(
        f"The {param!r} parameter of {owner} must be {allowed}; got {value!r} instead."
    )


class _RiverDetector:
    """Shared bookkeeping; a subclass only builds its river detector in ``_build``."""

    kind: ClassVar[str]
    input_kind: ClassVar[InputKind] = "real"

    def __init__(self, name: str | None) -> None:
        if name is not None and not (isinstance(name, str) and name):
            raise _fail(type(self).__name__, "name", name, "a non-empty str or None")
        self._name = name or self.kind
        self._detector: Any = self._build()
        self._n_updates = 0
        self._detections: list[int] = []

    def _build(self) -> Any:
        raise NotImplementedError

    @property
    def name(self) -> str:
        """The name a monitor reports this detector under (defaults to its kind)."""
        return self._name

    @property
    def drift_detected(self) -> bool:
        """Whether the last update detected a drift."""
        return bool(self._detector.drift_detected)

    @property
    def n_updates(self) -> int:
        """How many values were fed since construction or the last :meth:`reset`."""
        return self._n_updates

    @property
    def detections(self) -> list[int]:
        """The 0-based update indices at which a drift was detected (a copy)."""
        return list(self._detections)

    def _validate(self, x: float) -> float:
        value = float(x)
        if not math.isfinite(value):
            raise DataError(
                f"{self._name} got a non-finite value ({x!r}) at update {self._n_updates}; "
                "drop rows without a prediction or a label before feeding the error stream"
            )
        return value

    def update(self, x: float) -> bool:
        """Feed one value; True when a drift is detected at this update."""
        value = self._validate(x)
        self._detector.update(value)
        self._n_updates += 1
        detected = bool(self._detector.drift_detected)
        if detected:
            self._detections.append(self._n_updates - 1)
        return detected

    def reset(self) -> None:
        """Forget everything: the river state, the update count and the detections."""
        self._detector = self._build()
        self._n_updates = 0
        self._detections = []

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self._name!r}, n_updates={self._n_updates})"


class ADWINDetector(_RiverDetector):
    """ADWIN (adaptive windowing) over a real-valued stream, via :class:`river.drift.ADWIN`.

    Parameters
    ----------
    delta
        Significance of the test between the two sub-windows; smaller means fewer false alarms
        and later detections.
    check_interval
        Test for a change every this many updates (river's ``clock``, renamed because a clock
        injects time everywhere else in modelpilot).
    max_buckets
        Buckets of each size kept before merging (memory versus precision).
    min_window_length
        Sub-windows shorter than this are not compared.
    grace_period
        No detection before this many updates.
    name
        The name reported by monitors; defaults to ``"adwin"``.

    Examples
    --------
    >>> import random
    >>> rng = random.Random(7)
    >>> detector = ADWINDetector()
    >>> stream = [rng.gauss(0.0, 1.0) for _ in range(1000)]
    >>> stream += [rng.gauss(2.0, 1.0) for _ in range(500)]
    >>> hits = [i for i, x in enumerate(stream) if detector.update(x)]
    >>> hits[0] - 1000 < 100, detector.n_updates
    (True, 1500)
    """

    kind = "adwin"

    def __init__(
        self,
        *,
        delta: float = 0.002,
        check_interval: int = 32,
        max_buckets: int = 5,
        min_window_length: int = 5,
        grace_period: int = 10,
        name: str | None = None,
    ) -> None:
        owner = type(self).__name__
        _check(owner, "delta", delta, lambda v: 0 < v < 1, "a float in (0, 1)")
        _check(owner, "check_interval", check_interval, lambda v: v >= 1, "an int >= 1")
        _check(owner, "max_buckets", max_buckets, lambda v: v >= 1, "an int >= 1")
        _check(owner, "min_window_length", min_window_length, lambda v: v >= 1, "an int >= 1")
        _check(owner, "grace_period", grace_period, lambda v: v >= 0, "an int >= 0")
        self.delta = delta
        self.check_interval = check_interval
        self.max_buckets = max_buckets
        self.min_window_length = min_window_length
        self.grace_period = grace_period
        super().__init__(name)

    def _build(self) -> Any:
        return river_drift.ADWIN(  # type: ignore[no-untyped-call]
            delta=self.delta,
            clock=self.check_interval,
            max_buckets=self.max_buckets,
            min_window_length=self.min_window_length,
            grace_period=self.grace_period,
        )


class DDMDetector(_RiverDetector):
    """DDM (drift detection method) over a 0/1 error stream, via :class:`river.drift.binary.DDM`.

    Feed 1 when the prediction was wrong and 0 when it was right; DDM signals when the error
    rate rises ``drift_threshold`` standard deviations above its best level so far.

    Parameters
    ----------
    warm_start
        No detection before this many updates.
    warning_threshold
        Standard deviations above the best level that put the detector in its warning zone.
    drift_threshold
        Standard deviations above the best level that signal a drift.
    name
        The name reported by monitors; defaults to ``"ddm"``.

    Examples
    --------
    >>> import random
    >>> rng = random.Random(0)
    >>> detector = DDMDetector()
    >>> errors = rng.choices([0, 1], weights=[0.9, 0.1], k=1000)
    >>> errors += rng.choices([0, 1], weights=[0.6, 0.4], k=1000)
    >>> [i for i, e in enumerate(errors) if detector.update(e)]
    [1030]
    """

    kind = "ddm"
    input_kind = "binary"

    def __init__(
        self,
        *,
        warm_start: int = 30,
        warning_threshold: float = 2.0,
        drift_threshold: float = 3.0,
        name: str | None = None,
    ) -> None:
        owner = type(self).__name__
        _check(owner, "warm_start", warm_start, lambda v: v >= 0, "an int >= 0")
        _check(owner, "warning_threshold", warning_threshold, lambda v: v > 0, "a float > 0")
        _check(owner, "drift_threshold", drift_threshold, lambda v: v > 0, "a float > 0")
        self.warm_start = warm_start
        self.warning_threshold = warning_threshold
        self.drift_threshold = drift_threshold
        super().__init__(name)

    def _build(self) -> Any:
        return river_drift.binary.DDM(
            warm_start=self.warm_start,
            warning_threshold=self.warning_threshold,
            drift_threshold=self.drift_threshold,
        )

    @property
    def warning_detected(self) -> bool:
        """Whether the last update left the detector in its warning zone."""
        return bool(self._detector.warning_detected)

    def _validate(self, x: float) -> float:
        if x not in (0, 1):
            raise DataError(
                f"{self._name} (DDM) expects a 0/1 error stream (1 = wrong prediction); got {x!r} "
                f"at update {self._n_updates}. For a real-valued error (regression) use "
                "'adwin' or 'page_hinkley'."
            )
        return float(x)


class PageHinkleyDetector(_RiverDetector):
    """The Page-Hinkley test over a real-valued stream, via :class:`river.drift.PageHinkley`.

    ``delta`` and ``threshold`` are in the units of the stream: the defaults suit values of
    about 0 to 1 (a 0/1 error, or an absolute error divided by its usual size).

    Parameters
    ----------
    min_instances
        No detection before this many updates.
    delta
        Magnitude of change tolerated without counting towards a drift.
    threshold
        Cumulative deviation (lambda) that signals a drift.
    alpha
        Forgetting factor of the running mean.
    mode
        ``"up"`` detects rises only, ``"down"`` falls only, ``"both"`` either. The default is
        ``"up"`` (river's is ``"both"``) because modelpilot feeds it error streams, where only a
        rising error is a drift to act on; a falling one is the model doing better.
    name
        The name reported by monitors; defaults to ``"page_hinkley"``.

    Examples
    --------
    >>> import random
    >>> rng = random.Random(3)
    >>> detector = PageHinkleyDetector()
    >>> stream = [rng.random() for _ in range(1000)] + [rng.random() + 1.0 for _ in range(200)]
    >>> hits = [i for i, x in enumerate(stream) if detector.update(x)]
    >>> [i - 1000 for i in hits]
    [46]
    """

    kind = "page_hinkley"

    def __init__(
        self,
        *,
        min_instances: int = 30,
        delta: float = 0.005,
        threshold: float = 50.0,
        alpha: float = 1 - 0.0001,
        mode: Literal["up", "down", "both"] = "up",
        name: str | None = None,
    ) -> None:
        owner = type(self).__name__
        _check(owner, "min_instances", min_instances, lambda v: v >= 1, "an int >= 1")
        _check(owner, "delta", delta, lambda v: v >= 0, "a float >= 0")
        _check(owner, "threshold", threshold, lambda v: v > 0, "a float > 0")
        _check(owner, "alpha", alpha, lambda v: 0 < v <= 1, "a float in (0, 1]")
        if mode not in ("up", "down", "both"):
            raise _fail(owner, "mode", mode, "one of 'up', 'down', 'both'")
        self.min_instances = min_instances
        self.delta = delta
        self.threshold = threshold
        self.alpha = alpha
        self.mode = mode
        super().__init__(name)

    def _build(self) -> Any:
        return river_drift.PageHinkley(
            min_instances=self.min_instances,
            delta=self.delta,
            threshold=self.threshold,
            alpha=self.alpha,
            mode=self.mode,
        )


#: The detectors :func:`make_detector` knows, by name.
DETECTORS: dict[str, Callable[..., DriftDetector]] = {
    "adwin": ADWINDetector,
    "ddm": DDMDetector,
    "page_hinkley": PageHinkleyDetector,
}


def make_detector(name: str, /, **params: Any) -> DriftDetector:
    """Build a detector by name (``adwin``, ``ddm``, ``page_hinkley``) with keyword parameters.

    Examples
    --------
    >>> detector = make_detector("page_hinkley", threshold=20.0, mode="both")
    >>> detector.name, detector.input_kind, detector.update(0.0)
    ('page_hinkley', 'real', False)
    >>> make_detector("kswin")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    modelpilot.errors.ModelpilotError: unknown drift detector 'kswin'; known detectors: adwin, ...
    """
    factory = DETECTORS.get(name)
    if factory is None:
        raise ModelpilotError(
            f"unknown drift detector {name!r}; known detectors: {', '.join(DETECTORS)}"
        )
    accepted = [p for p in inspect.signature(factory).parameters if p != "self"]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        hints = [
            f"{p!r} (did you mean {close[0]!r}?)" if close else repr(p)
            for p in unknown
            for close in [difflib.get_close_matches(p, accepted, n=1)]
        ]
        raise ModelpilotError(
            f"drift detector {name!r} does not take {', '.join(hints)}; "
            f"its parameters are: {', '.join(accepted)}"
        )
    return factory(**params)
