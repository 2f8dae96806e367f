"""The Google writer (calsync_google.writer.GoogleWriter, the CalendarWriter of C7/C12) against the
local fake Google server with the REAL google-api-python-client: insert, retried insert, meeting
link by patch with If-Match, 412 -> WriteConflict, 403 read-only -> WriteRejected, and what it
returns is what the next sync sees (same resource key and etag: nothing written twice)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from calsync.domain.links import LinkSettings
from calsync.domain.models import UTC, Provider
from calsync.store.items import Calendar
from calsync.sync.engine import default_horizon
from calsync.sync.writer import EventDraft, WriteConflict, WriteRejected
from calsync_google.client import Caller, ClientSecret, GoogleEndpoints, calendar_service, credentials
from calsync_google.source import GoogleContext, GoogleSource
from calsync_google.writer import GoogleWriter
from tests.support.fake_google import FakeGoogle, fake_google

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
EMAIL = "writer@example.com"
TEAM = "team@group.calendar.google.com"
LINKS = LinkSettings.of(["meet.calsync.test", "meet.google.com"], [], [])


@pytest.fixture
def fake() -> Iterator[FakeGoogle]:
    with fake_google(page_size=50, deliver=lambda _a, _h: 200) as f:
        f.add_calendar(EMAIL, EMAIL, "Work", "owner", primary=True)
        f.add_calendar(EMAIL, TEAM, "Team", "reader")
        yield f


def writer_for(fake: FakeGoogle, cal_id: str, role: str = "owner") -> tuple[GoogleWriter, Calendar]:
    endpoints = GoogleEndpoints(fake.auth_uri, fake.token_uri, fake.api_endpoint)
    creds = credentials(fake.grant(EMAIL), ClientSecret(fake.client_id, fake.client_secret), endpoints)
    service = calendar_service(creds, endpoints)
    calendar = Calendar(
        calendar_id="c" * 32, account_id="a" * 32, owner_user_id="u1", provider=Provider.GOOGLE
    )
    ctx = GoogleContext(account_id="a" * 32, calendar_id=calendar.calendar_id, access_role=role, links=LINKS)
    return GoogleWriter(service, cal_id, ctx, caller=Caller(sleep=lambda _s: None)), calendar


def draft(**kw: Any) -> EventDraft:
    return EventDraft(
        title="Appointment",
        start=NOW + timedelta(hours=2),
        end=NOW + timedelta(hours=3),
        time_zone="Europe/Berlin",
        **kw,
    )


def test_create_event_inserts_and_returns_what_the_sync_sees(fake: FakeGoogle) -> None:  # rule C7
    writer, calendar = writer_for(fake, EMAIL)
    written = writer.create_event(calendar, draft(attendees=("guest@example.com",)))
    stored = fake.calendars[EMAIL][EMAIL].events[written.resource_key]
    assert stored["summary"] == "Appointment" and stored["attendees"] == [{"email": "guest@example.com"}]
    assert written.etag == stored["etag"]
    [occ] = written.occurrences
    assert occ.start == NOW + timedelta(hours=2) and occ.updatable and occ.etag == written.etag
    # the next (full) sync finds the same resource with the same etag: unchanged, nothing to write
    source = GoogleSource(writer.service, EMAIL, writer.ctx, caller=Caller(sleep=lambda _s: None))
    pages = list(source.changes(None, {written.resource_key: written.etag}, default_horizon(NOW)))
    assert [(c.key, c.unchanged) for page in pages for c in page] == [(written.resource_key, True)]


def test_retried_insert_never_makes_a_second_event(fake: FakeGoogle) -> None:
    writer, calendar = writer_for(fake, EMAIL)
    first = writer.create_event(calendar, draft())
    # the same id again (as when the first answer was lost): 409 at Google, the existing one is read
    retry = GoogleWriter(
        writer.service,
        writer.google_calendar_id,
        writer.ctx,
        caller=writer.caller,
        new_id=lambda: first.resource_key,
    )
    again = retry.create_event(calendar, draft())
    assert again.resource_key == first.resource_key and again.etag == first.etag
    assert len(fake.calendars[EMAIL][EMAIL].events) == 1


def test_meeting_link_is_patched_with_if_match(fake: FakeGoogle) -> None:  # rule C12
    fake.put_event(
        EMAIL,
        {
            "id": "m1",
            "summary": "Planning",
            "description": "Agenda",
            "start": {"dateTime": (NOW + timedelta(hours=1)).isoformat()},
            "end": {"dateTime": (NOW + timedelta(hours=2)).isoformat()},
        },
    )
    writer, calendar = writer_for(fake, EMAIL)
    source = GoogleSource(writer.service, EMAIL, writer.ctx, caller=Caller(sleep=lambda _s: None))
    [[change]] = list(source.changes(None, {}, default_horizon(NOW)))
    [occ] = change.occurrences
    assert occ.meeting_link is None
    written = writer.add_meeting_link(calendar, occ, "https://meet.calsync.test/abc")
    stored = fake.calendars[EMAIL][EMAIL].events["m1"]
    assert stored["description"] == "Agenda\n\nJoin: https://meet.calsync.test/abc"
    assert stored["location"] == "https://meet.calsync.test/abc"
    [updated] = written.occurrences
    assert updated.meeting_link == "https://meet.calsync.test/abc" and updated.id == occ.id
    assert written.etag == stored["etag"] != occ.etag


def test_meeting_link_conflict_when_the_event_changed_meanwhile(fake: FakeGoogle) -> None:  # C12
    fake.put_event(
        EMAIL,
        {
            "id": "m2",
            "summary": "Sync",
            "start": {"dateTime": (NOW + timedelta(hours=1)).isoformat()},
            "end": {"dateTime": (NOW + timedelta(hours=2)).isoformat()},
        },
    )
    writer, calendar = writer_for(fake, EMAIL)
    source = GoogleSource(writer.service, EMAIL, writer.ctx, caller=Caller(sleep=lambda _s: None))
    [[change]] = list(source.changes(None, {}, default_horizon(NOW)))
    [occ] = change.occurrences
    fake.put_event(EMAIL, {**fake.calendars[EMAIL][EMAIL].events["m2"], "summary": "Moved by someone"})
    with pytest.raises(WriteConflict):
        writer.add_meeting_link(calendar, occ, "https://meet.calsync.test/abc")
    assert "Join:" not in str(fake.calendars[EMAIL][EMAIL].events["m2"].get("description"))
    # gone meanwhile: a conflict too
    fake.delete_event(EMAIL, "m2")
    with pytest.raises(WriteConflict):
        writer.add_meeting_link(calendar, occ, "https://meet.calsync.test/abc")


def test_read_only_calendar_is_rejected(fake: FakeGoogle) -> None:  # rule C7 (403 -> WriteRejected)
    writer, calendar = writer_for(fake, TEAM, role="reader")
    with pytest.raises(WriteRejected):
        writer.create_event(calendar, draft())
    assert fake.calendars[EMAIL][TEAM].events == {}


def test_recurring_occurrences_get_no_link(fake: FakeGoogle) -> None:  # rules C12, U10
    writer, calendar = writer_for(fake, EMAIL)
    written = writer.create_event(calendar, draft())
    [occ] = written.occurrences
    with pytest.raises(WriteRejected):
        writer.add_meeting_link(
            calendar, dataclasses.replace(occ, recurring=True), "https://meet.calsync.test/x"
        )
