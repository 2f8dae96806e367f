"""Scheduling use-cases (C6, C7, C8, C11, C12, U10): availability from the store, appointments
written to the primary calendar, meeting links added to listed events. No HTTP, no provider code:
the handler passes in the principal, ``now`` and validated input, and injects one
``WriterFactory`` per provider (dispatch by the calendar's provider).

A provider write that fails leaves the store as it was and is answered clearly:
throttled → 503 (``provider-throttled``), unreachable → 502 (``provider-unavailable``), revoked
grant → 409 (``reauth-required``; the account is marked, S7), changed meanwhile → 409
(``provider-write-conflict``), refused → 409 (``provider-write-rejected``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from calsync.api.auth import Principal
from calsync.api.scheduling_schemas import (
    MAX_RANGE,
    AppointmentIn,
    AppointmentOut,
    Availability,
    BusyInterval,
    Meeting,
)
from calsync.api.service import as_meeting
from calsync.domain.availability import Interval, busy, overlaps
from calsync.domain.errors import CalsyncError, Conflict, Forbidden, InvalidInput, NotFound
from calsync.domain.link_generator import LinkGenerator
from calsync.domain.models import OwnerKind, OwnerSettings, Provider
from calsync.domain.rules import Listed, select_for_person, window
from calsync.observability import logger
from calsync.store.accounts import Account, AccountRepository, CalendarConfig
from calsync.store.availability import read_calendar_events
from calsync.store.items import Calendar, Profile
from calsync.store.repository import Repository
from calsync.store.sync_state import SyncStateStore
from calsync.sync.source import SourceAuthError, SourceThrottled, SourceUnavailable
from calsync.sync.writer import CalendarWriter, EventDraft, WriteConflict, WriteRejected, WrittenEvent
from calsync.sync.written import store_written

WriterFactory = Callable[[Account, Calendar], CalendarWriter]


# ---- errors: each one problem type ---------------------------------------------------------------
class NoPrimaryCalendar(Conflict):
    type_slug = "no-primary-calendar"
    title = "No primary calendar"


class AppointmentConflict(Conflict):
    type_slug = "appointment-conflict"
    title = "The time is busy"


class MeetingLinkNotAllowed(Conflict):
    type_slug = "meeting-link-not-allowed"
    title = "A meeting link cannot be added"


class ReauthRequired(Conflict):
    type_slug = "reauth-required"
    title = "The account must be connected again"


class ProviderWriteConflict(Conflict):
    type_slug = "provider-write-conflict"
    title = "The event changed meanwhile"


class ProviderWriteRejected(Conflict):
    type_slug = "provider-write-rejected"
    title = "The calendar refused the write"


class ProviderThrottled(CalsyncError):
    status = 503
    type_slug = "provider-throttled"
    title = "The calendar provider asks to try again later"


class ProviderUnavailable(CalsyncError):
    status = 502
    type_slug = "provider-unavailable"
    title = "The calendar provider could not be reached"


@dataclass(frozen=True, slots=True)
class SchedulingDeps:
    writers: Mapping[Provider, WriterFactory]
    link_generator: LinkGenerator


class SchedulingService:
    def __init__(
        self,
        repository: Repository,
        accounts: AccountRepository,
        state: SyncStateStore,
        deps: SchedulingDeps,
    ) -> None:
        self._repo = repository
        self._accounts = accounts
        self._state = state
        self._deps = deps

    # ---- who may (C8, X1) ----------------------------------------------------------------------
    def _authorize(self, principal: Principal, location_id: str, user_id: str) -> Profile | None:
        """The person in a location they belong to, or an admin of it for a member; the target's
        profile (its time zone). Strangers and unknown people get the same 403 (X1)."""
        if user_id == principal.user_id:
            if not principal.is_member_of(location_id):
                raise Forbidden("you can schedule only in the locations you are a member of")
            profile, locations = self._repo.get_member(user_id)
            if locations != principal.locations:
                self._repo.set_member_locations(user_id, principal.locations)
            return profile
        if principal.administers(location_id):
            profile, locations = self._repo.get_member(user_id)
            if locations is not None and location_id in locations:
                return profile
        raise Forbidden("you can schedule for yourself, or for members of the locations you administer")

    # ---- availability (C11) --------------------------------------------------------------------
    def _busy(
        self,
        user_id: str,
        profile: Profile | None,
        config: CalendarConfig,
        start: datetime,
        end: datetime,
    ) -> list[Interval]:
        ids = config.calendar_ids
        zone = profile.zone if profile else ZoneInfo("UTC")
        wide = [c for c in (profile.wide_calendars if profile else {}) if c in ids]  # 0021: one more each
        occurrences = read_calendar_events(
            self._repo.table, user_id, ids, start, end, wide_calendars=wide
        )  # ONE Query
        return busy(occurrences, calendar_ids=ids, zone=zone, start=start, end=end)

    def availability(
        self, principal: Principal, location_id: str, user_id: str, start: datetime, end: datetime
    ) -> Availability:
        if start.tzinfo is None or end.tzinfo is None:
            raise InvalidInput("start and end need a UTC offset (RFC 3339)")
        if end <= start:
            raise InvalidInput("end must be after start")
        if end - start > MAX_RANGE:
            raise InvalidInput("the range is at most 62 days")
        profile = self._authorize(principal, location_id, user_id)
        zone = profile.zone if profile else ZoneInfo("UTC")
        config = self._accounts.get_config(user_id, location_id)
        intervals = self._busy(user_id, profile, config, start, end)
        return Availability(
            time_zone=zone.key,
            start=start,
            end=end,
            busy=[BusyInterval(start=s.astimezone(zone), end=e.astimezone(zone)) for s, e in intervals],
        )

    # ---- appointments (C7) ---------------------------------------------------------------------
    def book(
        self, principal: Principal, location_id: str, user_id: str, body: AppointmentIn, now: datetime
    ) -> AppointmentOut:
        profile = self._authorize(principal, location_id, user_id)
        zone = profile.zone if profile else ZoneInfo("UTC")
        config = self._accounts.get_config(user_id, location_id)
        if not config.primary_calendar_id:
            raise NoPrimaryCalendar(
                "no primary calendar is set in this location: choose one in the calendar configuration first"
            )
        if not body.allow_conflict:
            busy_ = self._busy(user_id, profile, config, body.start, body.end)
            clash = overlaps(busy_, body.start, body.end)
            if clash:
                when = ", ".join(
                    f"{s.astimezone(zone).isoformat()}/{e.astimezone(zone).isoformat()}" for s, e in clash
                )
                raise AppointmentConflict(
                    f"the person is busy then ({when}); choose another time, or set allowConflict"
                )
        calendar, account = self._writable(config.primary_calendar_id, user_id)
        draft = EventDraft(
            title=body.title,
            start=body.start,
            end=body.end,
            time_zone=zone.key,
            description=body.description,
            attendees=tuple(body.attendees),
        )
        written = self._write(account, calendar, lambda w: w.create_event(calendar, draft))
        occ = next((o for o in written.occurrences), None)
        if occ is None or occ.start is None or occ.end is None:
            raise ProviderWriteRejected("the provider did not return the event it created")
        logger.info(
            "appointment written",
            extra={
                "calendar_id": calendar.calendar_id,
                "provider": calendar.provider.value,
                "occ_id": occ.id,
            },
        )
        meeting = as_meeting(Listed.of(occ, occ.start, occ.end), zone)
        return AppointmentOut(**meeting.model_dump())

    def _writable(self, calendar_id: str, user_id: str) -> tuple[Calendar, Account]:
        calendar = self._repo.get_calendar(calendar_id)
        if calendar is None or calendar.owner_user_id != user_id:
            raise NoPrimaryCalendar("the primary calendar is no longer connected: choose another one")
        account = self._accounts.get_account(calendar.owner_user_id, calendar.account_id)
        if account is None or not account.credentials:
            raise NoPrimaryCalendar("the primary calendar's account is disconnected: connect it again")
        if account.status == "reauth_required":
            raise ReauthRequired(
                f"the {account.provider.value} account must be connected again (sign in again)"
            )
        if calendar.provider not in self._deps.writers:
            raise ProviderWriteRejected(
                f"writing to {calendar.provider.value} calendars is not available yet"
            )
        return calendar, account

    def _write(
        self, account: Account, calendar: Calendar, call: Callable[[CalendarWriter], WrittenEvent]
    ) -> WrittenEvent:
        """One provider write, errors mapped; on success the result is stored at once (no wait for
        a sync). On failure nothing is stored."""
        writer = self._deps.writers[calendar.provider](account, calendar)
        extra = {"calendar_id": calendar.calendar_id, "provider": calendar.provider.value}
        try:
            written = call(writer)
        except SourceAuthError as exc:
            logger.warning("provider refused the credentials on a write", extra={**extra, "error": str(exc)})
            self._accounts.set_status(account.user_id, account.account_id, "reauth_required")
            raise ReauthRequired(
                f"the {calendar.provider.value} account refused calsync's access: connect it again"
            ) from exc
        except SourceThrottled as exc:
            raise ProviderThrottled(
                f"the {calendar.provider.value} calendar is busy: try again later"
            ) from exc
        except SourceUnavailable as exc:
            raise ProviderUnavailable(
                f"the {calendar.provider.value} calendar could not be reached: {exc}"
            ) from exc
        except WriteConflict as exc:
            raise ProviderWriteConflict(f"{exc}; reload and try again") from exc
        except WriteRejected as exc:
            raise ProviderWriteRejected(str(exc)) from exc
        store_written(self._repo, self._state, calendar, written)
        return written

    # ---- meeting links (C12, U10) --------------------------------------------------------------
    def _listed(self, user_id: str, profile: Profile | None, now: datetime) -> list[Listed]:
        zone = profile.zone if profile else ZoneInfo("UTC")
        start, end = window(now, zone)
        wide = profile.wide_calendars if profile else {}
        events = self._repo.read_owner_events(OwnerKind.USER, user_id, start, end, wide)
        owner = OwnerSettings(time_zone=zone, primary_calendar_ids=events.primary_calendar_ids)
        return select_for_person(events.occurrences, now, owner).listed

    def add_meeting_link(self, principal: Principal, meeting_id: str, now: datetime) -> Meeting:
        profile, _ = self._repo.get_member(principal.user_id)
        zone = profile.zone if profile else ZoneInfo("UTC")
        item = next(
            (i for i in self._listed(principal.user_id, profile, now) if i.occurrence.id == meeting_id), None
        )
        if item is None:
            raise NotFound("no such meeting among your listed meetings")
        occ = item.occurrence
        if not item.can_add_meeting_link:
            why = "it is recurring" if occ.recurring else "it already has one"
            raise MeetingLinkNotAllowed(f"a meeting link cannot be added to this meeting: {why} (U10)")
        calendar, account = self._writable(occ.calendar_id, principal.user_id)
        link = self._deps.link_generator(occ.id)
        written = self._write(account, calendar, lambda w: w.add_meeting_link(calendar, occ, link))
        updated = next((o for o in written.occurrences if o.id == occ.id), None)
        if updated is None:
            raise ProviderWriteConflict("the event changed on the provider meanwhile; reload and try again")
        start, end = updated.instants(zone)
        return as_meeting(Listed.of(updated, start, end), zone)
