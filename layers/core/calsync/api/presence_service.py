"""Presence and profile use-cases (P1-P8, X1): who may see what, one consistent read of the person,
the pure rules of ``calsync.domain.presence``, then a write and its PresenceChanged event.

No HTTP here: the handler (functions/presence/app.py) passes in the principal, ``now`` and the
validated input, and maps ``CalsyncError`` to problem answers.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

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
from calsync.domain.errors import Forbidden, StoreUnavailable
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
from calsync.store.photos import photo_key
from calsync.store.presence import UNSET, PresenceRepository, PresenceState

if TYPE_CHECKING:
    from calsync.events import PresencePublisher
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


class PresenceService:
    def __init__(
        self,
        repository: Repository,
        presence: PresenceRepository,
        *,
        session_lifetime: timedelta,
        publisher: PresencePublisher | None = None,
        photos: PhotoStore | None = None,
    ) -> None:
        self._repo = repository
        self._presence = presence
        self._lifetime = session_lifetime
        self._publisher = publisher
        self._photos = photos

    # ---- the caller --------------------------------------------------------------------------
    def _me(self, principal: Principal) -> PresenceState:
        """The caller's state; their token's locations are remembered when they changed (X1: others
        are checked against them), as the API function does."""
        state = self._presence.read_state(principal.user_id)
        if state.locations != principal.locations:
            self._repo.set_member_locations(principal.user_id, principal.locations)
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
            events = self._repo.read_owner_events(OwnerKind.USER, state.user_id, now, horizon, wide)
            owner = OwnerSettings(time_zone=zone, primary_calendar_ids=events.primary_calendar_ids)
            meeting = meeting_in_progress(starting_by(events.occurrences, now + _NOW_SPAN), now, owner)
            meetings = (events.occurrences, owner, horizon, _NOW_SPAN)
        view = presence_view(chosen, sessions, meeting, now, zone)
        return view, next_change(chosen, sessions, now, meetings)

    def _publish(self, state: PresenceState, view: PresenceView, locations: frozenset[str], why: str) -> None:
        if self._publisher is None:
            return
        detail: dict[str, Any] = _others_view(state.user_id, view).model_dump(mode="json", by_alias=True)
        detail["locations"] = sorted(locations)
        detail["reason"] = why
        self._publisher.publish(detail)

    # ---- presence (P1-P7, X1) ----------------------------------------------------------------
    def set_presence(self, principal: Principal, body: PresenceIn, now: datetime) -> MyPresenceOut:
        state = self._me(principal)
        message = body.message if "message" in body.model_fields_set else UNSET
        chosen = self._presence.set_status(principal.user_id, body.status, message, now)
        view = self._view(state, now, chosen, state.sessions)
        self._publish(state, view, principal.locations, "status-set")
        return _own_view(principal.user_id, view)

    def clear_presence(self, principal: Principal, now: datetime) -> MyPresenceOut:
        state = self._me(principal)
        chosen = self._presence.clear_status(principal.user_id, now)
        view = self._view(state, now, chosen, state.sessions)
        self._publish(state, view, principal.locations, "status-cleared")
        return _own_view(principal.user_id, view)

    def get_presence(
        self, principal: Principal, user_id: str, now: datetime, if_none_match: str | None = None
    ) -> tuple[PresenceOut, str]:
        """X1: the person themself, or someone who shares a location with them. Unknown people are
        refused like strangers, so that the answer never tells who exists.

        With its ETag; ``NotModified`` (304) when ``if_none_match`` names the current one, known
        from the profile's GetItem alone (its version and the locations X1 needs), made before the
        Query so that the version is never newer than the data it tags (etags)."""
        profile, locations = self._repo.get_member(user_id)
        own = user_id == principal.user_id
        if own and locations != principal.locations:
            self._repo.set_member_locations(user_id, principal.locations)
        if not own and (not locations or not (locations & principal.locations)):
            raise Forbidden("you can see the presence of people who share a location with you only")
        kind, version = ("po" if own else "p"), (profile.version if profile else 0)
        etags.check(if_none_match, kind, user_id, version, now)
        state = self._presence.read_state(user_id)
        view, until = self._tagged_view(state, now, state.chosen, state.sessions)
        etag = etags.answer(if_none_match, etags.make(kind, user_id, version, until))
        return (_own_view(user_id, view) if own else _others_view(user_id, view)), etag

    # ---- sessions (P5) -------------------------------------------------------------------------
    def create_session(self, principal: Principal, now: datetime) -> SessionOut:
        state = self._me(principal)
        session = self._presence.create_session(principal.user_id, uuid.uuid4().hex, now, self._lifetime)
        sessions = [*state.sessions, session]
        chosen = replace(state.chosen or _AUTOMATIC, updated_at=now)
        self._publish(state, self._view(state, now, chosen, sessions), principal.locations, "signed-in")
        return SessionOut(session_id=session.session_id, expires_at=session.expires_at)

    def renew_session(self, principal: Principal, session_id: str, now: datetime) -> SessionOut:
        self._me(principal)
        session = self._presence.renew_session(principal.user_id, session_id, now, self._lifetime)
        return SessionOut(session_id=session.session_id, expires_at=session.expires_at)

    def end_session(self, principal: Principal, session_id: str, now: datetime) -> None:
        """Log out (idempotent: an unknown or expired session is simply gone)."""
        state = self._me(principal)
        if self._presence.delete_session(principal.user_id, session_id, now):
            sessions = [s for s in state.sessions if s.session_id != session_id]
            chosen = replace(state.chosen or _AUTOMATIC, updated_at=now)
            self._publish(state, self._view(state, now, chosen, sessions), principal.locations, "signed-out")

    # ---- profile (P8) --------------------------------------------------------------------------
    def set_directory_entry(
        self, principal: Principal, location_id: str, user_id: str, body: DirectoryEntryIn
    ) -> DirectoryEntryOut:
        """An admin of the location sets a member's phone number and extension (X1)."""
        if not principal.administers(location_id):
            raise Forbidden("only an admin of this location can change its members' directory entries")
        if user_id != principal.user_id:
            _, locations = self._repo.get_member(user_id)
            if not locations or location_id not in locations:
                raise Forbidden("this person is not a member of the location")
        self._presence.set_directory_entry(user_id, body.phone_number, body.extension)
        return DirectoryEntryOut(
            user_id=user_id,
            location_id=location_id,
            phone_number=body.phone_number,
            extension=body.extension,
        )

    def request_photo_upload(
        self, principal: Principal, body: PhotoUploadIn, now: datetime
    ) -> PhotoUploadOut:
        if self._photos is None:
            raise StoreUnavailable("profile photos are not configured (PHOTO_BUCKET)")
        self._me(principal)
        key = photo_key(principal.user_id, body.content_type)
        upload = self._photos.presigned_upload(key, body.content_type, now)
        self._presence.set_photo_pending(principal.user_id, key)
        return PhotoUploadOut(upload_url=upload.url, fields=upload.fields, expires_at=upload.expires_at)
