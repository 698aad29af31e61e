"""The degree of automation of each deployment, and the ladder that moves it up and down.

Up: when people agree with the model often enough at the current degree (the project file's
``automation.steps``), modelpilot proposes the next degree — an admin applies it, or it applies
itself when ``automation.ladder`` is ``auto``. Down: a drift or performance alert lowers the
degree one rung at once (the alert engine's ``lower_automation`` action). Every move is in the
database and the audit log, so none is lost across a restart.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from modelpilot.automation._reviews import ReviewQueue
from modelpilot.errors import ModelpilotError
from modelpilot.spec import DEGREES, AutomationSettings
from modelpilot.store._tables import automation_states
from modelpilot.types import Clock

__all__ = ["AutomationState", "Ladder", "lower_degree"]


def lower_degree(degree: str) -> str:
    """One rung down the ladder (a person takes more of the decisions).

    Examples
    --------
    >>> lower_degree("full"), lower_degree("partial"), lower_degree("human")
    ('partial', 'assist', 'human')
    """
    index = DEGREES.index(degree)
    return DEGREES[max(0, index - 1)]


@dataclass
class AutomationState:
    deployment: str
    degree: str
    proposal: str | None
    proposal_reason: str | None
    updated_at: float
    updated_by: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Ladder:
    """Reads and moves deployments' degrees of automation."""

    def __init__(
        self,
        engine: Engine,
        queue: ReviewQueue,
        settings: AutomationSettings,
        *,
        audit: Callable[[str, str, str, dict[str, Any]], None],
        clock: Clock = time.time,
    ) -> None:
        self.engine = engine
        self.queue = queue
        self.settings = settings
        self.audit = audit
        self.clock = clock

    def state(self, deployment: str, *, default: str | None = None) -> AutomationState:
        """The deployment's degree; the first time, the project file's (or ``default``)."""
        found = self._read(deployment)
        if found is not None:
            return found
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    insert(automation_states).values(
                        deployment=deployment,
                        degree=default or self.settings.degree,
                        updated_at=self.clock(),
                        updated_by="project file",
                        reason="initial degree",
                    )
                )
        except IntegrityError:  # another process created it first: theirs stands
            pass
        created = self._read(deployment)
        if created is None:  # pragma: no cover - the insert or the other process's did happen
            raise ModelpilotError(f"could not record the automation degree of {deployment!r}")
        return created

    def _read(self, deployment: str) -> AutomationState | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(automation_states).where(automation_states.c.deployment == deployment)
            ).first()
        return AutomationState(**row._mapping) if row is not None else None

    def set(self, deployment: str, degree: str, *, actor: str, reason: str) -> AutomationState:
        if degree not in DEGREES:
            raise ModelpilotError(f"degree must be one of {', '.join(DEGREES)}, got {degree!r}")
        before = self.state(deployment)
        with self.engine.begin() as connection:
            connection.execute(
                update(automation_states)
                .where(automation_states.c.deployment == deployment)
                .values(
                    degree=degree,
                    proposal=None,
                    proposal_reason=None,
                    updated_at=self.clock(),
                    updated_by=actor,
                    reason=reason,
                )
            )
        self.audit(
            actor,
            "automation.set",
            deployment,
            {"from": before.degree, "to": degree, "reason": reason},
        )
        return self.state(deployment)

    def lower(self, deployment: str, *, actor: str, reason: str) -> AutomationState:
        """One rung down, at once (the answer to a drift or performance alert)."""
        current = self.state(deployment)
        target = lower_degree(current.degree)
        if target == current.degree:
            return current
        return self.set(deployment, target, actor=actor, reason=reason)

    def evaluate(self, deployment: str) -> AutomationState:
        """Propose (or, with ``ladder: auto``, apply) the next degree when agreement allows."""
        current = self.state(deployment)
        if self.settings.ladder == "off":
            return current
        step = next((s for s in self.settings.steps if s.from_degree == current.degree), None)
        if step is None:
            return current
        stats = self.queue.stats(deployment)["agreement"].get(current.degree)
        if stats is None or stats["cases"] < step.min_cases or stats["rate"] < step.min_agreement:
            return current
        reason = (
            f"agreement {stats['rate']:.1%} over {stats['cases']} cases at "
            f"{current.degree} (needs {step.min_agreement:.0%} over {step.min_cases})"
        )
        if self.settings.ladder == "auto":
            return self.set(deployment, step.to, actor="ladder", reason=reason)
        if current.proposal != step.to:
            with self.engine.begin() as connection:
                connection.execute(
                    update(automation_states)
                    .where(automation_states.c.deployment == deployment)
                    .values(proposal=step.to, proposal_reason=reason)
                )
            self.audit(
                "ladder",
                "automation.propose",
                deployment,
                {"from": current.degree, "to": step.to, "reason": reason},
            )
        return self.state(deployment)
