"""Write-back to Outlook (C7, C12): the ``CalendarWriter`` of Microsoft Graph.

- ``create_event``: ``POST /me/calendars/{id}/events``; Graph answers the created event, which is
  mapped like a synced one (same resource key = the Graph id, same etag = its changeKey), so the
  next delta writes nothing twice.
- ``add_meeting_link``: ``GET`` the body (a changed changeKey or a deleted event → ``WriteConflict``),
  then ``PATCH /me/events/{id}`` with ``If-Match`` = the stored changeKey; 412 → ``WriteConflict``
  (the event changed since calsync read it). The link goes into the location and is appended to the
  body, which is kept (Graph's ``onlineMeeting`` is read-only for third-party links).
- Read-only calendars: Graph answers 403 → ``WriteRejected``.
- Room mailboxes: Exchange room mailboxes (resource calendars) often rewrite the subject of the
  meetings they accept to the organizer's name (``AddOrganizerToSubject`` / ``DeleteSubject``). The
  writer writes the title as given and the sync stores whatever title Graph then answers; calsync
  does not try to undo the rewrite (R4 decides what a room shows anyway).
"""

from __future__ import annotations

import html
from typing import Any

from calsync.domain.links import LinkSettings
from calsync.domain.models import Occurrence
from calsync.store.items import Calendar
from calsync.sync.writer import EventDraft, WriteConflict, WriteRejected, WrittenEvent
from calsync_microsoft.graph import GraphClient, GraphError
from calsync_microsoft.source import to_occurrence


class MicrosoftWriter:
    def __init__(self, client: GraphClient, remote_ids: dict[str, str], links: LinkSettings | None = None):
        """``remote_ids``: calsync calendar id -> the Graph calendar id."""
        self.client = client
        self.remote_ids = remote_ids
        self.links = links or LinkSettings()

    def _written(self, calendar: Calendar, body: Any) -> WrittenEvent:
        if not isinstance(body, dict) or "id" not in body:
            raise WriteRejected("Graph answered no event")
        occ = to_occurrence(
            body,
            account_id=calendar.account_id,
            calendar_id=calendar.calendar_id,
            can_edit=calendar.access_role in ("owner", "writer"),
            links=self.links,
        )
        etag = str(body.get("changeKey") or body.get("@odata.etag") or "")
        return WrittenEvent(str(body["id"]), etag, () if occ is None else (occ,))

    def create_event(self, calendar: Calendar, draft: EventDraft) -> WrittenEvent:
        remote = self.remote_ids.get(calendar.calendar_id)
        if remote is None:
            raise WriteRejected("not a calendar of this Microsoft account")
        body: dict[str, Any] = {
            "subject": draft.title,
            "start": {"dateTime": draft.start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
            "end": {"dateTime": draft.end.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
            "attendees": [{"emailAddress": {"address": a}, "type": "required"} for a in draft.attendees],
        }
        texts = [t for t in (draft.description, draft.meeting_link) if t]
        if texts:
            body["body"] = {"contentType": "text", "content": "\n\n".join(texts)}
        if draft.meeting_link:
            body["location"] = {"displayName": draft.meeting_link}
        try:
            resp = self.client.request(
                "POST",
                f"me/calendars/{remote}/events",
                json=body,
                headers={"Prefer": 'outlook.timezone="UTC"'},
            )
        except GraphError as exc:
            raise WriteRejected(str(exc)) from exc
        if resp.status == 404:
            raise WriteRejected("the calendar is gone")
        return self._written(calendar, resp.body)

    def add_meeting_link(self, calendar: Calendar, occurrence: Occurrence, link: str) -> WrittenEvent:
        """C12: read the event's body (to keep the organizer's text), then PATCH location and body
        with ``If-Match`` = the changeKey calsync stored; a changed or deleted event is a conflict."""
        if occurrence.recurring:
            raise WriteRejected("a meeting link is added to non-recurring events only (U10)")
        if calendar.access_role not in ("owner", "writer"):
            raise WriteRejected("calsync may not write to this calendar")
        path = f"me/events/{occurrence.event_id}"
        headers = {"Prefer": 'outlook.timezone="UTC"'}
        try:
            current = self.client.request("GET", path, params={"$select": "body,changeKey"}, headers=headers)
            if current.status in (404, 410):
                raise WriteConflict("the event was deleted on Outlook since calsync read it")
            body = current.body if isinstance(current.body, dict) else {}
            if occurrence.etag and body.get("changeKey") not in (None, occurrence.etag):
                raise WriteConflict("the event changed on Outlook since calsync read it")
            patch = {"location": {"displayName": link}, "body": _with_link(body.get("body"), link)}
            if occurrence.etag:
                headers["If-Match"] = occurrence.etag
            resp = self.client.request("PATCH", path, json=patch, headers=headers)
        except GraphError as exc:
            raise WriteRejected(str(exc)) from exc
        if resp.status == 412:
            raise WriteConflict("the event changed on Outlook since calsync read it")
        if resp.status in (404, 410):
            raise WriteConflict("the event was deleted on Outlook since calsync read it")
        return self._written(calendar, resp.body)


def _with_link(body: Any, link: str) -> dict[str, str]:
    """The event's body with the link appended (Graph replaces the body as a whole): plain text, or
    an HTML paragraph with the link escaped."""
    content = str(body.get("content") or "") if isinstance(body, dict) else ""
    if isinstance(body, dict) and str(body.get("contentType") or "").lower() == "html" and content:
        paragraph = f'<p>Join: <a href="{html.escape(link)}">{html.escape(link)}</a></p>'
        closing = content.lower().rfind("</body>")
        joined = content[:closing] + paragraph + content[closing:] if closing >= 0 else content + paragraph
        return {"contentType": "html", "content": joined}
    return {
        "contentType": "text",
        "content": f"{content}\n\nJoin: {link}" if content.strip() else f"Join: {link}",
    }
