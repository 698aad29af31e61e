"""What a reviewer sees beside a waiting prediction: why it was deferred, and what kind of
answer the task takes.

The review queue stores the degree of automation and the model's confidence of each item; the
reason follows from them and the project file's ``automation.threshold``. For a regressor's
``typicality`` confidence the reason names the inputs the training data did not cover, read
from the version's reference profile: "the model has not seen houses this large" is what a
reviewer can check, "confidence 0.0" is not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from modelpilot.automation import ReviewItem, typicality_confidence
from modelpilot.errors import ModelpilotError
from modelpilot.registry import ModelRegistry
from modelpilot.spec import FeatureSpec

__all__ = ["ReviewVersions", "answer_form", "atypical_inputs", "why_deferred"]

# The profile's counts lump rare categories under this key: not a class a person can pick.
_OTHER = "__other__"


def _number(value: float) -> str:
    return f"{value:,.4g}" if abs(value) < 1e5 else f"{value:,.0f}"


def atypical_inputs(
    inputs: Mapping[str, Any],
    features: Sequence[FeatureSpec],
    profile: Mapping[str, Any],
    *,
    below: float = 1.0,
) -> list[str]:
    """The inputs outside what the training data covered (their typicality under ``below``:
    the ones that made the confidence low), each said in words.

    Examples
    --------
    >>> profile = {"features": {"size": {"type": "numeric", "quantiles": list(range(101))},
    ...                         "city": {"type": "categorical", "counts": {"Oslo": 3}}}}
    >>> features = [FeatureSpec(name="size", type="numeric"),
    ...             FeatureSpec(name="city", type="categorical")]
    >>> atypical_inputs({"size": 150, "city": "Bergen"}, features, profile)
    ['size = 150 is beyond the training data (0 to 100)', "city = 'Bergen' never occurs in the training data"]
    >>> atypical_inputs({"size": 99.8, "city": "Oslo"}, features, profile)
    ['size = 99.8 is in the outer 1% of the training data (0 to 100)']
    """  # noqa: E501
    stats = profile.get("features", {})
    out = []
    for feature in features:
        value = inputs.get(feature.name)
        entry = stats.get(feature.name)
        if value is None or not entry:
            continue
        [score] = typicality_confidence({feature.name: [value]}, [feature], profile)
        if score >= below:
            continue
        if feature.type == "categorical":
            out.append(f"{feature.name} = {value!r} never occurs in the training data")
            continue
        quantiles = entry.get("quantiles") or []
        if not quantiles or not isinstance(value, int | float):
            continue
        low, high = float(quantiles[0]), float(quantiles[-1])
        where = "is beyond" if not low <= float(value) <= high else "is in the outer 1% of"
        out.append(
            f"{feature.name} = {_number(float(value))} {where} the training data "
            f"({_number(low)} to {_number(high)})"
        )
    return out


def why_deferred(
    item: ReviewItem,
    *,
    threshold: float,
    classifier: bool,
    features: Sequence[FeatureSpec] = (),
    profile: Mapping[str, Any] | None = None,
) -> str:
    """Why ``item`` waits for a person, in one sentence.

    Examples
    --------
    >>> item = ReviewItem("r1", "houses", "houses", 1, "p1", "partial", "pending", 0.0,
    ...                   {"size": 150}, 310000.0, 0.0)
    >>> profile = {"features": {"size": {"type": "numeric", "quantiles": list(range(101))}}}
    >>> why_deferred(item, threshold=0.8, classifier=False,
    ...              features=[FeatureSpec(name="size", type="numeric")], profile=profile)
    'partial automation: confidence 0 is below automation.threshold 0.8; size = 150 is beyond the training data (0 to 100)'
    >>> item.degree = "assist"
    >>> print(why_deferred(item, threshold=0.8, classifier=False))
    assist automation: a person confirms every prediction, with the model's suggestion
    """  # noqa: E501
    if item.degree == "assist":
        return "assist automation: a person confirms every prediction, with the model's suggestion"
    if item.degree in ("shadow", "human"):
        return (
            f"{item.degree} automation: a person decides every prediction without seeing the "
            "model's answer"
        )
    confidence = "unknown" if item.confidence is None else f"{item.confidence:.3g}"
    measure = "the margin between the two likeliest classes" if classifier else "confidence"
    reason = (
        f"{item.degree} automation: {measure} {confidence} is below automation.threshold "
        f"{threshold:g}"
    )
    if not classifier and profile:
        atypical = atypical_inputs(item.inputs, features, profile, below=threshold)
        if atypical:
            reason += "; " + "; ".join(atypical[:3])
    return reason


def answer_form(task: str, profile: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a decision is: a number (regression) or one of the classes the training labels had.

    Examples
    --------
    >>> answer_form("regression", None)
    {'kind': 'number', 'classes': []}
    >>> answer_form("classification", {"target": {"counts": {"spam": 4, "ham": 9}}})
    {'kind': 'class', 'classes': ['ham', 'spam']}
    """
    if task == "regression":
        return {"kind": "number", "classes": []}
    counts = ((profile or {}).get("target") or {}).get("counts") or {}
    return {"kind": "class", "classes": sorted(str(c) for c in counts if c != _OTHER)}


class ReviewVersions:
    """The registered versions the queue's items came from, read once each."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self._cache: dict[tuple[str, int], tuple[list[FeatureSpec], dict[str, Any]]] = {}

    def schema(self, model: str, version: int | None) -> tuple[list[FeatureSpec], dict[str, Any]]:
        """The version's features and reference profile (none when it is unknown)."""
        if version is None:
            return [], {}
        key = (model, version)
        if key not in self._cache:
            try:
                found = self.registry.get(model, version)
            except ModelpilotError:  # deleted from the registry: the reason says less
                return [], {}
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[key] = (found.features, found.profile)
        return self._cache[key]
