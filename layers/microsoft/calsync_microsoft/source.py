"""One Outlook calendar as a ``CalendarSource`` (rule S2): ``calendarView/delta`` over the horizon.

- The cursor is ``{"link": <@odata.deltaLink>, "start", "end"}`` as JSON. It is handed to the engine
  only after every ``@odata.nextLink`` page was followed to the ``@odata.deltaLink`` (S6: the engine
  stores it after every page is stored).
- A cursor made for another horizon is refused (``CursorRejected``): the engine re-baselines with a
  full listing, so the horizon moves forward (S10); the reconcile schedule asks for it daily.
- 410 / ``syncStateNotFound`` on a delta link → ``CursorRejected`` (full resync).
- Each item of calendarView is one instance (single, occurrence or exception): one resource, keyed
  by its Graph id, with at most one occurrence. ``@removed`` items are deletions. A replayed change
  (the same item twice) writes the same occurrence again: harmless.
- ``may_have_changed`` cannot be answered cheaply (Graph has no ctag): always True; the delta query
  itself is the cheap check (one request when nothing changed).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import date, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from calsync.domain.links import LinkSettings, find_meeting_link, is_legacy
from calsync.domain.models import UTC, Occurrence, Provider, Status, Transparency, Visibility
from calsync.sync.source import (
    CalendarGone,
    CursorRejected,
    Horizon,
    Page,
    ResourceChange,
    SourceProtocolError,
    SourceUnavailable,
)
from calsync_microsoft.graph import GraphClient

PAGE_SIZE: Final = 50
PREFER = {"Prefer": f'outlook.timezone="UTC", odata.maxpagesize={PAGE_SIZE}'}
_SENSITIVITY = {
    "normal": Visibility.DEFAULT,
    "personal": Visibility.PRIVATE,
    "private": Visibility.PRIVATE,
    "confidential": Visibility.CONFIDENTIAL,
}


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def dump_cursor(link: str, horizon: Horizon) -> str:
    return json.dumps(
        {"link": link, "start": _iso(horizon.start), "end": _iso(horizon.end)}, separators=(",", ":")
    )


def load_cursor(cursor: str, horizon: Horizon) -> str | None:
    """The delta link of a cursor made for ``horizon``; None otherwise."""
    try:
        value = json.loads(cursor)
    except ValueError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("link"), str):
        return None
    if value.get("start") != _iso(horizon.start) or value.get("end") != _iso(horizon.end):
        return None
    return str(value["link"])


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _graph_time(value: Mapping[str, Any]) -> datetime:
    """``{"dateTime": "2026-11-21T09:00:00.0000000", "timeZone": "UTC"}`` as an aware instant."""
    text = str(value["dateTime"])
    if "." in text:
        head, frac = text.split(".", 1)
        text = f"{head}.{frac[:6]}"
    naive = datetime.fromisoformat(text.rstrip("Z"))
    return naive.replace(tzinfo=_zone(value.get("timeZone"))).astimezone(UTC)


def _graph_date(value: Mapping[str, Any]) -> date:
    return date.fromisoformat(str(value["dateTime"])[:10])


def to_occurrence(
    item: Mapping[str, Any],
    *,
    account_id: str,
    calendar_id: str,
    can_edit: bool,
    links: LinkSettings,
) -> Occurrence | None:
    """One Graph event instance as an occurrence; None for a series master (calendarView lists its
    instances instead)."""
    kind = str(item.get("type") or "singleInstance")
    if kind == "seriesMaster":
        return None
    recurring = kind in ("occurrence", "exception")
    organizer = ((item.get("organizer") or {}).get("emailAddress") or {}).get("address")
    is_organizer = bool(item.get("isOrganizer", True))
    join_url = (item.get("onlineMeeting") or {}).get("joinUrl")
    texts = [
        (item.get("location") or {}).get("displayName"),
        (item.get("body") or {}).get("content"),
        item.get("bodyPreview"),
    ]
    link = find_meeting_link([join_url, item.get("onlineMeetingUrl")], texts, links)
    fields: dict[str, Any] = {
        "provider": Provider.MICROSOFT,
        "account_id": account_id,
        "calendar_id": calendar_id,
        "event_id": str(item.get("seriesMasterId") or item["id"]) if recurring else str(item["id"]),
        "title": item.get("subject"),
        "time_zone": item.get("originalStartTimeZone") or None,
        "series_id": item.get("seriesMasterId") if recurring else None,
        "original_start": str(item.get("originalStart") or (item.get("start") or {}).get("dateTime"))
        if recurring
        else None,
        "updatable": is_organizer and can_edit,  # U4
        "organizer_is_self": is_organizer,
        "organizer": organizer,
        "visibility": _SENSITIVITY.get(str(item.get("sensitivity") or "normal"), Visibility.DEFAULT),
        "meeting_link": link,
        "legacy": is_legacy(link, organizer, links),
        "status": Status.CANCELLED if item.get("isCancelled") else Status.CONFIRMED,
        "recurring": recurring,
        "transparency": Transparency.TRANSPARENT if item.get("showAs") == "free" else Transparency.OPAQUE,
        "etag": item.get("changeKey") or item.get("@odata.etag"),
    }
    if item.get("isAllDay"):
        start_d, end_d = _graph_date(item["start"]), _graph_date(item["end"])
        if end_d <= start_d:
            end_d = start_d + timedelta(days=1)
        return Occurrence(start_date=start_d, end_date=end_d, **fields)
    return Occurrence(start=_graph_time(item["start"]), end=_graph_time(item["end"]), **fields)


class MicrosoftSource:
    def __init__(
        self,
        client: GraphClient,
        remote_calendar_id: str,
        *,
        account_id: str,
        calendar_id: str,
        can_edit: bool,
        links: LinkSettings | None = None,
    ) -> None:
        self.client = client
        self.remote_id = remote_calendar_id
        self.account_id = account_id
        self.calendar_id = calendar_id
        self.can_edit = can_edit
        self.links = links or LinkSettings()
        self._next_cursor: str | None = None

    @property
    def next_cursor(self) -> str | None:
        return self._next_cursor

    def may_have_changed(self, cursor: str) -> bool:
        return True

    def changes(self, cursor: str | None, known: Mapping[str, str], horizon: Horizon) -> Iterator[Page]:
        self._next_cursor = None
        full = cursor is None
        if cursor is not None:
            link = load_cursor(cursor, horizon)
            if link is None:
                raise CursorRejected("the delta link was made for another horizon: re-baseline")
            url: str = link
            params: dict[str, str] | None = None
        else:
            url = f"me/calendars/{self.remote_id}/calendarView/delta"
            params = {"startDateTime": _iso(horizon.start), "endDateTime": _iso(horizon.end)}
        first = True
        while True:
            resp = self.client.get(url, params=params, headers=PREFER)
            params = None
            if resp.status == 410 or resp.error_code() in ("syncStateNotFound", "resyncRequired"):
                if first and not full:
                    raise CursorRejected("Graph expired the delta link (410)")
                raise SourceUnavailable("Graph expired the listing while it was read: retry")
            if resp.status == 404:
                raise CalendarGone("the calendar is gone from the mailbox")
            if not isinstance(resp.body, dict) or not isinstance(resp.body.get("value"), list):
                raise SourceProtocolError("calendarView/delta answered no value list")
            first = False
            yield [self._change(item, known, full) for item in resp.body["value"] if isinstance(item, dict)]
            next_link = resp.body.get("@odata.nextLink")
            if isinstance(next_link, str):
                url = next_link
                continue
            delta_link = resp.body.get("@odata.deltaLink")
            if not isinstance(delta_link, str):
                raise SourceProtocolError("calendarView/delta ended without a deltaLink")
            self._next_cursor = dump_cursor(delta_link, horizon)
            return

    def _change(self, item: Mapping[str, Any], known: Mapping[str, str], full: bool) -> ResourceChange:
        key = str(item.get("id") or "")
        if "@removed" in item:
            return ResourceChange(key, deleted=True)
        etag = str(item.get("changeKey") or item.get("@odata.etag") or "")
        if full and etag and known.get(key) == etag:
            return ResourceChange(key, etag, unchanged=True)
        try:
            occ = to_occurrence(
                item,
                account_id=self.account_id,
                calendar_id=self.calendar_id,
                can_edit=self.can_edit,
                links=self.links,
            )
        except (KeyError, ValueError, TypeError) as exc:
            return ResourceChange(key, etag, (), errors=(f"unreadable event: {type(exc).__name__}",))
        return ResourceChange(key, etag, () if occ is None else (occ,))
