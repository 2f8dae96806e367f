"""Writing to a CalDAV calendar: the ``CalendarWriter`` of calsync.sync.writer (C7, C12).

- ``create_event``: PUT of a new resource ``<uid>.ics`` with ``If-None-Match: *`` (RFC 4791
  §5.3.2: never overwrites anything; 412 → ``WriteConflict``).
- ``add_meeting_link``: the resource of the event is found by its UID (REPORT calendar-query with a
  UID prop-filter), read (GET: data and ETag), changed (URL, LOCATION when empty, a line in
  DESCRIPTION; SEQUENCE + 1) and written back with ``If-Match: <etag>``: a change made meanwhile
  by anyone else makes the server answer 412 → ``WriteConflict``, and nothing is overwritten.

Requests go through the session given (in the functions: ``connect.guarded_session``, rule X6:
every connection is checked, redirects are not followed). What was written is parsed back with
``ical.parse_resource`` in the same ``ParseContext`` as the sync's, so the occurrence ids, the
resource key (``client.href_key``) and the etag are exactly what the next sync will see.
Errors: ``SourceAuthError`` (401), ``SourceThrottled`` (429/503), ``SourceUnavailable`` (network,
5xx), ``WriteRejected`` (403, 404, other 4xx), ``WriteConflict`` (412). No secret is logged.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final
from urllib.parse import quote, urljoin
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import requests
from icalendar import Calendar as ICalendar
from icalendar import Event
from lxml import etree  # type: ignore[import-untyped]  # no stubs shipped

from calsync.domain.models import Occurrence
from calsync.store.items import Calendar
from calsync.sync.engine import default_horizon
from calsync.sync.source import SourceAuthError, SourceThrottled, SourceUnavailable
from calsync.sync.writer import EventDraft, WriteConflict, WriteRejected, WrittenEvent
from calsync_caldav.client import _PARSER, href_key, retry_after_seconds
from calsync_caldav.connect import ServerUnreachable, UrlRefused
from calsync_caldav.ical import ParseContext, parse_resource

DEFAULT_TIMEOUT: Final = 15.0
PRODID: Final = "-//calsync//scheduling//EN"
_D: Final = "{DAV:}"
_ICS: Final = "text/calendar; charset=utf-8"


class CalDAVWriter:
    def __init__(
        self,
        session: requests.Session,
        auth: tuple[str, str],
        calendar_url: str,
        context: ParseContext,
        *,
        organizer: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._session = session
        self._auth = requests.auth.HTTPBasicAuth(*auth)
        self.url = calendar_url if calendar_url.endswith("/") else calendar_url + "/"
        self.context = context
        self.organizer = organizer
        self._timeout = timeout
        self._clock = clock or (lambda: datetime.now(UTC))

    # ---- the protocol --------------------------------------------------------------------------
    def create_event(self, calendar: Calendar, draft: EventDraft) -> WrittenEvent:
        self._check_calendar(calendar)
        uid = f"{uuid.uuid4().hex}@calsync"
        text = self._new_event(uid, draft)
        url = urljoin(self.url, quote(f"{uid}.ics"))
        resp = self._send("PUT", url, text, {"If-None-Match": "*"}, "create the event")
        etag = resp.headers.get("ETag")
        if not etag:  # some servers answer without it: read it back
            etag, text = self._get(url)
        return self._written(url, etag, text)

    def add_meeting_link(self, calendar: Calendar, occurrence: Occurrence, link: str) -> WrittenEvent:
        self._check_calendar(calendar)
        if occurrence.recurring:
            raise WriteRejected("a meeting link is added to non-recurring events only")
        url = self._find(occurrence.event_id)
        etag, text = self._get(url)
        changed = self._with_link(text, occurrence.event_id, link)
        resp = self._send("PUT", url, changed, {"If-Match": etag}, "add the meeting link")
        new_etag = resp.headers.get("ETag")
        if not new_etag:
            new_etag, changed = self._get(url)
        return self._written(url, new_etag, changed)

    # ---- iCalendar -----------------------------------------------------------------------------
    def _new_event(self, uid: str, draft: EventDraft) -> str:
        zone = ZoneInfo(draft.time_zone)
        cal = ICalendar()
        cal.add("prodid", PRODID)
        cal.add("version", "2.0")
        event = Event()
        event.add("uid", uid)
        event.add("dtstamp", self._clock().astimezone(UTC))
        event.add("dtstart", draft.start.astimezone(zone))
        event.add("dtend", draft.end.astimezone(zone))
        event.add("summary", draft.title)
        event.add("sequence", 0)
        if draft.description:
            event.add("description", draft.description)
        if draft.meeting_link:
            event.add("url", draft.meeting_link)
            event.add("location", draft.meeting_link)
        if draft.attendees and self.organizer:
            event.add("organizer", f"mailto:{self.organizer}")
        for address in draft.attendees:
            event.add(
                "attendee", f"mailto:{address}", parameters={"PARTSTAT": "NEEDS-ACTION", "RSVP": "TRUE"}
            )
        cal.add_component(event)
        cal.add_missing_timezones()
        return str(cal.to_ical().decode("utf-8"))

    @staticmethod
    def _with_link(text: str, uid: str, link: str) -> str:
        try:
            cal = ICalendar.from_ical(text)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise WriteRejected("the event on the server cannot be read") from exc
        events = [c for c in cal.walk("VEVENT") if str(c.get("UID", "")) == uid]
        masters = [c for c in events if c.get("RECURRENCE-ID") is None]
        if len(events) != 1 or len(masters) != 1 or masters[0].get("RRULE") or masters[0].get("RDATE"):
            # it became recurring (or was never a single event) since calsync read it
            raise WriteConflict("the event is recurring now: a meeting link is added to single events only")
        event = masters[0]
        if event.get("URL") is not None:
            event.pop("URL")
        event.add("url", link)
        if not str(event.get("LOCATION", "")).strip():
            event.pop("LOCATION", None)
            event.add("location", link)
        description = str(event.get("DESCRIPTION", "") or "")
        event.pop("DESCRIPTION", None)
        event.add(
            "description", (description.rstrip() + "\n\n" if description.strip() else "") + f"Join: {link}"
        )
        sequence = int(str(event.get("SEQUENCE", 0) or 0)) if str(event.get("SEQUENCE", 0)).isdigit() else 0
        event.pop("SEQUENCE", None)
        event.add("sequence", sequence + 1)
        return str(cal.to_ical().decode("utf-8"))

    def _written(self, url: str, etag: str, text: str) -> WrittenEvent:
        ctx = dataclasses.replace(self.context, etag=etag)
        horizon = default_horizon(self._clock())
        parsed = parse_resource(text, ctx, horizon.start, horizon.end)
        if parsed.errors and not parsed.occurrences:
            raise WriteRejected("the written event cannot be read back: " + "; ".join(parsed.errors))
        return WrittenEvent(resource_key=href_key(url), etag=etag, occurrences=tuple(parsed.occurrences))

    # ---- HTTP ----------------------------------------------------------------------------------
    def _check_calendar(self, calendar: Calendar) -> None:
        if calendar.calendar_id != self.context.calendar_id:
            raise ValueError("this writer writes to another calendar")

    def _request(
        self, method: str, url: str, body: str | bytes | None, headers: dict[str, str], what: str
    ) -> requests.Response:
        try:
            return self._session.request(
                method,
                url,
                data=body.encode("utf-8") if isinstance(body, str) else body,
                headers=headers,
                auth=self._auth,
                timeout=self._timeout,
                allow_redirects=False,
            )
        except UrlRefused as exc:  # rule X6, checked on every connection of the guarded session
            raise WriteRejected(f"{what}: the CalDAV server is refused by rule X6: {exc.detail}") from exc
        except ServerUnreachable as exc:
            raise SourceUnavailable(f"{what}: {exc.detail}") from exc
        except requests.Timeout as exc:
            raise SourceUnavailable(f"{what}: the CalDAV server did not answer in time") from exc
        except requests.RequestException as exc:
            raise SourceUnavailable(f"{what}: cannot reach the CalDAV server ({type(exc).__name__})") from exc

    def _check(self, resp: requests.Response, what: str) -> None:
        status = resp.status_code
        if 200 <= status < 300:
            return
        if status == 401:
            raise SourceAuthError(f"{what}: the CalDAV server refused the credentials (401)")
        if status == 412:
            raise WriteConflict(f"{what}: the event was changed on the server meanwhile (412)")
        if status in (429, 503):
            after = retry_after_seconds(resp.headers.get("Retry-After"), self._clock())
            raise SourceThrottled(f"{what}: the CalDAV server asks to try again later ({status})", after)
        if status >= 500:
            raise SourceUnavailable(f"{what}: the CalDAV server failed ({status})")
        if 300 <= status < 400:
            raise WriteRejected(f"{what}: the CalDAV server redirects ({status}); redirects are not followed")
        raise WriteRejected(f"{what}: the CalDAV server refused the write ({status})")

    def _send(
        self, method: str, url: str, body: str, headers: dict[str, str], what: str
    ) -> requests.Response:
        resp = self._request(method, url, body, {"Content-Type": _ICS, **headers}, what)
        self._check(resp, what)
        return resp

    def _get(self, url: str) -> tuple[str, str]:
        resp = self._request("GET", url, None, {"Accept": "text/calendar"}, "read the event")
        if resp.status_code in (404, 410):
            raise WriteConflict("the event was deleted on the server meanwhile")
        self._check(resp, "read the event")
        etag = resp.headers.get("ETag")
        if not etag:
            raise WriteRejected("the CalDAV server gives no ETag: a safe (conditional) write is not possible")
        return etag, resp.text

    def _find(self, uid: str) -> str:
        """The URL of the resource holding the event ``uid`` (RFC 4791 §7.8.6 UID query)."""
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
            "<D:prop><D:getetag/></D:prop><C:filter>"
            '<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
            f'<C:prop-filter name="UID"><C:text-match collation="i;octet">{escape(uid)}</C:text-match>'
            "</C:prop-filter></C:comp-filter></C:comp-filter></C:filter></C:calendar-query>"
        )
        headers = {"Depth": "1", "Content-Type": 'application/xml; charset="utf-8"'}
        resp = self._request("REPORT", self.url, body, headers, "find the event")
        if resp.status_code in (404, 410):
            raise WriteRejected("the calendar no longer exists on the server")
        self._check(resp, "find the event")
        try:
            root = etree.fromstring(resp.content, parser=_PARSER)
        except etree.XMLSyntaxError as exc:
            raise SourceUnavailable("find the event: the answer is not XML") from exc
        collection = href_key(self.url).rstrip("/")
        hrefs: list[str] = [
            str(h.text or "").strip()
            for h in root.iterfind(f"{_D}response/{_D}href")
            if href_key((h.text or "").strip()).rstrip("/") != collection
        ]
        if not hrefs:
            raise WriteConflict("the event is no longer on the server")
        exact = [h for h in hrefs if href_key(h).rsplit("/", 1)[-1] == f"{uid}.ics"]
        return urljoin(self.url, (exact or hrefs)[0])
