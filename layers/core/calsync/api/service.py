"""The API's use-cases: who may see what (X1), then one store read and the rules, mapped to the
response models. No HTTP here: the handler passes in the principal, the clock's ``now`` and the
validated input, and maps ``CalsyncError`` to problem answers."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar
from zoneinfo import ZoneInfo

from aws_lambda_powertools.event_handler import Response
from pydantic import BaseModel

from calsync.api import etags
from calsync.api.auth import Principal
from calsync.api.schemas import (
    ExcludedMeeting,
    ExplainedMeetings,
    Meeting,
    Meetings,
    ProfileOut,
    ProfilePatch,
    RoomIn,
    RoomOut,
    Window,
)
from calsync.domain.errors import Conflict, Forbidden, NotFound, RoomConsentRequired, StoreUnavailable
from calsync.domain.models import OwnerKind, OwnerSettings
from calsync.domain.rules import (
    Excluded,
    Listed,
    Selection,
    next_change,
    select_for_person,
    select_for_room,
    window,
)
from calsync.store.items import Calendar, Profile, Room
from calsync.store.presence import PresenceRepository

if TYPE_CHECKING:
    from calsync.api.calendar_sync import CalendarSync
    from calsync.store.photos import PhotoStore
    from calsync.store.repository import Repository


# The answer's caps (docs/limits.md): Lambda answers at most 6 MB. A list keeps its first
# items in U9 order up to a count and a size of JSON (measured as Powertools writes it: ASCII with
# \u escapes, the worst case), whatever the stored fields hold; ``truncated`` says it was cut.
MEETINGS_LIMIT = 500
MEETINGS_BUDGET = 2 * 1024 * 1024
EXCLUDED_LIMIT = 500
EXCLUDED_BUDGET = 1 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Caps:
    """How many items of each list, and how many bytes of their JSON, one answer holds at most."""

    meetings: int = MEETINGS_LIMIT
    meetings_budget: int = MEETINGS_BUDGET
    excluded: int = EXCLUDED_LIMIT
    excluded_budget: int = EXCLUDED_BUDGET


CAPS = Caps()  # the caps of the deployed API

_M = TypeVar("_M", bound=BaseModel)
_T = TypeVar("_T")


def _capped(items: Sequence[_T], build: Callable[[_T], _M], limit: int, budget: int) -> tuple[list[_M], bool]:
    """The answer models of the first ``items`` that fit in ``limit`` and ``budget`` bytes of JSON,
    and whether some were left out. Only the kept items (and the first one left out) are built."""
    kept: list[_M] = []
    size = 0
    for item in items:
        if len(kept) == limit:
            return kept, True
        model = build(item)
        size += len(json.dumps(model.model_dump(mode="json", by_alias=True))) + 1  # + the comma
        if size > budget:
            return kept, True
        kept.append(model)
    return kept, False


def as_meeting(item: Listed, zone: ZoneInfo) -> Meeting:
    """The answer of one meeting, its times in ``zone`` (a person's or room's meetings, an appointment)."""
    occ = item.occurrence
    return Meeting(
        id=occ.id,
        title=occ.title,
        start=item.start.astimezone(zone),
        end=item.end.astimezone(zone),
        all_day=occ.all_day,
        start_date=occ.start_date,
        end_date=occ.end_date,
        meeting_link=occ.meeting_link,
        recurring=occ.recurring,
        private=occ.private,
        can_add_meeting_link=item.can_add_meeting_link,
        calendar_id=occ.calendar_id,
        account_id=occ.account_id,
        provider=occ.provider.value,
    )


def _excluded(item: Excluded, zone: ZoneInfo) -> ExcludedMeeting:
    return ExcludedMeeting(
        id=item.occurrence.id,
        title=item.occurrence.title,
        start=item.start.astimezone(zone),
        end=item.end.astimezone(zone),
        rules=list(item.rules),
    )


def _meetings(selection: Selection, zone: ZoneInfo, *, explain: bool, caps: Caps = CAPS) -> Meetings:
    meetings, truncated = _capped(
        selection.listed, lambda i: as_meeting(i, zone), caps.meetings, caps.meetings_budget
    )
    window_ = Window(start=selection.window_start, end=selection.window_end)
    if not explain:
        return Meetings(time_zone=zone.key, window=window_, meetings=meetings, truncated=truncated)
    excluded, excluded_truncated = _capped(
        selection.excluded, lambda e: _excluded(e, zone), caps.excluded, caps.excluded_budget
    )
    return ExplainedMeetings(
        time_zone=zone.key,
        window=window_,
        meetings=meetings,
        truncated=truncated,
        excluded=excluded,
        excluded_truncated=excluded_truncated,
    )


def _profile_out(user_id: str, profile: Profile | None, photo_url: str | None = None) -> ProfileOut:
    p = profile or Profile(user_id=user_id)
    return ProfileOut(
        user_id=user_id,
        display_name=p.display_name,
        phone_number=p.phone_number,
        extension=p.extension,
        photo_url=photo_url or p.photo_url,
        time_zone=p.time_zone,
    )


_NOT_CONNECTED = (
    "calendar {calendar!r} of account {account!r} is not connected to calsync: connect the account "
    "that holds the room calendar first (yours, or that of a member of this location who marks it "
    "as a room calendar)"
)


def _room_out(room: Room) -> RoomOut:
    return RoomOut(
        id=room.room_id,
        location_id=room.location_id,
        name=room.name,
        time_zone=room.time_zone,
        account_id=room.account_id,
        calendar_id=room.calendar_id,
    )


class ApiService:
    def __init__(
        self,
        repository: Repository,
        photos: PhotoStore | None = None,
        calendar_sync: CalendarSync | None = None,
        caps: Caps = CAPS,
    ) -> None:
        self._repo = repository
        self._caps = caps  # the lists' caps (docs/limits.md)
        self._photos = photos  # P8: None where PHOTO_BUCKET is not set
        # R8: rooms start and stop their calendar's sync (None: no sync queues, e.g. a read-only tool)
        self._sync = calendar_sync

    # ---- the caller ----------------------------------------------------------------------------
    def _me(self, principal: Principal) -> Profile | None:
        """The caller's profile; their token's locations are remembered when they changed, so that
        admins can be checked against them later (GET /v1/users/{userId}/meetings)."""
        profile, locations = self._repo.get_member(principal.user_id)
        if locations != principal.locations:
            self._repo.set_member_locations(principal.user_id, principal.locations)
        return profile

    # ---- meetings (U1-U11, R1-R7) ------------------------------------------------------------
    # Each returns the answer and its ETag; ``NotModified`` (304) when ``if_none_match`` names the
    # current one, known from the profile's or room's version alone (the GetItem made first anyway,
    # before the Query, so that the version is never newer than the data it tags: etags).
    def _person_meetings(
        self,
        user_id: str,
        profile: Profile | None,
        now: datetime,
        explain: bool,
        if_none_match: str | None,
    ) -> tuple[Meetings, str]:
        kind = "mx" if explain else "m"
        wide = profile.wide_calendars if profile else {}
        # with wide calendars (0021) their versions too: ONE BatchGetItem, before the data
        version = self._repo.meetings_version(profile.version if profile else 0, wide)
        etags.check(if_none_match, kind, user_id, version, now)
        zone = profile.zone if profile else ZoneInfo("UTC")
        start, end = window(now, zone)
        # the ONE Query, plus one per wide calendar (at most store.wide.MAX_WIDE)
        events = self._repo.read_owner_events(OwnerKind.USER, user_id, start, end, wide)
        owner = OwnerSettings(time_zone=zone, primary_calendar_ids=events.primary_calendar_ids)
        selection = select_for_person(events.occurrences, now, owner)
        etag = etags.make(kind, user_id, version, next_change(selection, now))
        return _meetings(selection, zone, explain=explain, caps=self._caps), etags.answer(if_none_match, etag)

    def my_meetings(
        self, principal: Principal, now: datetime, *, explain: bool, if_none_match: str | None = None
    ) -> tuple[Meetings, str]:
        return self._person_meetings(principal.user_id, self._me(principal), now, explain, if_none_match)

    def user_meetings(
        self,
        principal: Principal,
        user_id: str,
        now: datetime,
        *,
        explain: bool,
        if_none_match: str | None = None,
    ) -> tuple[Meetings, str]:
        """X1: a member of a location the caller administers (or the caller). Unknown people are
        refused the same way as strangers, so that the answer never tells who exists."""
        if user_id == principal.user_id:
            return self.my_meetings(principal, now, explain=explain, if_none_match=if_none_match)
        profile, locations = self._repo.get_member(user_id)
        if not locations or not (locations & principal.admin_of):
            raise Forbidden("you can see the meetings of members of the locations you administer only")
        return self._person_meetings(user_id, profile, now, explain, if_none_match)

    def room_meetings(
        self,
        principal: Principal,
        room_id: str,
        now: datetime,
        *,
        explain: bool,
        location_id: str | None = None,
        if_none_match: str | None = None,
    ) -> tuple[Meetings, str]:
        """R1-R7 for a member of the room's location. Room ids are scoped by location (0012): the
        room is looked for in the caller's locations only, so another location's room and a missing
        one get the same 404, and nothing else of them is read."""
        locations = principal.locations if location_id is None else principal.locations & {location_id}
        rooms = self._repo.find_rooms(locations, room_id) if locations else []
        if not rooms:
            raise NotFound("no such room in your locations")
        if len(rooms) > 1:
            raise Conflict(
                f"several of your locations have a room {room_id!r} "
                f"({', '.join(r.location_id for r in rooms)}): name one with ?locationId="
            )
        [room] = rooms
        kind = "rx" if explain else "r"
        version = self._repo.meetings_version(room.version, room.wide_calendars)
        etags.check(if_none_match, kind, room.owner_id, version, now)
        zone = room.zone
        start, end = window(now, zone)
        events = self._repo.read_owner_events(  # the ONE Query (two when its calendar is wide: 0021)
            OwnerKind.ROOM, room.owner_id, start, end, room.wide_calendars
        )
        owner = OwnerSettings(time_zone=zone, primary_calendar_ids=events.primary_calendar_ids)
        selection = select_for_room(events.occurrences, now, owner)
        etag = etags.make(kind, room.owner_id, version, next_change(selection, now))
        return _meetings(selection, zone, explain=explain, caps=self._caps), etags.answer(if_none_match, etag)

    # ---- profile -------------------------------------------------------------------------------
    def my_profile(self, principal: Principal) -> ProfileOut:
        profile = self._me(principal)
        return _profile_out(principal.user_id, profile, self._photo_url(principal.user_id, profile))

    def _photo_url(self, user_id: str, profile: Profile | None) -> str | None:
        """P8: a short-lived URL of the person's photo. An upload URL issued earlier (POST
        /v1/me/profile/photo) is checked with one HeadObject while pending; once the file is there it
        becomes the photo. A photo store that fails never fails the profile."""
        if self._photos is None or profile is None:
            return None
        key = profile.photo_key
        pending = profile.photo_pending_key
        if pending:
            try:
                arrived = self._photos.exists(pending)
            except StoreUnavailable:
                arrived = False
            if arrived and PresenceRepository(self._repo.table).confirm_photo(user_id, pending):
                key = pending
        return self._photos.url(key) if key else None

    def update_my_profile(self, principal: Principal, patch: ProfilePatch) -> ProfileOut:
        self._me(principal)
        profile = self._repo.update_profile(
            principal.user_id, time_zone=patch.time_zone, display_name=patch.display_name
        )
        return _profile_out(principal.user_id, profile)

    # ---- rooms (admins) ------------------------------------------------------------------------
    def _require_admin(self, principal: Principal, location_id: str) -> None:
        if not principal.administers(location_id):
            raise Forbidden("only an admin of this location can manage its rooms")

    def _check_consent(
        self, principal: Principal, calendar: Calendar | None, body: RoomIn, location_id: str
    ) -> None:
        """R9: the calendar's owner registers the room themselves, or has marked the calendar as a
        room calendar and is a member of this location. A calendar calsync does not know, of another
        account, or of someone outside the location is refused alike (never telling whose it is)."""
        if calendar is None or calendar.account_id != body.account_id:
            raise Conflict(_NOT_CONNECTED.format(calendar=body.calendar_id, account=body.account_id))
        if calendar.owner_user_id == principal.user_id:
            return
        _, locations = self._repo.get_member(calendar.owner_user_id)
        if locations is None or location_id not in locations:
            raise Conflict(_NOT_CONNECTED.format(calendar=body.calendar_id, account=body.account_id))
        if not calendar.room_consent:
            raise RoomConsentRequired(
                f"calendar {body.calendar_id!r} belongs to another person, who has not marked it as a "
                "room calendar: ask them to mark it (PUT /v1/me/calendars/{calendarId}/room-consent) "
                "or to register the room themselves"
            )

    def put_room(
        self, principal: Principal, location_id: str, room_id: str, body: RoomIn
    ) -> tuple[RoomOut, bool]:
        """Register or change a room; ``True`` when it was created."""
        self._require_admin(principal, location_id)
        self._check_consent(principal, self._repo.get_calendar(body.calendar_id), body, location_id)
        existing = self._repo.get_room(location_id, room_id)
        room = self._repo.put_room(
            Room(
                room_id=room_id,
                location_id=location_id,
                name=body.name,
                time_zone=body.time_zone,
                account_id=body.account_id,
                calendar_id=body.calendar_id,
                registered_by=principal.user_id,
            )
        )
        if self._sync is not None:
            # R8: the room's events appear at once and its calendar syncs; on every PUT (idempotent),
            # so that repeating a PUT whose sync could not be started starts it
            if existing is not None and existing.calendar_id != room.calendar_id:
                self._sync.unsubscribed(existing.calendar_id)
            self._sync.subscribed(room.calendar_id, room.pk, "room", "config")
        return _room_out(room), existing is None

    def delete_room(self, principal: Principal, location_id: str, room_id: str) -> None:
        """R8: the room's copies go; its calendar stops syncing unless a person or room still uses it."""
        self._require_admin(principal, location_id)
        self._delete_room(location_id, room_id)

    def _delete_room(self, location_id: str, room_id: str) -> None:
        room = self._repo.delete_room(location_id, room_id)
        if self._sync is not None:
            self._sync.unsubscribed(room.calendar_id)

    # ---- R9: a person's consent to rooms on their calendar -------------------------------------
    def _own_calendar(self, principal: Principal, calendar_id: str) -> Calendar:
        calendar = self._repo.get_calendar(calendar_id)
        if calendar is None or calendar.owner_user_id != principal.user_id:
            raise NotFound("no such calendar among your connected accounts: see GET /v1/me/calendars")
        return calendar

    def give_room_consent(self, principal: Principal, calendar_id: str) -> None:
        """The owner marks their calendar as a room calendar: an admin of one of their locations may
        then make it a room there (their token's locations are remembered: the admin's check reads
        them)."""
        self._own_calendar(principal, calendar_id)
        self._me(principal)
        self._repo.set_room_consent(calendar_id, principal.user_id, consent=True)

    def withdraw_room_consent(self, principal: Principal, calendar_id: str) -> int:
        """The owner takes the mark back: every room on the calendar that they did not register
        themselves is deleted (copies gone, sync stopped unless someone still uses the calendar).
        Returns how many rooms went."""
        calendar = self._own_calendar(principal, calendar_id)
        self._repo.set_room_consent(calendar_id, principal.user_id, consent=False)
        gone = 0
        for room in self._repo.rooms_of_calendar(calendar):
            if room.registered_by != principal.user_id:
                self._delete_room(room.location_id, room.room_id)
                gone += 1
        if gone:
            from calsync.observability import logger  # noqa: PLC0415 - keeps the app's cold import light

            logger.info("rooms deleted: consent withdrawn", extra={"calendar_id": calendar_id, "rooms": gone})
        return gone


def tagged(answer: tuple[Meetings, str]) -> Response[Meetings | ExplainedMeetings]:
    """A meetings answer with its ``ETag`` (``calsync.api.etags``)."""
    meetings, etag = answer
    return Response(status_code=200, content_type="application/json", body=meetings, headers={"ETag": etag})
