"""The source contract, run against the in-memory fake AND the Microsoft source on the fake Graph
(rules S2, S6): a full listing names everything (through every @odata.nextLink page) and marks known
etags unchanged; a delta reports exactly what was written and deleted; a cursor that is not the
source's own, or one the server expired (Graph 410 syncStateNotFound), is rejected.

Graph has no cheap "may have changed" check (no ctag): the Microsoft source always answers True, so
that part of the CalDAV contract does not apply; the delta query is itself one request."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, Protocol

import pytest

from calsync.domain.links import LinkSettings
from calsync.domain.models import UTC, Occurrence, Provider, Transparency, Visibility
from calsync.sync.engine import default_horizon
from calsync.sync.fake import FakeSource
from calsync.sync.source import CalendarSource, CursorRejected, ResourceChange, SourceThrottled
from calsync_microsoft.auth import MicrosoftAppConfig, MicrosoftIdentity
from calsync_microsoft.graph import GraphClient
from calsync_microsoft.source import MicrosoftSource, dump_cursor
from tests.support.fake_graph import FakeGraph, LoopbackHttp, fake_graph, graph_event

pytestmark = pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended")
NOW = datetime(2026, 11, 20, 8, tzinfo=UTC)
HORIZON = default_horizon(NOW)
UPN = "ann@contoso.test"


class Calendar(Protocol):
    source: CalendarSource

    def put(self, name: str, title: str) -> str: ...
    def delete(self, name: str) -> None: ...
    def expire(self) -> None: ...


class FakeCalendar:
    def __init__(self) -> None:
        self.source = FakeSource()

    def put(self, name: str, title: str) -> str:
        occ = Occurrence(
            Provider.MICROSOFT, "acc", "cal", name, title, start=NOW, end=NOW + timedelta(hours=1)
        )
        self.source.put(name, [occ])
        return name

    def delete(self, name: str) -> None:
        self.source.delete(name)

    def expire(self) -> None:
        self.source.expire_cursors()


class GraphCalendar:
    def __init__(self, fake: FakeGraph) -> None:
        self.fake = fake
        fake.add_mailbox(UPN)
        identity = MicrosoftIdentity(
            MicrosoftAppConfig("calsync-client-id", "secret", fake.authority, LoopbackHttp(fake.port))
        )
        flow = identity.start("https://app.calsync.test/cb")
        cache, _ = identity.finish(flow, fake.sign_in(flow["auth_uri"], UPN))
        self.client = GraphClient(lambda: identity.access_token(cache), "acc", fake.graph_endpoint)
        self.source = MicrosoftSource(
            self.client, "cal-main", account_id="acc", calendar_id="cal", can_edit=True
        )
        self.ids: dict[str, str] = {}

    def put(self, name: str, title: str) -> str:
        body = graph_event(title, NOW + timedelta(hours=1))
        if name in self.ids:
            body["id"] = self.ids[name]
        self.ids[name] = self.fake.put_event(UPN, "cal-main", body)["id"]
        return self.ids[name]

    def delete(self, name: str) -> None:
        self.fake.delete_event(UPN, "cal-main", self.ids[name])

    def expire(self) -> None:
        self.fake.expire_deltas()


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with fake_graph(page_size=2) as server:
        yield server


@pytest.fixture(params=["fake", "microsoft"])
def cal(request: pytest.FixtureRequest) -> Calendar:
    if request.param == "fake":
        return FakeCalendar()
    return GraphCalendar(request.getfixturevalue("graph"))


def listing(
    source: CalendarSource, cursor: str | None, known: dict[str, str] | None = None
) -> list[ResourceChange]:
    return [change for page in source.changes(cursor, known or {}, HORIZON) for change in page]


def test_full_listing_names_everything_over_pages(cal: Calendar) -> None:
    # rule S6: every page is read (5 items, pages of 2) before the cursor exists
    keys = {cal.put(n, n.upper()) for n in "abcde"}
    changes = listing(cal.source, None)
    assert {c.key for c in changes} == keys
    assert {o.title for c in changes for o in c.occurrences} == {"A", "B", "C", "D", "E"}
    assert cal.source.next_cursor is not None


def test_full_listing_marks_known_etags_unchanged(cal: Calendar) -> None:
    a, b = cal.put("a", "A"), cal.put("b", "B")
    first = {c.key: c.etag for c in listing(cal.source, None)}
    cal.put("b", "B2")
    again = {c.key: c for c in listing(cal.source, None, first)}
    assert again[a].unchanged and not again[a].occurrences
    assert not again[b].unchanged and [o.title for o in again[b].occurrences] == ["B2"]


def test_incremental_listing_reports_exactly_what_changed(cal: Calendar) -> None:
    # rule S2/S6: written and deleted since the cursor (delta link), nothing else
    cal.put("a", "A")
    b, c = cal.put("b", "B"), cal.put("c", "C")
    listing(cal.source, None)
    cursor = cal.source.next_cursor
    assert cursor is not None
    cal.put("b", "B2")
    cal.delete("c")
    changes: dict[str, Any] = {ch.key: ch for ch in listing(cal.source, cursor)}
    assert set(changes) == {b, c}
    assert [o.title for o in changes[b].occurrences] == ["B2"]
    assert changes[c].deleted


def test_foreign_and_expired_cursors_are_rejected(cal: Calendar) -> None:
    # rule S2: Graph 410 syncStateNotFound → CursorRejected → the engine resyncs from scratch
    cal.put("a", "A")
    with pytest.raises(CursorRejected):
        listing(cal.source, '{"ctag":"x","token":"nope"}')
    listing(cal.source, None)
    cursor = cal.source.next_cursor
    assert cursor is not None
    cal.expire()
    with pytest.raises(CursorRejected):
        listing(cal.source, cursor)


def test_a_cursor_of_another_horizon_is_rebaselined(graph: FakeGraph) -> None:
    # rule S10: the horizon moved: the delta link is not reused, a full listing re-baselines
    cal = GraphCalendar(graph)
    cal.put("a", "A")
    listing(cal.source, None)
    cursor = cal.source.next_cursor
    assert cursor is not None
    moved = dump_cursor("http://127.0.0.1:1/v1.0/x?$deltatoken=t", default_horizon(NOW + timedelta(days=1)))
    with pytest.raises(CursorRejected):
        listing(cal.source, moved)


def test_throttling_raises_with_retry_after(graph: FakeGraph) -> None:
    # rule S8
    cal = GraphCalendar(graph)
    graph.throttle(1, retry_after=12)
    with pytest.raises(SourceThrottled) as err:
        listing(cal.source, None)
    assert err.value.retry_after == 12


def test_graph_fields_are_mapped(graph: FakeGraph) -> None:
    # U4 (isOrganizer, canEdit), R4 (sensitivity), C11 (showAs free), isAllDay, isCancelled,
    # onlineMeeting.joinUrl before the text, seriesMaster skipped, occurrences keyed by series + start
    cal = GraphCalendar(graph)
    cal.source.links = LinkSettings.of(["teams.microsoft.com", "zoom.us"], [], [])
    start = NOW + timedelta(hours=2)
    put = lambda **f: graph.put_event(UPN, "cal-main", {**graph_event("E", start), **f})["id"]  # noqa: E731
    invited = put(isOrganizer=False)
    private = put(sensitivity="private")
    free = put(showAs="free")
    allday = put(
        isAllDay=True,
        start={"dateTime": "2026-11-21T00:00:00.0000000", "timeZone": "UTC"},
        end={"dateTime": "2026-11-22T00:00:00.0000000", "timeZone": "UTC"},
    )
    cancelled = put(isCancelled=True)
    link = put(
        onlineMeeting={"joinUrl": "https://teams.microsoft.com/l/1"}, body={"content": "https://zoom.us/j/2"}
    )
    master = put(type="seriesMaster")
    occ = put(type="occurrence", seriesMasterId="S1", originalStart="2026-11-20T10:00:00Z")
    got = {c.key: c for c in listing(cal.source, None)}
    one = lambda key: got[key].occurrences[0]  # noqa: E731
    assert not one(invited).updatable and not one(invited).organizer_is_self
    assert one(private).visibility is Visibility.PRIVATE
    assert one(free).transparency is Transparency.TRANSPARENT
    assert one(allday).all_day and one(allday).start_date is not None
    assert one(cancelled).cancelled
    assert one(link).meeting_link == "https://teams.microsoft.com/l/1"
    assert got[master].occurrences == ()
    assert one(occ).recurring and one(occ).series_id == "S1"
