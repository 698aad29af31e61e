"""The key-metric gate's sequential test, by simulation (fixed seeds).

A canary's analysis looks at the labelled losses again every few seconds. A t-test at level
alpha, looked at after every batch, crosses alpha by chance far more often than alpha; the
mSPRT's always-valid p-value does not, however often it is looked at, and still finds a real
difference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from scipy import stats

from modelpilot.rollout import msprt

ALPHA = 0.05
LOOKS = 50  # one look after every batch...
BATCH = 20  # ...of 20 labelled predictions per version: up to 1,000 each

Draw = Callable[[np.random.Generator, int, float], np.ndarray]


def absolute_errors(rng: np.random.Generator, n: int, increase: float) -> np.ndarray:
    """A regression model's per-request loss: |error|, higher by ``increase`` on average."""
    return np.abs(rng.normal(0.0, 1.0, n)) + increase


def misclassified(rng: np.random.Generator, n: int, increase: float) -> np.ndarray:
    """A classifier's per-request 0/1 loss, 10% errors (plus ``increase``)."""
    return (rng.random(n) < 0.10 + increase).astype(float)


def naive_p_values(a: np.ndarray, b: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Welch's t-test on the first n losses of each, for every n in ``sizes``."""
    sum_a, sum_b = np.cumsum(a)[sizes - 1], np.cumsum(b)[sizes - 1]
    sq_a, sq_b = np.cumsum(a * a)[sizes - 1], np.cumsum(b * b)[sizes - 1]
    mean_a, mean_b = sum_a / sizes, sum_b / sizes
    var_a = (sq_a - sizes * mean_a**2) / (sizes - 1) / sizes
    var_b = (sq_b - sizes * mean_b**2) / (sizes - 1) / sizes
    t = (mean_b - mean_a) / np.sqrt(var_a + var_b)
    df = (var_a + var_b) ** 2 / (var_a**2 / (sizes - 1) + var_b**2 / (sizes - 1))
    p: np.ndarray = 2 * stats.t.sf(np.abs(t), df)
    return p


@dataclass
class Simulation:
    """How often each test ever crossed alpha, and after how many losses per version."""

    msprt_crossed: float
    naive_crossed: float
    msprt_samples: list[int]


def simulate(draw: Draw, increase: float, *, runs: int, seed: int) -> Simulation:
    rng = np.random.default_rng(seed)
    sizes = np.arange(1, LOOKS + 1) * BATCH
    msprt_hits, naive_hits, samples = 0, 0, []
    for _ in range(runs):
        primary = draw(rng, LOOKS * BATCH, 0.0)
        candidate = draw(rng, LOOKS * BATCH, increase)
        with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 when no errors yet
            naive_hits += bool(np.nanmin(naive_p_values(primary, candidate, sizes)) < ALPHA)
        p_value = 1.0
        for n in sizes:  # what the gate does: look again after every batch
            p_value = msprt(primary[:n], candidate[:n], previous_p=p_value).p_value
            if p_value < ALPHA:
                msprt_hits += 1
                samples.append(int(n))
                break
    return Simulation(msprt_hits / runs, naive_hits / runs, samples)


@pytest.mark.parametrize("draw", [absolute_errors, misclassified])
def test_looking_after_every_batch_keeps_msprt_false_alarms_below_alpha(draw: Draw) -> None:
    result = simulate(draw, 0.0, runs=250, seed=11)
    assert result.msprt_crossed <= ALPHA
    # The t-test at the same level, looked at as often, raises several times as many alarms.
    assert result.naive_crossed > 3 * ALPHA
    assert result.naive_crossed > 5 * max(result.msprt_crossed, 0.01)


def test_msprt_finds_a_real_increase_of_the_loss() -> None:
    # A quarter of a standard deviation more absolute error (the loss's sd is about 0.6).
    result = simulate(absolute_errors, 0.15, runs=150, seed=12)
    assert result.msprt_crossed >= 0.95
    assert np.median(result.msprt_samples) <= 400

    large = simulate(absolute_errors, 0.5, runs=50, seed=13)
    assert large.msprt_crossed == 1.0
    assert max(large.msprt_samples) <= 200


def test_a_worse_candidate_is_worse_and_a_better_one_is_not() -> None:
    rng = np.random.default_rng(14)
    primary = absolute_errors(rng, 500, 0.0)
    worse = msprt(primary, absolute_errors(rng, 500, 0.3))
    better = msprt(primary, absolute_errors(rng, 500, -0.3))
    assert worse.worse(ALPHA)
    assert better.p_value < ALPHA and not better.worse(ALPHA)  # different, but not worse
    assert (worse.n_a, worse.n_b) == (500, 500)


def test_a_p_value_once_crossed_stays_crossed() -> None:
    """Always valid: the p-value is the running minimum over the looks."""
    rng = np.random.default_rng(15)
    a, b = absolute_errors(rng, 400, 0.0), absolute_errors(rng, 400, 0.0)
    assert msprt(a, b, previous_p=0.01).p_value == 0.01
    assert msprt(a[:1], b[:1], previous_p=0.3).p_value == 0.3  # too little data: unchanged
