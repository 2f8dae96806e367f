"""CalDAV through an iCloud-shaped service (issue 11, points 1 and 2): a discovery host
(``caldav.icloud.test`` -> 127.0.0.2, tests/support/icloud.py) answers principal discovery and
points the calendar home at a partition host (``p07-caldav.icloud.test`` -> 127.0.0.1: a counting
proxy in front of a REAL Radicale). Names resolve through the X6 guard's resolver hook only.

Connect through the accounts API, sync through the sync function (SQS on moto), poll, meetings
API, an appointment through the scheduling API, disconnect. Then the X6 guard on the poll/sync and
write paths: a partition host that passed the check at connect time and later resolves to a
metadata or private address, or redirects there, is refused and nothing is fetched.

Rules: C1, C6, C7, C9, S3, S7, X6. Facts: docs/providers/icloud.md.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import boto3
import pytest
import requests

from calsync.config import get_settings
from calsync.domain.links import LinkSettings
from calsync.domain.models import UTC
from calsync.store.accounts import Account, AccountRepository, CalendarListing
from calsync.store.hosts import HostBudgets
from calsync.sync.jobs import SyncJob, enqueue_sync
from calsync.sync.poll import POLL_EVERY, RECONCILE_SLOTS, reconcile_slot
from calsync.sync.tasks import run_number
from calsync.wiring.accounts import accounts_deps
from calsync.wiring.scheduling import scheduling_deps
from calsync.wiring.tasks import task_deps
from calsync_caldav.worker import collection_url, sync_deps
from functions.accounts import app as accounts_app
from functions.caldav_poll import app as poll_app
from functions.caldav_sync import app as sync_app
from functions.scheduling import app as scheduling_app
from tests.support import apigw
from tests.support.apigw import Answer, Api, LambdaContext, api_on
from tests.support.caldav_server import FaultyProxy, ics
from tests.support.icloud import ICloudDiscovery, Resolver
from tests.support.poll import PollFanOut, queue_depth
from tests.support.radicale import Radicale, radicale_server
from tests.support.tasks import TaskQueue

REGION = "eu-west-1"
NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
LINKS = LinkSettings.of(["meet.calsync.test"], [], [])
DISCOVERY = "caldav.icloud.test"
PARTITION = "p07-caldav.icloud.test"


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Radicale]:
    with radicale_server(Path(tmp_path_factory.mktemp("icloud-partition"))) as server:
        yield server


@dataclass
class ICloud:
    """The person's iCloud account: its Apple ID, the two hosts, and the stack's functions."""

    table: Any
    sqs: Any
    queue_url: str
    queue_arn: str
    radicale: Radicale
    partition: FaultyProxy  # p07-caldav: counts every request that reaches the calendars
    discovery: ICloudDiscovery  # caldav.icloud: principal and home set only
    resolver: Resolver
    user: str
    password: str
    home_url: str  # the "Home" calendar on Radicale itself (to write to it as an app would)
    polls: PollFanOut  # the PollQueue and PollShardFunction

    @property
    def auth(self) -> tuple[str, str]:
        return self.user, self.password

    def accounts(self) -> Api:
        return Api(accounts_app)

    def claims(self) -> dict[str, Any]:
        return apigw.claims(self.user, ["hq"])

    def connect(self) -> Answer:
        body = {"locationId": "hq", "serverUrl": self.discovery.url, "username": self.user}
        return self.accounts().call(
            "POST", "/v1/me/accounts/caldav", body={**body, "password": self.password}, claims=self.claims()
        )

    def drain(self, now: datetime = NOW) -> list[dict[str, Any]]:
        with sync_app.wiring.use(replace(sync_app.wiring(), clock=lambda: now)):
            return TaskQueue(self.sqs, sync_app, "caldav-sync", url=self.queue_url, batch=10).drain(10)

    def poll(self, now: datetime) -> int:
        """The schedule, then PollShardFunction on each shard task: the number of jobs queued."""
        before = queue_depth(self.sqs, self.queue_url)
        event = json.loads((Path(__file__).parents[2] / "events" / "caldav_poll-schedule.json").read_text())
        with poll_app.wiring.use(replace(poll_app.wiring(), clock=lambda: now)):
            result: dict[str, Any] = poll_app.lambda_handler(
                event, LambdaContext(function_name="caldav-poll")
            )
        assert result["failed"] == 0
        self.polls.run(now)
        return queue_depth(self.sqs, self.queue_url) - before

    def titles(self, now: datetime = NOW) -> list[str]:
        with api_on(self.table, now) as api:
            api.get("/v1/me/meetings", claims=self.claims())  # the first call remembers the locations
            got = api.get("/v1/me/meetings", claims=self.claims())
        assert got.status == 200, got.body
        return sorted(m["title"] for m in got.json()["meetings"])

    def put(self, name: str, title: str, start: datetime) -> None:
        self.radicale.put(
            self.home_url, name, ics(name, title, start, start + timedelta(minutes=30)), self.auth
        )

    def on_radicale(self) -> list[str]:
        """The resources of the Home calendar, read from Radicale directly."""
        resp = requests.request("PROPFIND", self.home_url, headers={"Depth": "1"}, auth=self.auth, timeout=10)
        assert resp.status_code == 207
        root = ElementTree.fromstring(resp.content)
        return sorted(h.text or "" for h in root.iter("{DAV:}href") if (h.text or "").endswith(".ics"))

    def listings(self, account_id: str) -> list[CalendarListing]:
        return AccountRepository(self.table).list_calendars_of_account(account_id)


@pytest.fixture
def icloud(moto_table: Any, radicale: Radicale, monkeypatch: pytest.MonkeyPatch) -> Iterator[ICloud]:
    table = moto_table
    kms = boto3.client("kms", region_name=REGION)
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(
        QueueName=f"sync-{uuid.uuid4().hex[:6]}.fifo",
        Attributes={"FifoQueue": "true", "VisibilityTimeout": "360"},
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    user, password = f"apple{uuid.uuid4().hex[:6]}", f"abcd-efgh-{uuid.uuid4().hex[:4]}-ijkl"  # app-specific
    radicale.add_user(user, password)
    home_url = radicale.make_calendar(user, password, "home", "Home")
    radicale.make_calendar(user, password, "work", "Work")
    partition = FaultyProxy(radicale.base_url)
    port = partition.url.rsplit(":", 1)[1]
    discovery = ICloudDiscovery(f"http://{PARTITION}:{port}", name=DISCOVERY, login_url=radicale.base_url)
    resolver = Resolver({DISCOVERY: "127.0.0.2", PARTITION: "127.0.0.1"})

    monkeypatch.setenv("TABLE_NAME", table.name)
    get_settings.cache_clear()
    common = {"table": table, "kms": kms, "key_id": key_id, "allow_local": True, "resolve": resolver}
    sync = sync_deps(**common, sqs=sqs, queue_url=queue_url, links=LINKS)
    polls = PollFanOut(table, sqs, {"caldav": queue_url})
    poll = task_deps(polls.url, sqs=sqs, reads_table=False)
    scheduling = scheduling_deps(**common, links=LINKS, clock=lambda: NOW)
    accounts = accounts_deps(**common, sqs=sqs, queue_url=queue_url)
    try:
        with (
            scheduling_app.wiring.use(scheduling),
            accounts_app.wiring.use(accounts),
            sync_app.wiring.use(sync),
            poll_app.wiring.use(poll),
        ):
            yield ICloud(
                table,
                sqs,
                queue_url,
                queue_arn,
                radicale,
                partition,
                discovery,
                resolver,
                user,
                password,
                home_url,
                polls,
            )
    finally:
        polls.close()
        get_settings.cache_clear()
        partition.close()
        discovery.close()


def _connected(icloud: ICloud) -> str:
    got = icloud.connect()
    assert got.status == 201, got.body
    return str(got.json()["id"])


# ---- point 1: the calendars live on the partition host ------------------------------------------
def test_icloud_connect_sync_poll_write_disconnect_on_the_partition_host(icloud: ICloud) -> None:
    # rules C1, C6, S3, C7, C9 through an iCloud-shaped service (docs/providers/icloud.md)
    icloud.put("standup", "Standup", NOW + timedelta(hours=2))
    account_id = _connected(icloud)
    discovery_requests = len(icloud.discovery.requests)

    # discovery's absolute collection URLs are what calsync keeps (the path stays the calendar's id)
    port = icloud.partition.url.rsplit(":", 1)[1]
    listings = {c.name: c for c in icloud.listings(account_id)}
    assert listings["Home"].url == f"http://{PARTITION}:{port}/{icloud.user}/home/"
    assert listings["Home"].href == f"/{icloud.user}/home/"
    account = AccountRepository(icloud.table).get_account(icloud.user, account_id)
    assert account is not None and account.server_url == icloud.discovery.url  # what the person typed
    assert f"mailto:{icloud.user}@icloud.test" in account.own_addresses  # calendar-user-address-set

    # first sync (connect job), then a change found by a poll: all on the partition host
    before = icloud.partition.requests
    answers = icloud.drain()
    assert answers and all(a["batchItemFailures"] == [] for a in answers), answers
    assert icloud.titles() == ["Standup"]
    icloud.put("review", "Review", NOW + timedelta(hours=4))
    assert icloud.poll(NOW + timedelta(minutes=5)) == 1
    icloud.drain(NOW + timedelta(minutes=5))
    assert icloud.titles(NOW + timedelta(minutes=5)) == ["Review", "Standup"]
    assert icloud.partition.requests > before
    # nothing changed: the next poll costs one PROPFIND (ctag) on the partition host (I7)
    t = NOW + timedelta(minutes=10)
    if reconcile_slot(listings["Home"].calendar_id) == run_number(t, POLL_EVERY) % RECONCILE_SLOTS:
        t += timedelta(minutes=5)  # a plain poll, not this calendar's reconcile slot (S5)
    quiet = icloud.partition.requests
    assert icloud.poll(t) == 1  # a plain poll job (not in its reconcile slot)
    icloud.drain(t)
    assert icloud.partition.requests - quiet == 1
    assert len(icloud.discovery.requests) == discovery_requests  # nothing after connect goes there

    # an appointment written to the primary calendar (C6: Home, the first writable one)
    with_partition = icloud.partition.requests
    start = NOW + timedelta(hours=6)
    booked = Api(scheduling_app).call(
        "POST",
        f"/v1/locations/hq/users/{icloud.user}/appointments",
        body={
            "title": "Dentist",
            "start": start.isoformat(),
            "end": (start + timedelta(hours=1)).isoformat(),
        },
        claims=icloud.claims(),
    )
    assert booked.status == 201, booked.body
    assert len(icloud.on_radicale()) == 3  # standup, review and the appointment
    assert icloud.partition.requests > with_partition
    assert len(icloud.discovery.requests) == discovery_requests
    assert "Dentist" in icloud.titles(NOW + timedelta(minutes=6))

    # disconnect (C9): the calendars and their events are gone from calsync, not from iCloud
    gone = icloud.accounts().call("DELETE", f"/v1/me/accounts/{account_id}", claims=icloud.claims())
    assert gone.status == 204, gone.body
    assert icloud.titles(NOW + timedelta(minutes=7)) == []
    assert icloud.listings(account_id) == []
    assert len(icloud.on_radicale()) == 3


def test_a_listing_stored_before_keeps_its_path_on_the_server_url() -> None:
    # migration: listings stored without the absolute URL resolve their path against the account's
    # server URL (as before); new ones use discovery's URL, on whatever host it names
    account = Account(
        account_id="a",
        user_id="u",
        provider="caldav",
        external_id="u@dav.example",
        server_url="https://dav.example/",
    )
    old = CalendarListing(calendar_id="c", account_id="a", provider="caldav", href="/u/home/")
    new = old.model_copy(update={"url": "https://p07-caldav.icloud.com:443/123/calendars/home/"})
    assert collection_url(account, old) == "https://dav.example/u/home/"
    assert collection_url(account, new) == "https://p07-caldav.icloud.com:443/123/calendars/home/"


def test_a_path_only_listing_still_syncs(icloud: ICloud) -> None:
    # a listing stored before the URL was kept, for a server that serves its calendars itself
    account_id = _connected(icloud)
    repo = AccountRepository(icloud.table)
    for listing in icloud.listings(account_id):
        repo.put_calendar_listing(listing.model_copy(update={"url": ""}))
    account = repo.get_account(icloud.user, account_id)
    assert account is not None
    repo.connect(
        account.model_copy(
            update={"server_url": f"http://{PARTITION}:{icloud.partition.url.rsplit(':', 1)[1]}/"}
        ),
        "hq",
    )
    icloud.put("standup", "Standup", NOW + timedelta(hours=2))
    answers = icloud.drain()
    assert answers and all(a["batchItemFailures"] == [] for a in answers), answers
    assert icloud.titles() == ["Standup"]


# ---- point 2: rule X6 on every request of a poll, sync and write -----------------------------------
@pytest.mark.parametrize("address", ["169.254.169.254", "10.0.0.7", "fd00:ec2::254"])
def test_a_partition_host_that_later_resolves_to_a_blocked_address_is_refused(
    icloud: ICloud, address: str, caplog: pytest.LogCaptureFixture
) -> None:
    # rule X6 "after DNS resolution ... on every connection": passed at connect, rebinds later
    account_id = _connected(icloud)
    icloud.drain()
    icloud.put("secret", "Secret", NOW + timedelta(hours=3))
    icloud.resolver.names[PARTITION] = address
    before = icloud.partition.requests
    (calendar_id,) = [c.calendar_id for c in icloud.listings(account_id) if c.name == "Home"]
    enqueue_sync(
        icloud.sqs,
        icloud.queue_url,
        SyncJob(calendar_id=calendar_id, user_id=icloud.user, account_id=account_id, reason="poll"),
    )
    caplog.clear()
    answers = icloud.drain(NOW + timedelta(minutes=5))
    assert answers == [{"batchItemFailures": []}]  # failed, visibly, and not retried in a loop
    refused = [r for r in caplog.records if "rule X6" in r.getMessage()]
    assert [(r.levelname, getattr(r, "calendar_id", None)) for r in refused] == [("ERROR", calendar_id)]
    assert address in getattr(refused[0], "error", "") or "address" in getattr(refused[0], "error", "")
    assert icloud.partition.requests == before  # nothing fetched, not even a PROPFIND
    assert "Secret" not in icloud.titles(NOW + timedelta(minutes=5))
    account = AccountRepository(icloud.table).get_account(icloud.user, account_id)
    assert account is not None and account.last_synced_at is not None  # the earlier sync only
    assert icloud.password not in caplog.text


def test_a_partition_host_that_redirects_to_the_metadata_address_is_not_followed(icloud: ICloud) -> None:
    # rule X6 "on every redirect": the sync answers the redirect with a failure, fetches nothing there
    account_id = _connected(icloud)
    icloud.partition.fault = lambda method, path: (
        302,
        {"Location": "http://169.254.169.254/latest/meta-data/"},
        b"",
    )
    answers = icloud.drain()
    assert answers == [{"batchItemFailures": []}]
    assert "169.254.169.254" not in icloud.resolver.asked
    assert icloud.titles() == []
    account = AccountRepository(icloud.table).get_account(icloud.user, account_id)
    assert account is not None and account.last_synced_at is None


def test_a_write_to_a_partition_host_that_now_resolves_to_a_private_address_is_refused(
    icloud: ICloud,
) -> None:
    # rule X6 on the scheduling path: nothing is written, the person gets a clear refusal
    _connected(icloud)
    icloud.drain()
    icloud.resolver.names[PARTITION] = "192.168.1.10"
    before = icloud.partition.requests
    start = NOW + timedelta(hours=6)
    booked = Api(scheduling_app).call(
        "POST",
        f"/v1/locations/hq/users/{icloud.user}/appointments",
        body={
            "title": "Dentist",
            "start": start.isoformat(),
            "end": (start + timedelta(hours=1)).isoformat(),
        },
        claims=icloud.claims(),
    )
    assert booked.status == 409, booked.body
    assert "X6" in booked.json()["detail"]
    assert icloud.partition.requests == before
    assert icloud.on_radicale() == []


# (not 169.254.169.254 here: moto, which holds the table, answers that address itself in-process;
# tests/unit/test_caldav_url_check.py covers it without moto)
@pytest.mark.parametrize("target", ["http://10.0.0.7/", "http://[fd00:ec2::254]/"])
def test_discovery_redirected_to_a_blocked_address_is_refused(icloud: ICloud, target: str) -> None:
    # rule X6 at connect, on the discovery host's redirect (discovery follows redirects, RFC 6764)
    original = icloud.discovery.answer

    def redirecting(method: str, path: str, headers: Any, body: bytes) -> Any:
        if path == "/":
            return 301, [("Location", target)], b""
        return original(method, path, headers, body)

    icloud.discovery.answer = redirecting  # type: ignore[method-assign]
    got = icloud.connect()
    assert got.status == 400, got.body
    assert got.json()["type"].endswith("/caldav-url-refused")


# ---- iCloud's answers (docs/providers/icloud.md) ----------------------------------------------------
def test_a_wrong_app_specific_password_is_a_clear_400_naming_app_specific_passwords(icloud: ICloud) -> None:
    # iCloud answers 401 with Basic realm="MMCalDav" (vdirsyncer#838); CalDAV clients need an
    # app-specific password (Apple: support.apple.com/en-us/102654)
    icloud.password = "my-apple-id-password"
    got = icloud.connect()
    assert got.status == 400, got.body
    assert got.json()["type"].endswith("/caldav-credentials-refused")
    assert "app-specific password" in got.json()["detail"]
    assert AccountRepository(icloud.table).list_accounts(icloud.user) == []


def test_a_revoked_app_specific_password_marks_the_account_reauth_required(icloud: ICloud) -> None:
    # rule S7: a revoked app-specific password makes the partition answer 401 (as at discovery)
    account_id = _connected(icloud)
    challenge = {"WWW-Authenticate": 'Basic realm="MMCalDav"'}
    icloud.partition.fault = lambda method, path: (401, challenge, b"")
    assert icloud.drain() == [{"batchItemFailures": []}]
    account = AccountRepository(icloud.table).get_account(icloud.user, account_id)
    assert account is not None and account.status == "reauth_required"


def test_a_503_without_retry_after_is_retried_later_with_backoff(
    icloud: ICloud, caplog: pytest.LogCaptureFixture
) -> None:
    # rule S8: iCloud's 503s are transient and carry no Retry-After (calcurse#408): the job stays
    # on the queue and comes back after a backoff; nothing is lost, nothing is stored meanwhile
    _connected(icloud)
    icloud.put("standup", "Standup", NOW + timedelta(hours=2))
    icloud.partition.fault = lambda method, path: (503, {}, b"")
    caplog.clear()
    failed = icloud.drain()
    assert len(failed) == 1 and len(failed[0]["batchItemFailures"]) == 1  # not deleted: retried
    attrs = icloud.sqs.get_queue_attributes(QueueUrl=icloud.queue_url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "1"
    (retried,) = [r for r in caplog.records if r.getMessage() == "sync failed"]  # S13: one line
    assert getattr(retried, "error_class", "") == "SourceThrottled" and getattr(retried, "retry_in", 0) > 0
    assert icloud.titles() == []


def test_a_429_with_retry_after_backs_off_the_partition_host_not_the_discovery_host(
    icloud: ICloud, caplog: pytest.LogCaptureFixture
) -> None:
    # issue 16 B (docs/providers/icloud.md I10, I2): the budget and the backoff are per server host,
    # and iCloud's calendars live on partition hosts: a 429 with Retry-After (delay-seconds) from
    # the partition backs off that host for those seconds; the job is retried, the account stays
    _connected(icloud)
    icloud.put("standup", "Standup", NOW + timedelta(hours=2))
    icloud.partition.fault = lambda method, path: (429, {"Retry-After": "90"}, b"")
    caplog.clear()
    failed = icloud.drain()
    assert len(failed) == 1 and len(failed[0]["batchItemFailures"]) == 1
    throttled = [r for r in caplog.records if "throttles calsync" in r.getMessage()]
    assert [(r.levelname, getattr(r, "host", "")) for r in throttled] == [("WARNING", PARTITION)]
    hosts = HostBudgets(icloud.table)
    assert hosts.state(PARTITION).backoff_until == NOW + timedelta(seconds=90)
    assert hosts.state(DISCOVERY).backoff_until is None
    assert icloud.titles() == []
