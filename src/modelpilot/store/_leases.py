"""Leases with fencing epochs, timed by the database: who may act as the leader of a job.

Several server replicas share one database; a job that must run once for all of them (the
rollout controller, the monitor) runs in the replica holding its lease. Two things make that
safe across machines:

- **One clock.** A lease expires at a time written by the database's own clock: on PostgreSQL
  ``now()``, so a replica whose clock is minutes off can neither keep a lease it lost nor take
  one still held. SQLite is one file on one machine: the process clock is the only clock there
  (the ``clock`` given, ``time.time`` in a server), which is right for one machine.
- **A fencing epoch.** Taking a lease over from another holder increments its ``epoch``. A
  leader's writes carry the :class:`Lease` they were decided under and check, in the same
  transaction, that the lease still has that holder and epoch (:meth:`Lease.check`). A leader
  that stalled (SIGSTOP, a long pause) past its lease's end and lost it therefore cannot write
  when it wakes up: its write raises :class:`LeaseLost` and is rolled back. The check updates
  the lease's row, which locks it until the write commits: a replica taking the lease over
  waits for that commit, so a fenced write and a take-over never interleave.

Leader-only writes deep in a call chain (a rollout step, an alert's state, a retraining run)
check the lease of the thread they run on: the leader runs its job inside
``with fenced(lease):`` and every leader-only write calls :func:`check_fence` in its
transaction. A context variable rather than a parameter through every layer, as a database
transaction is: the job's code stays the same whether one process or ten run it.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Float,
    case,
    cast,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from modelpilot.errors import ConflictError
from modelpilot.store._tables import leases
from modelpilot.types import Clock

__all__ = [
    "Lease",
    "LeaseLost",
    "LeaseTable",
    "check_fence",
    "current_fence",
    "fenced",
    "uses_database_time",
]

_FENCE: contextvars.ContextVar[Lease | None] = contextvars.ContextVar(
    "modelpilot_fence", default=None
)


class LeaseLost(ConflictError):
    """A leader's write found its lease taken over (or given up): the write did not happen."""

    kind = "lease_lost"

    def __init__(self, lease: Lease, found: str) -> None:
        self.lease = lease
        super().__init__(
            f"the {lease.name!r} lease of {lease.holder} (epoch {lease.epoch}) is no longer "
            f"held ({found}); this replica stopped leading and the write was not made. The "
            "current holder does the job; nothing to do"
        )


@dataclass(frozen=True)
class Lease:
    """A lease as its holder took it: the fencing token of the holder's writes.

    ``expires_at`` is in the lease table's time (the database's on PostgreSQL).
    """

    name: str
    holder: str
    epoch: int
    expires_at: float

    def check(self, connection: Connection) -> None:
        """Inside a write transaction: raise :class:`LeaseLost` unless the lease still has
        this holder and epoch; otherwise lock its row until the transaction ends."""
        held = connection.execute(
            update(leases)
            .where(
                leases.c.name == self.name,
                leases.c.holder == self.holder,
                leases.c.epoch == self.epoch,
            )
            .values(holder=leases.c.holder)
        ).rowcount
        if held:
            return
        row = connection.execute(
            select(leases.c.holder, leases.c.epoch).where(leases.c.name == self.name)
        ).first()
        found = "no such lease" if row is None else f"{row.holder} holds epoch {row.epoch}"
        raise LeaseLost(self, found)


def current_fence() -> Lease | None:
    """The lease this thread's leader-only writes are checked against, if any."""
    return _FENCE.get()


@contextlib.contextmanager
def fenced(lease: Lease | None) -> Iterator[None]:
    """Check ``lease`` in every leader-only write made inside the block (on this thread).

    Examples
    --------
    >>> from modelpilot.store import create_database
    >>> table = LeaseTable(create_database("sqlite://"), clock=lambda: 100.0)
    >>> lease = table.take("monitor", "replica-a", ttl=5.0)
    >>> with fenced(lease):
    ...     current_fence() == lease
    True
    >>> current_fence() is None
    True
    """
    token = _FENCE.set(lease)
    try:
        yield
    finally:
        _FENCE.reset(token)


def check_fence(connection: Connection) -> None:
    """In a write transaction: check the thread's fencing lease (nothing when it has none:
    an admin's request or a command, which are not leader-only)."""
    lease = _FENCE.get()
    if lease is not None:
        lease.check(connection)


def uses_database_time(engine: Engine) -> bool:
    """Whether leases on ``engine`` take the database's clock (a server, not one file).

    Examples
    --------
    >>> from modelpilot.store import create_database
    >>> uses_database_time(create_database("sqlite://"))
    False
    """
    return engine.dialect.name != "sqlite"


class LeaseTable:
    """Take, renew and release leases on ``engine``'s ``leases`` table.

    ``database_time``: expiry times from the database's clock (``now()``); by default on
    every database but SQLite, where ``clock`` serves (see the module's docstring).

    Examples
    --------
    >>> from modelpilot.store import create_database
    >>> now = [100.0]
    >>> table = LeaseTable(create_database("sqlite://"), clock=lambda: now[0])
    >>> a = table.take("controller", "replica-a", ttl=5.0)
    >>> (a.epoch, a.expires_at), table.take("controller", "replica-b", ttl=5.0)
    ((1, 105.0), None)
    >>> now[0] = 106.0  # replica-a stopped renewing: replica-b takes it over, a new epoch
    >>> table.take("controller", "replica-b", ttl=5.0).epoch
    2
    """

    def __init__(
        self, engine: Engine, *, clock: Clock = time.time, database_time: bool | None = None
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.database_time = uses_database_time(engine) if database_time is None else database_time

    def now(self) -> ColumnElement[float]:
        """The current time as an SQL expression: the database's, or ``clock``'s value."""
        if self.database_time:
            return cast(func.extract("epoch", func.now()), Float)
        return literal(self.clock(), Float)

    def read_now(self) -> float:
        """The current time of the lease table (a round trip on a database clock)."""
        if not self.database_time:
            return self.clock()
        with self.engine.connect() as connection:
            return float(connection.execute(select(self.now())).scalar_one())

    def take(self, name: str, holder: str, ttl: float) -> Lease | None:
        """Renew ``holder``'s lease ``name`` or take it if it is free or expired; the lease
        (a new epoch when it changed hands), or None when another holder has it."""
        now = self.now()
        with self.engine.begin() as connection:
            row = connection.execute(
                update(leases)
                .where(
                    leases.c.name == name, (leases.c.holder == holder) | (leases.c.expires_at < now)
                )
                .values(
                    epoch=case(
                        (leases.c.holder == holder, leases.c.epoch), else_=leases.c.epoch + 1
                    ),
                    holder=holder,
                    expires_at=now + ttl,
                )
                .returning(leases.c.epoch, leases.c.expires_at)
            ).first()
            if row is not None:
                return Lease(name, holder, int(row.epoch), float(row.expires_at))
            exists = connection.execute(select(leases.c.name).where(leases.c.name == name)).first()
        if exists is not None:
            return None
        try:
            with self.engine.begin() as connection:
                row = connection.execute(
                    insert(leases)
                    .values(name=name, holder=holder, expires_at=now + ttl, epoch=1)
                    .returning(leases.c.expires_at)
                ).one()
        except IntegrityError:  # another replica created it first
            return None
        return Lease(name, holder, 1, float(row.expires_at))

    def release(self, name: str, holder: str) -> bool:
        """Give the lease up if ``holder`` has it (a graceful stop); whether it did. The next
        holder takes it at once, with a new epoch."""
        with self.engine.begin() as connection:
            released = connection.execute(
                update(leases)
                .where(leases.c.name == name, leases.c.holder == holder)
                .values(expires_at=0.0)
            ).rowcount
        return bool(released)

    def holder(self, name: str) -> Lease | None:
        """Who holds ``name`` now (None when nobody does or it expired)."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(leases.c.holder, leases.c.epoch, leases.c.expires_at).where(
                    leases.c.name == name, leases.c.expires_at >= self.now()
                )
            ).first()
        if row is None:
            return None
        return Lease(name, row.holder, int(row.epoch), float(row.expires_at))
