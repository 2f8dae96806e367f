"""The CalDAV client's pure parts: Retry-After (rule S8), hrefs as keys, cursors, strict XML (X5)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
import requests

from calsync.domain.models import UTC
from calsync.sync.source import CursorRejected, SourceAuthError, SourceProtocolError, SourceThrottled
from calsync_caldav.client import MAX_RETRY_AFTER, CalDAVClient, href_key, retry_after_seconds
from calsync_caldav.source import dump_cursor, load_cursor

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def test_retry_after_seconds_and_http_date() -> None:
    # rule S8: both forms of Retry-After are honoured, capped at SQS's limit
    assert retry_after_seconds("120", NOW) == 120
    assert retry_after_seconds("Fri, 20 Nov 2026 08:05:00 GMT", NOW) == 300
    assert retry_after_seconds("Fri, 20 Nov 2026 07:00:00 GMT", NOW) == 1  # in the past: soon
    assert retry_after_seconds("99999999", NOW) == MAX_RETRY_AFTER
    assert retry_after_seconds(None, NOW) is None
    assert retry_after_seconds("soon", NOW) is None


def test_href_key_is_the_decoded_path() -> None:
    assert href_key("/u/cal/a%20b.ics") == "/u/cal/a b.ics"
    assert href_key("https://caldav.icloud.com/123/calendars/home/x.ics") == "/123/calendars/home/x.ics"


def test_cursor_round_trip_and_foreign_cursors() -> None:
    assert load_cursor(dump_cursor("c", "t")) == ("c", "t")
    assert load_cursor(dump_cursor(None, None)) == (None, None)
    for foreign in (None, "", "v12", "[]", '{"ctag": 1}'):
        assert load_cursor(foreign) is None


class _Canned(requests.adapters.BaseAdapter):
    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        super().__init__()
        self.answer = (status, body, headers or {})

    def send(self, request: Any, **kwargs: Any) -> requests.Response:
        resp = requests.Response()
        resp.status_code, resp._content, extra = self.answer
        resp.headers.update(extra)
        resp.request, resp.url = request, request.url
        return resp

    def close(self) -> None:
        pass


def client_answering(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> CalDAVClient:
    client = CalDAVClient("u", "p", base_url="https://dav.example.com/", clock=lambda: NOW)
    client.session.mount("https://", _Canned(status, body, headers))
    return client


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (401, b"", SourceAuthError),
        (503, b"", SourceThrottled),
        (429, b"", SourceThrottled),
        (207, b"<html>not dav</html>", SourceProtocolError),
        (207, b"<D:multistatus xmlns:D='DAV:'><D:response>", SourceProtocolError),
        (302, b"", SourceProtocolError),  # redirects are not followed (X6)
    ],
)
def test_bad_answers_become_clear_errors(status: int, body: bytes, error: type[Exception]) -> None:
    # rules S7, S8, X5: each bad answer is one clear error, never a crash
    with pytest.raises(error):
        client_answering(status, body, {"Retry-After": "7"}).probe("https://dav.example.com/cal/")


def test_throttled_carries_retry_after() -> None:
    with pytest.raises(SourceThrottled) as info:
        client_answering(503, b"", {"Retry-After": "7"}).probe("https://dav.example.com/cal/")
    assert info.value.retry_after == 7


@pytest.mark.parametrize("status", [403, 409, 412])
def test_refused_sync_token(status: int) -> None:
    # rule S3: 403/409/412 with DAV:valid-sync-token -> a full comparison
    body = b"<D:error xmlns:D='DAV:'><D:valid-sync-token/></D:error>"
    with pytest.raises(CursorRejected):
        client_answering(status, body).sync_collection("https://dav.example.com/cal/", "t1")


def test_entities_are_not_expanded() -> None:
    # an XML bomb / external entity in an answer is not expanded
    body = (
        b"<?xml version='1.0'?><!DOCTYPE d [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>"
        b"<D:multistatus xmlns:D='DAV:'><D:response><D:href>/cal/</D:href><D:propstat><D:prop>"
        b"<D:sync-token>&x;</D:sync-token></D:prop><D:status>HTTP/1.1 200 OK</D:status>"
        b"</D:propstat></D:response></D:multistatus>"
    )
    state = client_answering(207, body).probe("https://dav.example.com/cal/")
    assert state.sync_token is None or "root:" not in state.sync_token


def test_truncated_sync_collection_is_reported() -> None:
    body = (
        b"<D:multistatus xmlns:D='DAV:'>"
        b'<D:response><D:href>/cal/a.ics</D:href><D:propstat><D:prop><D:getetag>"1"</D:getetag></D:prop>'
        b"<D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>"
        b"<D:response><D:href>/cal/b.ics</D:href><D:status>HTTP/1.1 404 Not Found</D:status></D:response>"
        b"<D:response><D:href>/cal/</D:href>"
        b"<D:status>HTTP/1.1 507 Insufficient Storage</D:status></D:response>"
        b"<D:sync-token>t2</D:sync-token></D:multistatus>"
    )
    report = client_answering(207, body).sync_collection("https://dav.example.com/cal/", "t1")
    assert report.changed == {"/cal/a.ics": '"1"'} and report.deleted == ["/cal/b.ics"]
    assert report.truncated and report.token == "t2"


def test_icloud_listing_the_collection_itself_among_the_changes_is_not_a_member() -> None:
    # iCloud reports the calendar collection itself, with an etag, in a sync-collection answer
    # (Net-DAVTalk 0.26 changes; docs/providers/icloud.md), here with absolute partition-host hrefs
    base = b"https://p07-caldav.icloud.com:443/123/calendars/home/"
    body = (
        b"<D:multistatus xmlns:D='DAV:'>"
        b"<D:response><D:href>" + base + b'</D:href><D:propstat><D:prop><D:getetag>"c9"</D:getetag>'
        b"</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>"
        b"<D:response><D:href>" + base + b'e1.ics</D:href><D:propstat><D:prop><D:getetag>"1"</D:getetag>'
        b"</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>"
        b"<D:sync-token>HwoQEgwAAA</D:sync-token></D:multistatus>"
    )
    client = CalDAVClient("u", "p", base_url=base.decode(), clock=lambda: NOW)
    client.session.mount("https://", _Canned(207, body))
    report = client.sync_collection(base.decode(), "t1")
    assert report.changed == {"/123/calendars/home/e1.ics": '"1"'}
    assert report.deleted == [] and not report.truncated
