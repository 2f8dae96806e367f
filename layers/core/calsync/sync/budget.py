"""The time budget of one sync (rule S12; docs/adr/0009-sync-time-budget.md).

A sync function has a timeout (60 s for CalDAV and Google, 90 s for Microsoft) and up to ten jobs
per invocation. The queue worker turns the Lambda context into a ``LambdaBudget`` and makes it the
*current* budget while a record runs; the engine checks it before each page (and before it
starts). Out of time: the engine stops between two pages, its progress stored (every stored
resource's index entry carries its etag; a full listing records its generation first), and raises
``OutOfTime``; the queue worker hands the job back to the queue for the next invocation.

The budget is read from ``context.get_remaining_time_in_millis()`` at each check, never from a
wall clock of its own: tests give a fake context whose remaining time comes from a counter.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

# kept back from the time an invocation starts with: what a page may take at most (a CalDAV
# multiget of 100 resources, their parse and their writes) and the hand-back; 15 s of a 60 s timeout
RESERVE_SHARE = 0.25
RESERVE_MIN_MS = 1_000


class RemainingTime(Protocol):
    """What the engine needs of a Lambda context."""

    def get_remaining_time_in_millis(self) -> int: ...


class OutOfTime(Exception):
    """The sync stopped before its function's time runs out; its progress is stored and the job
    must run again (the queue worker hands it back to the queue). ``outcome``: what it did."""

    def __init__(self, message: str, outcome: object | None = None) -> None:
        super().__init__(message)
        self.outcome = outcome


@dataclass(slots=True)
class LambdaBudget:
    context: RemainingTime
    reserve_ms: int

    @classmethod
    def of(cls, context: RemainingTime) -> LambdaBudget:
        """The budget of one invocation: a quarter of the time it starts with is kept back."""
        total = context.get_remaining_time_in_millis()
        return cls(context, max(RESERVE_MIN_MS, int(total * RESERVE_SHARE)))

    def remaining_ms(self) -> int:
        return int(self.context.get_remaining_time_in_millis())

    def exhausted(self) -> bool:
        """True when less than the reserve is left: start no more work."""
        return self.remaining_ms() < self.reserve_ms


_current: ContextVar[LambdaBudget | None] = ContextVar("calsync_sync_budget", default=None)


def current() -> LambdaBudget | None:
    """The budget of the record being processed (None outside a queue worker: no limit)."""
    return _current.get()


@contextmanager
def running(budget: LambdaBudget | None) -> Iterator[None]:
    token = _current.set(budget)
    try:
        yield
    finally:
        _current.reset(token)
