"""The account's calendar list (``calendarList.list``, every page), read at connect and again by
the renewal schedule so that a calendar created at Google, or shared with the person, after the
connect becomes selectable (R8; docs/providers/google.md § calendarList.list).

Parameters (Google's defaults, the same for connect and refresh): no ``minAccessRole`` (every
role, ``freeBusyReader`` included, is listed), ``showHidden`` false (a calendar the person hid in
Google is not offered), ``showDeleted`` false (deleted entries are not returned), ``maxResults``
250 (the largest page Google serves: fewest calls). The answer is untrusted: entries with an unknown
role, no id or an oversized id are skipped, names are cut, and the number of pages is bounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from calsync.domain.limits import MAX_EVENT_ID, MAX_TIME_ZONE, MAX_TITLE, cut
from calsync.store.items import AccessRole
from calsync.sync.source import SourceProtocolError
from calsync_google.client import Caller

ROLES: dict[str, AccessRole] = {
    "owner": "owner",
    "writer": "writer",
    "reader": "reader",
    "freeBusyReader": "freeBusyReader",
}
PAGE_SIZE = 250  # § calendarList.list: maxResults, "the page size can never be larger than 250"
MAX_PAGES = 40  # at most 10,000 calendars per account are read (bounded work per account and run)


@dataclass(frozen=True, slots=True)
class FoundCalendar:
    href: str
    name: str
    access_role: AccessRole
    time_zone: str | None


@dataclass(frozen=True, slots=True)
class CalendarList:
    calendars: list[FoundCalendar]
    email: str  # the primary calendar's id (the account's address), "" when none is listed


def _found(item: Any) -> FoundCalendar | None:
    if not isinstance(item, dict) or item.get("deleted"):
        return None
    role = ROLES.get(str(item.get("accessRole")))
    cal_id = item.get("id")
    if role is None or not isinstance(cal_id, str) or not cal_id or len(cal_id) > MAX_EVENT_ID:
        return None
    summary = item.get("summaryOverride") or item.get("summary")
    name = cut(str(summary), MAX_TITLE) if isinstance(summary, str) and summary else cut(cal_id, MAX_TITLE)
    tz = item.get("timeZone")
    return FoundCalendar(
        cal_id, name or cal_id, role, tz if isinstance(tz, str) and len(tz) <= MAX_TIME_ZONE else None
    )


def list_calendars(service: Any, caller: Caller) -> CalendarList:
    """Every page of the calendar list (one listing: ``MAX_PAGES`` requests at most). Raises the
    ``SourceError`` of a failed page (nothing is half-read)."""
    found: list[FoundCalendar] = []
    email, page = "", None
    for _ in range(MAX_PAGES):
        body = caller(
            service.calendarList().list(maxResults=PAGE_SIZE, **({"pageToken": page} if page else {}))
        )
        if not isinstance(body, dict) or not isinstance(body.get("items") or [], list):
            raise SourceProtocolError("Google's calendar list is not a list of calendars")
        for item in body.get("items") or []:
            calendar = _found(item)
            if calendar is None:
                continue
            if item.get("primary"):
                email = calendar.href.lower()
            found.append(calendar)
        page = body.get("nextPageToken")
        if not page:
            break
    return CalendarList(found, email)
