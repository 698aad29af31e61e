"""One decision from a step's gates, ranked by the kind of evidence each gate is.

1. A failed *guard* (error rate, latency; a model that raises shows as errors) vetoes.
2. The *labels* (the ``key_metric`` gate's always-valid sequential test) come next: when they
   show the candidate better, no proxy can veto it (its failure is recorded as overruled);
   when they show it worse, it fails even if every proxy passes, and at once (the test stays
   valid at whichever look it crosses its level, so there is nothing to wait for).
3. When the labels are inconclusive or missing, the *proxies* (agreement, prediction shift,
   estimated key metric) decide, as they did before labels ranked above them.

Every decision says which evidence won (``evidence``): ``guards``, ``labels`` or
``proxies``, and ``none`` while the step still waits for data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from modelpilot.rollout._measures import GateResult

__all__ = ["Decision", "decide"]

Outcome = Literal["pass", "fail", "wait"]
Evidence = Literal["guards", "labels", "proxies", "none"]


@dataclass(frozen=True)
class Decision:
    """What one analysis of a step decided, and on which evidence.

    ``outcome``: ``pass`` (the step may end), ``fail`` (counts toward ``failure_limit``;
    ``immediate`` rolls back at once), or ``wait`` (too little data to judge yet).
    ``overruled``: the proxy gates that failed but could not veto the labels.
    """

    outcome: Outcome
    evidence: Evidence
    reason: str
    overruled: list[str] = field(default_factory=list)
    immediate: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _failed(results: Sequence[GateResult]) -> str:
    return "; ".join(
        f"{r.metric} failed ({r.detail}: {_fmt(r.value)} vs {r.threshold:g})" for r in results
    )


def decide(results: Sequence[GateResult]) -> Decision:
    """Rank the gates' results into one decision (see the module's docstring).

    Examples
    --------
    >>> agreement = GateResult("agreement", "fail", 0.55, 0.8, 200, "share of identical answers",
    ...                        "proxy")
    >>> labels = GateResult("key_metric", "pass", 1e-6, 0.05, 200, "loss difference -0.3",
    ...                     "evidence", "better")
    >>> decision = decide([agreement, labels])
    >>> decision.outcome, decision.evidence, decision.overruled
    ('pass', 'labels', ['agreement'])
    >>> decide([agreement]).outcome, decide([agreement]).evidence
    ('fail', 'proxies')
    """
    guards = [r for r in results if r.kind == "guard"]
    # A proxy that cannot judge this rollout at all (no trusted estimate) takes no part.
    proxies = [r for r in results if r.kind == "proxy" and r.status != "unavailable"]
    labels = next((r for r in results if r.kind == "evidence"), None)
    said = labels.evidence if labels is not None else None
    failed_guards = [r for r in guards if r.status == "fail"]
    if failed_guards:
        return Decision(
            "fail", "guards", f"{_failed(failed_guards)}; a guard vetoes whatever else is known"
        )
    waiting_guards = [r.metric for r in guards if r.status == "insufficient"]
    passed_proxies = [r.metric for r in proxies if r.status == "pass"]
    failed_proxies = [r for r in proxies if r.status == "fail"]
    if labels is not None and said in ("worse", "misses_target"):
        what = "worse than the primary" if said == "worse" else "missing a key-metric target"
        reason = f"{_failed([labels])}: labels show the candidate {what}"
        if passed_proxies:
            reason += f" ({', '.join(passed_proxies)} passed, but proxies rank below labels)"
        return Decision("fail", "labels", reason, immediate=said == "worse")
    if labels is not None and said == "better":
        overruled = [r.metric for r in failed_proxies]
        reason = f"labels show the candidate better ({labels.detail})"
        if overruled:
            reason += f"; {_failed(failed_proxies)}, overruled: a proxy cannot veto labels"
        if waiting_guards:
            return Decision(
                "wait", "labels", f"{reason}; waiting for {', '.join(waiting_guards)}", overruled
            )
        return Decision("pass", "labels", reason, overruled)
    labels_say = (
        "no labels gate"
        if labels is None
        else f"labels inconclusive ({labels.detail})"
        if said == "inconclusive"
        else f"labels missing ({labels.detail})"
    )
    if failed_proxies:
        return Decision(
            "fail", "proxies", f"{_failed(failed_proxies)}; {labels_say}, so the proxies decide"
        )
    waiting = waiting_guards + [r.metric for r in proxies if r.status == "insufficient"]
    if waiting:
        return Decision("wait", "none", f"{labels_say}; waiting for {', '.join(waiting)}")
    if proxies:
        return Decision("pass", "proxies", f"{labels_say}; guards and proxies passed")
    return Decision("pass", "guards", f"{labels_say}; the guards passed")
