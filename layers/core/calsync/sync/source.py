"""What the sync engine needs of a provider calendar: the ``CalendarSource`` protocol.

A source lists the changes of one calendar since a cursor, in pages of resource changes. A
*resource* is the provider's unit of change (a CalDAV href, a Google event with its exceptions); it
produces zero or more occurrences. The cursor is the source's own text (CalDAV: ctag + sync token),
opaque to the engine, which stores it only after every page is stored (S6).

Errors a source raises (the worker maps them to retries and account states):
``CursorRejected`` (start again from scratch), ``SourceAuthError`` (S7), ``SourceThrottled`` (S8,
with the server's Retry-After), ``SourceUnavailable`` (retry with backoff), ``SourceProtocolError``
(the server answered something unreadable), ``CalendarGone``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from calsync.domain.models import Occurrence


@dataclass(frozen=True, slots=True)
class Horizon:
    """The span occurrences are stored for (S10); recurring resources are expanded inside it."""

    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class ResourceChange:
    """One resource in a page: changed (with all its occurrences now), deleted, or — in a full
    listing only — unchanged (its etag equals the known one: nothing fetched, nothing written)."""

    key: str
    etag: str = ""
    occurrences: Sequence[Occurrence] = field(default_factory=tuple)
    deleted: bool = False
    unchanged: bool = False
    # VEVENTs of this resource that could not be read (logged; the rest is stored)
    errors: Sequence[str] = field(default_factory=tuple)
    # an occurrence may lie after the horizon's end: read the resource again once the horizon moved,
    # even when its etag did not change (a meeting planned beyond the horizon appears in time)
    later: bool = False


Page = Sequence[ResourceChange]


class CursorRejected(Exception):
    """The provider refused the cursor (CalDAV 403/409/412 valid-sync-token, Google 410): the
    engine starts a full listing."""


class SourceError(Exception):
    """The provider could not be read."""


class SourceAuthError(SourceError):
    """The credentials were refused (401): the account needs to be connected again (S7)."""


class SourceForbidden(SourceError):
    """403 on a read: the server refuses access to this one calendar while the credentials work
    (iCloud answers 403 for what an account may not do; docs/providers/icloud.md I5). Not a
    revoked grant, so never ``reauth_required`` (S13): the calendar shows the error, the next
    sync tries again."""


class SourceThrottled(SourceError):
    """429 / 503: try again after ``retry_after`` seconds (S8)."""

    def __init__(self, message: str, retry_after: int | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SourceUnavailable(SourceError):
    """Network error, timeout, 5xx: try again later."""


class SourceProtocolError(SourceError):
    """The server answered something that is not what the protocol says (garbage XML…)."""


class CalendarGone(SourceError):
    """The calendar no longer exists on the provider (404)."""


class CalendarSource(Protocol):
    """One provider calendar, as the engine sees it."""

    def may_have_changed(self, cursor: str) -> bool:
        """A cheap check (CalDAV: the ctag, one request): False only when nothing changed since
        ``cursor``."""
        ...

    def changes(self, cursor: str | None, known: Mapping[str, str], horizon: Horizon) -> Iterator[Page]:
        """Pages of changes since ``cursor``; ``cursor=None``: a full listing, where a resource whose
        etag equals ``known[key]`` may be reported ``unchanged`` and every resource not listed is
        gone. Raises ``CursorRejected`` before the first page when the cursor is refused."""
        ...

    @property
    def next_cursor(self) -> str | None:
        """The cursor to store once every page of the last ``changes`` is stored."""
        ...
