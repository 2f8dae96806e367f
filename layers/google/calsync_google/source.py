"""A Google calendar as a ``CalendarSource`` (S1, C10, U4, U5, U7, R4).

- ``changes(None, known)``: a full listing bounded to the horizon (``timeMin``/``timeMax``,
  ``singleEvents=True``: Google expands series, one item per occurrence); items whose etag we have
  are reported unchanged (nothing written).
- ``changes(cursor)``: ``events.list`` with the stored sync token (no time bounds: Google refuses
  them with a token), every page followed to the end; only then ``next_cursor`` holds the new
  ``nextSyncToken`` (S6: the engine stores it after the last page). 410 Gone → ``CursorRejected``
  (the engine makes a full pass of that calendar).
- A resource is one item of the listing (a single event, or one occurrence of a series: its id is
  ``<seriesId>_<originalStart>``, stable when the occurrence moves). Its occurrence id comes from
  the series id and ``originalStartTime``, so a moved occurrence keeps its meeting id.
- ``status: cancelled`` (a deleted event, or a cancelled occurrence of a live series): deleted.
- Non-meeting event types (outOfOffice, focusTime, workingLocation, birthday, fromGmail… anything
  but ``default``) and items outside the horizon (an incremental listing has no time bounds: after
  a series is edited Google names every instance for months): reported deleted — nothing is
  stored, no index row is written, and any earlier copy is removed.
- ``may_have_changed``: always True without a request: a push notification (or the reconcile
  schedule) is the cheap check, and one ``events.list`` with the token costs the same as a check.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from calsync.domain.links import LinkSettings, find_meeting_link, is_legacy
from calsync.domain.models import (
    UTC,
    Occurrence,
    Provider,
    Status,
    Transparency,
    Visibility,
    widest_instants,
)
from calsync.sync.source import CursorRejected, Horizon, Page, ResourceChange, SourceProtocolError
from calsync_google.client import Caller, GoneError

PAGE_SIZE = 250
MEETING_TYPES = frozenset({"default"})
WRITE_ROLES = frozenset({"owner", "writer"})


@dataclass(frozen=True, slots=True)
class GoogleContext:
    account_id: str
    calendar_id: str  # calsync's id
    access_role: str = "owner"
    links: LinkSettings = field(default_factory=LinkSettings)


def _instant(value: Mapping[str, Any]) -> datetime | None:
    text = value.get("dateTime")
    if not text:
        return None
    return datetime.fromisoformat(text).astimezone(UTC)


def _date(value: Mapping[str, Any]) -> date | None:
    text = value.get("date")
    return date.fromisoformat(text) if text else None


def _original_start(item: Mapping[str, Any]) -> str | None:
    original = item.get("originalStartTime")
    if not isinstance(original, Mapping):
        return None
    instant = _instant(original)
    if instant is not None:
        return instant.strftime("%Y%m%dT%H%M%SZ")
    day = _date(original)
    return day.isoformat() if day else None


def updatable(item: Mapping[str, Any], access_role: str) -> bool:
    """U4 for Google: a writable calendar, and the person organizes the event or guests may modify
    it, and it is not locked."""
    organizer = item.get("organizer") or {}
    is_self = bool(organizer.get("self", False)) if organizer else True
    return (
        access_role in WRITE_ROLES
        and (is_self or bool(item.get("guestsCanModify", False)))
        and not bool(item.get("locked", False))
    )


def meeting_link(item: Mapping[str, Any], links: LinkSettings) -> str | None:
    """Structured conference data first (video entry points, then ``hangoutLink``), then text."""
    entry_points = (item.get("conferenceData") or {}).get("entryPoints") or []
    structured = [e.get("uri") for e in entry_points if e.get("entryPointType") == "video"]
    structured.append(item.get("hangoutLink"))
    return find_meeting_link(structured, [item.get("location"), item.get("description")], links)


def to_occurrence(item: Mapping[str, Any], ctx: GoogleContext) -> Occurrence | None:
    """The occurrence of one (non-cancelled) listing item; None for non-meeting event types."""
    if item.get("eventType", "default") not in MEETING_TYPES:
        return None
    start, end = item.get("start") or {}, item.get("end") or {}
    organizer = item.get("organizer") or {}
    organizer_email = organizer.get("email")
    link = meeting_link(item, ctx.links)
    series = item.get("recurringEventId")
    try:
        status = Status(item.get("status", "confirmed"))
    except ValueError:
        status = Status.CONFIRMED
    try:
        visibility = Visibility(item.get("visibility", "default"))
    except ValueError:
        visibility = Visibility.DEFAULT
    common: dict[str, Any] = {
        "provider": Provider.GOOGLE,
        "account_id": ctx.account_id,
        "calendar_id": ctx.calendar_id,
        "event_id": series or item["id"],
        "title": item.get("summary"),
        "time_zone": start.get("timeZone"),
        "series_id": series,
        "original_start": _original_start(item) if series else None,
        "updatable": updatable(item, ctx.access_role),
        "organizer_is_self": bool(organizer.get("self", False)) if organizer else True,
        "organizer": organizer_email,
        "visibility": visibility,
        "meeting_link": link,
        "legacy": is_legacy(link, organizer_email, ctx.links),
        "status": status,
        "recurring": bool(series),
        "transparency": Transparency.TRANSPARENT
        if item.get("transparency") == "transparent"
        else Transparency.OPAQUE,
        "etag": item.get("etag"),
    }
    s_at, e_at = _instant(start), _instant(end)
    if s_at is not None and e_at is not None:
        return Occurrence(start=s_at, end=e_at, **common)
    s_day, e_day = _date(start), _date(end)
    if s_day is not None and e_day is not None:
        return Occurrence(start_date=s_day, end_date=e_day, **common)
    raise ValueError("an event without start/end")


def _inside(occ: Occurrence, horizon: Horizon) -> bool:
    start, end = widest_instants(occ)
    return start < horizon.end and end > horizon.start


class OnGoogleCalendar:
    """One Google calendar through the API client: what ``GoogleSource`` reads and
    ``calsync_google.writer.GoogleWriter`` writes."""

    def __init__(
        self, service: Any, google_calendar_id: str, ctx: GoogleContext, *, caller: Caller | None = None
    ) -> None:
        self.service = service
        self.google_calendar_id = google_calendar_id
        self.ctx = ctx
        self.caller = caller or Caller()


class GoogleSource(OnGoogleCalendar):
    _next_cursor: str | None = None  # set by a listing that reaches its last page

    def may_have_changed(self, cursor: str) -> bool:
        return True

    @property
    def next_cursor(self) -> str | None:
        return self._next_cursor

    def _change(
        self, item: Mapping[str, Any], known: Mapping[str, str], full: bool, horizon: Horizon
    ) -> ResourceChange:
        key, etag = str(item["id"]), str(item.get("etag", ""))
        if item.get("status") == "cancelled":
            return ResourceChange(key, deleted=True)
        if full and etag and known.get(key) == etag:
            return ResourceChange(key, etag, unchanged=True)
        try:
            occ = to_occurrence(item, self.ctx)
        except (ValueError, KeyError, TypeError) as exc:
            return ResourceChange(key, etag, errors=(f"unreadable event: {exc}",))
        if occ is None or not _inside(occ, horizon):
            # nothing to store (outside the horizon, or not a meeting): reported deleted, so an
            # earlier copy goes and no index row is written for it — an incremental listing after
            # a series edit names months of instances, and only the horizon's are kept (S10)
            return ResourceChange(key, deleted=True)
        return ResourceChange(key, etag, (occ,))

    def changes(self, cursor: str | None, known: Mapping[str, str], horizon: Horizon) -> Iterator[Page]:
        self._next_cursor = None
        params: dict[str, Any] = {
            "calendarId": self.google_calendar_id,
            "singleEvents": True,
            "maxResults": PAGE_SIZE,
        }
        if cursor is None:
            params["timeMin"] = horizon.start.isoformat().replace("+00:00", "Z")
            params["timeMax"] = horizon.end.isoformat().replace("+00:00", "Z")
        else:
            params["syncToken"] = cursor
        page_token: str | None = None
        while True:
            request = self.service.events().list(
                **params, **({"pageToken": page_token} if page_token else {})
            )
            try:
                body = self.caller(request)
            except GoneError as exc:
                if page_token is None:
                    raise CursorRejected(f"the sync token is no longer valid: {exc}") from exc
                raise SourceProtocolError("410 in the middle of a listing") from exc
            if not isinstance(body, Mapping):
                raise SourceProtocolError("events.list answered no object")
            yield [self._change(item, known, cursor is None, horizon) for item in body.get("items") or []]
            page_token = body.get("nextPageToken")
            if not page_token:
                sync_token = body.get("nextSyncToken")
                if not sync_token:
                    raise SourceProtocolError("the last page carries no nextSyncToken")
                self._next_cursor = str(sync_token)
                return
