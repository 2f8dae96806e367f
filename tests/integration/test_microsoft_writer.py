"""The Microsoft writer (calsync_microsoft.writer.MicrosoftWriter, the CalendarWriter of C7/C12)
against the local fake of Graph with real msal tokens: create, what it returns is what the next delta
sees (same id and changeKey: nothing written twice), a meeting link with If-Match = the changeKey
(412 → WriteConflict), read-only calendars → WriteRejected, recurring occurrences get no link."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests

from calsync.domain.links import LinkSettings
from calsync.domain.models import UTC, Provider
from calsync.store.items import Calendar
from calsync.sync.engine import default_horizon
from calsync.sync.writer import EventDraft, WriteConflict, WriteRejected
from calsync_microsoft.auth import MicrosoftAppConfig, MicrosoftIdentity
from calsync_microsoft.graph import GraphClient
from calsync_microsoft.source import MicrosoftSource
from calsync_microsoft.writer import MicrosoftWriter
from tests.support.fake_graph import FakeGraph, LoopbackHttp, fake_graph, graph_event

pytestmark = pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended")
NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
UPN = "ann@contoso.test"
LINKS = LinkSettings.of(["meet.calsync.test", "teams.microsoft.com"], [], [])
WORK, SHARED = "cal-work", "cal-shared"
CAL_ID, SHARED_ID = "c" * 32, "d" * 32


@pytest.fixture
def fake() -> Iterator[FakeGraph]:
    with fake_graph(page_size=50) as server:
        server.add_mailbox(UPN, {WORK: ("Calendar", True), SHARED: ("Team (read only)", False)})
        yield server


class HookedSession(requests.Session):
    """The Graph client's session, with a hook run before each request and the answers' statuses."""

    def __init__(self) -> None:
        super().__init__()
        self.before: Callable[[str, dict[str, str]], None] = lambda _m, _h: None
        self.statuses: list[tuple[str, int]] = []

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.before(str(method), dict(kwargs.get("headers") or {}))
        resp = super().request(method, url, *args, **kwargs)
        self.statuses.append((str(method), resp.status_code))
        return resp


@pytest.fixture
def session() -> HookedSession:
    return HookedSession()


@pytest.fixture
def client(fake: FakeGraph, session: HookedSession) -> GraphClient:
    identity = MicrosoftIdentity(
        MicrosoftAppConfig("calsync-client-id", "secret", fake.authority, LoopbackHttp(fake.port))
    )
    flow = identity.start("https://app.calsync.test/cb")
    cache, _ = identity.finish(flow, fake.sign_in(flow["auth_uri"], UPN))
    return GraphClient(lambda: identity.access_token(cache), "a" * 32, fake.graph_endpoint, session)


def calendar(calendar_id: str = CAL_ID, role: Any = "owner") -> Calendar:
    return Calendar(
        calendar_id=calendar_id,
        account_id="a" * 32,
        owner_user_id="ann",
        provider=Provider.MICROSOFT,
        access_role=role,
    )


def writer_of(client: GraphClient) -> MicrosoftWriter:
    return MicrosoftWriter(client, {CAL_ID: WORK, SHARED_ID: SHARED}, LINKS)


def source_of(client: GraphClient, remote: str = WORK) -> MicrosoftSource:
    return MicrosoftSource(
        client, remote, account_id="a" * 32, calendar_id=CAL_ID, can_edit=True, links=LINKS
    )


def draft(**kw: Any) -> EventDraft:
    return EventDraft(
        title="Appointment",
        start=NOW + timedelta(hours=2),
        end=NOW + timedelta(hours=3),
        time_zone="Europe/Berlin",
        **kw,
    )


def test_create_event_posts_and_returns_what_the_delta_sees(fake: FakeGraph, client: GraphClient) -> None:
    # rule C7: written to the calendar; the answer is stored as the next sync would store it
    written = writer_of(client).create_event(
        calendar(), draft(attendees=("guest@example.com",), meeting_link="https://meet.calsync.test/x")
    )
    stored = fake.mailboxes[UPN].events[WORK][written.resource_key]
    assert stored["subject"] == "Appointment"
    assert stored["attendees"] == [{"emailAddress": {"address": "guest@example.com"}, "type": "required"}]
    assert written.etag == stored["changeKey"]
    [occ] = written.occurrences
    assert occ.start == NOW + timedelta(hours=2) and occ.end == NOW + timedelta(hours=3)
    assert occ.updatable and occ.etag == written.etag and occ.meeting_link == "https://meet.calsync.test/x"
    # the next full delta finds the same resource with the same changeKey: unchanged, nothing written
    pages = list(source_of(client).changes(None, {written.resource_key: written.etag}, default_horizon(NOW)))
    assert [(c.key, c.unchanged) for page in pages for c in page] == [(written.resource_key, True)]


def test_create_on_a_read_only_calendar_is_rejected(fake: FakeGraph, client: GraphClient) -> None:
    # rule C7: Graph answers 403 for a calendar shared read-only with the mailbox -> WriteRejected
    with pytest.raises(WriteRejected):
        writer_of(client).create_event(calendar(SHARED_ID), draft())
    assert fake.mailboxes[UPN].events[SHARED] == {}
    # a calendar of another account is refused before any Graph call
    calls = fake.calls
    with pytest.raises(WriteRejected):
        writer_of(client).create_event(calendar("e" * 32), draft())
    assert fake.calls == calls


def synced_occurrence(fake: FakeGraph, client: GraphClient, remote: str, event_id: str) -> Any:
    pages = list(source_of(client, remote).changes(None, {}, default_horizon(NOW)))
    [occ] = [o for page in pages for c in page if c.key == event_id for o in c.occurrences]
    return occ


def test_meeting_link_is_patched_with_if_match_and_keeps_the_body(
    fake: FakeGraph, client: GraphClient, session: HookedSession
) -> None:
    # rule C12: location + body (the organizer's text kept), If-Match = the changeKey calsync read
    event = fake.put_event(
        UPN,
        WORK,
        graph_event("Planning", NOW + timedelta(hours=1), body={"contentType": "text", "content": "Agenda"}),
    )
    occ = synced_occurrence(fake, client, WORK, event["id"])
    assert occ.meeting_link is None
    sent: list[dict[str, str]] = []
    session.before = lambda method, headers: sent.append(headers) if method == "PATCH" else None
    written = writer_of(client).add_meeting_link(calendar(), occ, "https://meet.calsync.test/abc")
    assert [(h["If-Match"], h["Prefer"]) for h in sent] == [(occ.etag, 'outlook.timezone="UTC"')]
    stored = fake.mailboxes[UPN].events[WORK][event["id"]]
    assert stored["location"] == {"displayName": "https://meet.calsync.test/abc"}
    assert stored["body"] == {
        "contentType": "text",
        "content": "Agenda\n\nJoin: https://meet.calsync.test/abc",
    }
    [updated] = written.occurrences
    assert updated.meeting_link == "https://meet.calsync.test/abc" and updated.id == occ.id
    assert written.etag == stored["changeKey"] != occ.etag


def test_html_body_gets_an_escaped_paragraph(fake: FakeGraph, client: GraphClient) -> None:  # C12
    body = {"contentType": "html", "content": "<html><body><p>Agenda</p></body></html>"}
    event = fake.put_event(UPN, WORK, graph_event("Review", NOW + timedelta(hours=1), body=body))
    occ = synced_occurrence(fake, client, WORK, event["id"])
    writer_of(client).add_meeting_link(calendar(), occ, "https://meet.calsync.test/a?b=1&c=<2>")
    content = fake.mailboxes[UPN].events[WORK][event["id"]]["body"]["content"]
    assert content == (
        '<html><body><p>Agenda</p><p>Join: <a href="https://meet.calsync.test/a?b=1&amp;c=&lt;2&gt;">'
        "https://meet.calsync.test/a?b=1&amp;c=&lt;2&gt;</a></p></body></html>"
    )


def test_meeting_link_conflict_on_412_when_the_event_changed_meanwhile(
    fake: FakeGraph, client: GraphClient, session: HookedSession
) -> None:
    # rule C12: the event changes between calsync's read and its PATCH: Graph answers 412 (If-Match)
    event = fake.put_event(UPN, WORK, graph_event("Sync", NOW + timedelta(hours=1)))
    occ = synced_occurrence(fake, client, WORK, event["id"])

    def racing(method: str, _headers: dict[str, str]) -> None:
        if method == "PATCH":  # someone moves the event in Outlook just before the PATCH
            fake.put_event(UPN, WORK, {**fake.mailboxes[UPN].events[WORK][event["id"]], "subject": "Moved"})

    session.before = racing
    with pytest.raises(WriteConflict):
        writer_of(client).add_meeting_link(calendar(), occ, "https://meet.calsync.test/abc")
    assert session.statuses[-2:] == [("GET", 200), ("PATCH", 412)]
    stored = fake.mailboxes[UPN].events[WORK][event["id"]]
    assert stored["subject"] == "Moved" and "location" not in stored


def test_meeting_link_conflict_when_changed_or_deleted_before_the_read(
    fake: FakeGraph, client: GraphClient
) -> None:  # rule C12
    event = fake.put_event(UPN, WORK, graph_event("Sync", NOW + timedelta(hours=1)))
    occ = synced_occurrence(fake, client, WORK, event["id"])
    fake.put_event(UPN, WORK, {**event, "subject": "Moved by someone"})
    with pytest.raises(WriteConflict):
        writer_of(client).add_meeting_link(calendar(), occ, "https://meet.calsync.test/abc")
    fake.delete_event(UPN, WORK, event["id"])
    with pytest.raises(WriteConflict):
        writer_of(client).add_meeting_link(calendar(), occ, "https://meet.calsync.test/abc")


def test_meeting_link_on_a_read_only_calendar_is_rejected(fake: FakeGraph, client: GraphClient) -> None:
    # rule C7/C12: Graph's 403 -> WriteRejected; calsync's own access role refuses before any call
    event = fake.put_event(UPN, SHARED, graph_event("Theirs", NOW + timedelta(hours=1)))
    occ = synced_occurrence(fake, client, SHARED, event["id"])
    with pytest.raises(WriteRejected):
        writer_of(client).add_meeting_link(calendar(SHARED_ID), occ, "https://meet.calsync.test/abc")
    calls = fake.calls
    with pytest.raises(WriteRejected):
        writer_of(client).add_meeting_link(calendar(SHARED_ID, "reader"), occ, "https://meet.calsync.test/x")
    assert fake.calls == calls and "location" not in fake.mailboxes[UPN].events[SHARED][event["id"]]


def test_recurring_occurrences_get_no_link(fake: FakeGraph, client: GraphClient) -> None:  # C12, U10
    written = writer_of(client).create_event(calendar(), draft())
    [occ] = written.occurrences
    with pytest.raises(WriteRejected):
        writer_of(client).add_meeting_link(
            calendar(), dataclasses.replace(occ, recurring=True), "https://meet.calsync.test/x"
        )
