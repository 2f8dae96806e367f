"""Write-back to Outlook (C7, C12): the ``CalendarWriter`` of Microsoft Graph.

- ``create_event``: ``POST /me/calendars/{id}/events``; Graph answers the created event, which is
  mapped like a synced one (same resource key = the Graph id, same etag = its changeKey), so the
  next delta writes nothing twice.
- ``add_meeting_link``: ``PATCH /me/events/{id}`` with ``If-Match`` = the stored changeKey; 412 →
  ``WriteConflict`` (the event changed since calsync read it). The link goes into the location and
  the body (Graph's ``onlineMeeting`` is read-only for third-party links).
"""

from __future__ import annotations

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
        if occurrence.recurring:
            raise WriteRejected("a meeting link is added to non-recurring events only (U10)")
        patch = {
            "location": {"displayName": link},
            "body": {"contentType": "text", "content": link},
        }
        headers = {"Prefer": 'outlook.timezone="UTC"'}
        if occurrence.etag:
            headers["If-Match"] = occurrence.etag
        try:
            resp = self.client.request(
                "PATCH", f"me/events/{occurrence.event_id}", json=patch, headers=headers
            )
        except GraphError as exc:
            raise WriteRejected(str(exc)) from exc
        if resp.status == 412:
            raise WriteConflict("the event changed on Outlook since calsync read it")
        if resp.status in (404, 410):
            raise WriteRejected("the event is gone")
        return self._written(calendar, resp.body)
