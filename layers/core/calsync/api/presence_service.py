"""Presence and profile use-cases (P1-P8, X1): who may see what, one consistent read of the person,
the pure rules of ``calsync.domain.presence``, then a write and its PresenceChanged event.

No HTTP here: the handler (functions/presence/app.py) passes in the principal, ``now`` and the
validated input, and maps ``CalsyncError`` to problem answers.
"""

from __future__ import annotations

import uuid
from dataclasses import KW_ONLY, dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from calsync import live
from calsync.api import etags
from calsync.api.auth import Principal
from calsync.api.presence_schemas import (
    DirectoryEntryIn,
    DirectoryEntryOut,
    MyPresenceOut,
    PhotoUploadIn,
    PhotoUploadOut,
    PresenceIn,
    PresenceOut,
    SessionOut,
)
from calsync.domain.errors import CalsyncError, Forbidden, StoreUnavailable
from calsync.domain.models import OwnerKind, OwnerSettings
from calsync.domain.presence import (
    Chosen,
    PresenceView,
    Session,
    meeting_in_progress,
    next_change,
    presence_view,
    starting_by,
)
from calsync.domain.rules import next_change as rules_next_change
from calsync.domain.rules import select_for_person, window
from calsync.observability import logger, metrics
from calsync.store.accounts import AccountRepository
from calsync.store.keys import user_pk
from calsync.store.photos import photo_key
from calsync.store.presence import UNSET, PresenceRepository, PresenceState
from calsync.store.sync_state import SyncStateStore

if TYPE_CHECKING:
    from calsync.events import PresencePublisher
    from calsync.store.due import DueStore
    from calsync.store.photos import PhotoStore
    from calsync.store.repository import Repository

_NOW_SPAN = timedelta(seconds=1)  # the events P6 looks at: those begun by now + 1 s
# ... read ahead this far, so that the answer's ETag knows when the next meeting starts (etags)
_LOOKAHEAD = timedelta(hours=1)
_AUTOMATIC = Chosen(status=None, message=None, updated_at=None)


def _others_view(user_id: str, view: PresenceView) -> PresenceOut:
    return PresenceOut(
        user_id=user_id,
        status=view.status,
        message=view.message,
        in_meeting_until=view.in_meeting_until,
        accepts_calls=view.accepts_calls,
        accepts_messages=view.accepts_messages,
        updated_at=view.updated_at,
    )


def _own_view(user_id: str, view: PresenceView) -> MyPresenceOut:
    return MyPresenceOut(**_others_view(user_id, view).model_dump(), chosen_status=view.chosen_status)


def live_answer(user_id: str, view: PresenceView, until: datetime | None) -> live.Answer:
    """What a presence event carries at a version (``calsync.live``): the answer a colleague's GET
    returns (X1: the channel is open to the same people) and its ETag."""

    def fields(version: int) -> dict[str, Any]:
        return {
            "presence": _others_view(user_id, view).model_dump(mode="json", by_alias=True),
            "etag": etags.make("p", user_id, version, until),
        }

    return fields


@dataclass(frozen=True, slots=True)
class TimeDriven:
    view: PresenceView  # the presence now
    presence_until: datetime | None  # when it may change by itself next
    presence_changed: bool  # by time, since the instant due
    meetings_changed: bool
    next_at: datetime | None  # the next instant either answer may change by itself


@dataclass(eq=False)
class PresenceService:
    repository: Repository
    presence: PresenceRepository
    _: KW_ONLY
    session_lifetime: timedelta
    publisher: PresencePublisher | None = None
    photos: PhotoStore | None = None
    due: DueStore | None = None

    # ---- the caller --------------------------------------------------------------------------
    def _me(self, principal: Principal) -> PresenceState:
        """The caller's state; their token's locations are remembered when they changed (X1: others
        are checked against them), as the API function does."""
        state = self.presence.read_state(principal.user_id)
        if state.locations != principal.locations:
            self.repository.set_member_locations(principal.user_id, principal.locations)
        return state

    # ---- what is shown -----------------------------------------------------------------------
    def _view(
        self, state: PresenceState, now: datetime, chosen: Chosen | None, sessions: list[Session]
    ) -> PresenceView:
        return self._tagged_view(state, now, chosen, sessions)[0]

    def _tagged_view(
        self, state: PresenceState, now: datetime, chosen: Chosen | None, sessions: list[Session]
    ) -> tuple[PresenceView, datetime | None]:
        """What is shown, and the first instant it may show something else without a write."""
        zone = state.profile.zone if state.profile else ZoneInfo("UTC")
        meeting = None
        meetings = None
        if any(s.live(now) for s in sessions) and (chosen is None or chosen.status is None):
            # P6 from the store (no provider call): the events begun by now + 1 s, and those of the
            # next hour for when the answer changes next, ONE Query
            horizon = now + _LOOKAHEAD
            wide = state.profile.wide_calendars if state.profile else {}
            events = self.repository.read_owner_events(OwnerKind.USER, state.user_id, now, horizon, wide)
            owner = OwnerSettings(time_zone=zone, primary_calendar_ids=events.primary_calendar_ids)
            meeting = meeting_in_progress(starting_by(events.occurrences, now + _NOW_SPAN), now, owner)
            meetings = (events.occurrences, owner, horizon, _NOW_SPAN)
        view = presence_view(chosen, sessions, meeting, now, zone)
        return view, next_change(chosen, sessions, now, meetings)

    def _publish(self, state: PresenceState, view: PresenceView, locations: frozenset[str], why: str) -> None:
        if self.publisher is None:
            return
        detail: dict[str, Any] = _others_view(state.user_id, view).model_dump(mode="json", by_alias=True)
        detail["locations"] = sorted(locations)
        detail["reason"] = why
        self.publisher.publish(detail)

    def _arm(self, user_id: str, until: datetime | None, *, once: bool = False) -> None:
        """The next instant this answer changes by itself goes to the live schedule (docs/adr/0018);
        ``once``: unless it is there already (a look again, docs/adr/0026)."""
        if self.due is not None and until is not None:
            if once:
                self.due.arm_once(user_id, until)
            else:
                self.due.arm(user_id, until)

    # ---- presence (P1-P7, X1) ----------------------------------------------------------------
    # Each write computes the answer it leads to first (from the state read and what it writes), so
    # that the live channel's event carries it (``live_answer``), then writes, then tells the old
    # PresenceChanged bus and arms the next instant the answer changes by itself.
    def set_presence(self, principal: Principal, body: PresenceIn, now: datetime) -> MyPresenceOut:
        state = self._me(principal)
        given = "message" in body.model_fields_set
        message = body.message if given else UNSET
        old = state.chosen or _AUTOMATIC
        chosen = Chosen(status=body.status, message=body.message if given else old.message, updated_at=now)
        view, until = self._tagged_view(state, now, chosen, state.sessions)
        self.presence.set_status(
            principal.user_id, body.status, message, now, answer=live_answer(principal.user_id, view, until)
        )
        self._publish(state, view, principal.locations, "status-set")
        self._arm(principal.user_id, until)
        return _own_view(principal.user_id, view)

    def clear_presence(self, principal: Principal, now: datetime) -> MyPresenceOut:
        state = self._me(principal)
        chosen = Chosen(status=None, message=(state.chosen or _AUTOMATIC).message, updated_at=now)
        view, until = self._tagged_view(state, now, chosen, state.sessions)
        answer = live_answer(principal.user_id, view, until)
        self.presence.clear_status(principal.user_id, now, answer=answer)
        self._publish(state, view, principal.locations, "status-cleared")
        self._arm(principal.user_id, until)
        return _own_view(principal.user_id, view)

    def get_presence(
        self, principal: Principal, user_id: str, now: datetime, if_none_match: str | None = None
    ) -> tuple[PresenceOut, str]:
        """X1: the person themself, or someone who shares a location with them. Unknown people are
        refused like strangers, so that the answer never tells who exists.

        With its ETag; ``NotModified`` (304) when ``if_none_match`` names the current one, known
        from the profile's GetItem alone (its version and the locations X1 needs), made before the
        Query so that the version is never newer than the data it tags (etags)."""
        profile, locations = self.repository.get_member(user_id)
        own = user_id == principal.user_id
        if own and locations != principal.locations:
            self.repository.set_member_locations(user_id, principal.locations)
        if not own and (not locations or not (locations & principal.locations)):
            raise Forbidden("you can see the presence of people who share a location with you only")
        kind, version = ("po" if own else "p"), (profile.version if profile else 0)
        etags.check(if_none_match, kind, user_id, version, now)
        state = self.presence.read_state(user_id)
        view, until = self._tagged_view(state, now, state.chosen, state.sessions)
        etag = etags.answer(if_none_match, etags.make(kind, user_id, version, until))
        return (_own_view(user_id, view) if own else _others_view(user_id, view)), etag

    # ---- sessions (P5) -------------------------------------------------------------------------
    def create_session(self, principal: Principal, now: datetime) -> SessionOut:
        state = self._me(principal)
        session = Session(uuid.uuid4().hex, now + self.session_lifetime)
        sessions = [*state.sessions, session]
        chosen = replace(state.chosen or _AUTOMATIC, updated_at=now)
        view, until = self._tagged_view(state, now, chosen, sessions)
        self.presence.create_session(
            principal.user_id,
            session.session_id,
            now,
            self.session_lifetime,
            answer=live_answer(principal.user_id, view, until),
        )
        self._publish(state, view, principal.locations, "signed-in")
        self._arm(principal.user_id, until)
        self._online(principal.user_id, session.expires_at)
        return SessionOut(session_id=session.session_id, expires_at=session.expires_at)

    def _online(self, user_id: str, until: datetime) -> None:
        """Adaptive polling (docs/adr/0016): the CalDAV calendars of the person's configurations are
        polled every run while they are signed in (this session's lifetime; Google and Microsoft
        push their changes). One write per configured calendar, at sign-in only; a failure never
        fails the sign-in: one WARNING and ``PollOnlineNotMarked``."""
        try:
            configs = AccountRepository(self.repository.table).list_configs(user_id)
            ids = sorted({c for config in configs for c in config.calendar_ids})
            state = SyncStateStore(self.repository.table)
            marked = sum(state.mark_poll_online("caldav", c, until) for c in ids)  # others: no entry
        except CalsyncError as exc:
            logger.warning(
                "calendars not marked online for polling",
                extra={"user_id": user_id, "error": type(exc).__name__},
            )
            metrics.add_metric(name="PollOnlineNotMarked", unit="Count", value=1)
            return
        logger.debug("calendars polled at the busiest rate while online", extra={"marked": marked})

    def renew_session(self, principal: Principal, session_id: str, now: datetime) -> SessionOut:
        """Extend a live session. Nothing is armed: the instant armed for the old expiry comes first,
        finds nothing changed and arms the next one (docs/adr/0018), cheaper than a write per renewal."""
        self._me(principal)
        session = self.presence.renew_session(principal.user_id, session_id, now, self.session_lifetime)
        return SessionOut(session_id=session.session_id, expires_at=session.expires_at)

    def end_session(self, principal: Principal, session_id: str, now: datetime) -> None:
        """Log out (idempotent: an unknown or expired session is simply gone)."""
        state = self._me(principal)
        sessions = [s for s in state.sessions if s.session_id != session_id]
        chosen = replace(state.chosen or _AUTOMATIC, updated_at=now)
        view, until = self._tagged_view(state, now, chosen, sessions)
        if self.presence.delete_session(
            principal.user_id, session_id, now, answer=live_answer(principal.user_id, view, until)
        ):
            self._publish(state, view, principal.locations, "signed-out")
            self._arm(principal.user_id, until)

    # ---- time (docs/adr/0018) ------------------------------------------------------------------
    def time_driven(self, user_id: str, since: datetime | None, now: datetime) -> TimeDriven:
        """What time alone changed in ``user_id``'s answers between just before ``since`` (an instant
        written down as due; ``None``: only find the next one) and ``now``, from ONE read of the
        state and ONE Query of the events: the presence answer (others' view, ``updated_at`` aside)
        and whether the meetings answer's ETag expired. Both compared on the same data, so a write
        made meanwhile (which published itself) is not taken for a change by time."""
        state = self.presence.read_state(user_id)
        zone = state.profile.zone if state.profile else ZoneInfo("UTC")
        before = (since - _NOW_SPAN) if since is not None and since <= now else now
        start = min(window(before, zone)[0], window(now, zone)[0])
        end = max(window(now, zone)[1], now + _LOOKAHEAD)
        wide = state.profile.wide_calendars if state.profile else {}  # 0021: their events too
        events = self.repository.read_owner_events(OwnerKind.USER, user_id, start, end, wide)
        owner = OwnerSettings(time_zone=zone, primary_calendar_ids=events.primary_calendar_ids)

        def at(instant: datetime) -> tuple[PresenceView, datetime | None]:
            chosen, sessions = state.chosen, state.sessions
            meetings = None
            if any(s.live(instant) for s in sessions) and (chosen is None or chosen.status is None):
                meetings = (events.occurrences, owner, end, _NOW_SPAN)
            meeting = None
            if meetings is not None:
                begun = starting_by(events.occurrences, instant + _NOW_SPAN)
                meeting = meeting_in_progress(begun, instant, owner)
            view = presence_view(chosen, sessions, meeting, instant, zone)
            return view, next_change(chosen, sessions, instant, meetings)

        old, _ = at(before)
        view, presence_until = at(now)
        shown = {"updated_at"}
        presence_changed = _others_view(user_id, old).model_dump(exclude=shown) != _others_view(
            user_id, view
        ).model_dump(exclude=shown)

        def meetings_until(instant: datetime) -> datetime:
            return rules_next_change(select_for_person(events.occurrences, instant, owner), instant)

        meetings_changed = before < now and meetings_until(before) <= now
        following = min((t for t in (presence_until, meetings_until(now)) if t is not None), default=None)
        return TimeDriven(view, presence_until, presence_changed, meetings_changed, following)

    def publish_time_driven(self, user_id: str, since: datetime | None, now: datetime) -> TimeDriven:
        """``time_driven``, then what changed on the live channel (one version bump for both answers)
        and the next instant armed."""
        found = self.time_driven(user_id, since, now)
        changed = (("meetings", found.meetings_changed), ("presence", found.presence_changed))
        kinds = [kind for kind, yes in changed if yes]
        if kinds:
            answer = live_answer(user_id, found.view, found.presence_until)
            # the next instant is armed just below, from the same data: no "look again" (0026)
            self.repository.bump_versions([user_pk(user_id)], *kinds, answer=answer, look_again=False)
        # a look again (``since`` None) mostly finds the instant its person's chain has armed already
        self._arm(user_id, found.next_at, once=since is None)
        return found

    # ---- profile (P8) --------------------------------------------------------------------------
    def set_directory_entry(
        self, principal: Principal, location_id: str, user_id: str, body: DirectoryEntryIn
    ) -> DirectoryEntryOut:
        """An admin of the location sets a member's phone number and extension (X1)."""
        if not principal.administers(location_id):
            raise Forbidden("only an admin of this location can change its members' directory entries")
        if user_id != principal.user_id:
            _, locations = self.repository.get_member(user_id)
            if not locations or location_id not in locations:
                raise Forbidden("this person is not a member of the location")
        self.presence.set_directory_entry(user_id, body.phone_number, body.extension)
        return DirectoryEntryOut(
            user_id=user_id,
            location_id=location_id,
            phone_number=body.phone_number,
            extension=body.extension,
        )

    def request_photo_upload(
        self, principal: Principal, body: PhotoUploadIn, now: datetime
    ) -> PhotoUploadOut:
        if self.photos is None:
            raise StoreUnavailable("profile photos are not configured (PHOTO_BUCKET)")
        self._me(principal)
        key = photo_key(principal.user_id, body.content_type)
        upload = self.photos.presigned_upload(key, body.content_type, now)
        self.presence.set_photo_pending(principal.user_id, key)
        return PhotoUploadOut(upload_url=upload.url, fields=upload.fields, expires_at=upload.expires_at)
