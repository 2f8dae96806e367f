"""The normalized event occurrence every provider is mapped to, and the owner settings the rules need.

Instants are aware datetimes in UTC (``tzinfo is timezone.utc``, so comparisons stay cheap);
all-day events carry dates instead (``end_date`` exclusive) and are placed on the time line
only in an owner's own time zone, when the rules run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC as UTC  # re-exported: the one UTC of calsync (datetime.UTC is timezone.utc)
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class Provider(StrEnum):
    GOOGLE = "google"
    MICROSOFT = "microsoft"
    CALDAV = "caldav"


class Visibility(StrEnum):
    DEFAULT = "default"
    PUBLIC = "public"
    PRIVATE = "private"
    CONFIDENTIAL = "confidential"


class Status(StrEnum):
    CONFIRMED = "confirmed"
    TENTATIVE = "tentative"
    CANCELLED = "cancelled"


class Transparency(StrEnum):
    OPAQUE = "opaque"
    TRANSPARENT = "transparent"


class OwnerKind(StrEnum):
    USER = "user"
    ROOM = "room"


def occurrence_id(provider: str, calendar_id: str, event_id: str, original_start: str | None) -> str:
    """A stable, opaque, URL-safe id for one occurrence (used as ``meetingId`` in the API).

    Built from the provider's identity of the occurrence, so a moved occurrence of a series keeps
    its id (its original start does not change) and a re-sync never creates a second one.
    """
    raw = "\x1f".join((provider, calendar_id, event_id, original_start or ""))
    return hashlib.blake2b(raw.encode("utf-8"), digest_size=16).hexdigest()


def as_utc(value: datetime) -> datetime:
    """Normalize an aware datetime to ``timezone.utc``; naive datetimes are a programming error."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("naive datetime: instants must be timezone-aware")
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One occurrence of an event on one calendar, as every provider is normalized to."""

    provider: Provider
    account_id: str
    calendar_id: str
    event_id: str
    title: str | None
    # timed events: aware UTC instants; all-day events: dates (end exclusive)
    start: datetime | None = None
    end: datetime | None = None
    start_date: date | None = None
    end_date: date | None = None
    time_zone: str | None = None
    series_id: str | None = None
    original_start: str | None = None
    updatable: bool = True
    organizer_is_self: bool = True
    organizer: str | None = None
    visibility: Visibility = Visibility.DEFAULT
    meeting_link: str | None = None
    legacy: bool = False
    status: Status = Status.CONFIRMED
    recurring: bool = False
    transparency: Transparency = Transparency.OPAQUE
    declined: bool = False  # C11: the person declined it (it does not block their time)
    etag: str | None = None
    id: str = field(default="")

    def __post_init__(self) -> None:
        timed = self.start is not None and self.end is not None
        all_day = self.start_date is not None and self.end_date is not None
        half_timed = (self.start is None) != (self.end is None)
        half_all_day = (self.start_date is None) != (self.end_date is None)
        if timed == all_day or half_timed or half_all_day:
            raise ValueError("an occurrence has either start/end instants or all-day dates")
        if timed:
            assert self.start is not None and self.end is not None
            object.__setattr__(self, "start", as_utc(self.start))
            object.__setattr__(self, "end", as_utc(self.end))
            if self.end < self.start:
                raise ValueError("end before start")
        else:
            assert self.start_date is not None and self.end_date is not None
            if self.end_date <= self.start_date:
                raise ValueError("an all-day event ends at least one day after it starts")
        if not self.id:
            object.__setattr__(
                self, "id", occurrence_id(self.provider, self.calendar_id, self.event_id, self.original_start)
            )

    @property
    def all_day(self) -> bool:
        return self.start_date is not None

    @property
    def private(self) -> bool:
        return self.visibility in (Visibility.PRIVATE, Visibility.CONFIDENTIAL)

    @property
    def cancelled(self) -> bool:
        return self.status is Status.CANCELLED

    def instants(self, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """Start and end on the time line; all-day dates are placed in ``zone``."""
        if self.start is not None and self.end is not None:
            return self.start, self.end
        assert self.start_date is not None and self.end_date is not None
        return day_start(self.start_date, zone), day_start(self.end_date, zone)


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """00:00 of ``day`` in ``zone``, as a UTC instant (correct on daylight-saving days)."""
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


# Where an all-day date may fall on the time line in any time zone (UTC-12 … UTC+14):
# the store indexes all-day events over this widest span, the rules place them exactly.
EARLIEST_OFFSET = timedelta(hours=14)
LATEST_OFFSET = timedelta(hours=12)


def widest_instants(occ: Occurrence) -> tuple[datetime, datetime]:
    """The span an occurrence may cover on the time line, whatever its owner's time zone."""
    if occ.start is not None and occ.end is not None:
        return occ.start, occ.end
    assert occ.start_date is not None and occ.end_date is not None
    s = datetime(occ.start_date.year, occ.start_date.month, occ.start_date.day, tzinfo=UTC)
    e = datetime(occ.end_date.year, occ.end_date.month, occ.end_date.day, tzinfo=UTC)
    return s - EARLIEST_OFFSET, e + LATEST_OFFSET


@dataclass(frozen=True, slots=True)
class OwnerSettings:
    """What the rules need to know of the person or room whose list is built."""

    time_zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    primary_calendar_ids: frozenset[str] = frozenset()
