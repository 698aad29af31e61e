"""A linear model answering one record in plain Python: no NumPy at start-up or per record.

Why: on a device, importing NumPy costs ~120 ms of CPU, more than the rest of opening a
bundle, and a NumPy call costs ~1 us, so the ~15 calls of the kernel for one row of 20
features cost more than the arithmetic. Here one row is the same operations as
``kernels.LinearArrays.evaluate``, in the same order, on Python floats (IEEE float64, so each
subtraction, division, product, ``exp`` and ratio is the same correctly rounded operation),
with one difference: the dot product is summed left to right, where BLAS sums in blocks (with
FMA where the CPU has it). The score can then differ from the server's in the last bits
(on about half the rows of 20 features), never by more than the rounding error bound
``(n + 2) * 2**-53 * sum(|x_i * w_i|)`` of either sum. Hence:

- classes are exactly the server's: where a binary score is within twice that bound of 0, or
  the best of a multiclass model's scores within four times it of the runner-up (each of the
  two scores may be off by the bound, in both sums), the row goes to the NumPy kernel, which
  decides it as the server does;
- probabilities (and a regressor's predictions) agree with the server's within 1e-12
  (absolute for probabilities, relative for predictions; the tests check 1e-12, a few ulps
  in practice). Batches use the NumPy kernel, so smoke checks and exports stay bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from operator import mul
from typing import Any

from ._engines import Answers, Engine, NotAnswerable
from ._npy import read_npz

__all__ = ["PythonLinearEngine"]

_NO_MISSING = "a linear model takes no missing values (ValueError)"
_ULP = 2.0**-53


class PythonLinearEngine:
    """One record of a linear model in plain Python; many records with NumPy (loaded then).

    Made by :meth:`load`, which returns None for a model this path does not take (category
    codes, or arrays that are not plain float64).
    """

    def __init__(
        self,
        spec: Mapping[str, Any],
        files: Mapping[str, bytes],
        schema: Sequence[str],
        arrays: Mapping[str, tuple[tuple[int, ...], list[Any]]],
    ) -> None:
        self.name = "linear"
        self._spec, self._files, self._schema = spec, files, schema
        self._numpy: Engine | None = None
        classes = spec.get("classes")
        self.classes: list[Any] | None = None if classes is None else list(classes)
        self._labels: list[Any] = self.classes or []
        self.columns: list[str] = list(spec["columns"])
        missing = [c for c in self.columns if c not in schema]
        if missing:
            raise ValueError(f"the model's columns {missing} are not in the bundle's schema")
        self._take = [list(schema).index(c) for c in self.columns]
        self._boolean = [spec["encodings"][c] == "boolean" for c in self.columns]
        n_scalers = int(arrays["n_scalers"][1][0])
        self._steps = [
            (arrays[f"means_{i}"][1], arrays[f"scales_{i}"][1]) for i in range(n_scalers)
        ]
        self.n_classes = int(arrays["n_classes"][1][0])
        shape, flat = arrays["coef_t"]
        width = shape[0]
        self._one_output = len(shape) == 1
        outputs = 1 if self._one_output else shape[1]
        # Column k of coef_t, as a list: one weight per input.
        self._weights = [flat[k::outputs] for k in range(outputs)]
        intercept = arrays["intercept"][1]
        self._intercept = [intercept[0 if len(intercept) == 1 else k] for k in range(outputs)]
        self._binary = bool(self.n_classes) and outputs == 1
        self._error_scale = (width + 2) * _ULP

    @classmethod
    def load(
        cls, spec: Mapping[str, Any], files: Mapping[str, bytes], schema: Sequence[str]
    ) -> PythonLinearEngine | None:
        """The engine, or None if the model needs NumPy (category codes; other arrays)."""
        if any(spec["encodings"][c] not in ("number", "boolean") for c in spec["columns"]):
            return None
        classes = spec.get("classes")
        # NumPy makes one type of mixed labels ([1, 2.5] -> 1.0): such labels go through it.
        if classes is not None and len({type(c) for c in classes}) != 1:
            return None
        arrays = read_npz(files["model/linear.npz"])
        if arrays is None or not {"n_scalers", "n_classes", "coef_t", "intercept"} <= set(arrays):
            return None
        shape = arrays["coef_t"][0]
        if not 1 <= len(shape) <= 2 or shape[0] != len(spec["columns"]):
            return None
        if arrays["n_classes"][1][0] and not classes:  # scores without labels: as NumPy does
            return None
        return cls(spec, files, schema, arrays)

    # ---- the engine's two calls ---------------------------------------------------------------
    def answer_rows(self, rows: Sequence[Sequence[float]]) -> Answers:
        if len(rows) != 1:
            return self.numpy().answer_rows(rows)
        # Finite: the validator's numeric rows hold no NaN or infinity (their sum is finite).
        row = rows[0]
        x = [float(row[i]) for i in self._take]
        return self._answer_one(x) or self.numpy().answer_rows(rows)

    def answer_columns(self, columns: Mapping[str, Sequence[Any]], n: int) -> Answers:
        if n != 1:
            return self.numpy().answer_columns(columns, n)
        x: list[float] = []
        for name, boolean in zip(self.columns, self._boolean, strict=True):
            value = columns[name][0]
            if value is None:
                x.append(math.nan)
            elif boolean:
                x.append(1.0 if value else 0.0)
            else:
                try:
                    x.append(float(value))
                except (TypeError, ValueError):
                    raise NotAnswerable(f"{name} must be a number for this model") from None
        if not all(map(math.isfinite, x)):
            raise NotAnswerable(_NO_MISSING)
        return self._answer_one(x) or self.numpy().answer_columns(columns, n)

    def numpy(self) -> Engine:
        """The NumPy kernel of the same model (imported on first use)."""
        if self._numpy is None:
            from ._blas import import_numpy

            import_numpy()
            from ._numpy_engines import KernelEngine

            self._numpy = KernelEngine(self._spec, self._files, self._schema)
        return self._numpy

    # ---- one row ------------------------------------------------------------------------------
    def _answer_one(self, x: list[float]) -> Answers | None:
        """The answer for one row, or None where the plain sum cannot decide the class."""
        for means, scales in self._steps:  # StandardScaler.transform: - mean_, then / scale_
            if means:
                x = [v - m for v, m in zip(x, means, strict=True)]
            if scales:
                x = [v / s for v, s in zip(x, scales, strict=True)]
        scores: list[float] = []
        margin = 0.0  # the largest rounding error bound of a score
        for weights, intercept in zip(self._weights, self._intercept, strict=True):
            terms = list(map(mul, x, weights))
            scores.append(sum(terms) + intercept)
            if self.n_classes:
                bound = (sum(map(abs, terms)) + abs(intercept)) * self._error_scale
                margin = max(margin, bound)
        if not self.n_classes:
            return ([scores[0]] if self._one_output else [scores]), None
        if self._binary:
            score = scores[0]
            if abs(score) <= 2 * margin:
                return None
            try:
                positive = 1 / (1 + math.exp(-score))
            except OverflowError:  # exp(-score) is inf for NumPy: 1 / inf
                positive = 0.0
            return [self._labels[1 if score > 0 else 0]], [[1 - positive, positive]]
        best = max(range(len(scores)), key=scores.__getitem__)
        runner_up = max(s for k, s in enumerate(scores) if k != best)
        # Each score is within ``margin`` of the exact one, as BLAS's is: a gap over 4x it
        # leaves BLAS's order the same (against 0, a binary score needs only 2x).
        if scores[best] - runner_up <= 4 * margin:
            return None
        # sklearn.utils.extmath.softmax: subtract the maximum, exp, divide by the sum.
        top = scores[best]
        exps = [math.exp(s - top) for s in scores]
        total = sum(exps)
        return [self._labels[best]], [[e / total for e in exps]]
