"""One cursor contract, two sources: the in-memory fake (calsync.sync.fake, what the engine's unit
tests use) and the Google source (calsync_google.source) with the REAL google-api-python-client on
the local fake Google server (tests/support/fake_google.py). Same steps, same results.

What the engine relies on (rules S1, S6): a full listing names every resource, in pages, and the
new cursor exists only once the last page was read; resources whose etag is known are reported
unchanged; an incremental listing reports exactly what was written and deleted since the cursor,
and right after it nothing; an expired cursor (Google: 410 Gone) or a foreign one raises
``CursorRejected`` before any page, and a full listing then recovers everything.

Known difference, pinned here: ``may_have_changed`` of the Google source is always True (a push
notification is the cheap check); for both it is never False after a change.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, Protocol

import pytest

from calsync.domain.links import LinkSettings
from calsync.domain.models import UTC, Occurrence, Provider
from calsync.sync.engine import default_horizon
from calsync.sync.fake import FakeSource
from calsync.sync.source import CalendarSource, CursorRejected, ResourceChange
from calsync_google.client import Caller, ClientSecret, GoogleEndpoints, calendar_service, credentials
from calsync_google.source import GoogleContext, GoogleSource
from tests.support.fake_google import FakeGoogle, fake_google

NOW = datetime(2026, 11, 20, 8, tzinfo=UTC)
HORIZON = default_horizon(NOW)
EMAIL = "contract@example.com"


class Cal(Protocol):
    source: CalendarSource

    def put(self, name: str, title: str) -> str: ...  # returns the resource key
    def delete(self, name: str) -> None: ...
    def expire(self) -> None: ...


class InMemory:
    def __init__(self) -> None:
        self.source = FakeSource(page_size=2)

    def put(self, name: str, title: str) -> str:
        occ = Occurrence(Provider.GOOGLE, "acc", "cal", name, title, start=NOW, end=NOW + timedelta(hours=1))
        self.source.put(name, [occ])
        return name

    def delete(self, name: str) -> None:
        self.source.delete(name)

    def expire(self) -> None:
        self.source.expire_cursors()


class OnFakeGoogle:
    def __init__(self, fake: FakeGoogle) -> None:
        self.fake = fake
        fake.add_calendar(EMAIL, EMAIL, "Work", "owner", primary=True)
        endpoints = GoogleEndpoints(fake.auth_uri, fake.token_uri, fake.api_endpoint)
        creds = credentials(fake.grant(EMAIL), ClientSecret(fake.client_id, fake.client_secret), endpoints)
        ctx = GoogleContext(account_id="acc", calendar_id="cal", links=LinkSettings())
        self.source = GoogleSource(
            calendar_service(creds, endpoints), EMAIL, ctx, caller=Caller(sleep=lambda _s: None)
        )

    def put(self, name: str, title: str) -> str:
        self.fake.put_event(
            EMAIL,
            {
                "id": name,
                "summary": title,
                "start": {"dateTime": NOW.isoformat()},
                "end": {"dateTime": (NOW + timedelta(hours=1)).isoformat()},
            },
            deliver=False,
        )
        return name

    def delete(self, name: str) -> None:
        self.fake.delete_event(EMAIL, name, deliver=False)

    def expire(self) -> None:
        self.fake.expire_sync_tokens(EMAIL)


@pytest.fixture(params=["in-memory", "google"])
def cal(request: pytest.FixtureRequest) -> Iterator[Cal]:
    if request.param == "in-memory":
        yield InMemory()
        return
    with fake_google(page_size=2, deliver=lambda _a, _h: 200) as fake:
        yield OnFakeGoogle(fake)


def listing(source: CalendarSource, cursor: str | None, known: dict[str, str] | None = None) -> list[Any]:
    return [change for page in source.changes(cursor, known or {}, HORIZON) for change in page]


def summary(changes: list[ResourceChange]) -> dict[str, Any]:
    return {
        c.key: "deleted" if c.deleted else "unchanged" if c.unchanged else [o.title for o in c.occurrences]
        for c in changes
    }


def test_full_listing_in_pages_cursor_only_after_the_last_page(cal: Cal) -> None:  # rules S1, S6
    for n in range(5):
        cal.put(f"e{n}", f"E{n}")
    pages = cal.source.changes(None, {}, HORIZON)
    first = next(pages)
    assert len(first) == 2
    assert cal.source.next_cursor is None  # not before the last page
    rest = [c for page in pages for c in page]
    assert summary([*first, *rest]) == {f"e{n}": [f"E{n}"] for n in range(5)}
    assert cal.source.next_cursor is not None


def test_known_etags_are_reported_unchanged(cal: Cal) -> None:  # rule S5 (reconcile writes nothing)
    cal.put("a", "A")
    cal.put("b", "B")
    first = {c.key: c.etag for c in listing(cal.source, None)}
    cal.put("b", "B2")
    assert summary(listing(cal.source, None, first)) == {"a": "unchanged", "b": ["B2"]}


def test_incremental_listing_reports_exactly_what_changed(cal: Cal) -> None:  # rules S1, S6
    for name in ("a", "b", "c"):
        cal.put(name, name.upper())
    listing(cal.source, None)
    cursor = cal.source.next_cursor
    assert cursor is not None
    cal.put("b", "B2")
    cal.delete("c")
    cal.put("d", "D")
    assert cal.source.may_have_changed(cursor) is True
    assert summary(listing(cal.source, cursor)) == {"b": ["B2"], "c": "deleted", "d": ["D"]}
    again = cal.source.next_cursor
    assert again is not None
    assert listing(cal.source, again) == []  # nothing since


def test_expired_cursor_is_rejected_then_a_full_listing_recovers(cal: Cal) -> None:  # rule S1 (410)
    cal.put("a", "A")
    listing(cal.source, None)
    cursor = cal.source.next_cursor
    assert cursor is not None
    cal.expire()
    cal.put("b", "B")
    cal.delete("a")
    with pytest.raises(CursorRejected):
        listing(cal.source, cursor)
    assert cal.source.next_cursor is None
    assert summary(listing(cal.source, None)) == {"b": ["B"]}  # nothing lost, nothing twice
    assert cal.source.next_cursor is not None


def test_a_cursor_that_is_not_ours_is_rejected(cal: Cal) -> None:  # rule S1
    cal.put("a", "A")
    with pytest.raises(CursorRejected):
        listing(cal.source, "st:someone-else:1")
