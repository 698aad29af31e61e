"""``canary``: a share of traffic to the candidate, ramped through ``rollout.steps``, each step
held ``step_interval_s`` and judged by the gates (``rollout.gates``) before the next.

The gates read the prediction log of the step: the requests each version answered, the
mirrored copies of the candidate's requests that the primary scored (``source="shadow"``, same
id), and the labels that arrived (``_analysis.py``). A gate below its ``min_samples`` holds the
step (``insufficient``) rather than passing on too little data. The gates' results are
ranked into one decision (``_ranking.py``: guards, then labels, then proxies); ``failure_limit``
failed analyses in a step roll the canary back, and labels that show the candidate worse roll
it back at once. Each analysis, its decision and the evidence that won are kept in the
rollout's history (``modelpilot status`` shows the last one); each step and the promotion or
rollback are in the audit log with that evidence.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pandas as pd

from modelpilot.inference import LoadedVersion, Router
from modelpilot.rollout._analysis import StepWindow, analyze
from modelpilot.rollout._ranking import decide
from modelpilot.rollout._routers import CanaryRouter
from modelpilot.rollout._store import RolloutRecord
from modelpilot.rollout._strategy import Event, RolloutContext, StagedStrategy

__all__ = ["CanaryDeploy", "step_window"]


def step_window(ctx: RolloutContext, record: RolloutRecord, since: float) -> StepWindow:
    """What the gates read: each version's answers since ``since``, and mirrored pairs."""
    frame = ctx.prediction_window(record, since)
    if frame.empty:
        empty = pd.DataFrame(columns=["id", "prediction", "latency_ms"])
        return StepWindow(empty, empty, pd.DataFrame(columns=["id", "candidate", "primary"]))
    online = frame[frame["source"] == "online"]
    shadow = frame[frame["source"] == "shadow"]
    candidate = online[online["version"] == record.candidate_version]
    # The primary's answers in the step: the requests it served and the copies of the
    # candidate's requests it scored. At 100% only the copies exist; counting answered
    # requests alone, the latency gate waited forever and the last step never passed.
    primary = frame[
        (frame["version"] == record.primary_version) & frame["source"].isin(("online", "shadow"))
    ]
    mirrored = shadow[shadow["version"] == record.primary_version]
    if "error" in mirrored:
        mirrored = mirrored[mirrored["error"].isna()]
    ok = candidate if "error" not in candidate else candidate[candidate["error"].isna()]
    pairs = ok[["id", "prediction"]].merge(
        mirrored[["id", "prediction"]], on="id", suffixes=("_c", "_p")
    )
    pairs = pairs.rename(columns={"prediction_c": "candidate", "prediction_p": "primary"})
    return StepWindow(candidate.reset_index(drop=True), primary.reset_index(drop=True), pairs)


def _labeled(
    ctx: RolloutContext, record: RolloutRecord, since: float
) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    labeled = ctx.labeled_window(record, since)
    if labeled.empty:
        return None
    online = labeled[labeled["source"] == "online"]
    return (
        online[online["version"] == record.candidate_version],
        online[online["version"] == record.primary_version],
    )


class CanaryDeploy(StagedStrategy):
    name: ClassVar[str] = "canary"

    def config(self, ctx: RolloutContext, now: float) -> dict[str, Any]:
        return {**super().config(ctx, now), "steps": list(ctx.settings.steps)}

    def router(
        self,
        ctx: RolloutContext,
        record: RolloutRecord,
        primary: LoadedVersion,
        candidate: LoadedVersion,
    ) -> Router:
        steps = record.config["steps"]
        weight = float(steps[min(record.step, len(steps) - 1)])
        return CanaryRouter(
            primary, candidate, weight, mirror_fraction=ctx.settings.mirror_fraction
        )

    def tick(self, ctx: RolloutContext, record: RolloutRecord, now: float) -> list[Event]:
        if record.paused:
            return []
        interval = float(record.config["step_interval_s"])
        elapsed = now - record.step_started_at
        if not ctx.analysis_due(record, now, step_over=elapsed >= interval):
            return []
        settings = ctx.settings
        # Labels only for a key_metric gate: reading the step's window once more for them
        # doubled the cost of every analysis, which grows with the step's traffic.
        wants_labels = any(g.metric == "key_metric" for g in settings.gates)
        wants_estimates = any(g.metric == "estimated_key_metric" for g in settings.gates)
        results = analyze(
            step_window(ctx, record, record.step_started_at),
            settings.gates,
            task=ctx.task,
            key_metrics=ctx.key_metrics,
            labeled=_labeled(ctx, record, record.step_started_at) if wants_labels else None,
            expected=record.config.get("expected"),
            estimators=ctx.estimators(record) if wants_estimates else None,
        )
        decision = decide(results)
        record.history.append(
            {
                "at": now,
                "step": record.step,
                "weight": record.config["steps"][record.step],
                "gates": [r.to_dict() for r in results],
                "decision": decision.to_dict(),
            }
        )
        if decision.outcome == "fail":
            record.config["failures"] = int(record.config.get("failures", 0)) + 1
            if decision.immediate or record.config["failures"] >= settings.failure_limit:
                return [
                    ctx.roll_back_rollout(
                        record,
                        decision.reason,
                        recorded=f"gates failed: {decision.reason}",
                        step=record.step,
                        evidence=decision.evidence,
                    )
                ]
            ctx.store.update(record, bump=False)
            return [{"deployment": record.deployment, "event": "gate_failed"}]
        if elapsed >= interval and decision.outcome == "pass":
            if record.step + 1 >= len(record.config["steps"]):
                ctx.promote_rollout(
                    record,
                    "controller",
                    "every canary step passed its gates",
                    details={"evidence": decision.evidence, "decision": decision.reason},
                )
                return [{"deployment": record.deployment, "event": "promoted"}]
            record.step += 1
            record.step_started_at = now
            record.config["failures"] = 0
            ctx.store.update(record)
            weight = record.config["steps"][record.step]
            ctx.audit(
                "controller",
                "canary.step",
                record.deployment,
                {
                    "rollout": record.id,
                    "weight": weight,
                    "evidence": decision.evidence,
                    "reason": decision.reason,
                },
            )
            return [{"deployment": record.deployment, "event": "step", "weight": weight}]
        ctx.store.update(record, bump=False)
        return []

    def shadowed(self, record: RolloutRecord) -> bool:
        # A shadow-canary past its shadow phase runs as a canary.
        return record.config.get("shadow_until") is not None

    def describe(self, ctx: RolloutContext, record: RolloutRecord, info: dict[str, Any]) -> None:
        steps = record.config["steps"]
        remaining = float(record.config["step_interval_s"]) - (ctx.clock() - record.step_started_at)
        info["step_of"] = f"{record.step + 1}/{len(steps)}"
        info["weight"] = steps[record.step]
        info["next_step_in_s"] = None if record.paused else max(0.0, remaining)
        last: dict[str, Any] = next((h for h in reversed(record.history) if "gates" in h), {})
        info["gates"] = last.get("gates", [])
        info["decision"] = last.get("decision")
        if record.config.get("expected"):
            info["expected"] = record.config["expected"]
