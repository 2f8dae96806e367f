"""Occurrence factory for the unit tests: short to call, explicit about time.

``timed(...)`` and ``all_day(...)`` build :class:`~calsync.domain.models.Occurrence` values with
sensible defaults (a confirmed, updatable, non-recurring event on calendar ``cal-1`` of account
``acct-1``); every field can be overridden by keyword. Each call gets a fresh event id, so two
built occurrences are never the same occurrence unless an ``event_id`` is given on purpose.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

from calsync.domain.links import LinkSettings, is_legacy
from calsync.domain.models import UTC, Occurrence, Provider
from calsync.domain.rules import Selection

_event_ids = itertools.count(1)

# The deployment's meeting hosts in the unit tests (MEETING_HOSTS / LEGACY_HOSTS / LEGACY_ORGANIZERS).
LINKS = LinkSettings.of(
    meeting_hosts=["meet.example.com", "zoom.us", "teams.microsoft.com", "meet.google.com"],
    legacy_hosts=["legacy-video.example.com"],
    legacy_organizers=["old.boss@example.com", "@still-legacy.example"],
)

LINK_A = "https://meet.example.com/room-a"
LINK_B = "https://meet.example.com/room-b"
LEGACY_LINK = "https://legacy-video.example.com/j/42"


def at(text: str) -> datetime:
    """An aware UTC instant from ISO text; ``Z`` or an explicit offset is required."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no offset: tests use aware instants only")
    return value.astimezone(UTC)


def _next_event_id() -> str:
    return f"evt-{next(_event_ids)}"


def _with_defaults(fields: dict[str, Any]) -> dict[str, Any]:
    fields.setdefault("provider", Provider.GOOGLE)
    fields.setdefault("account_id", "acct-1")
    fields.setdefault("calendar_id", "cal-1")
    fields.setdefault("title", "Meeting")
    if "event_id" not in fields:
        fields["event_id"] = _next_event_id()
    if fields.pop("legacy_from_links", False):
        # U6 as the normalizer computes it: from the link's host and the organizer
        fields["legacy"] = is_legacy(fields.get("meeting_link"), fields.get("organizer"), LINKS)
    return fields


def timed(
    start: datetime | str,
    end: datetime | str | None = None,
    *,
    duration: timedelta | None = None,
    **fields: Any,
) -> Occurrence:
    """A timed occurrence; give ``end`` or ``duration`` (default 30 minutes)."""
    s = at(start) if isinstance(start, str) else start
    if end is not None and duration is not None:
        raise ValueError("give end or duration, not both")
    if end is None:
        e = s + (duration if duration is not None else timedelta(minutes=30))
    else:
        e = at(end) if isinstance(end, str) else end
    return Occurrence(start=s, end=e, **_with_defaults(fields))


def all_day(
    start_date: date | str, end_date: date | str | None = None, *, days: int = 1, **fields: Any
) -> Occurrence:
    """An all-day occurrence from ``start_date`` (inclusive) to ``end_date`` (exclusive), or ``days`` long."""
    s = date.fromisoformat(start_date) if isinstance(start_date, str) else start_date
    if end_date is None:
        e = s + timedelta(days=days)
    else:
        e = date.fromisoformat(end_date) if isinstance(end_date, str) else end_date
    return Occurrence(start_date=s, end_date=e, **_with_defaults(fields))


def listed_ids(selection: Selection) -> list[str]:
    return [item.occurrence.id for item in selection.listed]


def excluded_rules(selection: Selection) -> dict[str, set[str]]:
    return {item.occurrence.id: set(item.rules) for item in selection.excluded}


def ids(occurrences: Iterable[Occurrence]) -> list[str]:
    return [occ.id for occ in occurrences]
