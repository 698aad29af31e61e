"""``modelpilot`` with the closed loop's decisions as they were before issue 13: the baseline
arm of ``loop_scenarios.py``.

Run: ``python benchmarks/loop_baseline.py -p PROJECT serve ...`` (any ``modelpilot`` command).

Two things are put back as they were, in this process only:

- the gates are *flat*: any failing gate fails the analysis, whatever kind of evidence it is
  (an agreement proxy can veto a candidate the labels show better), and a candidate the labels
  show worse waits for ``rollout.failure_limit`` failures like any other;
- a retrained candidate is judged against the thresholds meant for like-for-like replacements
  (the offline agreement and shift its run measured are ignored).

The third, the retry rule, is a setting (``retrain.max_retries: 0``), and the scenario's
project file of this arm sets it; the alert rules are the same in both arms, so detection
delays compare like with like. Nothing here is part of modelpilot: it exists to measure what
the ranking, the expectations and the retry rule change.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any


def flat(results: Sequence[Any]) -> Any:
    """The decision before gates were ranked: any failure fails, any missing data waits."""
    from modelpilot.rollout._ranking import Decision

    failed = [r for r in results if r.status == "fail"]
    if failed:
        reason = "; ".join(f"{r.metric} failed ({r.detail})" for r in failed)
        return Decision("fail", "proxies", reason)
    waiting = [r.metric for r in results if r.status == "insufficient"]
    if waiting:
        return Decision("wait", "none", f"waiting for {', '.join(waiting)}")
    return Decision("pass", "proxies", "every gate passed")


def patch() -> None:
    from modelpilot.rollout import _canary

    analyze = _canary.analyze

    def without_expectations(*args: Any, **kwargs: Any) -> Any:
        kwargs["expected"] = None
        return analyze(*args, **kwargs)

    _canary.analyze = without_expectations  # type: ignore[assignment]
    _canary.decide = flat  # type: ignore[assignment]


if __name__ == "__main__":
    patch()
    from modelpilot.cli import run

    sys.exit(run(sys.argv[1:]))
