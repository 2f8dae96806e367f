"""One contract, two sources: the in-memory fake and the CalDAV source on a real Radicale server.

What the engine relies on (rules S3, S6): a full listing names every resource and marks those
whose etag is known as unchanged; the cheap check says "unchanged" only when nothing changed; an
incremental listing reports exactly what was written and deleted since the cursor; a cursor that
is not the source's own is rejected.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, Protocol

import pytest

from calsync.domain.models import UTC, Occurrence, Provider
from calsync.sync.engine import default_horizon
from calsync.sync.fake import FakeSource
from calsync.sync.source import CalendarSource, CursorRejected, ResourceChange
from calsync_caldav.client import CalDAVClient
from calsync_caldav.ical import ParseContext
from calsync_caldav.source import CalDAVSource
from tests.support.caldav_server import RadicaleServer, ics, radicale

NOW = datetime(2026, 11, 20, 8, tzinfo=UTC)
HORIZON = default_horizon(NOW)


class Calendar(Protocol):
    source: CalendarSource

    def put(self, name: str, title: str) -> str: ...  # returns the resource key
    def delete(self, name: str) -> None: ...


class FakeCalendar:
    def __init__(self) -> None:
        self.source = FakeSource()

    def put(self, name: str, title: str) -> str:
        occ = Occurrence(Provider.CALDAV, "acc", "cal", name, title, start=NOW, end=NOW + timedelta(hours=1))
        self.source.put(name, [occ])
        return name

    def delete(self, name: str) -> None:
        self.source.delete(name)


class CalDAVCalendar:
    def __init__(self, server: RadicaleServer) -> None:
        self.server = server
        self.user, self.password = f"c{uuid.uuid4().hex[:8]}", "secret"
        server.add_user(self.user, self.password)
        self.url = server.make_calendar(self.user, self.password)
        client = CalDAVClient(self.user, self.password, base_url=server.base_url, allow_local=True)
        self.source = CalDAVSource(client, self.url, ParseContext(account_id="acc", calendar_id="cal"))

    def put(self, name: str, title: str) -> str:
        self.server.put(
            self.url, name, ics(name, title, NOW, NOW + timedelta(hours=1)), (self.user, self.password)
        )
        return f"/{self.user}/calendar/{name}.ics"

    def delete(self, name: str) -> None:
        self.server.delete(self.url, name, (self.user, self.password))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RadicaleServer]:
    with radicale(tmp_path_factory.mktemp("radicale-contract")) as srv:
        yield srv


@pytest.fixture(params=["fake", "caldav"])
def cal(request: pytest.FixtureRequest) -> Calendar:
    if request.param == "fake":
        return FakeCalendar()
    return CalDAVCalendar(request.getfixturevalue("server"))


def listing(
    source: CalendarSource, cursor: str | None, known: dict[str, str] | None = None
) -> list[ResourceChange]:
    return [change for page in source.changes(cursor, known or {}, HORIZON) for change in page]


def test_full_listing_then_unchanged_check(cal: Calendar) -> None:
    # rule S3: a full listing names every resource; then the cheap check says nothing changed
    a, b = cal.put("a", "A"), cal.put("b", "B")
    cal.source.may_have_changed("")  # whatever it checks, the listing must be complete
    changes = listing(cal.source, None)
    assert {c.key for c in changes} == {a, b}
    assert {o.title for c in changes for o in c.occurrences} == {"A", "B"}
    cursor = cal.source.next_cursor
    assert cursor is not None
    assert cal.source.may_have_changed(cursor) is False
    cal.put("b", "B2")
    assert cal.source.may_have_changed(cursor) is True


def test_full_listing_marks_known_etags_unchanged(cal: Calendar) -> None:
    # rule S3 (full comparison by ETag): a resource whose etag we have is not fetched again
    a, b = cal.put("a", "A"), cal.put("b", "B")
    first = {c.key: c.etag for c in listing(cal.source, None)}
    cal.put("b", "B2")
    again = {c.key: c for c in listing(cal.source, None, first)}
    assert again[a].unchanged and not again[a].occurrences
    assert not again[b].unchanged and [o.title for o in again[b].occurrences] == ["B2"]


def test_incremental_listing_reports_exactly_what_changed(cal: Calendar) -> None:
    # rule S6: written and deleted since the cursor, nothing else
    cal.put("a", "A")
    b, c = cal.put("b", "B"), cal.put("c", "C")
    listing(cal.source, None)
    cursor = cal.source.next_cursor
    assert cursor is not None
    cal.put("b", "B2")
    cal.delete("c")
    cal.source.may_have_changed(cursor)
    changes: dict[str, Any] = {ch.key: ch for ch in listing(cal.source, cursor)}
    assert set(changes) == {b, c}
    assert [o.title for o in changes[b].occurrences] == ["B2"]
    assert changes[c].deleted
    new_cursor = cal.source.next_cursor
    assert new_cursor is not None and cal.source.may_have_changed(new_cursor) is False


def test_a_cursor_that_is_not_ours_is_rejected(cal: Calendar) -> None:
    # rule S3: a refused cursor/token -> CursorRejected (the engine then lists everything)
    cal.put("a", "A")
    with pytest.raises(CursorRejected):
        listing(cal.source, '{"ctag":"x","token":"http://radicale.org/ns/sync/nope"}')
