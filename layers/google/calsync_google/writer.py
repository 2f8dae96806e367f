"""Writing to a Google calendar: the ``CalendarWriter`` of calsync.sync.writer (C7, C12).

- ``create_event``: ``events.insert`` with an id chosen by calsync (base32hex: lower-case hex is
  valid), so a retried insert can never make a second event: Google answers 409 for a known id,
  and the writer reads the existing event back instead (it is the one it wrote).
- ``add_meeting_link``: ``events.get`` for the current text, then ``events.patch`` (location when
  empty, a "Join:" line in the description) with ``If-Match: <etag>`` — the etag calsync stored
  for the occurrence when it has one, else the one just read: a change made meanwhile by anyone
  else makes Google answer 412 → ``WriteConflict``, and nothing is overwritten.

The answer is mapped back with ``source.to_occurrence`` in the sync's ``GoogleContext``, and the
resource key is the event id, exactly as ``GoogleSource`` reports it: the next sync sees the same
resource with the same etag and writes nothing twice.

Errors: ``SourceAuthError`` (401, invalid_grant), ``SourceThrottled`` (429, 403 quota),
``SourceUnavailable`` (network, 5xx) from ``Caller``; ``WriteRejected`` for 403 (read-only
calendar), 404, 400 and other refusals; ``WriteConflict`` for 412 and for an event gone meanwhile.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from googleapiclient.errors import HttpError  # type: ignore[import-untyped]

from calsync.domain.models import Occurrence
from calsync.store.items import Calendar
from calsync.sync.source import CalendarGone, SourceProtocolError
from calsync.sync.writer import EventDraft, WriteConflict, WriteRejected, WrittenEvent
from calsync_google.client import Caller, PreconditionFailed
from calsync_google.source import GoogleContext, OnGoogleCalendar, to_occurrence


def _status(exc: BaseException) -> int:
    cause = exc.__cause__
    return int(cause.resp.status) if isinstance(cause, HttpError) else 0


def _new_event_id() -> str:
    return uuid.uuid4().hex


class GoogleWriter(OnGoogleCalendar):
    def __init__(
        self,
        service: Any,
        google_calendar_id: str,
        ctx: GoogleContext,
        *,
        caller: Caller | None = None,
        new_id: Callable[[], str] = _new_event_id,
    ) -> None:
        """``new_id``: the id a created event is inserted with (a retried insert reuses it)."""
        super().__init__(service, google_calendar_id, ctx, caller=caller)
        self._new_id = new_id

    # ---- the protocol --------------------------------------------------------------------------
    def create_event(self, calendar: Calendar, draft: EventDraft) -> WrittenEvent:
        self._check_calendar(calendar)
        event_id = self._new_id()
        body: dict[str, Any] = {
            "id": event_id,
            "summary": draft.title,
            "start": {"dateTime": draft.start.isoformat(), "timeZone": draft.time_zone},
            "end": {"dateTime": draft.end.isoformat(), "timeZone": draft.time_zone},
        }
        text = [draft.description] if draft.description else []
        if draft.meeting_link:
            body["location"] = draft.meeting_link
            text.append(f"Join: {draft.meeting_link}")
        if text:
            body["description"] = "\n\n".join(text)
        if draft.attendees:
            body["attendees"] = [{"email": a} for a in draft.attendees]
        request = self.service.events().insert(
            calendarId=self.google_calendar_id,
            body=body,
            sendUpdates="all" if draft.attendees else "none",
        )
        try:
            answer = self._call(request, "create the event")
        except WriteConflict:  # 409: the id exists, i.e. an earlier attempt of this very insert
            answer = self._get(event_id)
        return self._written(answer)

    def add_meeting_link(self, calendar: Calendar, occurrence: Occurrence, link: str) -> WrittenEvent:
        self._check_calendar(calendar)
        if occurrence.recurring:
            raise WriteRejected("a meeting link is added to non-recurring events only")
        current = self._get(occurrence.event_id)
        if current.get("recurrence") or current.get("recurringEventId"):
            raise WriteConflict("the event is recurring now: a meeting link is added to single events only")
        etag = occurrence.etag or str(current.get("etag") or "")
        if not etag:
            raise WriteRejected("Google gives no etag: a safe (conditional) write is not possible")
        patch: dict[str, Any] = {}
        if not str(current.get("location") or "").strip():
            patch["location"] = link
        description = str(current.get("description") or "")
        lead = description.rstrip() + "\n\n" if description.strip() else ""
        patch["description"] = f"{lead}Join: {link}"
        request = self.service.events().patch(
            calendarId=self.google_calendar_id, eventId=occurrence.event_id, body=patch
        )
        return self._written(self._call(request, "add the meeting link", {"If-Match": etag}))

    # ---- helpers -------------------------------------------------------------------------------
    def _check_calendar(self, calendar: Calendar) -> None:
        if calendar.calendar_id != self.ctx.calendar_id:
            raise ValueError("this writer writes to another calendar")

    def _get(self, event_id: str) -> dict[str, Any]:
        request = self.service.events().get(calendarId=self.google_calendar_id, eventId=event_id)
        answer = self._call(request, "read the event", gone=WriteConflict)
        if answer.get("status") == "cancelled":
            raise WriteConflict("the event was cancelled at Google meanwhile")
        return dict(answer)

    def _call(
        self,
        request: Any,
        what: str,
        headers: dict[str, str] | None = None,
        *,
        gone: type[Exception] = WriteRejected,
    ) -> Any:
        try:
            return self.caller(request, headers)
        except PreconditionFailed as exc:
            raise WriteConflict(f"{what}: the event was changed at Google meanwhile (412)") from exc
        except CalendarGone as exc:  # 404
            raise gone(f"{what}: Google does not know it (404)") from exc
        except SourceProtocolError as exc:
            status = _status(exc)
            if status == 409:
                raise WriteConflict(f"{what}: the event exists already (409)") from exc
            raise WriteRejected(f"{what}: Google refused the write ({status or exc})") from exc

    def _written(self, answer: Any) -> WrittenEvent:
        if not isinstance(answer, dict) or "id" not in answer:
            raise WriteRejected("Google did not return the event it wrote")
        try:
            occ = to_occurrence(answer, self.ctx)
        except (ValueError, KeyError, TypeError) as exc:
            raise WriteRejected(f"the written event cannot be read back: {exc}") from exc
        return WrittenEvent(
            resource_key=str(answer["id"]),
            etag=str(answer.get("etag") or ""),
            occurrences=(occ,) if occ is not None else (),
        )
