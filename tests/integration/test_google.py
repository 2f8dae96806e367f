"""Google Calendar end to end against the local fake Google server (tests/support/fake_google.py),
which the REAL google-api-python-client and google-auth talk to on 127.0.0.1.

Connect (authorize + callback through functions/google_accounts, PKCE checked by the fake's token
endpoint), push (the fake POSTs notifications to the webhook function), the Google sync queue on
moto SQS into functions/google_sync, and the meetings API (functions/api) shows the result. Clock
frozen. Rules: C1, C3/C4 (through AccountRepository.connect), C10, S1, S4, S5, S6, S7, S8, U4, U7,
R4, X2, X3.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest

from calsync.domain.links import LinkSettings
from calsync.domain.models import UTC
from calsync.store.channels import ChannelStore
from calsync.wiring.accounts import accounts_deps
from calsync.wiring.webhook import webhook_deps
from calsync_google.client import Caller, ClientSecret, GoogleEndpoints
from calsync_google.provider import connect_deps as google_connect_deps
from calsync_google.renewal import renew_deps
from calsync_google.worker import sync_deps as google_sync_deps
from functions.google_accounts import app as accounts_app
from functions.google_renew import app as renew_app
from functions.google_sync import app as sync_app
from functions.google_webhook import app as webhook_app
from tests.support import apigw
from tests.support.apigw import LambdaContext, api_on, dynamodb_calls
from tests.support.fake_google import FakeGoogle, fake_google
from tests.support.poll import PollFanOut
from tests.support.tasks import TaskQueue

REGION = "eu-west-1"
NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
LINKS = LinkSettings.of(["meet.google.com", "meet.calsync.test"], [], [])
WEBHOOK = "https://calsync.test/v1/webhooks/google"
WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")


def ev(event_id: str, title: str, start: datetime, minutes: int = 30, **extra: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "summary": title,
        "start": {"dateTime": start.isoformat(), "timeZone": "Europe/Berlin"},
        "end": {"dateTime": (start + timedelta(minutes=minutes)).isoformat(), "timeZone": "Europe/Berlin"},
        "hangoutLink": f"https://meet.google.com/{event_id}",
        **extra,
    }


@dataclass
class World:
    fake: FakeGoogle
    table: Any
    sqs: Any
    queue_url: str
    queue_arn: str
    user: str
    email: str
    webhook_answers: list[int]
    polls: PollFanOut  # the PollQueue and PollShardFunction (the schedule's poll tasks)
    now: datetime = NOW  # the sync function's clock
    wired: ExitStack = field(default_factory=ExitStack)
    sync_options: dict[str, Any] = field(default_factory=dict)
    renewals: Any = None  # the GoogleRenewQueue (a TaskQueue consumed by GoogleRenewFunction)
    renew_now: datetime = NOW  # the renewal function's clock

    def wire_sync(self, **worker: Any) -> None:
        """The sync function on a fresh worker (no cached access token), its clock at ``now``."""
        self.wired.enter_context(sync_app.wiring.use(google_sync_deps(clock=lambda: self.now, **worker)))

    def drain(self, now: datetime = NOW) -> list[str]:
        self.polls.run(now)  # the schedule's poll tasks first: they queue the sync jobs
        self.now = now
        syncs = TaskQueue(self.sqs, sync_app, "google-sync", url=self.queue_url, batch=10)
        return [json.dumps(answer) for answer in syncs.drain(20)]

    def queued(self) -> int:
        attrs = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["All"])["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def listed(self, now: datetime = NOW) -> list[tuple[str | None, str]]:
        claims = apigw.claims(self.user, ["hq"])
        with api_on(self.table, now) as api:
            api.get("/v1/me/meetings", claims=claims)
            got = api.get("/v1/me/meetings", claims=claims)
        assert got.status == 200, got.body
        return [(m["title"], m["start"]) for m in got.json()["meetings"]]

    def connect(self) -> apigw.Answer:
        claims = apigw.claims(self.user, ["hq"])
        api = apigw.Api(accounts_app)
        got = api.call(
            "POST",
            "/v1/me/accounts/google/authorize",
            body={"locationId": "hq", "redirectUri": "https://app.calsync.test/oauth"},
            claims=claims,
        )
        assert got.status == 200, got.body
        code, state = self.fake.authorize(got.json()["authorizationUrl"], self.email)
        assert state == got.json()["state"]
        return api.get("/v1/oauth/google/callback", query={"code": code, "state": state}, claims=claims)


def post_webhook(headers: dict[str, str]) -> int:
    event = apigw.event("POST", "/v1/webhooks/google", headers={k.lower(): v for k, v in headers.items()})
    return int(webhook_app.lambda_handler(event, LambdaContext(function_name="google-webhook"))["statusCode"])


@pytest.fixture
def world(moto_table: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    answers: list[int] = []

    def deliver(address: str, headers: dict[str, str]) -> int:
        assert address == WEBHOOK
        status = post_webhook(headers)
        answers.append(status)
        return status

    with fake_google(page_size=2, deliver=deliver, clock=lambda: NOW) as fake:
        user, email = f"u{uuid.uuid4().hex[:8]}", f"person{uuid.uuid4().hex[:4]}@example.com"
        fake.add_calendar(email, email, "Work", "owner", primary=True)
        fake.add_calendar(email, "team@group.calendar.google.com", "Team", "reader")
        kms = boto3.client("kms", region_name=REGION)
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        sqs = boto3.client("sqs", region_name=REGION)
        url = sqs.create_queue(
            QueueName=f"google-{uuid.uuid4().hex[:6]}.fifo",
            Attributes={"FifoQueue": "true", "VisibilityTimeout": "360"},
        )["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        endpoints = GoogleEndpoints(fake.auth_uri, fake.token_uri, fake.api_endpoint)
        secret = ClientSecret(fake.client_id, fake.client_secret)
        monkeypatch.setenv("TABLE_NAME", moto_table.name)
        common = {"table": moto_table, "kms": kms, "key_id": key_id, "sqs": sqs, "queue_url": url}
        worker_deps = {
            **common,
            "client": lambda: secret,
            "webhook_url": WEBHOOK,
            "links": LINKS,
            "caller": lambda: Caller(sleep=lambda _s: None),
        }
        monkeypatch.setenv("GOOGLE_API_ENDPOINT", fake.api_endpoint)
        monkeypatch.setenv("GOOGLE_TOKEN_URI", fake.token_uri)
        from calsync_google.settings import get_google_settings

        get_google_settings.cache_clear()
        polls = PollFanOut(moto_table, sqs, {"google": url})
        renewals = TaskQueue(sqs, renew_app, "google-renew")
        world = World(fake, moto_table, sqs, url, arn, user, email, answers, polls, renewals=renewals)
        urls = {"poll_queue_url": polls.url, "renew_queue_url": renewals.url}
        renew = renew_deps(**worker_deps, **urls, clock=lambda: world.renew_now)
        world.wired.enter_context(renew_app.wiring.use(renew))
        world.sync_options = worker_deps
        world.wire_sync(**worker_deps)
        connect = google_connect_deps(**common, client=lambda: secret, endpoints=endpoints, clock=lambda: NOW)
        world.wired.enter_context(accounts_app.wiring.use(connect))
        try:
            with webhook_app.wiring.use(webhook_deps(moto_table, sqs=sqs, queue_url=url)):
                yield world
        finally:
            world.wired.close()
            polls.close()
            get_google_settings.cache_clear()


def connected(world: World) -> World:
    got = world.connect()
    assert got.status == 201, got.body
    assert got.json()["provider"] == "google"
    world.drain()
    assert world.fake.deliver() == [200]  # the new channel's `sync` message: nothing enqueued
    assert world.queued() == 0
    return world


def test_connect_push_sync_meetings(world: World) -> None:  # rules C1, S1, S7 (sealed), U4, U7
    world.fake.put_event(world.email, ev("a1", "Standup", NOW + timedelta(hours=1)))
    connected(world)
    assert world.listed() == [("Standup", "2026-11-20T09:00:00Z")]
    # the refresh token is only stored sealed (X3)
    assert not [i for i in apigw.snapshot(world.table) if "rt-" in json.dumps(i, default=str)]
    # S1: a change on Google -> push -> queue -> sync -> meetings API
    world.fake.put_event(world.email, ev("a2", "Review", NOW + timedelta(hours=2)))
    assert world.webhook_answers[-1] == 200 and world.queued() == 1
    world.fake.requests.clear()
    with dynamodb_calls(world.table) as calls:
        world.drain()
    # one list call with the sync token, nothing else (the channel exists)
    assert len(world.fake.requests) == 1 and world.fake.requests[0].startswith("GET /calendar/v3/calendars/")
    writes = sum(calls.count(op) for op in WRITES)
    # 10: the sync's own writes (lease, occurrences, index, cursor), the push job's queued marker
    # given up when the job starts (ADR 0013), the person's version bump (ETag, issue 15) and its
    # "look again" for the live schedule (DUE#SOON, docs/adr/0018)
    assert writes <= 10, " ".join(c for c in calls.calls if c in WRITES)
    assert world.listed() == [("Standup", "2026-11-20T09:00:00Z"), ("Review", "2026-11-20T10:00:00Z")]
    # U7: a cancelled event goes; U4: someone else's locked event is never listed
    world.fake.delete_event(world.email, "a1")
    world.fake.put_event(
        world.email,
        ev("a3", "Theirs", NOW + timedelta(hours=3), organizer={"email": "x@example.com"}, locked=True),
    )
    world.fake.put_event(world.email, ev("a4", "Out", NOW + timedelta(hours=4), eventType="outOfOffice"))
    world.drain()
    assert world.listed() == [("Review", "2026-11-20T10:00:00Z")]


def test_forged_notifications_change_nothing(world: World) -> None:  # rule X2
    connected(world)
    channel = world.fake.live_channels()[0]
    before = apigw.snapshot(world.table)
    base = {
        "X-Goog-Channel-ID": channel.channel_id,
        "X-Goog-Resource-ID": channel.resource_id,
        "X-Goog-Resource-State": "exists",
        "X-Goog-Message-Number": "7",
    }
    assert post_webhook({**base, "X-Goog-Channel-Token": "guess"}) == 401
    assert post_webhook({**base, "X-Goog-Channel-ID": "nope"}) == 200  # unknown: dropped
    assert world.queued() == 0
    assert apigw.snapshot(world.table) == before
    assert post_webhook({**base, "X-Goog-Channel-Token": channel.token}) == 200
    assert world.queued() == 1


def test_410_resyncs_without_loss_or_duplicates(world: World) -> None:  # rules S1, S6
    for i in range(5):
        world.fake.put_event(world.email, ev(f"e{i}", f"M{i}", NOW + timedelta(hours=1 + i)), deliver=False)
    connected(world)
    assert len(world.listed()) == 5
    world.fake.expire_sync_tokens(world.email)
    world.fake.put_event(world.email, ev("e9", "Late", NOW + timedelta(hours=9)), deliver=False)
    world.fake.delete_event(world.email, "e0")
    world.fake.requests.clear()
    world.fake.deliver()
    world.drain()
    # two notifications while the job is queued: one job (issue 13 point 5, coalesced); its token
    # answered 410, then a full listing in pages of 2 (5 events: 3 pages)
    assert len([r for r in world.fake.requests if r.endswith("/events")]) == 1 + 3
    titles = sorted(t for t, _ in world.listed())
    assert titles == ["Late", "M1", "M2", "M3", "M4"]
    store = {i["sk"] for i in apigw.snapshot(world.table) if str(i["sk"]).startswith("RES#")}
    assert len(store) == 5  # e1..e4 and e9: nothing lost, nothing twice


def test_throttling_is_retried_and_revoked_grant_marks_reauth(world: World) -> None:  # S8, S7
    connected(world)
    world.fake.throttle(10, 403, "userRateLimitExceeded")
    world.fake.put_event(world.email, ev("t1", "Later", NOW + timedelta(hours=5)))
    world.drain()
    assert world.queued() == 1  # failed with a delay; nothing lost
    world.fake._throttles.clear()
    world.fake.revoke(world.email)
    world.wire_sync(**world.sync_options)  # a fresh worker: no cached access token
    world.sqs.purge_queue(QueueUrl=world.queue_url)
    world.fake.put_event(world.email, ev("t2", "Other", NOW + timedelta(hours=6)))
    world.drain()
    claims = apigw.claims(world.user, ["hq"])
    from functions.accounts import app as caldav_accounts

    deps = accounts_deps(
        world.table, enqueue=lambda job: None, kms=boto3.client("kms", region_name=REGION), key_id="k"
    )
    with caldav_accounts.wiring.use(deps):
        got = apigw.Api(caldav_accounts).get("/v1/me/accounts", claims=claims)
    assert got.json()["accounts"][0]["status"] == "reauth_required"


def test_channel_near_expiry_is_renewed(world: World) -> None:  # rule S4
    connected(world)
    [old] = world.fake.live_channels()
    store = ChannelStore(world.table)
    world.renew_now = NOW + timedelta(days=6)
    out = renew_app.lambda_handler({}, LambdaContext(function_name="google-renew"))
    assert out["renewTasks"] == 4  # one per shard of the channel-expiry index
    # the GoogleRenewQueue's tasks: one of them opens the new channel
    assert sum(world.renewals.run(measure=lambda: len(world.fake.channels))) == 1
    # the new channel exists before the old one is stopped: one live channel, never none
    [new] = world.fake.live_channels()
    assert new.channel_id != old.channel_id
    assert world.fake.deliver() == [200]  # the new channel's sync
    assert store.get(old.channel_id) is None and store.get(new.channel_id) is not None
    # Google keeps sending briefly after a stop: dropped with 200
    assert post_webhook({"X-Goog-Channel-ID": old.channel_id, "X-Goog-Channel-Token": old.token}) == 200


def test_pkce_and_state_are_checked(world: World) -> None:  # rules C1, X5
    claims = apigw.claims(world.user, ["hq"])
    api = apigw.Api(accounts_app)
    got = api.call(
        "POST",
        "/v1/me/accounts/google/authorize",
        body={"locationId": "hq", "redirectUri": "https://app.calsync.test/oauth"},
        claims=claims,
    )
    url = got.json()["authorizationUrl"]
    q = parse_qs(urlsplit(url).query)
    assert q["code_challenge_method"] == ["S256"] and q["access_type"] == ["offline"]
    code, state = world.fake.authorize(url, world.email)
    other = apigw.claims("someone-else", ["hq"])
    assert (
        api.get("/v1/oauth/google/callback", query={"code": code, "state": state}, claims=other).status == 400
    )
    assert (
        api.get("/v1/oauth/google/callback", query={"code": code, "state": state}, claims=claims).status
        == 201
    )
    # single use
    assert (
        api.get("/v1/oauth/google/callback", query={"code": code, "state": state}, claims=claims).status
        == 400
    )


def test_disconnect_stops_the_channels_at_google(world: World) -> None:  # rule C9
    from calsync.crypto import CredentialBox
    from calsync.domain.models import Provider
    from calsync_google.worker import channel_stopper, service_factory
    from functions.accounts import app as caldav_accounts

    connected(world)
    [channel] = world.fake.live_channels()
    o = world.sync_options  # the table, KMS key and client secret the functions were wired with
    box = CredentialBox(o["kms"], o["key_id"])
    endpoints = GoogleEndpoints(world.fake.auth_uri, world.fake.token_uri, world.fake.api_endpoint)
    services = service_factory(o["client"], endpoints)
    stop = {Provider.GOOGLE: channel_stopper(world.table, box, services)}
    deps = accounts_deps(
        world.table, enqueue=lambda job: None, kms=o["kms"], key_id=o["key_id"], stop_push=stop
    )
    claims = apigw.claims(world.user, ["hq"])
    with caldav_accounts.wiring.use(deps):
        api = apigw.Api(caldav_accounts)
        [account] = api.get("/v1/me/accounts", claims=claims).json()["accounts"]
        got = api.call("DELETE", f"/v1/me/accounts/{account['id']}", claims=claims)
    assert got.status == 204, got.body
    assert world.fake.live_channels() == []  # stopped at Google (channels.stop)
    assert ChannelStore(world.table).get(channel.channel_id) is None
    # nothing of the account is left: no channel, expiry index, poll entry or sealed token
    left = [
        i for i in apigw.snapshot(world.table) if "CHAN" in json.dumps(i) or "POLL#google" in str(i["pk"])
    ]
    assert left == [], left
    # Google keeps sending briefly after a stop: dropped with 200, nothing enqueued
    headers = {"X-Goog-Channel-ID": channel.channel_id, "X-Goog-Channel-Token": channel.token}
    assert post_webhook({**headers, "X-Goog-Resource-ID": channel.resource_id}) == 200
    assert world.queued() == 0


def test_a_room_on_a_calendar_nobody_uses_opens_and_stops_its_channel(world: World) -> None:  # rule R8
    # registering a room on the Team calendar (connected, used by nobody) syncs it and opens its push
    # channel as for a person's calendar; deleting the room stops that channel at Google
    from calsync.domain.models import Provider
    from calsync.store import keys
    from calsync.store.sync_state import SyncStateStore
    from calsync.sync.jobs import SyncJob, enqueue_sync

    world.fake.put_event("team@group.calendar.google.com", ev("t1", "Team offsite", NOW + timedelta(hours=2)))
    connected(world)
    [work_channel] = world.fake.live_channels()
    claims = apigw.claims(world.user, ["hq"])
    from calsync.store.accounts import AccountRepository

    accounts = AccountRepository(world.table)
    [account] = accounts.list_accounts(world.user)
    [listing] = [c for c in accounts.list_calendars_of_account(account.account_id) if c.name == "Team"]
    team = {"id": listing.calendar_id, "accountId": account.account_id}

    def to_queue(job: SyncJob) -> None:
        enqueue_sync(world.sqs, world.queue_url, job)

    admin = apigw.claims("hank", ["hq"], admin_of=["hq"])
    room = {"name": "Team room", "timeZone": "UTC", "accountId": team["accountId"], "calendarId": team["id"]}
    with api_on(world.table, NOW, {Provider.GOOGLE: to_queue}) as api:
        api.get("/v1/me/profile", claims=claims)  # the owner is a member of hq
        consent = f"/v1/me/calendars/{team['id']}/room-consent"
        assert api.put(consent, claims=claims).status == 204  # R9: and marks it as a room calendar
        assert api.put("/v1/locations/hq/rooms/team", body=room, claims=admin).status == 201
        world.drain()
        assert world.fake.deliver() == [200]  # the new channel's `sync` message
        shown = api.get("/v1/rooms/team/meetings", claims=admin).json()["meetings"]
        assert [m["title"] for m in shown] == ["Team offsite"]
        assert len(world.fake.live_channels("team@group.calendar.google.com")) == 1

        assert api.delete("/v1/locations/hq/rooms/team", claims=admin).status == 204
        world.drain()
    assert world.fake.live_channels() == [work_channel]  # the Team channel was stopped at Google
    assert ChannelStore(world.table).of_calendar(team["id"]) == []
    assert SyncStateStore(world.table).get(team["id"]).cursor is None  # sync state forgotten
    poll = [
        e.calendar_id
        for s in range(keys.POLL_SHARDS)
        for e in SyncStateStore(world.table).list_poll("google", s)
    ]
    assert team["id"] not in poll


# ---- R8: a calendar created (or shared) at Google after the connect becomes selectable ------------
@dataclass
class AccountsApi:
    api: apigw.Api
    claims: dict[str, Any]

    def calendars(self) -> dict[str, dict[str, Any]]:
        got = self.api.get("/v1/me/calendars", claims=self.claims)
        assert got.status == 200, got.body
        return {c["name"]: c for c in got.json()["calendars"]}


@pytest.fixture
def accounts_api(world: World) -> Iterator[AccountsApi]:
    import importlib

    from calsync.config import get_settings

    get_settings.cache_clear()
    module = importlib.import_module("functions.accounts.app")
    kms = boto3.client("kms", region_name=REGION)
    deps = accounts_deps(
        world.table,
        kms=kms,
        key_id=kms.create_key()["KeyMetadata"]["KeyId"],
        sqs=world.sqs,
        queue_url=world.queue_url,
        queue_urls={"google": world.queue_url},
        stop_push={},
    )
    try:
        with module.wiring.use(deps):
            yield AccountsApi(apigw.Api(module), apigw.claims(world.user, ["hq"]))
    finally:
        get_settings.cache_clear()


def run_schedule(now: datetime) -> dict[str, Any]:
    with renew_app.wiring.use(replace(renew_app.wiring(), clock=lambda: now)):
        out: dict[str, Any] = renew_app.lambda_handler({}, LambdaContext(function_name="google-renew"))
    return out


LATER = "later@group.calendar.google.com"


def test_a_calendar_created_later_at_google_becomes_selectable(
    world: World, accounts_api: AccountsApi
) -> None:  # rule R8 (issue 12 point 1)
    connected(world)
    assert set(accounts_api.calendars()) == {"Work", "Team"}
    # made at Google after the connect (two more pages of calendarList at the fake's page size 2)
    world.fake.add_calendar(world.email, LATER, "Later", "writer")
    world.fake.add_calendar(world.email, "x@group.calendar.google.com", "Extra", "reader")
    world.fake.put_event(LATER, ev("l1", "Planning", NOW + timedelta(hours=3)), deliver=False)
    assert set(accounts_api.calendars()) == {"Work", "Team"}  # not yet: nothing asked Google
    world.fake.requests.clear()
    out = run_schedule(NOW + timedelta(hours=1))
    assert out["listed"] == 1 and out["calendarsAdded"] == 2
    # one calendarList listing of the account (every page), not one per calendar
    listings = [r for r in world.fake.requests if r.endswith("/calendarList")]
    assert len(listings) == 2  # 4 calendars at page size 2
    shown = accounts_api.calendars()
    assert set(shown) == {"Work", "Team", "Later", "Extra"}
    assert shown["Later"]["accessRole"] == "writer"
    # a second run adds nothing
    assert run_schedule(NOW + timedelta(hours=2))["calendarsAdded"] == 0
    # it can be configured, and is then synced
    world.drain(NOW + timedelta(hours=2))
    body = {"primaryCalendarId": shown["Work"]["id"], "conflictCalendarIds": [shown["Later"]["id"]]}
    got = accounts_api.api.put(
        "/v1/locations/hq/users/" + world.user + "/calendar-config", body=body, claims=accounts_api.claims
    )
    assert got.status == 200, got.body
    world.drain()
    assert ("Planning", "2026-11-20T11:00:00Z") in world.listed()


def test_the_schedule_updates_known_calendars_and_keeps_configured_ones(
    world: World, accounts_api: AccountsApi
) -> None:  # rule R8: names and roles follow Google; a configured calendar is never unlisted here
    connected(world)
    before = accounts_api.calendars()
    world.fake.add_calendar(world.email, "team@group.calendar.google.com", "Team (renamed)", "writer")
    with world.fake._lock:
        del world.fake.calendars[world.email][world.email]  # the configured primary goes at Google
    run_schedule(NOW + timedelta(hours=1))
    shown = accounts_api.calendars()
    assert set(shown) == {"Work", "Team (renamed)"}
    assert shown["Team (renamed)"]["id"] == before["Team"]["id"]
    assert shown["Team (renamed)"]["accessRole"] == "writer"
    assert shown["Work"]["id"] == before["Work"]["id"]  # left to the sync (CalendarGone)


def test_a_failing_calendar_list_keeps_the_listing_and_the_schedule_goes_on(
    world: World, accounts_api: AccountsApi, caplog: pytest.LogCaptureFixture
) -> None:  # rules R8, S13: one visible WARNING, the rest of the schedule runs
    connected(world)
    before = accounts_api.calendars()
    world.fake.add_calendar(world.email, LATER, "Later", "writer")
    world.fake.throttle(1, status=403, reason="forbidden")
    caplog.set_level("WARNING")
    out = run_schedule(NOW + timedelta(hours=1))
    assert out["listed"] == 0 and out["listFailed"] == 1 and out["pollTasksFailed"] == 0
    assert sum(world.polls.run(NOW + timedelta(hours=1))) >= 1  # the poll goes on (fanned out)
    assert accounts_api.calendars() == before
    assert any("calendar list not refreshed" in r.getMessage() for r in caplog.records)


def test_a_busy_store_fails_one_account_not_the_schedule(
    world: World, accounts_api: AccountsApi, monkeypatch: pytest.MonkeyPatch
) -> None:  # rules R8, S13: the channels are renewed and the calendars polled all the same
    from calsync.domain.errors import StoreUnavailable
    from calsync.store.accounts import AccountRepository

    connected(world)
    world.fake.add_calendar(world.email, LATER, "Later", "writer")

    def busy(*_: Any) -> None:
        raise StoreUnavailable("throttled")

    monkeypatch.setattr(AccountRepository, "put_calendar_listing", busy)
    out = run_schedule(NOW + timedelta(hours=1))
    assert out["listFailed"] == 1 and out["pollTasksFailed"] == 0
    assert sum(world.polls.run(NOW + timedelta(hours=1))) == 1  # the calendar is polled all the same
    monkeypatch.undo()
    assert run_schedule(NOW + timedelta(hours=2))["calendarsAdded"] == 1  # the next run adds it


def test_the_listing_refresh_respects_the_time_budget(world: World, accounts_api: AccountsApi) -> None:
    # rules R8, S12: with less than LISTING_MARGIN_MS left no listing is started (next run does it)
    from calsync_google.worker import LISTING_MARGIN_MS

    @dataclass
    class Late(LambdaContext):
        def get_remaining_time_in_millis(self) -> int:
            return LISTING_MARGIN_MS - 1

    connected(world)
    world.fake.add_calendar(world.email, LATER, "Later", "writer")
    world.fake.requests.clear()
    world.renew_now = NOW + timedelta(hours=1)
    out = renew_app.lambda_handler({}, Late(function_name="google-renew"))
    assert out["listDeferred"] == 1 and out["listed"] == 0 and out["pollTasksFailed"] == 0
    assert sum(world.polls.run(NOW + timedelta(hours=1))) == 1
    assert not [r for r in world.fake.requests if r.endswith("/calendarList")]
    assert "Later" not in accounts_api.calendars()
    assert run_schedule(NOW + timedelta(hours=2))["calendarsAdded"] == 1
    assert "Later" in accounts_api.calendars()


def test_a_replayed_notification_is_synced_once(world: World) -> None:  # issue 13 point 5, S1, X2
    # a captured genuine notification replayed 20 times gave 20 events.list calls; its message
    # number is taken once per channel, so the copies are dropped (200, Google must not retry)
    connected(world)
    world.fake.put_event(world.email, ev("r1", "Replayed", NOW + timedelta(hours=1)), deliver=False)
    [(_address, headers)] = world.fake.outbox
    world.fake.outbox.clear()
    world.fake.requests.clear()
    assert [post_webhook(headers) for _ in range(20)] == [200] * 20
    assert world.queued() == 1
    world.drain()
    assert len([r for r in world.fake.requests if r.endswith("/events")]) == 1
    assert ("Replayed", "2026-11-20T09:00:00Z") in world.listed()
    assert post_webhook(headers) == 200 and world.queued() == 0  # after the sync too


def test_a_burst_while_the_job_is_queued_is_one_sync_and_a_change_during_it_another(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:  # issue 13 point 5, S6
    connected(world)
    for i in range(5):  # five changes, five notifications (distinct numbers): one queued job
        world.fake.put_event(world.email, ev(f"b{i}", f"B{i}", NOW + timedelta(hours=1 + i)))
    assert world.webhook_answers[-5:] == [200] * 5
    assert world.queued() == 1
    # a change made while that job's sync runs (after it listed) must lead to another sync
    real_list, late = world.fake._list, []

    def listing(cal: Any, query: dict[str, str]) -> Any:
        answer = real_list(cal, query)
        if not late:
            late.append(world.fake.put_event(world.email, ev("late", "Late", NOW + timedelta(hours=8))))
        return answer

    monkeypatch.setattr(world.fake, "_list", listing)
    world.drain()
    assert late and world.webhook_answers[-1] == 200
    titles = sorted(t or "" for t, _ in world.listed())
    assert titles == ["B0", "B1", "B2", "B3", "B4", "Late"]
    assert world.queued() == 0
