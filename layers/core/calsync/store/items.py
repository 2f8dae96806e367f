"""Stored items and their mapping to and from the domain (one model per boundary)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from calsync.domain.models import Occurrence, Provider, Status, Transparency, Visibility
from calsync.store import keys

AccessRole = Literal["owner", "writer", "reader", "freeBusyReader"]
SubscriberRole = Literal["primary", "conflict", "room"]
# where a calendar's occurrences are stored (docs/adr/0021): a copy in every subscriber's partition,
# or once in the calendar's own partitions (``wide``); ``widening`` writes both while it moves
Layout = Literal["copies", "widening", "wide"]


def valid_zone(name: str) -> str:
    """An IANA time zone name that this runtime knows, or ValueError."""
    if not name or len(name) > 64 or name.startswith(("/", ".")) or ".." in name:
        raise ValueError(f"unknown time zone {name!r}")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc
    return name


ZoneName = Annotated[str, AfterValidator(valid_zone)]  # a stored person's or room's time zone


class Profile(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    user_id: str
    display_name: str | None = None
    time_zone: ZoneName = "UTC"
    phone_number: str | None = None
    extension: str | None = None
    photo_url: str | None = None
    # P8 (issue 8): the uploaded photo's S3 key, and the key of an upload URL issued but not yet seen
    photo_key: str | None = None
    photo_pending_key: str | None = None
    version: int = 0  # calsync.store.versions: grows with every change of the meetings or presence
    # the wide calendars the person reads from their own partitions, with the person's role (0021)
    wide_calendars: dict[str, SubscriberRole] = Field(default_factory=dict)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


class Room(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    room_id: str
    location_id: str
    name: str
    time_zone: ZoneName = "UTC"
    account_id: str
    calendar_id: str
    # R9: who registered it (None: stored without a registrant, e.g. by a seeding tool)
    registered_by: str | None = None
    version: int = 0  # calsync.store.versions: grows with every change of the room's meetings
    # its calendar when that calendar is wide (read from the calendar's room partition, 0021)
    wide_calendars: dict[str, SubscriberRole] = Field(default_factory=dict)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def owner_id(self) -> str:
        """The room's owner id (location-scoped, docs/adr/0012)."""
        return keys.room_owner_id(self.location_id, self.room_id)

    @property
    def pk(self) -> str:
        return keys.room_pk(self.location_id, self.room_id)


class Calendar(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    calendar_id: str
    account_id: str
    owner_user_id: str
    provider: Provider
    name: str = ""
    access_role: AccessRole = "owner"
    time_zone: str | None = None
    # the partitions (USER#… / ROOM#…) this calendar's occurrences are copied to, with their role
    subscribers: dict[str, SubscriberRole] = Field(default_factory=dict)
    # R9: its owner marked it as a room calendar (an admin of their location may make it a room)
    room_consent: bool = False
    # docs/adr/0021: copies per subscriber, or once in the calendar's own partitions past a threshold
    layout: Layout = "copies"
    # the subscribers of a wide calendar that still get copies (their reads hold no more wide ones)
    copy_to: dict[str, SubscriberRole] = Field(default_factory=dict)
    # a wide calendar whose subscribers' old copies are all deleted (step 5 of the widening, 0021)
    swept: bool = True


def _opt_date(value: Any) -> date | None:
    return date.fromisoformat(value) if value else None


def _opt_instant(value: Any) -> datetime | None:
    return keys.parse_iso(value) if value else None


def occurrence_to_item(occ: Occurrence, role: SubscriberRole) -> dict[str, Any]:
    """The attributes of an occurrence copy (keys are added by the repository)."""
    item: dict[str, Any] = {
        "type": "occurrence",
        "occId": occ.id,
        "provider": occ.provider.value,
        "accountId": occ.account_id,
        "calendarId": occ.calendar_id,
        "eventId": occ.event_id,
        "updatable": occ.updatable,
        "organizerIsSelf": occ.organizer_is_self,
        "visibility": occ.visibility.value,
        "legacy": occ.legacy,
        "status": occ.status.value,
        "recurring": occ.recurring,
        "transparency": occ.transparency.value,
        "role": role,
    }
    optional: dict[str, Any] = {
        "title": occ.title,
        "start": keys.iso(occ.start) if occ.start else None,
        "end": keys.iso(occ.end) if occ.end else None,
        "startDate": occ.start_date.isoformat() if occ.start_date else None,
        "endDate": occ.end_date.isoformat() if occ.end_date else None,
        "timeZone": occ.time_zone,
        "seriesId": occ.series_id,
        "originalStart": occ.original_start,
        "organizer": occ.organizer,
        "meetingLink": occ.meeting_link,
        "etag": occ.etag,
        "declined": True if occ.declined else None,  # C11; absent when not declined
    }
    item.update({k: v for k, v in optional.items() if v is not None})
    return item


def item_to_occurrence(item: dict[str, Any]) -> Occurrence:
    return Occurrence(
        provider=Provider(item["provider"]),
        account_id=item["accountId"],
        calendar_id=item["calendarId"],
        event_id=item["eventId"],
        title=item.get("title"),
        start=_opt_instant(item.get("start")),
        end=_opt_instant(item.get("end")),
        start_date=_opt_date(item.get("startDate")),
        end_date=_opt_date(item.get("endDate")),
        time_zone=item.get("timeZone"),
        series_id=item.get("seriesId"),
        original_start=item.get("originalStart"),
        updatable=bool(item.get("updatable", True)),
        organizer_is_self=bool(item.get("organizerIsSelf", True)),
        organizer=item.get("organizer"),
        visibility=Visibility(item.get("visibility", "default")),
        meeting_link=item.get("meetingLink"),
        legacy=bool(item.get("legacy", False)),
        status=Status(item.get("status", "confirmed")),
        recurring=bool(item.get("recurring", False)),
        transparency=Transparency(item.get("transparency", "opaque")),
        declined=bool(item.get("declined", False)),
        etag=item.get("etag"),
        id=item["occId"],
    )
