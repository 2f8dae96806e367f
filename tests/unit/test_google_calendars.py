"""The calendar list as calsync reads it (``calsync_google.calendars``): every page, Google's
defaults for ``showHidden``/``showDeleted``, ``maxResults`` 250, and untrusted entries (unknown
role, no id, oversized values, a page token that never ends) never break the listing. Rules R8, S11."""

from __future__ import annotations

from typing import Any

import pytest

from calsync.domain.limits import MAX_TITLE
from calsync.sync.source import SourceProtocolError
from calsync_google.calendars import MAX_PAGES, PAGE_SIZE, list_calendars
from calsync_google.client import Caller


class Request:
    def __init__(self, body: dict[str, Any]) -> None:
        self.body, self.headers = body, {}

    def execute(self, num_retries: int = 0) -> dict[str, Any]:
        return self.body


class Service:
    """Answers ``calendarList().list(**query)`` with ``pages[pageToken or 0]``."""

    def __init__(self, pages: list[dict[str, Any]]) -> None:
        self.pages, self.queries = pages, []

    def calendarList(self) -> Service:
        return self

    def list(self, **query: Any) -> Request:
        self.queries.append(query)
        return Request(self.pages[int(query.get("pageToken", 0)) % len(self.pages)])


def test_every_page_with_google_defaults() -> None:
    me = {"id": "Me@x.test", "summary": "Me", "accessRole": "owner", "primary": True}
    team = {"id": "t@group.calendar.google.com", "summary": "Team", "accessRole": "reader"}
    team["timeZone"] = "Europe/Berlin"
    service = Service([{"items": [me], "nextPageToken": "1"}, {"items": [team]}])
    listed = list_calendars(service, Caller())
    assert listed.email == "me@x.test"
    assert [(c.href, c.name, c.access_role, c.time_zone) for c in listed.calendars] == [
        ("Me@x.test", "Me", "owner", None),
        ("t@group.calendar.google.com", "Team", "reader", "Europe/Berlin"),
    ]
    # no showHidden/showDeleted/minAccessRole: Google's defaults (hidden and deleted entries are
    # not listed; every role is); the largest page
    assert service.queries == [{"maxResults": PAGE_SIZE}, {"maxResults": PAGE_SIZE, "pageToken": "1"}]


def test_hostile_entries_are_skipped_or_bounded() -> None:
    items: list[Any] = [
        "not an entry",
        {"summary": "no id", "accessRole": "owner"},
        {"id": "odd@x.test", "accessRole": "none"},
        {"id": "gone@x.test", "accessRole": "owner", "deleted": True},
        {"id": "x" * 5000, "accessRole": "owner"},
        {"id": "big@x.test", "summary": "T" * 410_000, "accessRole": "writer", "timeZone": "Z" * 500},
        {
            "id": "mine@x.test",
            "summary": "Shared",
            "summaryOverride": "My name for it",
            "accessRole": "reader",
        },
    ]
    listed = list_calendars(Service([{"items": items}]), Caller())
    big, mine = listed.calendars
    assert big.href == "big@x.test" and len(big.name) == MAX_TITLE and big.time_zone is None
    assert mine.name == "My name for it"  # what the person sees in Google Calendar
    assert listed.email == ""


def test_a_page_token_that_never_ends_is_bounded() -> None:
    service = Service([{"items": [], "nextPageToken": "0"}])
    list_calendars(service, Caller())
    assert len(service.queries) == MAX_PAGES


def test_an_answer_that_is_not_a_calendar_list_is_a_protocol_error() -> None:
    for body in ({"items": "nope"}, {"items": {"id": "x"}}):
        with pytest.raises(SourceProtocolError):
            list_calendars(Service([body]), Caller())
