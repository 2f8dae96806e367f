"""CalDAV sync end to end against a REAL Radicale server started by the tests.

An account is connected through the repositories (sealed credentials on moto's KMS), its calendar
configured as the person's primary; jobs go through a real SQS FIFO queue (moto) into the sync
function's handler (``functions/caldav_sync``), the poll function enqueues them
(``functions/caldav_poll``), and the meetings API (``functions/api``) shows the result. The clock
is frozen (``now`` passed to every handler). Events are written to Radicale over HTTP (PUT/DELETE)
the way a calendar app would.

Rules: S3 (ctag, sync-collection, ETag comparison), S5, S6, S7, S8, S10, C10, U5, U7, X5.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from calsync.config import get_settings
from calsync.crypto import CredentialBox, seal_login
from calsync.domain.links import LinkSettings
from calsync.domain.models import UTC, Provider
from calsync.store import keys
from calsync.store.accounts import (
    Account,
    AccountRepository,
    CalendarListing,
    account_id_for,
    calendar_id_for,
)
from calsync.store.hosts import HostBudgets
from calsync.store.items import Calendar
from calsync.store.keys import poll_shard
from calsync.store.repository import Repository
from calsync.store.sync_state import SyncStateStore
from calsync.sync.jobs import SyncJob, enqueue_sync
from calsync.sync.poll import POLL_EVERY, RECONCILE_SLOTS, reconcile_slot
from calsync.sync.queue_worker import backoff
from calsync.sync.tasks import run_number
from calsync.wiring.accounts import accounts_deps
from calsync.wiring.tasks import task_deps
from calsync_caldav.client import CalDAVClient
from calsync_caldav.source import CalDAVSource, dump_cursor, load_cursor
from calsync_caldav.worker import RetryLater, sync_deps
from functions.caldav_poll import app as poll_app
from functions.caldav_sync import app as sync_app
from tests.support import apigw
from tests.support.accounts import AccountsApi
from tests.support.apigw import LambdaContext, api_on, dynamodb_calls
from tests.support.caldav_server import (
    FaultyProxy,
    RadicaleServer,
    XandikosServer,
    ics,
    override,
    radicale,
)
from tests.support.poll import PollFanOut, queue_depth
from tests.support.tasks import TaskQueue
from tests.support.template import table_create_kwargs

REGION = "eu-west-1"
NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)  # a Friday; the window is Nov 20 00:00 .. Nov 23 00:00 UTC
LINKS = LinkSettings.of(["meet.calsync.test"], ["classic.calsync.test"], [])
WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RadicaleServer]:
    with radicale(tmp_path_factory.mktemp("radicale")) as srv:
        yield srv


@dataclass
class World:
    table: Any
    sqs: Any
    kms: Any
    key_id: str
    queue_url: str
    queue_arn: str
    server: RadicaleServer | XandikosServer
    user: str  # the person (JWT sub) and the CalDAV user name
    password: str
    calendar_url: str  # on the server itself
    account_id: str
    calendar_id: str
    requests: list[str] = field(default_factory=list)  # "METHOD status" of every CalDAV request
    polls: PollFanOut | None = None  # the PollQueue and PollShardFunction
    dlq_url: str = ""
    wired: ExitStack = field(default_factory=ExitStack)  # the functions' deps, handed over

    def close(self) -> None:
        """Puts back the deps the functions had."""
        self.wired.close()
        if self.polls is not None:
            self.polls.close()

    @property
    def auth(self) -> tuple[str, str]:
        return self.user, self.password

    def put(self, name: str, text: str) -> None:
        self.server.put(self.calendar_url, name, text, self.auth)

    def delete(self, name: str) -> None:
        self.server.delete(self.calendar_url, name, self.auth)

    def job(self, reason: str = "connect", full: bool = False) -> SyncJob:
        return SyncJob(
            calendar_id=self.calendar_id,
            user_id=self.user,
            account_id=self.account_id,
            reason=reason,  # type: ignore[arg-type]
            full=full,
        )

    def enqueue(self, reason: str = "connect") -> None:
        enqueue_sync(self.sqs, self.queue_url, self.job(reason))

    def drain(self, now: datetime) -> list[dict[str, Any]]:
        """Run the sync function on what the queue holds until it is empty (or only delayed)."""
        with sync_app.wiring.use(replace(sync_app.wiring(), clock=lambda: now)):
            return TaskQueue(self.sqs, sync_app, "caldav-sync", url=self.queue_url, batch=10).drain(20)

    def changed_at(self) -> datetime | None:
        """The poll entry's ``changedAt`` (adaptive intervals)."""
        state = SyncStateStore(self.table)
        [entry] = [e for e in state.list_poll("caldav", poll_shard(self.calendar_id))]
        return entry.changed_at

    def poll(self, now: datetime) -> int:
        """The schedule (it dispatches one task per shard), then PollShardFunction on each task:
        the number of sync jobs queued."""
        assert self.polls is not None
        before = queue_depth(self.sqs, self.queue_url)
        event = json.loads((Path(__file__).parents[2] / "events" / "caldav_poll-schedule.json").read_text())
        with poll_app.wiring.use(replace(poll_app.wiring(), clock=lambda: now)):
            result: dict[str, Any] = poll_app.lambda_handler(
                event, LambdaContext(function_name="caldav-poll")
            )
        assert result == {"dispatched": 16, "failed": 0}
        self.polls.run(now)
        return queue_depth(self.sqs, self.queue_url) - before

    def meetings(self, now: datetime) -> dict[str, Any]:
        claims = apigw.claims(self.user, ["hq"])
        with api_on(self.table, now) as api:
            api.get("/v1/me/meetings", claims=claims)  # the first call remembers the locations
            got = api.get("/v1/me/meetings", query={"explain": "true"}, claims=claims)
        assert got.status == 200, got.body
        body: dict[str, Any] = got.json()
        return body

    def listed(self, now: datetime) -> list[tuple[str, str]]:
        return [(m["title"], m["start"]) for m in self.meetings(now)["meetings"]]


def make_world(
    table: Any,
    server: RadicaleServer | XandikosServer,
    *,
    base_url: str | None = None,
    client_hook: Callable[[CalDAVClient], Any] | None = None,
) -> World:
    kms = boto3.client("kms", region_name=REGION)
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    sqs = boto3.client("sqs", region_name=REGION)
    dlq_url = sqs.create_queue(
        QueueName=f"dlq-{uuid.uuid4().hex[:6]}.fifo", Attributes={"FifoQueue": "true"}
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_url = sqs.create_queue(
        QueueName=f"sync-{uuid.uuid4().hex[:6]}.fifo",
        Attributes={
            "FifoQueue": "true",
            "ContentBasedDeduplication": "false",
            "VisibilityTimeout": "360",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]

    user, password = f"u{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    server.add_user(user, password)
    calendar_url = server.make_calendar(user, password)
    base = base_url or server.base_url
    href = base + calendar_url.removeprefix(server.base_url)
    account_id = account_id_for(user, Provider.CALDAV, f"{user}@127.0.0.1")
    box = CredentialBox(kms, key_id)
    accounts = AccountRepository(table)
    accounts.connect(
        Account(
            account_id=account_id,
            user_id=user,
            provider=Provider.CALDAV,
            external_id=f"{user}@127.0.0.1",
            status="active",
            server_url=base,
            own_addresses=[f"{user}@example.com"],
            credentials=seal_login(box, user, password, {"userId": user, "accountId": account_id}),
        ),
        "hq",
    )
    calendar_id = calendar_id_for(account_id, href)
    accounts.put_calendar_listing(
        CalendarListing(
            calendar_id=calendar_id,
            account_id=account_id,
            provider=Provider.CALDAV,
            name="calendar",
            href=href,
        )
    )
    repo = Repository(table)
    repo.put_calendar(
        Calendar(calendar_id=calendar_id, account_id=account_id, owner_user_id=user, provider=Provider.CALDAV)
    )
    repo.subscribe(calendar_id, f"USER#{user}", "primary")

    world = World(
        table,
        sqs,
        kms,
        key_id,
        queue_url,
        queue_arn,
        server,
        user,
        password,
        calendar_url,
        account_id,
        calendar_id,
    )

    world.dlq_url = dlq_url

    def client_factory(username: str, pw: str, base_url: str) -> CalDAVClient:
        client = CalDAVClient(
            username,
            pw,
            base_url=base_url,
            allow_local=True,  # X6 on every connection; the test servers are on loopback
            on_response=lambda r: world.requests.append(f"{r.request.method} {r.status_code}"),
            clock=lambda: sync_app.wiring().clock(),  # the frozen clock of the sync (Retry-After dates)
        )
        if client_hook is not None:
            client_hook(client)
        return client

    deps = sync_deps(
        table,
        kms=kms,
        key_id=key_id,
        sqs=sqs,
        queue_url=queue_url,
        client_factory=client_factory,
        links=LINKS,
    )
    world.wired.enter_context(sync_app.wiring.use(deps))
    world.polls = PollFanOut(table, sqs, {"caldav": queue_url})
    world.wired.enter_context(poll_app.wiring.use(task_deps(world.polls.url, sqs=sqs, reads_table=False)))
    return world


@pytest.fixture
def world(moto_table: Any, server: RadicaleServer) -> Iterator[World]:
    w = make_world(moto_table, server)
    yield w
    w.close()


def at(hours: float, days: int = 0) -> datetime:
    return NOW + timedelta(days=days, hours=hours)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def starts(listed: list[tuple[str, str]], title: str) -> list[str]:
    return [s for t, s in listed if t == title]


WEEKLY_LINK = "LOCATION:https://meet.calsync.test/daily"


# ---------------------------------------------------------------------------------------------- tests


def test_connect_first_sync_then_add_move_cancel_delete(world: World) -> None:
    # rules S3, C10, U5, U7: after each change on the server and a poll, the API shows exactly it
    world.put("standup", ics("standup", "Standup", at(2), at(2.5)))
    world.put("daily", ics("daily", "Daily", at(1), at(1.25), rrule="FREQ=DAILY;COUNT=10", extra=WEEKLY_LINK))
    world.put("series-nolink", ics("nolink", "No link series", at(3), at(4), rrule="FREQ=DAILY;COUNT=3"))
    world.enqueue("connect")
    answers = world.drain(NOW)
    assert answers and all(a["batchItemFailures"] == [] for a in answers)
    listed = world.listed(NOW)
    assert starts(listed, "Daily") == [iso(at(1)), iso(at(1, 1)), iso(at(1, 2))]
    assert starts(listed, "Standup") == [iso(at(2))]
    excluded = {(e["title"], tuple(e["rules"])) for e in world.meetings(NOW)["excluded"]}
    assert ("No link series", ("U5",)) in excluded  # recurring without a meeting link

    # add
    world.put("review", ics("review", "Review", at(5), at(6)))
    t1 = NOW + timedelta(minutes=5)
    assert world.changed_at() == NOW  # registered by the connect job: active
    assert world.poll(t1) == 1
    world.drain(t1)
    assert starts(world.listed(t1), "Review") == [iso(at(5))]
    assert world.changed_at() == t1  # the poll's sync changed the calendar: polled every run

    # move
    world.put("standup", ics("standup", "Standup", at(7), at(7.5)))
    t2 = NOW + timedelta(minutes=10)
    world.poll(t2)
    world.drain(t2)
    assert starts(world.listed(t2), "Standup") == [iso(at(7))]

    # cancel one occurrence of the series (override with STATUS:CANCELLED) and move another
    overrides = override("daily", at(1, 1), at(1, 1), at(1.25, 1), title="Daily", extra="STATUS:CANCELLED")
    overrides += "\r\n" + override(
        "daily", at(1, 2), at(4, 2), at(4.5, 2), title="Daily moved", extra=WEEKLY_LINK
    )
    world.put(
        "daily",
        ics(
            "daily",
            "Daily",
            at(1),
            at(1.25),
            rrule="FREQ=DAILY;COUNT=10",
            extra=WEEKLY_LINK,
            overrides=overrides,
        ),
    )
    t3 = NOW + timedelta(minutes=15)
    world.poll(t3)
    world.drain(t3)
    body = world.meetings(t3)
    listed = [(m["title"], m["start"]) for m in body["meetings"]]
    assert starts(listed, "Daily") == [iso(at(1))]
    assert starts(listed, "Daily moved") == [iso(at(4, 2))]
    assert any(e["title"] == "Daily" and "U7" in e["rules"] for e in body["excluded"])

    # delete
    world.delete("review")
    t4 = NOW + timedelta(minutes=20)
    world.poll(t4)
    world.drain(t4)
    assert starts(world.listed(t4), "Review") == []
    assert sorted({t for t, _ in world.listed(t4)}) == ["Daily", "Daily moved", "Standup"]


def test_unchanged_ctag_costs_one_request_and_no_write(world: World) -> None:
    # rule S3: a calendar whose ctag did not change costs one CalDAV request and no DynamoDB write
    for i in range(5):
        world.put(f"e{i}", ics(f"e{i}", f"Event {i}", at(i + 1), at(i + 2)))
    world.enqueue()
    world.drain(NOW)
    t1 = NOW + timedelta(minutes=5)
    if reconcile_slot(world.calendar_id) == run_number(t1, POLL_EVERY) % RECONCILE_SLOTS:
        t1 += timedelta(minutes=5)  # a plain poll, not this calendar's reconcile slot (S5)
    assert world.poll(t1) == 1  # a plain poll job (not in its reconcile slot)
    world.requests.clear()
    with dynamodb_calls(world.table) as calls:
        answers = world.drain(t1)
    assert answers and answers[0]["batchItemFailures"] == []
    assert world.requests == ["PROPFIND 207"]
    assert [c for c in calls.calls if c in WRITES] == []
    assert world.changed_at() == NOW  # nothing changed: the calendar's activity stays as it was


def test_rejected_sync_token_full_resync_loses_nothing(world: World) -> None:
    # rule S3: a refused token (403 valid-sync-token) -> full comparison by ETag, nothing lost
    for i in range(4):
        world.put(f"e{i}", ics(f"e{i}", f"Event {i}", at(i + 1), at(i + 2)))
    world.enqueue()
    world.drain(NOW)
    state = SyncStateStore(world.table)
    stored = load_cursor(state.get(world.calendar_id).cursor)
    assert stored is not None and stored[1]
    world.table.update_item(
        Key={"pk": f"CAL#{world.calendar_id}", "sk": "SYNC"},
        UpdateExpression="SET #c = :c",
        ExpressionAttributeNames={"#c": "cursor"},
        ExpressionAttributeValues={":c": dump_cursor("stale-ctag", "http://radicale.org/ns/sync/forgotten")},
    )
    world.put("e4", ics("e4", "Event 4", at(6), at(7)))
    world.delete("e0")
    t1 = NOW + timedelta(minutes=5)
    world.requests.clear()
    world.enqueue("poll")
    world.drain(t1)
    assert "REPORT 403" in world.requests  # the refused token
    titles = sorted(t for t, _ in world.listed(t1))
    assert titles == ["Event 1", "Event 2", "Event 3", "Event 4"]
    new_cursor = load_cursor(state.get(world.calendar_id).cursor)
    assert new_cursor is not None and new_cursor[1] != "http://radicale.org/ns/sync/forgotten"
    # only the new event was fetched: one multiget with one href after the calendar-query
    assert world.requests.count("REPORT 207") == 2


def test_meeting_planned_beyond_the_horizon_appears_once_the_horizon_reaches_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # rules S10, S5: an event 62 days ahead is outside the stored horizon today; its etag never
    # changes, yet the reconcile after the horizon moved reads it again and stores it. A long-past
    # event is not read again (it can never come back).
    world.put("far", ics("far", "Far ahead", at(10, days=62), at(11, days=62)))
    world.put("past", ics("past", "Long ago", at(10, days=-400), at(11, days=-400)))
    worker = sync_app.wiring().worker
    assert worker.run(world.job("connect"), NOW).status == "synced"
    assert [t for t, _ in world.listed(NOW)] == []
    later = NOW + timedelta(days=61)
    fetched: list[str] = []
    real = CalDAVClient.multiget

    def multiget(self: CalDAVClient, url: str, keys: Any) -> Any:
        fetched.extend(k.rsplit("/", 1)[-1] for k in keys)
        return real(self, url, keys)

    monkeypatch.setattr(CalDAVClient, "multiget", multiget)
    assert worker.run(world.job("reconcile"), later).status == "synced"
    assert [t for t, _ in world.listed(later)] == ["Far ahead"]
    assert fetched == ["far.ics"]  # "past" is skipped by its etag: it can never come back


@pytest.fixture
def ddb_local_world(ddb_local_endpoint: str, server: RadicaleServer) -> Iterator[World]:
    """As ``world``, with the table on Amazon DynamoDB Local (SQS and KMS stay on moto): moto's
    conditional writes and transactions are not atomic across threads, so a test that runs syncs
    concurrently is only meaningful on DynamoDB Local."""
    from moto import mock_aws

    with mock_aws():  # moto answers SQS and KMS; requests to DynamoDB Local's endpoint pass through
        resource = boto3.resource("dynamodb", region_name=REGION, endpoint_url=ddb_local_endpoint)
        table = resource.create_table(**table_create_kwargs(f"calsync-{uuid.uuid4().hex[:8]}"))
        table.wait_until_exists()
        w = make_world(table, server)
        try:
            yield w
        finally:
            w.close()
            table.delete()


def test_same_calendar_enqueued_many_times_at_once(ddb_local_world: World) -> None:
    # rule S6: concurrent runs of the same calendar yield one consistent state, no duplicates
    world = ddb_local_world
    for i in range(6):
        world.put(f"e{i}", ics(f"e{i}", f"Event {i}", at(i + 1), at(i + 2)))
    worker = sync_app.wiring().worker
    statuses: list[str] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            statuses.append(worker.run(world.job("config"), NOW).status)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert "synced" in statuses
    worker.run(world.job("poll"), NOW + timedelta(minutes=1))  # settles what the dirty marks asked for
    items = [
        i
        for i in world.table.scan()["Items"]
        if i["pk"] == f"USER#{world.user}" and str(i["sk"]).startswith("EV#")
    ]
    assert len(items) == len({i["occId"] for i in items}) == 6
    assert sorted(t for t, _ in world.listed(NOW)) == [f"Event {i}" for i in range(6)]


def test_worker_failing_half_way_leaves_a_state_the_next_sync_completes(
    moto_table: Any, server: RadicaleServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # rule S6: an exception after the first page; the cursor did not move; the next sync completes
    calls = {"n": 0, "fail": False}

    def hook(client: CalDAVClient) -> None:
        real = client.multiget

        def multiget(url: str, keys: Any) -> Any:
            calls["n"] += 1
            if calls["fail"] and calls["n"] == 2:
                raise RuntimeError("worker died")
            return real(url, keys)

        client.multiget = multiget  # type: ignore[method-assign]

    # one resource per page (multiget), so that the failure comes after the first page is stored
    monkeypatch.setattr(CalDAVSource.__init__, "__kwdefaults__", {"batch_size": 1})
    w = make_world(moto_table, server, client_hook=hook)
    try:
        w.put("a", ics("a", "A", at(1), at(2)))
        w.enqueue()
        w.drain(NOW)
        state = SyncStateStore(moto_table)
        cursor = state.get(w.calendar_id).cursor
        for name in "bcd":
            w.put(name, ics(name, name.upper(), at(3), at(4)))
        calls.update(n=0, fail=True)
        worker = sync_app.wiring().worker
        with pytest.raises(RuntimeError, match="worker died"):
            worker.run(w.job("poll"), NOW + timedelta(minutes=5))
        assert state.get(w.calendar_id).cursor == cursor
        assert len(w.listed(NOW)) == 2  # A and the first page
        calls["fail"] = False
        assert worker.run(w.job("poll"), NOW + timedelta(minutes=10)).status == "synced"
        assert sorted(t for t, _ in w.listed(NOW)) == ["A", "B", "C", "D"]
    finally:
        w.close()


def test_broken_vevent_is_logged_and_the_rest_syncs(world: World) -> None:
    # rule X5 / C10: a VEVENT that cannot be read does not stop the calendar
    world.put("good", ics("good", "Good", at(1), at(2)))
    # a rule calsync refuses (reported; rule D1: its first occurrence stays, docs/ical-leniency.md)
    world.put("broken", ics("broken", "Broken", at(3), at(4), rrule="FREQ=SECONDLY"))
    world.enqueue()
    answers = world.drain(NOW)
    assert answers[0]["batchItemFailures"] == []
    body = world.meetings(NOW)
    assert [m["title"] for m in body["meetings"]] == ["Good"]
    # stored: its first occurrence, a series (excluded from the list by rule U5)
    assert [(m["title"], m["rules"]) for m in body["excluded"]] == [("Broken", ["U5"])]
    # S11: counted and reported on the calendar and its account
    account, calendar = accounts_and_calendars(world, NOW)
    assert calendar["sync"]["status"] == "ok" and calendar["sync"]["skippedEvents"] == 1
    assert (
        account["status"] == "active"
        and "1 event could not be read or stored in full" in account["lastError"]
    )


@pytest.fixture
def proxied(moto_table: Any, server: RadicaleServer) -> Iterator[tuple[World, FaultyProxy]]:
    proxy = FaultyProxy(server.base_url)
    w = make_world(moto_table, server, base_url=proxy.url)
    try:
        yield w, proxy
    finally:
        proxy.close()
        w.close()


def test_garbage_xml_stores_nothing_and_crashes_nothing(proxied: tuple[World, FaultyProxy]) -> None:
    # rule X5: a server answering garbage: a clear failure, nothing stored, the record not retried
    w, proxy = proxied
    w.put("a", ics("a", "A", at(1), at(2)))
    proxy.fault = lambda method, path: (207, {"Content-Type": "application/xml"}, b"<multistatus><oops")
    w.enqueue()
    answers = w.drain(NOW)
    assert answers[0]["batchItemFailures"] == []
    assert w.listed(NOW) == []
    assert SyncStateStore(w.table).get(w.calendar_id).cursor is None
    proxy.fault = None
    w.enqueue("poll")
    w.drain(NOW)
    assert [t for t, _ in w.listed(NOW)] == ["A"]


def test_401_marks_the_account_reauth_required_and_skips_it_later(proxied: tuple[World, FaultyProxy]) -> None:
    # rule S7: refused credentials -> reauth_required, visible in the account; no more requests
    w, proxy = proxied
    proxy.fault = lambda method, path: (401, {"WWW-Authenticate": 'Basic realm="x"'}, b"")
    w.enqueue()
    assert w.drain(NOW)[0]["batchItemFailures"] == []
    account = AccountRepository(w.table).get_account(w.user, w.account_id)
    assert account is not None and account.status == "reauth_required"
    seen = proxy.requests
    w.enqueue("poll")
    w.drain(NOW)
    assert proxy.requests == seen  # skipped without a request


def test_403_on_a_read_is_the_calendars_error_not_a_revoked_account(
    proxied: tuple[World, FaultyProxy],
) -> None:
    # rules S13, S7: a 403 refuses this calendar, the credentials work (iCloud answers 403 for what an
    # account may not do: docs/providers/icloud.md I5): never reauth_required; the calendar and the
    # account show the error until a sync succeeds
    w, proxy = proxied
    w.put("a", ics("a", "A", at(1), at(2)))
    proxy.fault = lambda method, path: (403, {}, b"")
    w.enqueue()
    assert w.drain(NOW)[0]["batchItemFailures"] == []  # not retried at once: the next poll tries
    account, calendar = accounts_and_calendars(w, NOW)
    assert account["status"] == "error" and "refuses calsync access" in account["lastError"]
    assert calendar["sync"]["status"] == "error"
    proxy.fault = None
    w.enqueue("poll")
    w.drain(NOW)
    account, calendar = accounts_and_calendars(w, NOW)
    assert account["status"] == "active" and account["lastError"] is None
    assert calendar["sync"]["status"] == "ok"
    assert [t for t, _ in w.listed(NOW)] == ["A"]


def test_503_with_retry_after_is_retried_then_succeeds(
    proxied: tuple[World, FaultyProxy], monkeypatch: pytest.MonkeyPatch
) -> None:
    # rule S8: 503 + Retry-After -> the record fails and comes back after Retry-After; nothing lost
    import moto.sqs.models as sqs_models

    w, proxy = proxied
    w.put("a", ics("a", "A", at(1), at(2)))
    proxy.fault = lambda method, path: (503, {"Retry-After": "120"}, b"busy")
    w.enqueue()
    answers = w.drain(NOW)
    assert len(answers[0]["batchItemFailures"]) == 1
    assert w.listed(NOW) == []
    # hidden for Retry-After seconds (not the queue's 360 s): nothing comes back 119 s later ...
    real_ms = sqs_models.unix_time_millis
    start = real_ms()
    monkeypatch.setattr(sqs_models, "unix_time_millis", lambda: start + 119_000)
    assert w.sqs.receive_message(QueueUrl=w.queue_url, MaxNumberOfMessages=10).get("Messages") is None
    # ... and 121 s later it does; the server is fine again and the job completes
    proxy.fault = None
    monkeypatch.setattr(sqs_models, "unix_time_millis", lambda: start + 121_000)
    answers = w.drain(NOW + timedelta(minutes=2))
    assert answers and answers[0]["batchItemFailures"] == []
    assert [t for t, _ in w.listed(NOW)] == ["A"]


def test_429_with_an_http_date_backs_the_host_off_and_the_poll_defers_its_calendars(
    proxied: tuple[World, FaultyProxy], capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    # issue 16 B: a 429 with Retry-After as an HTTP-date (RFC 9110 §10.2.3) backs off the whole
    # host: the job is retried later (the account is not failed), one WARNING line and a metric say
    # so, other jobs of the host wait without a request, and the poll defers (not drops) its calendars
    w, proxy = proxied
    w.put("a", ics("a", "A", at(1), at(2)))
    w.enqueue()
    assert w.drain(NOW)[0]["batchItemFailures"] == []
    until = NOW + timedelta(minutes=10)
    proxy.fault = lambda method, path: (
        429,
        {"Retry-After": format_datetime(until, usegmt=True)},
        b"slow down",
    )
    w.enqueue("poll")
    capsys.readouterr()
    assert len(w.drain(NOW)[0]["batchItemFailures"]) == 1
    out = capsys.readouterr().out
    throttled = [r for r in caplog.records if "the CalDAV server throttles calsync" in r.getMessage()]
    assert [r.levelname for r in throttled] == ["WARNING"]
    assert '"CaldavHostThrottled":[1.0]' in out
    assert HostBudgets(w.table).state("127.0.0.1").backoff_until == until
    account = AccountRepository(w.table).get_account(w.user, w.account_id)
    assert account is not None and account.status == "active"  # not failed, not reauth_required
    proxy.fault = None
    seen = proxy.requests
    with pytest.raises(RetryLater) as retry:  # another job of the host (the queue would retry it)
        sync_app.wiring().worker.run(w.job("config"), NOW + timedelta(minutes=1))
    assert retry.value.delay == 9 * 60
    assert proxy.requests == seen  # waited without a request
    assert w.poll(NOW + timedelta(minutes=5)) == 0  # deferred: the host backs off
    assert SyncStateStore(w.table).poll_page("caldav", poll_shard(w.calendar_id))[0]  # still registered
    assert w.poll(NOW + timedelta(minutes=15)) == 1  # the backoff is over: polled again


def test_the_poll_keeps_to_each_hosts_budget_and_defers_the_rest(moto_table: Any) -> None:
    # issue 16 B: 5 jobs a minute for one host: a poll of 8 of its calendars sends 5 and defers 3
    # (still registered); a minute later the bucket has 5 more and they go
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName=f"sync-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    polls = PollFanOut(moto_table, sqs, {"caldav": url})
    try:
        from calsync.store.sync_state import PollEntry

        state = SyncStateStore(moto_table)
        for i in range(8):
            state.register_poll(
                "caldav",
                PollEntry(
                    calendar_id=f"cal-{i}", user_id="u", account_id="a", changed_at=NOW, host="p01.example"
                ),
            )
        state.register_poll(
            "caldav", PollEntry(calendar_id="other", user_id="u", account_id="b", changed_at=NOW)
        )
        os_rate = {"CALDAV_HOST_JOBS_PER_MINUTE": "5"}
        with pytest.MonkeyPatch.context() as mp:
            for k, v in os_rate.items():
                mp.setenv(k, v)
            event = json.loads(
                (Path(__file__).parents[2] / "events" / "caldav_poll-schedule.json").read_text()
            )
            with poll_app.wiring.use(task_deps(polls.url, sqs=sqs, clock=lambda: NOW, reads_table=False)):
                poll_app.lambda_handler(event, LambdaContext(function_name="caldav-poll"))
            polls.run(NOW)
            assert queue_depth(sqs, url) == 5 + 1  # 5 of the host's 8, and the other server's one
            later = NOW + timedelta(minutes=5)
            with poll_app.wiring.use(task_deps(polls.url, sqs=sqs, clock=lambda: later, reads_table=False)):
                poll_app.lambda_handler(event, LambdaContext(function_name="caldav-poll"))
            polls.run(later)
            assert queue_depth(sqs, url) == 6 + 5 + 1  # the bucket refilled (5 a minute, 5 at most)
    finally:
        polls.close()


def test_failing_job_lands_in_the_dead_letter_queue(
    proxied: tuple[World, FaultyProxy], monkeypatch: pytest.MonkeyPatch
) -> None:
    # rule S8: failures that keep failing land in the dead-letter queue (maxReceiveCount 5)
    import moto.sqs.models as sqs_models

    w, proxy = proxied
    proxy.fault = lambda method, path: (503, {}, b"down")
    w.enqueue()
    clock = {"ms": sqs_models.unix_time_millis()}
    monkeypatch.setattr(sqs_models, "unix_time_millis", lambda: clock["ms"])
    delays = []
    for attempt in range(1, 6):
        answers = w.drain(NOW)
        assert len(answers[0]["batchItemFailures"]) == 1, attempt
        delays.append(backoff(attempt))
        clock["ms"] += (delays[-1] + 1) * 1000
    assert delays == [30, 60, 120, 240, 480]  # exponential backoff without Retry-After
    assert w.drain(NOW) == []  # gone from the queue ...
    dead = w.sqs.receive_message(QueueUrl=w.dlq_url, MaxNumberOfMessages=10).get("Messages", [])
    assert len(dead) == 1 and json.loads(dead[0]["Body"])["calendarId"] == w.calendar_id  # ... into the DLQ


def test_boto3_works_beside_caldav_1x() -> None:
    # docs/adr/0003: caldav 1.x brings requests/urllib3, not niquests/urllib3-future
    import caldav
    import urllib3
    from moto import mock_aws

    assert caldav.__version__.startswith("1.")
    assert importlib.util.find_spec("niquests") is None
    assert "urllib3_future" not in (urllib3.__file__ or "")
    assert int(urllib3.__version__.split(".")[0]) >= 1
    assert "caldav" in sys.modules and requests.__version__
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="beside-caldav", CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_object(Bucket="beside-caldav", Key="k", Body=b"v")
        assert s3.get_object(Bucket="beside-caldav", Key="k")["Body"].read() == b"v"


def test_room_backed_by_a_caldav_calendar_gets_privacy_applied_when_stored(world: World) -> None:
    # rule R4: a CalDAV calendar can back a room; a private event reaches the room's partition without
    # its title, and without its link because calsync only reads that calendar — never written at all
    from calsync.store.items import Room

    repo = Repository(world.table)
    repo.put_calendar(
        Calendar(
            calendar_id=world.calendar_id,
            account_id=world.account_id,
            owner_user_id=world.user,
            provider=Provider.CALDAV,
            access_role="reader",
        )
    )
    repo.put_room(
        Room(
            room_id="hq-caldav-room",
            location_id="hq",
            name="CalDAV room",
            time_zone="Europe/Berlin",
            account_id=world.account_id,
            calendar_id=world.calendar_id,
        )
    )
    world.put(
        "secret.ics",
        ics(
            "secret",
            "Board: acquisition",
            at(2),
            at(3),
            extra="CLASS:PRIVATE\nURL:https://meet.calsync.test/b",
        ),
    )
    world.put("open.ics", ics("open", "Town hall", at(4), at(5), extra="URL:https://meet.calsync.test/t"))
    world.enqueue()
    world.drain(NOW)

    stored = world.table.query(
        KeyConditionExpression="pk = :pk AND begins_with(sk, :ev)",
        ExpressionAttributeValues={":pk": keys.room_pk("hq", "hq-caldav-room"), ":ev": "EV#"},
    )["Items"]
    assert len(stored) == 2
    raw = json.dumps(stored, default=str)
    assert "acquisition" not in raw and "meet.calsync.test/b" not in raw  # never written
    with api_on(world.table, NOW) as api:
        got = api.get("/v1/rooms/hq-caldav-room/meetings", claims=apigw.claims(world.user, ["hq"]))
    assert got.status == 200, got.body
    shown = {(m["title"], m["meetingLink"], m["private"]) for m in got.json()["meetings"]}
    assert shown == {(None, None, True), ("Town hall", "https://meet.calsync.test/t", False)}


# ---- S11 and S13: hostile data and failures people can see ------------------------------------------
def accounts_and_calendars(w: World, now: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """GET /v1/me/accounts and /v1/me/calendars of functions/accounts (this world's account and
    calendar)."""
    module = importlib.import_module("functions.accounts.app")
    claims = apigw.claims(w.user, ["hq"])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TABLE_NAME", w.table.name)
        get_settings.cache_clear()
        deps = accounts_deps(w.table, kms=w.kms, key_id=w.key_id, sqs=w.sqs, queue_url=w.queue_url)
        api = AccountsApi(module)
        with module.wiring.use(deps):
            got = api.get("/v1/me/accounts", claims=claims)
            assert got.status == 200, got.body
            accounts = got.json()["accounts"]
            got = api.get("/v1/me/calendars", claims=claims)
            assert got.status == 200, got.body
            calendars = got.json()["calendars"]
    get_settings.cache_clear()
    account = next(a for a in accounts if a["id"] == w.account_id)
    calendar = next(c for c in calendars if c["id"] == w.calendar_id)
    return account, calendar


def json_lines(out: str) -> list[dict[str, Any]]:
    docs = []
    for line in out.splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                docs.append(json.loads(line))
    return docs


def emitted_metrics(docs: list[dict[str, Any]]) -> list[str]:
    return [
        m["Name"]
        for doc in docs
        if "_aws" in doc
        for d in doc["_aws"]["CloudWatchMetrics"]
        for m in d["Metrics"]
    ]


def test_oversized_event_among_normal_ones(
    world: World, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    # S11 (issue 12's "must show"): a 410,000-character SUMMARY and a 450 KB meeting URL in a
    # DESCRIPTION are stored within their bounds; an event that cannot be stored (a 2,000-character
    # UID) is skipped, logged at WARNING, counted in a metric and shown on the account and calendar;
    # every normal event is listed and the cursor moves
    for i in range(4):
        world.put(f"n{i}", ics(f"n{i}", f"Normal {i}", at(i + 1), at(i + 1.5)))
    world.put("big-title", ics("big-title", "T" * 410_000, at(5), at(5.5), extra=WEEKLY_LINK))
    url = "https://meet.calsync.test/" + "u" * 450_000
    world.put("big-url", ics("big-url", "Big URL", at(6), at(6.5), extra=f"DESCRIPTION:join {url}"))
    world.put("long-uid", ics("u" * 2000, "Long UID", at(7), at(7.5)))
    world.enqueue()
    answers = world.drain(NOW)
    assert answers and all(a["batchItemFailures"] == [] for a in answers)
    titles = [t for t, _ in world.listed(NOW)]
    assert {f"Normal {i}" for i in range(4)} <= set(titles)
    meetings = world.meetings(NOW)
    every = [m["title"] for m in meetings["meetings"]] + [e["title"] for e in meetings["excluded"]]
    assert "T" * 299 + "…" in every and "Big URL" in every and "Long UID" not in every
    assert SyncStateStore(world.table).get(world.calendar_id).cursor is not None
    warnings = [r for r in caplog.records if "cannot be stored" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelname == "WARNING"
    assert warnings[0].__dict__["calendar_id"] == world.calendar_id
    assert all(len(repr(r.__dict__)) < 4000 for r in caplog.records)  # never the huge values
    assert "SyncEventsSkipped" in emitted_metrics(json_lines(capfd.readouterr().out))
    account, calendar = accounts_and_calendars(world, NOW)
    assert account["status"] == "active" and account["lastSyncedAt"] is not None
    assert "1 event could not be read or stored in full" in account["lastError"]
    assert calendar["sync"]["status"] == "ok" and calendar["sync"]["skippedEvents"] == 1


def test_failed_sync_is_logged_counted_and_shown_until_a_sync_succeeds(
    proxied: tuple[World, FaultyProxy],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # S13: before, a failing sync logged nothing above INFO, counted nothing, and the account said
    # "active"; now: one structured WARNING (calendar, account, provider, error class, no raw text),
    # a metric, and status "error" with a short lastError, cleared by the next successful sync
    import moto.sqs.models as sqs_models

    w, proxy = proxied
    w.put("a", ics("a", "A", at(1), at(2)))
    proxy.fault = lambda method, path: (503, {"Retry-After": "60"}, b"secret-ish server text")
    w.enqueue()
    answers = w.drain(NOW)
    assert len(answers[0]["batchItemFailures"]) == 1
    failed = [r for r in caplog.records if r.getMessage() == "sync failed"]
    assert len(failed) == 1 and failed[0].levelname == "WARNING"
    line = failed[0].__dict__
    assert line["provider"] == "caldav" and line["calendar_id"] == w.calendar_id
    assert line["account_id"] == w.account_id and line["error_class"] == "SourceThrottled"
    assert "secret-ish" not in repr(line)
    assert "CaldavSyncFailed" in emitted_metrics(json_lines(capfd.readouterr().out))
    account, calendar = accounts_and_calendars(w, NOW)
    assert account["status"] == "error" and account["lastSyncedAt"] is None
    assert "slow down" in account["lastError"] and "secret-ish" not in account["lastError"]
    assert calendar["sync"]["status"] == "error" and "slow down" in calendar["sync"]["lastError"]

    proxy.fault = None
    start = sqs_models.unix_time_millis()
    monkeypatch.setattr(sqs_models, "unix_time_millis", lambda: start + 61_000)
    answers = w.drain(NOW + timedelta(minutes=1))
    assert answers and answers[0]["batchItemFailures"] == []
    account, calendar = accounts_and_calendars(w, NOW + timedelta(minutes=1))
    assert account["status"] == "active" and account["lastError"] is None
    assert account["lastSyncedAt"] is not None
    assert calendar["sync"] == {
        "status": "ok",
        "lastSyncedAt": "2026-11-20T08:01:00Z",
        "lastError": None,
        "skippedEvents": 0,
    }
