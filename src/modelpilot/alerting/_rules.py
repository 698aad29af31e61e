"""Alert rules: the defaults a project gets from its key metrics and service objectives, and
the two small functions every rule evaluation uses (``aggregate`` and ``breaches``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from modelpilot.registry import ESTIMABLE
from modelpilot.spec import AlertRuleSpec, ProjectSpec

Comparison = Literal["<=", ">=", "<", ">"]

__all__ = ["aggregate", "alert_rules", "breaches", "default_rules"]

# A key metric's target says what is good ("mae <= 25000"); its alert fires on the opposite.
_MISSES: dict[str, Comparison] = {"<=": ">", "<": ">=", ">=": "<", ">": "<="}
# The software objectives must be broken for this long before anyone is told, and the value
# must come back below CLEAR_SHARE of the objective for as long before the alert resolves.
SUSTAINED_S = 300.0
CLEAR_SHARE = 0.8


def default_rules(spec: ProjectSpec) -> list[AlertRuleSpec]:
    """The rules a project gets without writing any (``alerts.defaults: true``).

    - ``latency_p99``: the p99 latency (mean over a minute) above ``service_objectives`` for
      5 minutes; it resolves after 5 minutes below 80% of the objective.
    - ``error_rate``: the same for the error rate.
    - ``key_metric_<name>``: each key metric over the last ``monitoring.label_window`` labels
      missing its target.
    - ``estimated_key_metric_<name>`` (classifiers): each key metric that can be estimated
      from calibrated probabilities missing its target, before any label says so.
    - ``drift_importance``: the drifted features carry at least
      ``monitoring.drift.importance_share`` (0.3) of the model's permutation importance. Drift
      in features the model ignores shows in the drift series (``drift_share``,
      ``drift_detected``) and raises no alert.
    - ``concept_drift``: a concept-drift detector on the error stream fired.
    - ``labels_skipped``: labels that do not fit the model's task were left out of the key
      metrics within the last hour.
    - ``shadow_agreement``: during a shadow, the candidate agreeing with the primary less often
      than the ``agreement`` gate of ``rollout.gates`` requires (0.8 by default): the canary
      that follows would fail that gate. Without an agreement gate there is no such rule.

    Examples
    --------
    >>> spec = ProjectSpec.model_validate({"project": "demo", "task": "regression",
    ...     "target": "price", "key_metrics": ["mae <= 25000"]})
    >>> [(r.name, r.metric, r.comparison, r.threshold) for r in default_rules(spec)]
    ... # doctest: +NORMALIZE_WHITESPACE
    [('latency_p99', 'latency_p99_ms', '>', 100.0), ('error_rate', 'error_rate', '>', 0.01),
     ('key_metric_mae', 'key_metric', '>', 25000.0),
     ('drift_importance', 'drift_importance_share', '>=', 0.3),
     ('concept_drift', 'concept_drift', '>=', 1.0),
     ('labels_skipped', 'labels_skipped', '>', 0.0),
     ('shadow_agreement', 'shadow_agreement', '<', 0.8)]
    """
    objectives = spec.service_objectives
    rules = [
        AlertRuleSpec(
            name="latency_p99",
            metric="latency_p99_ms",
            comparison=">",
            threshold=objectives.latency_p99_ms,
            aggregate="mean",
            window_s=60.0,
            for_s=SUSTAINED_S,
            clear_threshold=objectives.latency_p99_ms * CLEAR_SHARE,
            clear_for_s=SUSTAINED_S,
            severity="warning",
            annotations={"summary": "p99 latency above its service objective"},
        ),
        AlertRuleSpec(
            name="error_rate",
            metric="error_rate",
            comparison=">",
            threshold=objectives.error_rate,
            aggregate="mean",
            window_s=60.0,
            for_s=SUSTAINED_S,
            clear_threshold=objectives.error_rate * CLEAR_SHARE,
            clear_for_s=SUSTAINED_S,
            severity="critical",
            annotations={"summary": "error rate above its service objective"},
        ),
    ]
    for key in spec.key_metrics:
        rules.append(
            AlertRuleSpec(
                name=f"key_metric_{key.name}",
                metric="key_metric",
                labels={"metric": key.name},
                comparison=_MISSES[key.op],
                threshold=key.target,
                # The point already is the metric over the last `label_window` labels.
                aggregate="last",
                severity="critical",
                annotations={
                    "summary": f"{key.name} over the last {spec.monitoring.label_window} labels "
                    f"misses its target ({key})"
                },
            )
        )
    if spec.task in ("binary", "multiclass"):
        for key in spec.key_metrics:
            if key.name not in ESTIMABLE:
                continue
            rules.append(
                AlertRuleSpec(
                    name=f"estimated_key_metric_{key.name}",
                    metric="estimated_key_metric",
                    labels={"metric": key.name},
                    comparison=_MISSES[key.op],
                    threshold=key.target,
                    aggregate="last",
                    severity="warning",
                    annotations={
                        "summary": f"{key.name} estimated from the model's calibrated "
                        f"probabilities (no labels) misses its target ({key})"
                    },
                )
            )
    rules += [
        AlertRuleSpec(
            name="drift_importance",
            metric="drift_importance_share",
            comparison=">=",
            threshold=spec.monitoring.drift.importance_share,
            aggregate="last",
            severity="warning",
            annotations={"summary": "inputs the model depends on drifted from the training data"},
        ),
        AlertRuleSpec(
            name="concept_drift",
            metric="concept_drift",
            comparison=">=",
            threshold=1.0,
            aggregate="last",
            severity="warning",
            annotations={"summary": "the relation between inputs and labels changed"},
        ),
        AlertRuleSpec(
            name="labels_skipped",
            metric="labels_skipped",
            comparison=">",
            threshold=0.0,
            # Any skipped label in the last hour; it resolves after an hour without one.
            aggregate="max",
            window_s=3600.0,
            severity="warning",
            annotations={
                "summary": "labels that do not fit the model's task were left out of the key "
                "metrics; correct them with `modelpilot feedback ID VALUE --replace`"
            },
        ),
    ]
    agreement = spec.rollout.gate("agreement")
    if agreement is not None:
        rules.append(
            AlertRuleSpec(
                name="shadow_agreement",
                metric="shadow_agreement",
                comparison="<",
                threshold=agreement.threshold,
                # The point already is the agreement over every compared prediction so far.
                aggregate="last",
                severity="warning",
                annotations={
                    "summary": f"the shadow candidate agrees with production on less than "
                    f"{agreement.threshold:.0%} of the mirrored requests (the agreement gate)"
                },
            )
        )
    return rules


def alert_rules(spec: ProjectSpec) -> list[AlertRuleSpec]:
    """The rules a project's server evaluates: the defaults (when enabled) with the project
    file's rules replacing those of the same name, then the project file's other rules.

    Examples
    --------
    >>> spec = ProjectSpec.model_validate({"project": "demo", "task": "regression",
    ...     "target": "price", "alerts": {"rules": [
    ...         {"name": "latency_p99", "metric": "latency_p99_ms", "threshold": 250}]}})
    >>> [(r.name, r.threshold) for r in alert_rules(spec)][:2]
    [('latency_p99', 250.0), ('error_rate', 0.01)]
    """
    own = {rule.name: rule for rule in spec.alerts.rules}
    rules = []
    if spec.alerts.defaults:
        rules = [own.pop(rule.name, rule) for rule in default_rules(spec)]
    return rules + list(own.values())


def aggregate(values: Sequence[float], how: str) -> float:
    """The window's values reduced to one: ``mean``, ``max``, ``min`` or ``last``.

    Examples
    --------
    >>> aggregate([1.0, 4.0, 2.0], "mean"), aggregate([1.0, 4.0, 2.0], "last")
    (2.3333333333333335, 2.0)
    """
    if not values:
        raise ValueError("aggregate needs at least one value")
    if how == "mean":
        return sum(values) / len(values)
    if how == "max":
        return max(values)
    if how == "min":
        return min(values)
    if how == "last":
        return values[-1]
    raise ValueError(f"aggregate must be mean, max, min or last, got {how!r}")


def breaches(value: float, comparison: str, threshold: float) -> bool:
    """Whether ``value <comparison> threshold`` holds.

    Examples
    --------
    >>> breaches(120.0, ">", 100.0), breaches(0.5, ">=", 0.5), breaches(0.9, "<", 0.8)
    (True, True, False)
    """
    if comparison == ">":
        return value > threshold
    if comparison == ">=":
        return value >= threshold
    if comparison == "<":
        return value < threshold
    if comparison == "<=":
        return value <= threshold
    raise ValueError(f"comparison must be >, >=, < or <=, got {comparison!r}")
