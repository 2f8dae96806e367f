"""POST /v1/me/accounts/caldav against a real Radicale server, the table on moto and on DynamoDB
Local, KMS and SQS on moto: discovery, C2-C4, C6, S7, X5, X6, and bad servers."""

from __future__ import annotations

import base64
import http.server
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from calsync.crypto import CredentialBox, open_login
from calsync.store import keys
from calsync.store.accounts import AccountRepository
from calsync.store.repository import Repository
from calsync.wiring.accounts import accounts_deps
from tests.support import accounts as fixtures
from tests.support import apigw
from tests.support.accounts import USERS, AccountsApi, Aws, connect_body
from tests.support.apigw import snapshot
from tests.support.radicale import Radicale, free_port

radicale = fixtures.radicale
aws = fixtures.aws
accounts_api = fixtures.accounts_api

ALICE = apigw.claims("alice", ["hq"])
BOB = apigw.claims("bob", ["hq"])
PATH = "/v1/me/accounts/caldav"


def _calendars(api: AccountsApi, who: dict[str, Any]) -> list[dict[str, Any]]:
    got = api.get("/v1/me/calendars", claims=who)
    assert got.status == 200, got.body
    return list(got.json()["calendars"])


def test_connect_stores_account_calendars_primary_and_queues_a_sync(
    table: Any, radicale: Radicale, aws: Aws, accounts_api: AccountsApi
) -> None:
    # rules C1 (CalDAV), C6 (first writable calendar becomes primary), S7 (credentials sealed)
    got = accounts_api.post(PATH, body=connect_body(radicale, "alice"), claims=ALICE)
    assert got.status == 201, got.body
    account = got.json()
    assert set(account) == {"id", "provider", "email", "status", "locations", "lastSyncedAt", "lastError"}
    assert account["provider"] == "caldav"
    assert account["status"] == "active"
    assert account["locations"] == ["hq"]
    assert account["lastSyncedAt"] is None

    listed = accounts_api.get("/v1/me/accounts", claims=ALICE).json()
    assert listed == {"accounts": [account]}

    calendars = _calendars(accounts_api, ALICE)
    assert [c["name"] for c in calendars] == ["Home", "Work"]  # the VTODO list is not an event calendar
    assert {c["accessRole"] for c in calendars} == {"owner"}
    assert {c["accountId"] for c in calendars} == {account["id"]}
    assert {c["provider"] for c in calendars} == {"caldav"}

    config = accounts_api.get("/v1/locations/hq/users/alice/calendar-config", claims=ALICE).json()
    home = next(c["id"] for c in calendars if c["name"] == "Home")  # first by href: /alice/home/
    assert config == {"primaryCalendarId": home, "conflictCalendarIds": []}

    repo = Repository(table)
    calendar = repo.get_calendar(home)
    assert calendar is not None
    assert calendar.subscribers == {keys.user_pk("alice"): "primary"}
    assert calendar.owner_user_id == "alice"

    jobs = aws.jobs()
    assert [(j["calendarId"], j["reason"], j["full"], j["_group"]) for j in jobs] == [
        (home, "connect", True, home)
    ]
    assert jobs[0]["userId"] == "alice"
    assert jobs[0]["accountId"] == account["id"]

    stored = AccountRepository(table).get_account("alice", account["id"])
    assert stored is not None
    assert stored.server_url == radicale.url
    assert stored.external_id == "alice@127.0.0.1"
    # the credentials open only with this person's and account's context
    box = CredentialBox(aws.kms, aws.key_id)
    login = open_login(box, stored.credentials, {"userId": "alice", "accountId": account["id"]})
    assert login == ("alice", USERS["alice"])


def test_wrong_password_is_400_and_stores_nothing(
    table: Any, radicale: Radicale, aws: Aws, accounts_api: AccountsApi
) -> None:
    # API.md: 400 when the server refuses the credentials, nothing stored (rule X5)
    before = snapshot(table)
    got = accounts_api.post(PATH, body={**connect_body(radicale, "alice"), "password": "nope"}, claims=ALICE)
    assert got.status == 400
    assert got.content_type == "application/problem+json"
    problem = got.json()
    assert problem["type"].endswith("/caldav-credentials-refused")
    assert "refused these credentials" in problem["detail"]
    assert snapshot(table) == before
    assert aws.jobs() == []


def test_unreachable_server_is_a_clear_400(table: Any, aws: Aws, accounts_api: AccountsApi) -> None:
    # rule X5: a clear answer, nothing stored
    before = snapshot(table)
    body = {
        "locationId": "hq",
        "serverUrl": f"http://127.0.0.1:{free_port()}/",
        "username": "a",
        "password": "b",
    }
    got = accounts_api.post(PATH, body=body, claims=ALICE)
    assert got.status == 400
    assert got.json()["type"].endswith("/caldav-server-unreachable")
    assert "could not reach" in got.json()["detail"]
    assert snapshot(table) == before


class _Junk(http.server.BaseHTTPRequestHandler):
    """Answers every request with what it is told: garbage XML by default."""

    status = 207
    content_type = "application/xml"
    payload = b"<?xml version='1.0'?><d:multistatus xmlns:d='DAV:'><d:response><<<garbage&&"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.send_response(self.status)
        self.send_header("Content-Type", self.content_type)
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload)

    do_GET = do_PROPFIND = do_REPORT = do_OPTIONS = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def junk_server() -> Iterator[tuple[str, type[_Junk]]]:
    handler = type("Junk", (_Junk,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "junk",
    [
        (207, "application/xml", _Junk.payload),
        (200, "text/html", b"<html><body>Welcome to nginx!</body></html>"),
        (207, "application/xml", b"<?xml version='1.0'?><d:multistatus xmlns:d='DAV:'/>"),
        (500, "text/plain", b"oops"),
    ],
)
def test_a_server_answering_garbage_is_a_clear_400(
    table: Any,
    accounts_api: AccountsApi,
    junk_server: tuple[str, type[_Junk]],
    junk: tuple[int, str, bytes],
) -> None:
    # rule X5: garbage XML, HTML or an empty multistatus: a clear answer, nothing stored, no 500
    url, handler = junk_server
    handler.status, handler.content_type, handler.payload = junk
    before = snapshot(table)
    body = {"locationId": "hq", "serverUrl": url, "username": "alice", "password": "pw"}
    got = accounts_api.post(PATH, body=body, claims=ALICE)
    assert got.status == 400, got.body
    assert got.json()["type"].endswith("/caldav-server-invalid")
    assert "did not answer like a CalDAV server" in got.json()["detail"]
    assert snapshot(table) == before


def test_a_10000_character_password_is_a_clear_400(
    table: Any, radicale: Radicale, accounts_api: AccountsApi
) -> None:
    # rule X5: validated before anything is fetched or stored; the answer does not echo it
    before = snapshot(table)
    password = "p" * 10_000
    got = accounts_api.post(
        PATH, body={**connect_body(radicale, "alice"), "password": password}, claims=ALICE
    )
    assert got.status == 400
    problem = got.json()
    assert problem["type"].endswith("/invalid-input")
    assert [e["loc"] for e in problem["errors"]] == [["body", "password"]]
    assert "ppppp" not in got.body
    assert snapshot(table) == before


@pytest.mark.parametrize(
    "server_url",
    [
        "http://caldav.example.com/",
        "https://169.254.169.254/latest/",
        "https://10.1.2.3/",
        "ftp://x.example/",
    ],
)
def test_server_urls_refused_by_x6_in_a_deployed_stack(
    table: Any, accounts_api: AccountsApi, server_url: str
) -> None:
    # rule X6: https only, never private/link-local/metadata addresses (the deployed stack's setting)
    deps = accounts_deps(table, allow_local=False, kms=object(), key_id="k", enqueue=print)
    with accounts_api.module.wiring.use(deps):
        before = snapshot(table)
        body = {"locationId": "hq", "serverUrl": server_url, "username": "alice", "password": "pw"}
        got = accounts_api.post(PATH, body=body, claims=ALICE)
        assert got.status == 400, got.body
        assert got.json()["type"].endswith("/caldav-url-refused")
        assert snapshot(table) == before


def test_loopback_is_refused_outside_the_local_stack(
    table: Any, radicale: Radicale, accounts_api: AccountsApi
) -> None:
    # rule X6: Radicale on 127.0.0.1 is reachable only when the local stack allows loopback
    deps = accounts_deps(table, allow_local=False, kms=object(), key_id="k", enqueue=print)
    with accounts_api.module.wiring.use(deps):
        got = accounts_api.post(PATH, body=connect_body(radicale, "alice"), claims=ALICE)
        assert got.status == 400
        assert got.json()["type"].endswith("/caldav-url-refused")


def test_only_members_of_the_location_connect(
    table: Any, radicale: Radicale, accounts_api: AccountsApi
) -> None:
    # rule C2: calendar integration only for a member of that location
    before = snapshot(table)
    got = accounts_api.post(PATH, body=connect_body(radicale, "alice", "lon"), claims=ALICE)
    assert got.status == 403
    assert snapshot(table) == before


def test_no_one_connects_for_someone_else(radicale: Radicale, accounts_api: AccountsApi) -> None:
    # rule C8: an admin cannot connect for a member: there is no such route, and no such field
    admin = apigw.claims("hank", ["hq"], admin_of=["hq"])
    got = accounts_api.post("/v1/locations/hq/users/alice/accounts/caldav", body={}, claims=admin)
    assert got.status == 404
    got = accounts_api.post(PATH, body={**connect_body(radicale, "alice"), "userId": "alice"}, claims=admin)
    assert got.status == 400
    assert ["body", "userId"] in [e["loc"] for e in got.json()["errors"]]


def test_a_second_caldav_account_in_the_same_location_is_refused(
    table: Any, radicale: Radicale, accounts_api: AccountsApi
) -> None:
    # rule C3: one account per provider per person per location, with a clear message
    assert accounts_api.post(PATH, body=connect_body(radicale, "alice"), claims=ALICE).status == 201
    before = snapshot(table)
    got = accounts_api.post(PATH, body=connect_body(radicale, "alice2"), claims=ALICE)
    assert got.status == 409
    problem = got.json()
    assert problem["type"] == "https://calsync.dev/errors/account-limit-per-location"
    assert "one account of each provider per location" in problem["detail"]
    assert snapshot(table) == before


def test_an_account_of_another_person_is_refused_with_the_way_out(
    table: Any, radicale: Radicale, accounts_api: AccountsApi
) -> None:
    # rule C4: the refusal explains the way out (connect your own, have the calendar shared)
    assert accounts_api.post(PATH, body=connect_body(radicale, "alice"), claims=ALICE).status == 201
    before = snapshot(table)
    got = accounts_api.post(PATH, body=connect_body(radicale, "alice"), claims=BOB)
    assert got.status == 409
    problem = got.json()
    assert problem["type"] == "https://calsync.dev/errors/account-owned-by-another-user"
    assert "Connect your own account" in problem["detail"]
    assert "share" in problem["detail"]
    assert "alice" not in problem["detail"]  # who owns it is not told
    assert snapshot(table) == before
    assert accounts_api.get("/v1/me/accounts", claims=BOB).json() == {"accounts": []}


def test_the_same_person_uses_the_account_in_another_location(
    radicale: Radicale, aws: Aws, accounts_api: AccountsApi
) -> None:
    # rules C4 (same person, any number of locations) and C6 (primary per location)
    both = apigw.claims("alice", ["hq", "lon"])
    first = accounts_api.post(PATH, body=connect_body(radicale, "alice", "hq"), claims=both)
    second = accounts_api.post(PATH, body=connect_body(radicale, "alice", "lon"), claims=both)
    assert first.status == 201
    assert second.status == 201
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["locations"] == ["hq", "lon"]
    accounts = accounts_api.get("/v1/me/accounts", claims=both).json()["accounts"]
    assert len(accounts) == 1
    hq = accounts_api.get("/v1/locations/hq/users/alice/calendar-config", claims=both).json()
    lon = accounts_api.get("/v1/locations/lon/users/alice/calendar-config", claims=both).json()
    assert hq["primaryCalendarId"] is not None
    assert lon == hq


def test_reconnecting_keeps_a_primary_chosen_meanwhile(radicale: Radicale, accounts_api: AccountsApi) -> None:
    # rule C6: the first writable calendar becomes primary only when none is set
    accounts_api.post(PATH, body=connect_body(radicale, "alice"), claims=ALICE)
    calendars = _calendars(accounts_api, ALICE)
    work = next(c["id"] for c in calendars if c["name"] == "Work")
    body = {"primaryCalendarId": work, "conflictCalendarIds": []}
    assert (
        accounts_api.put("/v1/locations/hq/users/alice/calendar-config", body=body, claims=ALICE).status
        == 200
    )
    assert accounts_api.post(PATH, body=connect_body(radicale, "alice"), claims=ALICE).status == 201
    config = accounts_api.get("/v1/locations/hq/users/alice/calendar-config", claims=ALICE).json()
    assert config["primaryCalendarId"] == work


def test_the_password_never_appears_in_logs_answers_or_the_table(
    table: Any,
    radicale: Radicale,
    accounts_api: AccountsApi,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # rules S7 and X3: stored encrypted only; never logged (at any level), never answered
    caplog.set_level(logging.DEBUG)
    password = USERS["alice"]
    answers = [
        accounts_api.post(
            PATH, body={**connect_body(radicale, "alice"), "password": "Wrong-pw-x1"}, claims=ALICE
        ),
        accounts_api.post(PATH, body=connect_body(radicale, "alice"), claims=ALICE),
        accounts_api.post(PATH, body=connect_body(radicale, "alice"), claims=BOB),
        accounts_api.get("/v1/me/accounts", claims=ALICE),
        accounts_api.get("/v1/me/calendars", claims=ALICE),
    ]
    assert [a.status for a in answers] == [400, 201, 409, 200, 200]
    encoded = base64.b64encode(password.encode()).decode()
    out = capsys.readouterr()
    for text in [caplog.text, out.out, out.err, *(a.body for a in answers), repr(snapshot(table))]:
        assert password not in text
        assert "Wrong-pw-x1" not in text
        assert encoded not in text
    assert caplog.records or out.out  # something was logged, and looked at
