"""A model that holds chosen requests until the test lets them go: requests in flight on demand.

A house of ``19_000`` square feet or more (the data sets never reach 8,000) is held in the model
thread until the test opens its :class:`Gate`; so a test can disconnect a client, or stop the
server, while a request is provably in flight. It lives in a module of its own so that a
pickled instance loads in the server process (started with this directory on ``PYTHONPATH``
and ``GATES_VARIABLE`` naming the gates' directory).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from flaky_model import FlakyRegressor

GATES_VARIABLE = "MODELPILOT_TEST_GATES"
#: Houses at least this large wait for their gate.
HELD_FROM = 19_000.0
#: The longest a held request waits for its gate: a bound for a test that failed to open it.
HOLD_LIMIT = 60.0


@dataclass(frozen=True)
class Gate:
    """The gate of one house size: the model marks its arrival, the test opens it."""

    directory: Path
    size: float

    def _file(self, kind: str) -> Path:
        return self.directory / f"{self.size:.1f}.{kind}"

    def arrive(self) -> None:
        self._file("arrived").touch()

    def arrived(self) -> bool:
        return self._file("arrived").exists()

    def open(self) -> None:
        self._file("open").touch()

    def wait_open(self) -> None:
        deadline = time.monotonic() + HOLD_LIMIT
        while not self._file("open").exists() and time.monotonic() < deadline:
            time.sleep(0.01)  # the pause between looks at the gate


class HeldRegressor(FlakyRegressor):
    """:class:`FlakyRegressor` (raises on ``CURSED_SIZE``) that holds large houses at their gate.

    Examples
    --------
    >>> frame = pd.DataFrame({"size_sqft": [1000.0, 2000.0], "price": [1.0, 3.0]})
    >>> model = HeldRegressor().fit(frame[["size_sqft"]], frame["price"])
    >>> model.predict(frame[["size_sqft"]]).tolist()  # small houses are never held
    [2.0, 2.0]
    """

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        directory = os.environ.get(GATES_VARIABLE)
        sizes = np.asarray(X["size_sqft"], dtype=float)
        if directory:
            for size in sorted({float(s) for s in sizes if s >= HELD_FROM}):
                gate = Gate(Path(directory), size)
                gate.arrive()
                gate.wait_open()
        return super().predict(X)
