"""Presence and profile through PresenceFunction's handler (issue 8: P1-P8, X1, X5), on the table
from template.yaml (moto and DynamoDB Local), with S3 and EventBridge on moto's server over real HTTP
(behind S3's POST policy checks, local/s3_post_policy.py). The clock is frozen; time moves only when
a test moves it."""

from __future__ import annotations

import importlib
import json
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calsync.config import get_presence_settings
from calsync.domain.models import Transparency
from calsync.store import keys
from calsync.store.repository import Repository
from calsync.wiring.presence import presence_deps
from local.s3_post_policy import threaded_server
from tests.support import apigw
from tests.support.apigw import Answer, LambdaContext, answer, api_on, snapshot

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)  # 11:00 in Berlin
REGION = "eu-west-1"
ALICE = apigw.claims("alice", ["hq"])
BOB = apigw.claims("bob", ["hq"])
CAROL = apigw.claims("carol", ["lon"])
DANA = apigw.claims("dana", ["hq"], admin_of=["hq"])
TTL = 3600  # SESSION_TTL_SECONDS in these tests


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def aws_endpoint() -> Iterator[str]:
    """moto's server (S3, EventBridge, SQS) with S3's POST policy checks in front, on a free port."""
    port = _free_port()
    # mock_aws() (the moto table) swaps in its own dummy credentials while it is active
    server = threaded_server("127.0.0.1", port, {"testing": "testing", "FOOBARKEY": "FOOBARSECRET"})
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _client(service: str, endpoint: str, **kwargs: Any) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION, **kwargs)


@dataclass
class World:
    """PresenceFunction and ApiFunction on one table, S3 bucket and event bus; a movable clock."""

    table: Any
    s3: Any
    sqs: Any
    bucket: str
    queue_url: str
    now: datetime = NOW
    context: LambdaContext = field(default_factory=LambdaContext)

    @property
    def repo(self) -> Repository:
        return Repository(self.table)

    def clock(self) -> datetime:
        return self.now

    @contextmanager
    def wired(self) -> Iterator[None]:
        """PresenceFunction wired from the settings as they are now, with this world's clock."""
        module = importlib.import_module("functions.presence.app")
        with module.wiring.use(presence_deps(self.table, clock=self.clock)):
            yield

    def call(self, method: str, path: str, claims: dict[str, Any] | None, **kwargs: Any) -> Answer:
        module = importlib.import_module("functions.presence.app")
        return answer(module.lambda_handler(apigw.event(method, path, claims=claims, **kwargs), self.context))

    def presence(self, user: str, claims: dict[str, Any]) -> Answer:
        return self.call("GET", f"/v1/users/{user}/presence", claims)

    def set(self, claims: dict[str, Any], body: Any) -> Answer:
        return self.call("PUT", "/v1/me/presence", claims, body=body)

    def sign_in(self, claims: dict[str, Any]) -> str:
        got = self.call("POST", "/v1/me/sessions", claims)
        assert got.status == 201, got.body
        return str(got.json()["sessionId"])

    def profile(self, claims: dict[str, Any]) -> Answer:
        with api_on(self.table, self.now) as api:
            return api.get("/v1/me/profile", claims=claims)

    def events(self) -> list[dict[str, Any]]:
        """The PresenceChanged events delivered so far (rule -> SQS target on the bus)."""
        got: list[dict[str, Any]] = []
        while True:
            resp = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            messages = resp.get("Messages", [])
            if not messages:
                return got
            for m in messages:
                got.append(json.loads(m["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])


@pytest.fixture
def world(table: Any, aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", aws_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_EVENTBRIDGE", aws_endpoint)
    s3 = _client("s3", aws_endpoint, config=Config(signature_version="s3v4"))
    events = _client("events", aws_endpoint)
    sqs = _client("sqs", aws_endpoint)
    suffix = uuid.uuid4().hex[:8]
    bucket, bus = f"calsync-photos-{suffix}", f"calsync-presence-{suffix}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    events.create_event_bus(Name=bus)
    queue_url = sqs.create_queue(QueueName=f"presence-{suffix}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(
        Name=f"all-{suffix}", EventBusName=bus, EventPattern=json.dumps({"source": ["calsync.presence"]})
    )
    events.put_targets(Rule=f"all-{suffix}", EventBusName=bus, Targets=[{"Id": "q", "Arn": queue_arn}])
    monkeypatch.setenv("PHOTO_BUCKET", bucket)
    monkeypatch.setenv("PRESENCE_BUS_NAME", bus)
    monkeypatch.setenv("SESSION_TTL_SECONDS", str(TTL))
    get_presence_settings.cache_clear()
    w = World(table, s3, sqs, bucket, queue_url)
    try:
        with w.wired():
            yield w
    finally:
        get_presence_settings.cache_clear()


def _seed_meeting(repo: Repository, user: str, start: datetime, end: datetime, **fields: Any) -> None:
    cal = apigw.calendar(repo, f"cal-{user}", f"acc-{user}", user, subscribers={f"USER#{user}": "primary"})
    repo.store_occurrences(
        cal, [apigw.occurrence(cal, uuid.uuid4().hex, "Design review", start, end, **fields)]
    )


def _berlin(world: World, claims: dict[str, Any]) -> None:
    with api_on(world.table, world.now) as api:
        assert api.patch("/v1/me/profile", body={"timeZone": "Europe/Berlin"}, claims=claims).status == 200


# ---- P1, P2, P3, P7: statuses, what others see, one truth ----------------------------------------------
@pytest.mark.parametrize(
    ("chosen", "shown", "calls"),
    [
        ("available", "available", True),
        ("busy", "busy", True),  # rule P2: busy still takes calls and messages
        ("do_not_disturb", "busy", False),  # rule P3: others see busy, calls go to voicemail
        ("away", "away", True),
    ],
)
def test_a_status_set_is_what_others_see_next(world: World, chosen: str, shown: str, calls: bool) -> None:
    # rules P1, P2, P3, P7 (strongly consistent: the very next read sees it; updatedAt on every answer)
    world.sign_in(ALICE)
    world.now = NOW + timedelta(minutes=5)
    mine = world.set(ALICE, {"status": chosen})
    assert mine.status == 200, mine.body
    assert mine.json()["chosenStatus"] == chosen  # what alice sees of herself: her own choice
    got = world.presence("alice", BOB)
    assert got.status == 200, got.body
    assert got.json() == {
        "userId": "alice",
        "status": shown,
        "message": None,
        "inMeetingUntil": None,
        "acceptsCalls": calls,
        "acceptsMessages": True,
        "updatedAt": "2026-11-20T10:05:00Z",
    }


def test_the_person_sees_their_raw_status_others_do_not(world: World) -> None:
    # rule P3: what others see versus what the person sees
    world.sign_in(ALICE)
    assert world.set(ALICE, {"status": "do_not_disturb"}).status == 200
    own = world.presence("alice", ALICE).json()
    assert own["chosenStatus"] == "do_not_disturb"
    assert own["status"] == "busy" and own["acceptsCalls"] is False
    others = world.presence("alice", BOB).json()
    assert "chosenStatus" not in others
    assert others["status"] == "busy" and others["acceptsCalls"] is False and others["acceptsMessages"]


def test_offline_is_derived_never_set(world: World) -> None:
    # rule P1: offline is not a status anyone sets; nobody signed in is offline
    got = world.presence("alice", ALICE)
    assert got.status == 200
    assert got.json()["status"] == "offline"
    assert got.json()["updatedAt"] == "2026-11-20T10:00:00Z"
    before = snapshot(world.table)
    refused = world.set(ALICE, {"status": "offline"})
    assert refused.status == 400 and refused.content_type == "application/problem+json"
    assert refused.json()["errors"][0]["loc"] == ["body", "status"]
    assert snapshot(world.table) == before


# ---- P4: the custom message -----------------------------------------------------------------------
def test_custom_message_is_shown_kept_and_cleared(world: World) -> None:
    # rule P4
    world.sign_in(ALICE)
    assert world.set(ALICE, {"status": "away", "message": "Back at 14:00 ☕"}).status == 200
    assert world.presence("alice", BOB).json()["message"] == "Back at 14:00 ☕"
    assert world.set(ALICE, {"status": "busy"}).json()["message"] == "Back at 14:00 ☕"  # left out: kept
    assert world.set(ALICE, {"status": "busy", "message": None}).json()["message"] is None
    assert world.set(ALICE, {"status": "busy", "message": "x" * 140}).json()["message"] == "x" * 140
    assert world.set(ALICE, {"status": "busy", "message": ""}).json()["message"] is None
    assert world.presence("alice", BOB).json()["message"] is None


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"status": "invisible"}, ["body", "status"]),
        ({"status": "offline"}, ["body", "status"]),
        ({"status": "BUSY"}, ["body", "status"]),
        ({}, ["body", "status"]),
        ({"status": "busy", "message": "x" * 141}, ["body", "message"]),
        ({"status": "busy", "message": "ring\u0007"}, ["body", "message"]),
        ({"status": "busy", "message": "two\nlines"}, ["body", "message"]),
        ({"status": "busy", "message": "zero\u200bwidth"}, ["body", "message"]),
        ({"status": "busy", "message": 7}, ["body", "message"]),
        ({"status": "busy", "extra": 1}, ["body", "extra"]),
        ("not json", ["body"]),
    ],
    ids=[
        "unknown",
        "offline",
        "case",
        "missing",
        "141",
        "bell",
        "newline",
        "zwsp",
        "number",
        "extra",
        "json",
    ],
)
def test_bad_presence_is_refused_and_nothing_is_written(world: World, body: Any, where: list[str]) -> None:
    # rules P1, P4, X5: a clear 400 problem, nothing written
    world.sign_in(ALICE)
    assert world.set(ALICE, {"status": "away", "message": "before"}).status == 200
    world.events()
    before = snapshot(world.table)
    got = world.set(ALICE, body)
    assert got.status == 400, got.body
    assert got.content_type == "application/problem+json"
    problem = got.json()
    assert problem["type"].endswith("/invalid-input") and problem["status"] == 400
    assert problem["errors"][0]["loc"][: len(where)] == where
    assert snapshot(world.table) == before
    assert world.events() == []  # and nothing announced


# ---- P5: sessions ---------------------------------------------------------------------------------
def test_sessions_expire_unless_renewed_and_closing_the_app_keeps_them(world: World) -> None:
    # rule P5, clock frozen and moved by hand
    assert world.presence("alice", ALICE).json()["status"] == "offline"
    session = world.sign_in(ALICE)
    assert world.presence("alice", BOB).json()["status"] == "available"
    # the app is closed without logging out: the session lives on until it expires
    world.now = NOW + timedelta(seconds=TTL - 1)
    assert world.presence("alice", BOB).json()["status"] == "available"
    renewed = world.call("PUT", f"/v1/me/sessions/{session}", ALICE)
    assert renewed.status == 200, renewed.body
    assert renewed.json() == {"sessionId": session, "expiresAt": "2026-11-20T11:59:59Z"}
    world.now = NOW + timedelta(seconds=TTL + 60)  # past the first expiry: the renewal holds
    assert world.presence("alice", BOB).json()["status"] == "available"
    world.now = NOW + timedelta(seconds=2 * TTL)  # not renewed again: expired
    offline = world.presence("alice", BOB).json()
    assert offline["status"] == "offline" and offline["acceptsCalls"] is False
    assert offline["updatedAt"] == "2026-11-20T11:59:59Z"  # when the last session ran out
    late = world.call("PUT", f"/v1/me/sessions/{session}", ALICE)
    assert late.status == 404 and late.content_type == "application/problem+json"


def test_logout_ends_a_session_and_the_last_one_makes_offline(world: World) -> None:
    # rule P5: online while any session lives; logging out of all of them is offline
    phone, laptop = world.sign_in(ALICE), world.sign_in(ALICE)
    assert phone != laptop
    assert world.set(ALICE, {"status": "busy"}).status == 200
    world.now = NOW + timedelta(minutes=1)
    gone = world.call("DELETE", f"/v1/me/sessions/{phone}", ALICE)
    assert gone.status == 204 and gone.body == ""
    assert world.presence("alice", BOB).json()["status"] == "busy"
    world.now = NOW + timedelta(minutes=2)
    assert world.call("DELETE", f"/v1/me/sessions/{laptop}", ALICE).status == 204
    offline = world.presence("alice", BOB).json()
    assert offline["status"] == "offline"
    assert offline["updatedAt"] == "2026-11-20T10:02:00Z"
    assert world.call("DELETE", f"/v1/me/sessions/{laptop}", ALICE).status == 204  # idempotent
    assert world.call("PUT", f"/v1/me/sessions/{laptop}", ALICE).status == 404  # logged out: sign in again
    # another person cannot end alice's session: sessions live in the caller's own partition
    other = world.sign_in(ALICE)
    assert world.call("DELETE", f"/v1/me/sessions/{other}", BOB).status == 204
    assert world.presence("alice", BOB).json()["status"] == "busy"


def test_session_items_carry_the_ttl_attribute(world: World) -> None:
    # rule P5: expired sessions are also deleted by DynamoDB's TTL (reads never rely on it)
    session = world.sign_in(ALICE)
    item = world.table.get_item(Key={"pk": "USER#alice", "sk": keys.session_sk(session)})["Item"]
    assert int(item["expiresAt"]) == int((NOW + timedelta(seconds=TTL)).timestamp())


def test_session_lifetime_is_configurable(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # rule P5: SESSION_TTL_SECONDS
    monkeypatch.setenv("SESSION_TTL_SECONDS", "120")
    get_presence_settings.cache_clear()
    with world.wired():
        got = world.call("POST", "/v1/me/sessions", ALICE)
        assert got.json()["expiresAt"] == "2026-11-20T10:02:00Z"
        world.now = NOW + timedelta(seconds=121)
        assert world.presence("alice", BOB).json()["status"] == "offline"


@pytest.mark.parametrize("bad", ["a%20b", "x" * 65, "a.b"])
def test_bad_session_ids_are_400(world: World, bad: str) -> None:
    # rule X5
    assert world.call("PUT", f"/v1/me/sessions/{bad}", ALICE).status == 400


# ---- P6: in a meeting -----------------------------------------------------------------------------
def test_in_a_meeting_others_see_busy_until_in_the_persons_zone(world: World) -> None:
    # rule P6: listed meeting in progress, no chosen status -> busy "In a meeting until HH:MM" (Berlin)
    _berlin(world, ALICE)
    world.sign_in(ALICE)
    _seed_meeting(world.repo, "alice", NOW - timedelta(minutes=30), NOW + timedelta(minutes=45))
    got = world.presence("alice", BOB).json()
    assert got["status"] == "busy"
    assert got["message"] == "In a meeting until 11:45"
    assert got["inMeetingUntil"] == "2026-11-20T11:45:00+01:00"
    assert got["acceptsCalls"] is True and got["acceptsMessages"] is True
    assert got["updatedAt"] == "2026-11-20T10:00:00Z"
    # ended: not busy any more
    world.now = NOW + timedelta(minutes=45)
    after = world.presence("alice", BOB).json()
    assert (after["status"], after["message"], after["inMeetingUntil"]) == ("available", None, None)


def test_a_chosen_status_wins_over_a_meeting_and_can_be_cleared(world: World) -> None:
    # rule P6: "and they have not chosen a status"
    world.sign_in(ALICE)
    _seed_meeting(world.repo, "alice", NOW - timedelta(minutes=10), NOW + timedelta(minutes=20))
    assert world.set(ALICE, {"status": "available"}).json()["status"] == "available"
    assert world.presence("alice", BOB).json()["inMeetingUntil"] is None
    cleared = world.call("DELETE", "/v1/me/presence", ALICE)
    assert cleared.status == 200 and cleared.json()["chosenStatus"] is None
    got = world.presence("alice", BOB).json()
    assert got["status"] == "busy" and got["message"] == "In a meeting until 10:20"  # UTC profile


@pytest.mark.parametrize(
    "fields",
    [
        {"transparency": Transparency.TRANSPARENT},  # shown as free
        {"updatable": False},  # U4: not listed
        {"recurring": True},  # U5: recurring without a link is not listed
    ],
    ids=["transparent", "not-listed-U4", "not-listed-U5"],
)
def test_events_that_do_not_make_a_person_busy(world: World, fields: dict[str, Any]) -> None:
    # rule P6: only listed meetings (U1-U11) count; transparent ones do not
    world.sign_in(ALICE)
    _seed_meeting(world.repo, "alice", NOW - timedelta(minutes=10), NOW + timedelta(minutes=20), **fields)
    assert world.presence("alice", BOB).json()["status"] == "available"


def test_all_day_events_do_not_make_a_person_busy(world: World) -> None:
    # rule P6: an all-day event is not a meeting in progress
    world.sign_in(ALICE)
    _seed_meeting(world.repo, "alice", date(2026, 11, 20), date(2026, 11, 21))  # type: ignore[arg-type]
    assert world.presence("alice", BOB).json()["status"] == "available"


def test_offline_wins_over_a_meeting(world: World) -> None:
    # rule P5 before P6: nobody signed in is offline, meeting or not
    _seed_meeting(world.repo, "alice", NOW - timedelta(minutes=10), NOW + timedelta(minutes=20))
    assert world.presence("alice", ALICE).json()["status"] == "offline"
    assert world.presence("alice", BOB).json()["status"] == "offline"


# ---- X1: who may read presence ----------------------------------------------------------------------
def test_presence_of_someone_outside_your_locations_is_403(world: World) -> None:
    # rule X1: share a location, or 403; unknown people look exactly like strangers
    world.sign_in(ALICE)
    stranger = world.presence("alice", CAROL)
    unknown = world.presence("nobody", BOB)
    assert stranger.status == unknown.status == 403
    assert stranger.json() == unknown.json()
    assert world.presence("alice", apigw.claims("erin", ["lon", "hq"])).status == 200
    assert world.presence("alice", None).status == 401
    assert world.call("PUT", "/v1/me/presence", None, body={"status": "busy"}).status == 401


def test_me_calls_remember_the_callers_locations(world: World) -> None:
    # rule X1: the locations of the token are stored, so that others are checked against them
    world.sign_in(apigw.claims("alice", ["hq", "lon"]))
    assert world.presence("alice", CAROL).status == 200
    world.set(apigw.claims("alice", ["hq"]), {"status": "busy"})  # alice left lon
    assert world.presence("alice", CAROL).status == 403


# ---- presence events ----------------------------------------------------------------------------------
def test_changes_are_published_as_events(world: World) -> None:
    # docs/events.md: source calsync.presence, detail-type PresenceChanged, detail = what others see
    world.sign_in(ALICE)
    world.set(ALICE, {"status": "do_not_disturb", "message": "Focus"})
    delivered = world.events()
    assert [e["detail-type"] for e in delivered] == ["PresenceChanged", "PresenceChanged"]
    assert {e["source"] for e in delivered} == {"calsync.presence"}
    signed_in, dnd = (e["detail"] for e in delivered)
    assert signed_in["reason"] == "signed-in" and signed_in["status"] == "available"
    assert dnd == {
        "userId": "alice",
        "status": "busy",
        "message": "Focus",
        "inMeetingUntil": None,
        "acceptsCalls": False,
        "acceptsMessages": True,
        "updatedAt": "2026-11-20T10:00:00Z",
        "locations": ["hq"],
        "reason": "status-set",
    }


def test_a_failed_event_does_not_fail_the_request(
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # the change is stored; the failure is logged and counted (metric PresenceEventsFailed)
    monkeypatch.setenv("PRESENCE_BUS_NAME", "no-such-bus")
    get_presence_settings.cache_clear()
    with world.wired():
        world.sign_in(ALICE)
        assert world.set(ALICE, {"status": "away"}).status == 200
        assert world.presence("alice", BOB).json()["status"] == "away"
    assert "presence event not published" in caplog.messages
    metric = [json.loads(line) for line in capfd.readouterr().out.splitlines() if '"_aws"' in line]
    assert [m["PresenceEventsFailed"] for m in metric if "PresenceEventsFailed" in m] == [[1.0], [1.0]]


# ---- P8: directory entry --------------------------------------------------------------------------
def test_admin_sets_phone_and_extension_the_person_sees_them(world: World) -> None:
    # rule P8 (and X1: admins of the location manage its members)
    with api_on(world.table, world.now) as api:
        api.patch("/v1/me/profile", body={"displayName": "Alice", "timeZone": "Europe/Berlin"}, claims=ALICE)
    path = "/v1/locations/hq/users/alice/directory-entry"
    got = world.call("PUT", path, DANA, body={"phoneNumber": "+49 30 1234567", "extension": "4711"})
    assert got.status == 200, got.body
    assert got.json() == {
        "userId": "alice",
        "locationId": "hq",
        "phoneNumber": "+49 30 1234567",
        "extension": "4711",
    }
    profile = world.profile(ALICE).json()
    assert (profile["phoneNumber"], profile["extension"]) == ("+49 30 1234567", "4711")
    assert (profile["displayName"], profile["timeZone"]) == ("Alice", "Europe/Berlin")  # untouched
    assert world.call("PUT", path, DANA, body={"phoneNumber": "+49 30 1234567"}).status == 200
    assert world.profile(ALICE).json()["extension"] is None


def test_directory_entry_only_by_an_admin_of_a_location_of_the_person(world: World) -> None:
    # rule X1
    world.profile(ALICE)  # alice's token said hq
    body = {"phoneNumber": "+49 30 1234567", "extension": "1"}
    before = snapshot(world.table)
    assert world.call("PUT", "/v1/locations/hq/users/alice/directory-entry", BOB, body=body).status == 403
    lon_admin = apigw.claims("lena", ["lon"], admin_of=["lon"])
    assert (
        world.call("PUT", "/v1/locations/lon/users/alice/directory-entry", lon_admin, body=body).status == 403
    )
    assert world.call("PUT", "/v1/locations/hq/users/ghost/directory-entry", DANA, body=body).status == 403
    assert snapshot(world.table) == before


@pytest.mark.parametrize(
    "body",
    [
        {"phoneNumber": "call me"},
        {"phoneNumber": "+49 30 1234567\n"},
        {"phoneNumber": "1" * 40},
        {"extension": "12a"},
        {"extension": 12},
        {"phone": "+1 555 0100"},
    ],
)
def test_bad_directory_entries_are_400(world: World, body: dict[str, Any]) -> None:
    # rule X5
    world.profile(ALICE)
    before = snapshot(world.table)
    got = world.call("PUT", "/v1/locations/hq/users/alice/directory-entry", DANA, body=body)
    assert got.status == 400 and got.content_type == "application/problem+json"
    assert snapshot(world.table) == before


# ---- P8: photo ---------------------------------------------------------------------------------------
def _upload(url: str, fields: dict[str, str], data: bytes, name: str = "me.png") -> requests.Response:
    return requests.post(url, data=fields, files={"file": (name, data)}, timeout=10)


def _objects(world: World) -> list[str]:
    return [o["Key"] for o in world.s3.list_objects_v2(Bucket=world.bucket).get("Contents", [])]


def test_photo_upload_url_then_the_profile_shows_the_photo(world: World) -> None:
    # rule P8: an upload URL is issued; once the file is there, the profile has its URL
    got = world.call("POST", "/v1/me/profile/photo", ALICE, body={"contentType": "image/png", "size": 1234})
    assert got.status == 200, got.body
    issued = got.json()
    assert set(issued) == {"uploadUrl", "fields", "expiresAt"}
    assert issued["expiresAt"] == "2026-11-20T10:10:00Z"
    assert issued["fields"]["Content-Type"] == "image/png"
    key = issued["fields"]["key"]
    assert key.startswith("photos/alice/") and key.endswith(".png")
    assert world.profile(ALICE).json()["photoUrl"] is None  # not uploaded yet
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 1226
    sent = _upload(issued["uploadUrl"], issued["fields"], png)
    assert sent.status_code == 204, sent.text
    url = world.profile(ALICE).json()["photoUrl"]
    assert url and key in url
    assert requests.get(url, timeout=10).content == png  # a working (presigned) URL of a private object
    item = world.table.get_item(Key={"pk": "USER#alice", "sk": "PROFILE"})["Item"]
    assert item["photoKey"] == key and "photoPendingKey" not in item


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"contentType": "image/gif", "size": 1000}, ["body", "contentType"]),
        ({"contentType": "image/png", "size": 6_000_000}, ["body", "size"]),
        ({"contentType": "image/png", "size": 5 * 1024 * 1024 + 1}, ["body", "size"]),
        ({"contentType": "image/png", "size": 0}, ["body", "size"]),
        ({"contentType": "image/png", "size": "100"}, ["body", "size"]),
        ({"contentType": "image/png"}, ["body", "size"]),
        ({"contentType": "image/svg+xml", "size": 10}, ["body", "contentType"]),
    ],
)
def test_bad_photo_requests_are_400_and_nothing_is_written(
    world: World, body: dict[str, Any], where: list[str]
) -> None:
    # rules P8, X5
    world.profile(ALICE)
    before = snapshot(world.table)
    got = world.call("POST", "/v1/me/profile/photo", ALICE, body=body)
    assert got.status == 400 and got.content_type == "application/problem+json"
    assert got.json()["errors"][0]["loc"][: len(where)] == where
    assert snapshot(world.table) == before


@pytest.mark.parametrize(
    ("change", "data", "status", "code"),
    [
        ({"Content-Type": "image/gif"}, b"GIF89a", 403, "AccessDenied"),
        ({}, b"0" * (5 * 1024 * 1024 + 1), 400, "EntityTooLarge"),
        ({}, b"", 400, "EntityTooSmall"),
        ({"key": "photos/bob/mine.png"}, b"0", 403, "AccessDenied"),
        ({"x-amz-signature": "0" * 64}, b"0", 403, "SignatureDoesNotMatch"),
    ],
    ids=["content-type", "too-large", "empty", "other-key", "forged"],
)
def test_s3_refuses_uploads_that_ignore_the_conditions(
    world: World, change: dict[str, str], data: bytes, status: int, code: str
) -> None:
    # rule P8: S3 itself enforces the type and the size of the presigned POST
    issued = world.call(
        "POST", "/v1/me/profile/photo", ALICE, body={"contentType": "image/png", "size": 100}
    ).json()
    refused = _upload(issued["uploadUrl"], {**issued["fields"], **change}, data)
    assert refused.status_code == status, refused.text
    assert f"<Code>{code}</Code>" in refused.text
    assert _objects(world) == []
    assert world.profile(ALICE).json()["photoUrl"] is None


def test_plain_moto_does_not_check_post_policies() -> None:
    # why local/s3_post_policy.py exists: moto stores what S3 would refuse. When this fails, moto
    # checks policies itself and the middleware can go.
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        s3 = _client("s3", f"http://127.0.0.1:{port}", config=Config(signature_version="s3v4"))
        s3.create_bucket(Bucket="plain-moto", CreateBucketConfiguration={"LocationConstraint": REGION})
        post = s3.generate_presigned_post(
            "plain-moto",
            "k.png",
            Fields={"Content-Type": "image/png"},
            Conditions=[{"Content-Type": "image/png"}],
        )
        sent = _upload(post["url"], {**post["fields"], "Content-Type": "image/gif"}, b"GIF89a")
        assert sent.status_code == 204
    finally:
        server.stop()


def test_photo_needs_a_token(world: World) -> None:
    # rule X1
    assert (
        world.call("POST", "/v1/me/profile/photo", None, body={"contentType": "image/png", "size": 1}).status
        == 401
    )


# ---- X5: random bodies never 5xx ---------------------------------------------------------------------
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=200),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=8,
)
_bodies = _json | st.fixed_dictionaries(
    {"status": st.sampled_from(["available", "busy", "do_not_disturb", "away", "offline", ""]) | st.text()},
    optional={"message": st.none() | st.text(max_size=160) | st.integers()},
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_bodies)
def test_random_presence_bodies_never_5xx(world: World, body: Any) -> None:
    # rule X5
    got = world.set(ALICE, body)
    assert got.status in (200, 400), got.body
    if got.status == 400:
        assert got.content_type == "application/problem+json"


# ---- the sample events (sam local invoke -e / calsync-local invoke) --------------------------------------
def test_sample_events_are_served(world: World) -> None:
    # events/presence-*.json: one per route, each answered without a server error
    from pathlib import Path

    module = importlib.import_module("functions.presence.app")
    samples = sorted((Path(__file__).resolve().parents[2] / "events").glob("presence-*.json"))
    assert len(samples) == 8
    for sample in samples:
        got = answer(module.lambda_handler(json.loads(sample.read_text()), world.context))
        assert got.status < 500, (sample.name, got.body)  # a route that exists (not the 404 "no route")
        assert (
            got.status < 400
            or got.json()["type"] != "https://calsync.dev/errors/not-found"
            or (
                "renew" in sample.name  # renewing a session never created: 404 "no live session"
            )
        ), (sample.name, got.body)
