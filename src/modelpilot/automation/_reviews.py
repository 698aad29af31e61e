"""The human review queue: deferred predictions, people's decisions, and how often they agree.

A decision becomes a ground-truth label (feedback) for its prediction in the same call, so
what people decide trains the next model. Deciding an item twice is a conflict (409): the first
decision stands.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import orjson
from sqlalchemy import Engine, func, insert, select, update

from modelpilot.errors import ConflictError, NotFoundError
from modelpilot.store import FeedbackItem, PredictionStore, floor_int, new_ids
from modelpilot.store._tables import reviews
from modelpilot.types import Clock

__all__ = ["ReviewItem", "ReviewQueue", "agrees"]


def agrees(suggestion: Any, decision: Any, *, tolerance: float) -> bool:
    """Whether a person's decision matches the model's suggestion.

    Classes must be equal (compared as text, so ``1`` and ``"1"`` agree); numbers must be
    within ``tolerance`` relative to the decision.

    Examples
    --------
    >>> agrees("spam", "spam", tolerance=0.1), agrees(100.0, 108.0, tolerance=0.1)
    (True, True)
    >>> agrees(100.0, 125.0, tolerance=0.1)
    False
    """
    if (
        isinstance(suggestion, int | float)
        and isinstance(decision, int | float)
        and not (isinstance(suggestion, bool) or isinstance(decision, bool))
    ):
        return abs(float(suggestion) - float(decision)) <= tolerance * max(
            abs(float(decision)), 1e-12
        )
    return str(suggestion) == str(decision)


@dataclass
class ReviewItem:
    id: str
    deployment: str
    model: str
    version: int | None
    prediction_id: str
    degree: str
    status: str
    created_at: float
    inputs: dict[str, Any]
    suggestion: Any
    confidence: float | None
    decided_at: float | None = None
    decided_by: str | None = None
    decision: Any = None
    agreed: bool | None = None

    def to_dict(self, *, show_suggestion: bool = True) -> dict[str, Any]:
        data = asdict(self)
        if not show_suggestion and self.degree in ("shadow", "human") and self.status == "pending":
            # A person deciding in shadow mode must not be anchored by the model's answer.
            data["suggestion"] = None
            data["confidence"] = None
        return data


def _row(row: Any) -> ReviewItem:
    m = row._mapping
    return ReviewItem(
        id=m["id"],
        deployment=m["deployment"],
        model=m["model"],
        version=m["version"],
        prediction_id=m["prediction_id"],
        degree=m["degree"],
        status=m["status"],
        created_at=m["created_at"],
        inputs=orjson.loads(m["inputs_json"]),
        suggestion=orjson.loads(m["suggestion_json"]) if m["suggestion_json"] else None,
        confidence=m["confidence"],
        decided_at=m["decided_at"],
        decided_by=m["decided_by"],
        decision=orjson.loads(m["decision_json"]) if m["decision_json"] else None,
        agreed=None if m["agreed"] is None else bool(m["agreed"]),
    )


class ReviewQueue:
    """Deferred items, persisted; decisions become labels.

    Examples
    --------
    >>> from modelpilot.store import create_database, PredictionLog, PredictionRecord
    >>> engine = create_database("sqlite://")
    >>> log = PredictionLog(engine)
    >>> _ = log.append([PredictionRecord("p1", 1.0, "m", 1, {"x": 1}, {"prediction": "a"})])
    >>> queue = ReviewQueue(engine, log, clock=lambda: 5.0)
    >>> [item] = queue.add("d", "m", 1, "partial", [("p1", {"x": 1}, "a", 0.3)])
    >>> queue.decide(item.id, "b", actor="ann").agreed
    False
    >>> log.labeled(model="m")["label"].tolist()
    ['b']
    """

    def __init__(
        self,
        engine: Engine,
        log: PredictionStore,
        *,
        clock: Clock = time.time,
        tolerance: float = 0.1,
    ) -> None:
        self.engine = engine
        self.log = log
        self.clock = clock
        self.tolerance = tolerance

    def add(
        self,
        deployment: str,
        model: str,
        version: int | None,
        degree: str,
        items: Sequence[tuple[str, Mapping[str, Any], Any, float | None]],
    ) -> list[ReviewItem]:
        """Queue ``(prediction_id, inputs, suggestion, confidence)`` items in one transaction."""
        now = self.clock()
        ids = new_ids(len(items), clock=self.clock)
        rows: list[dict[str, Any]] = [
            {
                "id": rid,
                "deployment": deployment,
                "model": model,
                "version": version,
                "prediction_id": pid,
                "degree": degree,
                "status": "pending",
                "created_at": now,
                "inputs_json": orjson.dumps(
                    dict(inputs), option=orjson.OPT_SERIALIZE_NUMPY
                ).decode(),
                "suggestion_json": None
                if suggestion is None
                else orjson.dumps(suggestion, option=orjson.OPT_SERIALIZE_NUMPY).decode(),
                "confidence": confidence,
            }
            for rid, (pid, inputs, suggestion, confidence) in zip(ids, items, strict=True)
        ]
        if rows:
            with self.engine.begin() as connection:
                connection.execute(insert(reviews), rows)
        return [
            ReviewItem(
                r["id"],
                deployment,
                model,
                version,
                r["prediction_id"],
                degree,
                "pending",
                now,
                dict(i[1]),
                i[2],
                i[3],
            )
            for r, i in zip(rows, items, strict=True)
        ]

    def get(self, review_id: str) -> ReviewItem:
        with self.engine.connect() as connection:
            row = connection.execute(select(reviews).where(reviews.c.id == review_id)).first()
        if row is None:
            raise NotFoundError("review", review_id, hint="`modelpilot review list` shows them")
        return _row(row)

    def list(
        self, *, status: str | None = "pending", deployment: str | None = None, limit: int = 100
    ) -> list[ReviewItem]:
        query = select(reviews).order_by(reviews.c.created_at, reviews.c.id).limit(limit)
        if status is not None:
            query = query.where(reviews.c.status == status)
        if deployment is not None:
            query = query.where(reviews.c.deployment == deployment)
        with self.engine.connect() as connection:
            return [_row(r) for r in connection.execute(query)]

    def next(self, *, deployment: str | None = None) -> ReviewItem | None:
        """The oldest pending item (first in, first decided)."""
        items = self.list(status="pending", deployment=deployment, limit=1)
        return items[0] if items else None

    def decide(self, review_id: str, value: Any, *, actor: str) -> ReviewItem:
        """Record a person's decision; it becomes the prediction's label. Twice is a 409."""
        item = self.get(review_id)
        if item.status == "pending" and not self.log.exists([item.prediction_id]):
            # The server logs predictions in the background: decided before that, the label
            # would be refused after the review was closed, and the decision lost.
            raise ConflictError(
                f"review {review_id}: its prediction {item.prediction_id} is not in the "
                "prediction log yet (it is written within a second); retry the decision"
            )
        agreed = (
            None
            if item.suggestion is None
            else agrees(item.suggestion, value, tolerance=self.tolerance)
        )
        now = self.clock()
        with self.engine.begin() as connection:
            changed = connection.execute(
                update(reviews)
                .where(reviews.c.id == review_id, reviews.c.status == "pending")
                .values(
                    status="decided",
                    decided_at=now,
                    decided_by=actor,
                    decision_json=orjson.dumps(value).decode(),
                    agreed=None if agreed is None else int(agreed),
                )
            ).rowcount
        if changed == 0:
            # Read it again: it may have been decided or expired since `item` was read.
            current = self.get(review_id)
            if current.status == "expired":
                raise ConflictError(
                    f"review {review_id} expired unanswered (automation.review_max_age_s); "
                    "send feedback for the prediction to label it"
                )
            raise ConflictError(
                f"review {review_id} was already decided by {current.decided_by}; the first "
                "decision stands (to correct it, send the prediction's label with replace: true, "
                "`modelpilot feedback PREDICTION_ID VALUE --replace`)"
            )
        results = self.log.add_feedback(
            # A person's decision is the label: it replaces any earlier one (kept as history).
            [
                FeedbackItem(
                    item.prediction_id, value, kind="label", source=f"review:{actor}", replace=True
                )
            ]
        )
        if not results[0].accepted:
            raise ConflictError(
                f"review {review_id}: the decision was recorded but its label "
                f"was refused ({results[0].error})"
            )
        return self.get(review_id)

    def expire(self, max_age_s: float) -> int:
        with self.engine.begin() as connection:
            return int(
                connection.execute(
                    update(reviews)
                    .where(
                        reviews.c.status == "pending",
                        reviews.c.created_at < self.clock() - max_age_s,
                    )
                    .values(status="expired")
                ).rowcount
            )

    def stats(self, deployment: str | None = None) -> dict[str, Any]:
        """Queue length, oldest pending age, and agreement per degree and per class."""
        now = self.clock()
        base = select(func.count(), func.min(reviews.c.created_at)).where(
            reviews.c.status == "pending"
        )
        decided = select(reviews.c.degree, reviews.c.suggestion_json, reviews.c.agreed).where(
            reviews.c.status == "decided", reviews.c.agreed.is_not(None)
        )
        if deployment is not None:
            base = base.where(reviews.c.deployment == deployment)
            decided = decided.where(reviews.c.deployment == deployment)
        with self.engine.connect() as connection:
            length, oldest = connection.execute(base).one()
            rows = connection.execute(decided).all()
        by_degree: dict[str, list[int]] = {}
        by_class: dict[str, list[int]] = {}
        for degree, suggestion, agreed in rows:
            by_degree.setdefault(degree, []).append(int(agreed))
            value = orjson.loads(suggestion) if suggestion else None
            if isinstance(value, str | bool | int) and not isinstance(value, float):
                by_class.setdefault(str(value), []).append(int(agreed))
        return {
            "pending": int(length),
            "oldest_age_s": 0.0 if oldest is None else now - oldest,
            "agreement": {
                d: {"rate": sum(v) / len(v), "cases": len(v)} for d, v in by_degree.items()
            },
            "agreement_by_class": {
                c: {"rate": sum(v) / len(v), "cases": len(v)} for c, v in by_class.items()
            },
        }

    def agreement_over_time(
        self, *, since: float, bucket_s: float, deployment: str | None = None
    ) -> builtins.list[dict[str, Any]]:  # `list` is a method of this class
        """How often people agreed with the model, per ``bucket_s`` of decision time.

        One entry per bucket with decisions since ``since``, oldest first: ``start`` (the
        bucket's start), ``cases`` (decisions with a suggestion to agree with), ``agreed`` and
        ``rate``. A trend the all-time rate of :meth:`stats` hides: the model getting worse (or
        better) shows as falling (or rising) buckets.

        Examples
        --------
        >>> from modelpilot.store import create_database, PredictionLog, PredictionRecord
        >>> engine = create_database("sqlite://")
        >>> log = PredictionLog(engine)
        >>> _ = log.append([PredictionRecord(f"p{i}", 1.0, "m", 1, {"x": i}, {"prediction": "a"})
        ...                 for i in range(3)])
        >>> now = [100.0]
        >>> queue = ReviewQueue(engine, log, clock=lambda: now[0])
        >>> items = queue.add("d", "m", 1, "assist", [(f"p{i}", {"x": i}, "a", 0.5)
        ...                                            for i in range(3)])
        >>> for item, answer, at in zip(items, ["a", "b", "a"], [100.0, 110.0, 170.0]):
        ...     now[0] = at
        ...     _ = queue.decide(item.id, answer, actor="ann")
        >>> queue.agreement_over_time(since=100.0, bucket_s=60.0)  # doctest: +NORMALIZE_WHITESPACE
        [{'start': 100.0, 'cases': 2, 'agreed': 1, 'rate': 0.5},
         {'start': 160.0, 'cases': 1, 'agreed': 1, 'rate': 1.0}]
        """
        # Bucketed in the database: a year of decisions is a few dozen rows, not the decisions.
        bucket = floor_int((reviews.c.decided_at - since) / bucket_s).label("bucket")
        query = (
            select(bucket, func.count(), func.sum(reviews.c.agreed))
            .where(
                reviews.c.status == "decided",
                reviews.c.agreed.is_not(None),
                reviews.c.decided_at >= since,
            )
            .group_by(bucket)
            .order_by(bucket)
        )
        if deployment is not None:
            query = query.where(reviews.c.deployment == deployment)
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [
            {
                "start": since + int(index) * bucket_s,
                "cases": int(cases),
                "agreed": int(agreed or 0),
                "rate": int(agreed or 0) / int(cases),
            }
            for index, cases, agreed in rows
        ]
