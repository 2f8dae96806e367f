"""What a failed sync tells people (rule S13): an error class and a short human-readable text.

Never a raw exception text: a provider's answer or a store error may carry URLs, ids or worse. The
text names what happened and what calsync does about it; ``GET /v1/me/accounts`` and
``GET /v1/me/calendars`` show it until a sync succeeds.
"""

from __future__ import annotations

from calsync.domain.errors import Conflict, StoreUnavailable
from calsync.domain.limits import Unstorable
from calsync.sync.source import (
    CalendarGone,
    SourceAuthError,
    SourceForbidden,
    SourceProtocolError,
    SourceThrottled,
    SourceUnavailable,
)

_TEXTS: tuple[tuple[type[BaseException], str], ...] = (
    (SourceAuthError, "The provider refused calsync's access: connect the account again."),
    (SourceForbidden, "The provider refuses calsync access to this calendar (check how it is shared)."),
    (SourceThrottled, "The provider asked calsync to slow down; the sync is retried shortly."),
    (SourceUnavailable, "The provider could not be reached; the sync is retried shortly."),
    (SourceProtocolError, "The provider answered something calsync cannot read; the next sync retries."),
    (CalendarGone, "The calendar no longer exists at the provider."),
    (StoreUnavailable, "calsync's storage was busy; the sync is retried shortly."),
    (Conflict, "Another sync of this calendar interfered; the next sync retries."),
    (Unstorable, "An event of this calendar cannot be stored."),
)
UNEXPECTED = "An unexpected error stopped the sync; the next sync retries."


def describe(exc: BaseException) -> tuple[str, str]:
    """(error class, short text) of a failure; the cause is looked at when ``exc`` wraps one (the
    workers turn provider errors into ``RetryLater``)."""
    for candidate in (exc, exc.__cause__):
        if candidate is None:
            continue
        for kind, text in _TEXTS:
            if isinstance(candidate, kind):
                return type(candidate).__name__, text
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    return type(cause).__name__, UNEXPECTED


def skipped_text(count: int) -> str:
    events = "1 event" if count == 1 else f"{count} events"
    return f"{events} could not be read or stored in full (too large or invalid); the rest is synced."
