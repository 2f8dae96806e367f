"""What calsync needs to write to a provider calendar: the ``CalendarWriter`` protocol (C7, C12).

Each provider adapter (CalDAV, Google, Microsoft) implements it. A write returns the provider's own
view of what it wrote — the resource key, the etag/change key, and the occurrences — so the caller
can store it at once through the sync engine's resource index, and the next sync of the calendar
finds the same resource with the same etag and writes nothing twice.

Errors: ``WriteConflict`` when the event changed meanwhile (ETag / If-Match / changeKey precondition
failed), ``WriteRejected`` when the provider refuses the write for good (read-only calendar, invalid
event); and the source errors of ``calsync.sync.source`` for credentials (``SourceAuthError``, S7),
throttling (``SourceThrottled``, S8) and outages (``SourceUnavailable``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from calsync.domain.models import Occurrence
from calsync.store.items import Calendar


@dataclass(frozen=True, slots=True)
class EventDraft:
    """A new appointment (C7): timed, aware instants; written in ``time_zone`` (an IANA name)."""

    title: str
    start: datetime
    end: datetime
    time_zone: str = "UTC"
    description: str | None = None
    attendees: Sequence[str] = field(default_factory=tuple)
    meeting_link: str | None = None


@dataclass(frozen=True, slots=True)
class WrittenEvent:
    """The provider's answer to a write: enough to store the resource at once (no wait for a sync)."""

    resource_key: str
    etag: str
    occurrences: Sequence[Occurrence]


class WriteConflict(Exception):
    """The event changed on the provider since calsync read it (precondition failed)."""


class WriteRejected(Exception):
    """The provider refused the write for good (read-only calendar, invalid event, gone)."""


class CalendarWriter(Protocol):
    def create_event(self, calendar: Calendar, draft: EventDraft) -> WrittenEvent:
        """Create ``draft`` on ``calendar``; never overwrite an existing event."""
        ...

    def add_meeting_link(self, calendar: Calendar, occurrence: Occurrence, link: str) -> WrittenEvent:
        """Add ``link`` to the (non-recurring) event of ``occurrence``, conditional on its etag."""
        ...
