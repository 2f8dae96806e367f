"""The bounds of every stored field of an occurrence (rule S11; documented in docs/limits.md).

Provider data is untrusted: a SUMMARY of 410,000 characters or a 450 KB meeting URL must not make
an item exceed DynamoDB's 400 KB, and must not stop a calendar's sync. Every text field calsync
stores has a bound here, applied by the repository before anything is written (so it holds for
every provider and for calsync's own writes):

- display text is cut at its bound, with a trailing "…" (a title stays readable);
- a value that is useless when cut (a URL, an address, a time zone name, an etag) is dropped;
- an identifier that is too long (event id, series id, original start, resource key) makes the
  occurrence or resource unstorable: it is skipped, counted and reported (``Unstorable``), since
  a cut identifier would point at another event.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from calsync.domain.models import Occurrence

MAX_TITLE = 300  # characters (Outlook's subject holds 255; a list row shows ~60)
MAX_MEETING_LINK = 2048  # characters of a join URL (longer ones are dropped, never cut)
MAX_ORGANIZER = 320  # an e-mail address (RFC 5321: 254) with room for a display form
MAX_TIME_ZONE = 64  # an IANA name (the longest is 32)
MAX_ETAG = 256
MAX_EVENT_ID = 1024  # Google: 5-1024 characters; CalDAV UIDs and hrefs are usually < 200
MAX_SERIES_ID = 1024
MAX_ORIGINAL_START = 64  # an ISO date or date-time
MAX_RESOURCE_KEY = 2048  # a CalDAV href, a Google or Graph event id
MAX_OCCURRENCES_PER_RESOURCE = 1000  # occurrences of one resource inside the horizon
# the largest item calsync writes: DynamoDB refuses items over 400 KB (names and values, UTF-8)
MAX_ITEM_BYTES = 350 * 1024
ELLIPSIS = "…"


class Unstorable(Exception):
    """An occurrence or resource that cannot be stored even within the bounds: it is skipped,
    counted and reported; the rest of the calendar syncs. ``reason`` is short and never contains
    the offending value."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def cut(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: limit - len(ELLIPSIS)].rstrip() + ELLIPSIS


def _drop(value: str | None, limit: int) -> str | None:
    return None if value is not None and len(value) > limit else value


def check_resource_key(key: str) -> None:
    if len(key) > MAX_RESOURCE_KEY:
        raise Unstorable(f"the event's identifier is longer than {MAX_RESOURCE_KEY} characters")


def bounded(occ: Occurrence) -> Occurrence:
    """The occurrence with every stored field within its bound (the same object when it was)."""
    for name, value, limit in (
        ("event id", occ.event_id, MAX_EVENT_ID),
        ("series id", occ.series_id, MAX_SERIES_ID),
        ("original start", occ.original_start, MAX_ORIGINAL_START),
    ):
        if value is not None and len(value) > limit:
            raise Unstorable(f"the event's {name} is longer than {limit} characters")
    changes: dict[str, Any] = {
        "title": cut(occ.title, MAX_TITLE),
        "meeting_link": _drop(occ.meeting_link, MAX_MEETING_LINK),
        "organizer": _drop(occ.organizer, MAX_ORGANIZER),
        "time_zone": _drop(occ.time_zone, MAX_TIME_ZONE),
        "etag": _drop(occ.etag, MAX_ETAG),
    }
    changed = {k: v for k, v in changes.items() if v != getattr(occ, k)}
    return dataclasses.replace(occ, **changed) if changed else occ


def item_size(item: Mapping[str, Any]) -> int:
    """An upper estimate of a DynamoDB item's size (UTF-8 names and values, as AWS counts them)."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, bool) or value is None:
        return 1
    if isinstance(value, (int, float, Decimal)):
        return 21
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if isinstance(value, Mapping):
        return 3 + sum(len(str(k).encode()) + 1 + _value_size(v) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return 3 + sum(1 + _value_size(v) for v in value)
    return len(str(value).encode())


def check_item(item: Mapping[str, Any], what: str) -> None:
    if item_size(item) > MAX_ITEM_BYTES:
        raise Unstorable(f"{what} is too large to store")
