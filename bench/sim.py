"""`make sim PEOPLE=N` (`python -m bench.sim --people N`): a compressed working day against Amazon
DynamoDB Local (the table from template.yaml) and in-process queues (issue 16).

What runs, through the real code:

- **seed** (not measured): N people's CalDAV calendars in the poll registry (one entry each,
  10 % changed within a day, 15 % within a week, 75 % quiet), written with BatchWriteItem from
  several threads; and a *sample* of ``max(10, N / 100)`` people whose calendar (24 events over
  yesterday, today and tomorrow) is stored by the sync engine from an in-memory ``FakeSource``.
- **poll** (every entry, for real): one ``QUIET_EVERY`` cycle of CalDAV poll runs (30 minutes: the
  maximum staleness, so every calendar is due at least once): each run is CaldavPollFunction's
  handler (one task per shard to the poll queue) and then PollShardFunction's handler on every task
  of the poll queue, ``BatchSize`` records per invocation (template.yaml), until the queue is
  empty. Checked: no calendar enqueued twice in a run, every calendar enqueued in the cycle, no
  invocation above ``SHARD_BATCH`` entries.
- for the sample only, per person: an **unchanged poll sync** and a **changed-event sync** (the
  sync engine, as the sync workers run it, on the FakeSource: no provider HTTP), a **meetings
  read** and a **conditional read (304)** through the API function's handler, and one
  **cleanup** run of CleanupFunction's handler over the sample's ended events.
- one hourly **Microsoft renew** run as deployed (the schedule's dispatch, then the renew queue's
  tasks until it is empty);
- one hourly **Google renew** run as deployed: one person in ``GOOGLE_EVERY`` has a Google
  calendar whose push channel is in the channel-expiry index (7-day channels, renewed 4 days
  before they expire: one in ``GOOGLE_DUE_EVERY`` = 72 due in an hourly run, the steady state;
  one in ``GOOGLE_HELD_EVERY`` of those claimed by a parallel delivery, to be left alone). The due
  ones have what the renewal reads: an account with its grant sealed by KMS (moto's server), the
  calendar's listing, the calendar and its channel at the project's Google fake
  (tests/support/fake_google.py) on 127.0.0.1. GoogleRenewFunction's schedule handler dispatches a
  task per shard, then its handler runs the tasks until the queue is empty; every Google call
  (token refresh, ``events.watch``, ``channels.stop``) goes to the fake over HTTP. Checked at the
  fake: one new channel per due calendar, none for the others, the old ones stopped.

Every DynamoDB request of the day goes through one client: its calls, the capacity DynamoDB Local
reports (``ReturnConsumedCapacity=INDEXES``, bench/sharing.py's ``Meter``) and the partition key of
every request (the busiest partition) are counted per phase. Times are wall times on this
machine, in one process, DynamoDB Local included: DynamoDB's own latency is not modelled.

**Measured** figures are printed as such; **extrapolated** ones (the day at N, the ceilings, the
cost) multiply measured per-operation figures by the usage of bench/cost.py (20 calendar changes,
6 time-driven refetches and one connect per person per working day) and by the template's settings
(MaximumConcurrency, BatchSize, Timeout and schedule rates, read from template.yaml). Assumed:
a provider round trip of ``PROVIDER_RTT_S`` per sync job, ``GOOGLE_CALL_S`` per Google call of a
renewal (the fake answers on this machine), an account concurrency of
``ACCOUNT_CONCURRENCY`` for functions without a reserved one, and a peak hour of
``PEAK_FACTOR`` times the working day's mean.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import re
import sys
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT / "layers" / "core", ROOT / "layers" / "microsoft", ROOT / "layers" / "google", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)  # a Friday, 08:00 UTC
REGION = "eu-west-1"
SAMPLE_EVERY = 100  # one person in 100 is sampled (at least MIN_SAMPLE)
MS_EVERY = 2  # one person in 2 has a Microsoft mailbox (stated, not measured)
MS_DUE_EVERY = 2  # of those, one in 2 has a subscription past its half-life at the renew run
GOOGLE_EVERY = 2  # one person in 2 (the others: Microsoft) has a Google calendar with a push channel
# Google channels live 7 days (docs/providers/google.md § Push notifications: ``params.ttl``
# default 604800 s) and are renewed when they expire within 4 days (RENEW_BEFORE): each is renewed
# every 3 days = 72 hourly runs, so in steady state one channel in 72 is due in a run
GOOGLE_DUE_EVERY = 72
GOOGLE_HELD_EVERY = 20  # of those due, 1 in 20 is being renewed by a parallel delivery (claim taken)
GOOGLE_CALL_S = 0.25  # assumed: one Google call (events.watch, channels.stop; renewal.py: ~0.5 s both)
RENEW_AT = NOW + timedelta(hours=1)  # the hourly Google schedule's run of the day
WEBHOOK = "https://calsync.test/v1/webhooks/google"
MIN_SAMPLE = 10
EVENTS_PER_DAY = 8
ACTIVE, WEEKLY = 0.10, 0.15  # shares of calendars changed within a day / a week (the rest: quiet)
SQS_CALL_S = 0.015  # assumed: one SendMessageBatch in a region
PROVIDER_RTT_S = 0.15  # assumed: one CalDAV round trip of an unchanged poll (a ctag PROPFIND)
ACCOUNT_CONCURRENCY = 1000  # assumed: Lambda's default account concurrency (no reserved one)
PEAK_FACTOR = 3.0  # assumed: the busiest hour against the working day's mean
PERIOD_S = 300  # the poll schedule's period (checked against template.yaml below)
SQS_STANDARD_PER_M, SQS_FIFO_PER_M = 0.40, 0.50  # USD per million requests (US East list prices)
PARTITION_READ_UNITS, PARTITION_WRITE_UNITS = 3000, 1000  # DynamoDB's per-partition limits per s


# ----------------------------------------------------------------------- template settings


@dataclass(frozen=True)
class FnSettings:
    logical_id: str
    timeout_s: int
    batch_size: int | None = None
    max_concurrency: int | None = None
    reserved: Any = None
    schedule: str | None = None

    def schedule_s(self) -> int | None:
        m = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", self.schedule or "")
        if not m:
            return None
        unit = {"minute": 60, "hour": 3600, "day": 86400}[m.group(2).rstrip("s")]
        return int(m.group(1)) * unit


def fn_settings(logical_id: str) -> FnSettings:
    """Timeout (Globals merged), the SQS event's BatchSize and MaximumConcurrency, the first
    schedule's expression — from template.yaml."""
    from local.template import template

    tpl = template()
    props = tpl["Resources"][logical_id]["Properties"]
    glob = (tpl.get("Globals") or {}).get("Function") or {}
    batch = conc = schedule = None
    for ev in (props.get("Events") or {}).values():
        p = ev.get("Properties") or {}
        if ev.get("Type") == "SQS" and batch is None:
            batch = int(p.get("BatchSize", 10))
            conc = (p.get("ScalingConfig") or {}).get("MaximumConcurrency")
        if ev.get("Type") in ("Schedule", "ScheduleV2") and schedule is None:
            schedule = str(p.get("ScheduleExpression") or p.get("Schedule"))
    return FnSettings(
        logical_id,
        int(props.get("Timeout", glob.get("Timeout", 3))),
        batch,
        int(conc) if conc is not None else None,
        props.get("ReservedConcurrentExecutions"),
        schedule,
    )


# ----------------------------------------------------------------------- in-process queues


class Queue:
    """One SQS queue in memory, with SQS's batch semantics: at most 10 entries per
    SendMessageBatch, FIFO deduplication by MessageDeduplicationId, receive up to N messages
    (in flight until deleted). Counts its API requests (for the cost)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.url = f"https://sqs.{REGION}.amazonaws.com/000000000000/{name}"
        self.arn = f"arn:aws:sqs:{REGION}:000000000000:{name}"
        self.fifo = name.endswith(".fifo")
        self.held: deque[dict[str, Any]] = deque()
        self.in_flight: dict[str, dict[str, Any]] = {}
        self.dedup: set[str] = set()
        self.requests = 0
        self.sent = 0
        self.duplicates = 0

    def add(self, entry: dict[str, Any]) -> str:
        if self.fifo:
            dedup = entry.get("MessageDeduplicationId")
            if not dedup or not entry.get("MessageGroupId"):
                raise ValueError("a FIFO message needs MessageGroupId and MessageDeduplicationId")
            if dedup in self.dedup:
                self.duplicates += 1
                return uuid.uuid4().hex  # accepted, not delivered again (SQS's 5-minute window)
            self.dedup.add(dedup)
        body = str(entry["MessageBody"])
        if len(body.encode()) > 262_144:
            raise ValueError("message larger than 256 KB")
        msg_id = uuid.uuid4().hex
        self.held.append({"MessageId": msg_id, "ReceiptHandle": msg_id, "Body": body, "Attributes": {}})
        self.sent += 1
        return msg_id

    def receive(self, n: int) -> list[dict[str, Any]]:
        self.requests += 1
        out = [self.held.popleft() for _ in range(min(n, len(self.held)))]
        self.in_flight.update((m["ReceiptHandle"], m) for m in out)
        return out

    def delete(self, receipt: str) -> None:
        self.in_flight.pop(receipt)

    def release(self) -> None:
        """Failed records come back (their visibility timeout ended)."""
        self.held.extend(self.in_flight.values())
        self.in_flight.clear()

    def drain(self) -> list[str]:
        bodies = [m["Body"] for m in self.held]
        self.held.clear()
        return bodies


class Sqs:
    """The SQS client the functions are given: routes by QueueUrl to in-process queues."""

    def __init__(self, *queues: Queue) -> None:
        self.queues = {q.url: q for q in queues}

    def send_message(self, QueueUrl: str, **entry: Any) -> dict[str, Any]:
        q = self.queues[QueueUrl]
        q.requests += 1
        return {"MessageId": q.add(entry)}

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        if not 1 <= len(Entries) <= 10:
            raise ValueError("SendMessageBatch takes 1 to 10 entries")
        if sum(len(str(e["MessageBody"]).encode()) for e in Entries) > 262_144:
            raise ValueError("a batch larger than 256 KB")
        q = self.queues[QueueUrl]
        q.requests += 1
        ok = [{"Id": e["Id"], "MessageId": q.add(e)} for e in Entries]
        return {"Successful": ok, "Failed": []}


def run_tasks(
    q: Queue, handler: Any, fn: str, memory: int, settings: FnSettings, *, retry: bool = False
) -> Iterator[Any]:
    """A queue's consumer as deployed: ``handler`` gets ``BatchSize`` records an invocation, each
    invocation its own context (its time budget starts with it: one context made once ran out after
    ``Timeout`` seconds of the whole run, and every task then went back whole, for ever), until the
    queue is empty; yields each invocation's answer. Records the answer reports failed come back
    (``retry``) or stop the run (a task queue's work must not fail here)."""
    from local.runtime import LambdaContext
    from local.sources import sqs_record, to_delete

    while msgs := q.receive(settings.batch_size or 1):
        records = [sqs_record(m, q.arn, REGION) for m in msgs]
        ctx = LambdaContext(fn, memory, f"arn:aws:lambda:::function:{fn}", "r", settings.timeout_s)
        with redirect_stdout(_SINK):  # Powertools flushes its metrics every 100 values
            answer = handler({"Records": records}, ctx)
        for rec in to_delete(records, answer, report_failures=True):
            q.delete(rec["receiptHandle"])
        if retry:
            q.release()
        elif q.in_flight:
            raise RuntimeError(f"{fn} tasks failed: {answer}")
        yield answer


# ----------------------------------------------------------------------- DynamoDB metering

_KEY_EQ = re.compile(r"([#\w]+)\s*=\s*(:\w+)")


def _pks(op: str, body: dict[str, Any]) -> list[str]:
    """The partition key of each item a request touches (``index:`` prefixed for a GSI Query)."""

    def pk(key: dict[str, Any] | None) -> list[str]:
        return [str(key["pk"]["S"])] if key and "pk" in key else []

    if op in ("GetItem", "UpdateItem", "DeleteItem"):
        return pk(body.get("Key"))
    if op == "PutItem":
        return pk(body.get("Item"))
    if op == "Query":
        names = body.get("ExpressionAttributeNames") or {}
        values = body.get("ExpressionAttributeValues") or {}
        for name, value in _KEY_EQ.findall(body.get("KeyConditionExpression", "")):
            attr = names.get(name, name)
            if attr in ("pk", "gsi1pk") and value in values:
                prefix = f"{body['IndexName']}:" if body.get("IndexName") else ""
                return [prefix + str(values[value]["S"])]
        return []
    out: list[str] = []
    if op == "BatchWriteItem":
        for reqs in (body.get("RequestItems") or {}).values():
            for r in reqs:
                out += pk(
                    (r.get("PutRequest") or {}).get("Item") or (r.get("DeleteRequest") or {}).get("Key")
                )
    elif op == "BatchGetItem":
        for spec in (body.get("RequestItems") or {}).values():
            for key in spec.get("Keys", []):
                out += pk(key)
    elif op in ("TransactWriteItems", "TransactGetItems"):
        for t in body.get("TransactItems", []):
            for v in t.values():
                out += pk(v.get("Key") or v.get("Item"))
    return out


class Partitions:
    """Requests per partition key (an item of a batch counts as one), through botocore's events."""

    def __init__(self, client: Any) -> None:
        self.requests: Counter[str] = Counter()
        self.calls = 0
        client.meta.events.register("before-call.dynamodb", self._count)

    def _count(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.calls += 1
        body = params.get("body") or b"{}"
        self.requests.update(_pks(model.name, json.loads(body)))


@dataclass
class Phase:
    name: str
    ops: int = 0
    seconds: float = 0.0
    calls: int = 0
    read_units: float = 0.0
    write_units: float = 0.0
    partitions: Counter[str] = field(default_factory=Counter)
    invocations: int = 0

    def per_op(self, value: float) -> float:
        return value / self.ops if self.ops else 0.0


class Metering:
    def __init__(self, table: Any) -> None:
        from bench.sharing import Meter

        self.capacity = Meter(table)
        self.partitions = Partitions(table.meta.client)
        self.phases: dict[str, Phase] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[Phase]:
        ph = self.phases.setdefault(name, Phase(name))
        self.capacity.reset()
        before_calls = self.partitions.calls
        before = Counter(self.partitions.requests)
        t = time.perf_counter()
        try:
            yield ph
        finally:
            ph.seconds += time.perf_counter() - t
            ph.calls += self.partitions.calls - before_calls
            cap = self.capacity.capacity
            ph.read_units += cap["read table"] + cap["read gsi"]
            ph.write_units += cap["write table"] + cap["write gsi"]
            ph.partitions.update(self.partitions.requests - before)


# ----------------------------------------------------------------------- the world

_SINK = io.StringIO()
# a person's meetings answer changing by time alone in a working day of 4 meetings: 5 (measured by
# bench/cost.py's frozen day: the meetings events LiveDueFunction publishes); a refetch each
MEETINGS_BY_TIME = 5


@dataclass
class Person:
    user_id: str
    calendar: Any
    source: Any


@dataclass
class PollRun:
    run: int
    jobs: int
    invocations: int
    per_invocation: list[int]
    seconds: float


@dataclass
class RenewRun:
    mailboxes: int  # in the registry
    jobs: int  # renew jobs queued on the Microsoft sync queue
    invocations: int  # MicrosoftRenewFunction task invocations
    per_invocation: list[int]
    bound: int


@dataclass
class GoogleSide:
    """The project's Google fake (tests/support/fake_google.py) over HTTP on 127.0.0.1 and moto's
    KMS server (the credentials are sealed as the connect seals them); what was seeded."""

    fake: Any
    kms: Any
    key_id: str
    due_every: int
    channels: int = 0  # seeded, in the channel-expiry index
    due: dict[str, str] = field(default_factory=dict)  # Google calendar id -> old channel id (due)
    held: set[str] = field(default_factory=set)  # of those, whose renewal a parallel delivery holds


@dataclass
class GoogleRenewRun:
    channels: int  # in the channel-expiry index
    due: int  # expiring within RENEW_BEFORE at the run
    held: int  # of those, claimed by a parallel delivery: to be left alone
    renewed: int  # due calendars with exactly one new channel, their old one stopped at Google
    twice: int  # calendars with more than one new channel
    unexpected: int  # new channels of calendars not due, or held
    invocations: int  # GoogleRenewFunction task invocations
    per_invocation: list[int]  # channels read (claims tried) per invocation
    bound: int
    google_calls: Counter[str]  # requests the fake answered (watch, stop, token)
    poll_tasks: int  # the schedule's Google poll tasks (PollShardFunction's, as measured above)


@dataclass
class World:
    people: int
    sample: list[Person]
    table: Any
    meter: Metering
    poll_queue: Queue
    sync_queue: Queue
    runs: list[PollRun] = field(default_factory=list)
    enqueued: Counter[str] = field(default_factory=Counter)
    twice_in_a_run: int = 0
    calendars: list[str] = field(default_factory=list)
    seed_seconds: float = 0.0
    cleanup_deleted: int = 0
    renew: RenewRun | None = None
    cleanup_ended: int = 0  # the sample's events that had ended (a copy and an index entry each)
    limit: int | None = None  # PollShardFunction's page (None: SHARD_BATCH)
    google: GoogleSide | None = None
    google_renew: GoogleRenewRun | None = None


def calendar_id(i: int) -> str:
    return f"cal-{i:07d}"


def changed_at(i: int) -> datetime | None:
    share = (i * 7919 % 1000) / 1000  # spread over the ids, the same on every run
    if share < ACTIVE:
        return NOW - timedelta(hours=2)
    if share < ACTIVE + WEEKLY:
        return NOW - timedelta(days=3)
    return None if share > 0.95 else NOW - timedelta(days=30)


def resource(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(
        aws_access_key_id="local",
        aws_secret_access_key="local",
        region_name=REGION,
    )
    cfg = Config(retries={"max_attempts": 10, "mode": "standard"}, max_pool_connections=16)
    return session.resource("dynamodb", endpoint_url=endpoint, config=cfg)


def _events(person: str, cal: Any) -> list[Any]:
    from tests.support.apigw import occurrence

    out = []
    for day in (-1, 0, 1):
        for h in range(EVENTS_PER_DAY):
            start = NOW.replace(hour=7) + timedelta(days=day, hours=h)
            out.append(
                occurrence(cal, f"{person}-{day}-{h}", f"Meeting {h}", start, start + timedelta(minutes=45))
            )
    return out


def mailbox_item(i: int) -> dict[str, Any]:
    """A mailbox of the Microsoft subscription registry, as ``MicrosoftRegistry.put_subscription``
    writes it: its subscription expires in 1 h (due for renewal) or in 3 days (not due)."""
    from calsync.store import keys

    account = f"m{i:07d}"
    expires = NOW + (timedelta(hours=1) if (i // MS_EVERY) % MS_DUE_EVERY == 0 else timedelta(days=3))
    return {
        "pk": keys.ms_mailbox_pk(keys.ms_subscription_shard(account)),
        "sk": keys.ms_mailbox_sk(account),
        "type": "msMailbox",
        "userId": f"p{i:07d}",
        "accountId": account,
        "subscriptionId": f"sub-{account}",
        "subExpiresAt": keys.iso(expires),
    }


def google_ids(i: int) -> tuple[str, str, str]:
    """Person ``i``'s Google account: (user id, account id, calendar id); the calendar is the
    mailbox's primary one (Google's id: the address)."""
    from calsync.domain.models import Provider
    from calsync.store.accounts import account_id_for, calendar_id_for

    user = f"p{i:07d}"
    account = account_id_for(user, Provider.GOOGLE, google_email(i))
    return user, account, calendar_id_for(account, google_email(i))


def google_email(i: int) -> str:
    return f"g{i:07d}@example.com"


def google_channel(i: int, due_every: int) -> tuple[Any, bool]:
    """Person ``i``'s push channel as a sync opened it, and whether it is due at RENEW_AT. The
    expiries are spread evenly over the renewal window (RENEW_BEFORE to CHANNEL_TTL after the
    run): one in ``due_every`` falls in the hour before the horizon, the rest after it."""
    from calsync.store.channels import Channel, new_channel_id, token_digest
    from calsync_google.channels import CHANNEL_TTL, RENEW_BEFORE

    user, account, calendar = google_ids(i)
    slot = (i // GOOGLE_EVERY) % due_every
    expires = (
        RENEW_AT + RENEW_BEFORE - timedelta(minutes=30) + (CHANNEL_TTL - RENEW_BEFORE) * slot / due_every
    )
    channel = Channel(
        channel_id=new_channel_id(calendar),
        calendar_id=calendar,
        user_id=user,
        account_id=account,
        resource_id=f"res-{i:07d}",
        token_sha256=token_digest(f"t{i}"),
        expires_at=expires,
    )
    return channel, slot == 0


@contextmanager
def google_side(due_every: int) -> Iterator[GoogleSide]:
    """The Google fake (its clock at RENEW_AT) and moto's KMS server on free local ports."""
    import socket

    import boto3
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    from tests.support.fake_google import fake_google

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer("127.0.0.1", port, verbose=False)
    werkzeug = logging.getLogger("werkzeug")  # the server logs each request on stderr
    level = werkzeug.level
    werkzeug.setLevel(logging.WARNING)
    server.start()
    try:
        kms = boto3.client(
            "kms",
            region_name=REGION,
            endpoint_url=f"http://127.0.0.1:{port}",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        with fake_google(page_size=250, clock=lambda: RENEW_AT) as fake:
            yield GoogleSide(fake, kms, key_id, due_every)
    finally:
        server.stop()
        werkzeug.setLevel(level)


def seed_google_accounts(table: Any, google: GoogleSide, due: list[tuple[int, Any]]) -> None:
    """What the renewal reads of a due channel: its account (connected, the grant sealed with
    KMS), the calendar's listing, the calendar and the channel at the fake. One in
    GOOGLE_HELD_EVERY has its renewal claimed 5 minutes before the run (a parallel delivery)."""
    from calsync.crypto import CredentialBox
    from calsync.domain.models import Provider
    from calsync.store.accounts import Account, AccountRepository, CalendarListing
    from calsync.store.channels import ChannelStore
    from calsync_google.worker import GoogleGrant, seal_grant
    from tests.support.fake_google import _Channel

    box, repo, store, fake = (
        CredentialBox(google.kms, google.key_id),
        AccountRepository(table),
        ChannelStore(table),
        google.fake,
    )
    for d, (i, channel) in enumerate(due):
        email = google_email(i)
        fake.add_calendar(email, email, "Work", "owner", primary=True)
        context = {"userId": channel.user_id, "accountId": channel.account_id}
        account = Account(
            account_id=channel.account_id,
            user_id=channel.user_id,
            provider=Provider.GOOGLE,
            external_id=email,
            email=email,
            credentials=seal_grant(box, GoogleGrant(fake.grant(email)), context),
        )
        repo.connect(account, "hq")
        repo.put_calendar_listing(
            CalendarListing(
                calendar_id=channel.calendar_id,
                account_id=channel.account_id,
                provider=Provider.GOOGLE,
                name="Work",
                href=email,
            )
        )
        fake.channels[channel.channel_id] = _Channel(
            channel.channel_id,
            channel.resource_id,
            email,
            WEBHOOK,
            "t",
            int(channel.expires_at.timestamp() * 1000),
        )
        google.due[email] = channel.channel_id
        if d % GOOGLE_HELD_EVERY == 0:
            assert store.claim_renewal(channel, RENEW_AT - timedelta(minutes=5)) is not None
            google.held.add(email)


def seed(
    endpoint: str,
    table_name: str,
    people: int,
    sample_size: int,
    threads: int,
    *,
    google: GoogleSide | None = None,
) -> list[Person]:
    """The registry (BatchWriteItem, ``threads`` writers), the Google channels and the sample
    people (sync engine)."""
    from calsync.domain.models import Provider
    from calsync.store.channels import ChannelStore
    from calsync.store.items import Calendar
    from calsync.store.repository import Repository
    from calsync.store.sync_state import PollEntry, SyncStateStore, poll_item
    from calsync.sync.engine import SyncEngine
    from calsync.sync.fake import FakeSource

    tables = [resource(endpoint).Table(table_name) for _ in range(threads)]
    due: list[list[tuple[int, Any]]] = [[] for _ in range(threads)]

    def registry(k: int) -> None:
        with tables[k].batch_writer() as batch:
            channels = ChannelStore(batch)  # its items (channel and expiry entry) in batches
            for i in range(k, people, threads):
                entry = PollEntry(
                    calendar_id=calendar_id(i),
                    user_id=f"p{i:07d}",
                    account_id=f"a{i:07d}",
                    changed_at=changed_at(i),
                )
                batch.put_item(Item=poll_item("caldav", entry))
                if i % MS_EVERY == 0:  # the Microsoft mailbox registry (MSSUBS#<shard> / ACC#<id>)
                    batch.put_item(Item=mailbox_item(i))
                if google is not None and i % GOOGLE_EVERY == 1:  # the channel-expiry index
                    channel, is_due = google_channel(i, google.due_every)
                    channels.put(channel)
                    if is_due:
                        due[k].append((i, channel))

    step = max(1, people // sample_size)
    picked = [i for i in range(0, people, step)][:sample_size]

    def person(k: int) -> list[Person]:
        tbl = tables[k]
        repo = Repository(tbl)
        engine = SyncEngine(repo, SyncStateStore(tbl))
        out = []
        for i in picked[k::threads]:
            user = f"p{i:07d}"
            repo.update_profile(user, time_zone="Europe/Berlin")
            cal = Calendar(
                calendar_id=calendar_id(i),
                account_id=f"a{i:07d}",
                owner_user_id=user,
                provider=Provider.CALDAV,
                subscribers={f"USER#{user}": "primary"},
            )
            repo.put_calendar(cal)
            source = FakeSource(page_size=100)
            for occ in _events(user, cal):
                source.put(occ.event_id, [occ])
            outcome = engine.sync(cal, source, now=NOW - timedelta(minutes=10))
            assert outcome.status == "synced", outcome
            out.append(Person(user, repo.get_calendar(cal.calendar_id), source))
        return out

    with ThreadPoolExecutor(threads) as pool:
        t = time.perf_counter()
        list(pool.map(registry, range(threads)))
        print(f"  seeded {people:,} poll entries in {time.perf_counter() - t:.1f} s", flush=True)
        if google is not None:
            t = time.perf_counter()
            google.channels = len(range(1, people, GOOGLE_EVERY))
            seed_google_accounts(tables[0], google, sorted(x for chunk in due for x in chunk))
            print(
                f"  seeded {google.channels:,} Google channels ({len(google.due):,} due) in "
                f"{time.perf_counter() - t:.1f} s",
                flush=True,
            )
        t = time.perf_counter()
        sampled = [p for chunk in pool.map(person, range(threads)) for p in chunk]
        print(f"  seeded {len(sampled):,} people's calendars in {time.perf_counter() - t:.1f} s", flush=True)
        return sampled


# ----------------------------------------------------------------------- the day


def run_poll(world: World, at: datetime, shard: FnSettings) -> PollRun:
    """One CalDAV poll run, every entry: the schedule's handler, then PollShardFunction's handler
    on the poll queue until it is empty."""
    from functions.caldav_poll import app as poll_app
    from functions.poll_shard import app as shard_app

    with (
        poll_app.wiring.use(replace(poll_app.wiring(), clock=lambda: at)),
        shard_app.wiring.use(replace(shard_app.wiring(), clock=lambda: at)),
    ):
        return _run_poll(world, at, shard, poll_app, shard_app)


def _run_poll(world: World, at: datetime, shard: FnSettings, poll_app: Any, shard_app: Any) -> PollRun:
    from calsync.sync import poll
    from calsync.sync.tasks import run_number
    from local.runtime import LambdaContext

    ctx = LambdaContext("caldav-poll", 128, "arn:aws:lambda:::function:caldav-poll", "r", 30)
    t = time.perf_counter()
    with world.meter.phase("poll dispatch (CaldavPollFunction)") as ph:
        assert (
            poll_app.lambda_handler({"detail-type": "Scheduled Event", "source": "aws.scheduler"}, ctx)[
                "failed"
            ]
            == 0
        )
        ph.ops += 1
        ph.invocations += 1
    per_invocation: list[int] = []
    jobs = world.sync_queue
    with world.meter.phase("poll shard (PollShardFunction)") as ph:
        before = jobs.sent + jobs.duplicates
        for _ in run_tasks(world.poll_queue, shard_app.lambda_handler, "poll-shard", 256, shard, retry=True):
            per_invocation.append(jobs.sent + jobs.duplicates - before)
            before += per_invocation[-1]
        ph.invocations += len(per_invocation)
        bodies = jobs.drain()
        ph.ops += world.people  # every registry entry is read once a run, due or not
    seen = Counter(json.loads(b)["calendarId"] for b in bodies)
    world.twice_in_a_run += sum(1 for c in seen.values() if c > 1) + world.sync_queue.duplicates
    world.enqueued.update(seen.keys())
    run = run_number(at, poll.POLL_EVERY)
    return PollRun(run, len(bodies), len(per_invocation), per_invocation, time.perf_counter() - t)


def run_day(world: World) -> None:
    from calsync.store.repository import Repository
    from calsync.store.sync_state import SyncStateStore
    from calsync.sync import poll
    from calsync.sync.engine import SyncEngine
    from functions.cleanup import app as cleanup_app
    from tests.support import apigw

    shard = fn_settings("PollShardFunction")
    for r in range(poll.QUIET_EVERY):
        world.runs.append(run_poll(world, NOW + poll.POLL_EVERY * r, shard))
        print(
            f"  poll run {r + 1}/{poll.QUIET_EVERY}: {world.runs[-1].jobs:,} jobs, "
            f"{world.runs[-1].invocations} invocations, {world.runs[-1].seconds:.1f} s",
            flush=True,
        )

    engine = SyncEngine(Repository(world.table), SyncStateStore(world.table))
    later = NOW + timedelta(minutes=40)
    with world.meter.phase("sync: unchanged calendar (poll)") as ph:
        for p in world.sample:
            outcome = engine.sync(p.calendar, p.source, now=later)
            assert outcome.status == "unchanged", outcome
            ph.ops += 1
    with world.meter.phase("sync: one event moved") as ph:
        for p in world.sample:
            moved = _events(p.user_id, p.calendar)[EVENTS_PER_DAY + 4]
            p.source.put(
                moved.event_id,
                [
                    moved.model_copy(
                        update={
                            "start": moved.start + timedelta(hours=1),
                            "end": moved.end + timedelta(hours=1),
                        }
                    )
                ]
                if hasattr(moved, "model_copy")
                else [_moved(moved)],
            )
            outcome = engine.sync(p.calendar, p.source, now=later + timedelta(minutes=5))
            assert outcome.status == "synced" and outcome.stored == 1, outcome
            ph.ops += 1

    at = later + timedelta(minutes=10)
    with apigw.api_on(world.table, at) as api:
        etags = {}
        with world.meter.phase("API: meetings read (200)") as ph:
            for p in world.sample:
                got = api.get("/v1/me/meetings", claims=apigw.claims(p.user_id, ["hq"]))
                assert got.status == 200, (got.status, got.body)
                etags[p.user_id] = got.headers["ETag"]
                ph.ops += 1
                ph.invocations += 1
        with world.meter.phase("API: conditional read (304)") as ph:
            for p in world.sample:
                got = api.get(
                    "/v1/me/meetings",
                    claims=apigw.claims(p.user_id, ["hq"]),
                    headers={"if-none-match": etags[p.user_id]},
                )
                assert got.status == 304, (got.status, got.body)
                ph.ops += 1
                ph.invocations += 1

    run_microsoft_renew(world, at)
    if world.google is not None:
        run_google_renew(world, world.google)
    run_cleanup(world, at, cleanup_app)


def run_microsoft_renew(world: World, at: datetime) -> None:
    """One hourly renew run of the Microsoft mailbox registry as deployed: the schedule's handler
    dispatches one task per shard to the renew queue, and MicrosoftRenewFunction's handler runs the
    tasks (``BatchSize`` records an invocation) until the queue is empty, queueing a ``renew`` job
    on the (FIFO) Microsoft sync queue per mailbox past its subscription's half-life. The jobs'
    Graph calls are the sync worker's, not run here."""
    from calsync_microsoft.schedule import MAILBOX_PAGE
    from calsync_microsoft.wiring import renew_deps
    from functions.microsoft_renew import app as renew_app
    from local.runtime import LambdaContext

    settings = fn_settings("MicrosoftRenewFunction")
    tasks, jobs = Queue("calsync-ms-renew"), Queue("calsync-ms-sync.fifo")
    o = {"table": world.table, "sqs": Sqs(tasks, jobs), "queue_url": jobs.url}
    deps = renew_deps(o, task_queue_url=tasks.url, clock=lambda: at, limit=world.limit or None)
    per_invocation: list[int] = []
    with renew_app.wiring.use(deps), world.meter.phase("microsoft renew (MicrosoftRenewFunction)") as ph:
        ctx = LambdaContext("ms-renew", 256, "arn:aws:lambda:::function:ms-renew", "r", settings.timeout_s)
        with redirect_stdout(_SINK):
            assert renew_app.lambda_handler({}, ctx)["failed"] == 0
        ph.invocations += 1
        before = jobs.sent + jobs.duplicates
        for _ in run_tasks(tasks, renew_app.lambda_handler, "ms-renew", 256, settings):
            per_invocation.append(jobs.sent + jobs.duplicates - before)
            before += per_invocation[-1]
        ph.invocations += len(per_invocation)
        ph.ops += len(range(0, world.people, MS_EVERY))  # every mailbox is read once a run
    world.renew = RenewRun(
        len(range(0, world.people, MS_EVERY)),
        jobs.sent,
        len(per_invocation),
        per_invocation,
        world.limit or MAILBOX_PAGE,
    )


def run_google_renew(world: World, google: GoogleSide) -> None:
    """The hourly Google schedule at RENEW_AT as deployed: GoogleRenewFunction's schedule handler
    dispatches one task per shard of the channel-expiry index to the GoogleRenewQueue (and the
    Google poll's tasks to the PollQueue: counted, not run — PollShardFunction's work is measured
    above), then its handler runs the tasks (``BatchSize`` records an invocation) until the queue
    is empty, hand-backs included: each due channel is claimed, renewed at the fake over HTTP
    (``events.watch``, then ``channels.stop`` of the old one; a token refresh first, as no access
    token is kept) and its items replaced. Checked afterwards against the fake: one new channel
    per due calendar that nobody else holds, none for the others, the old ones stopped."""
    from calsync.domain.links import LinkSettings
    from calsync_google.client import Caller, ClientSecret, GoogleEndpoints
    from calsync_google.renewal import RENEW_PAGE, renew_deps
    from calsync_google.worker import service_factory
    from functions.google_renew import app as renew_app
    from local.runtime import LambdaContext

    settings = fn_settings("GoogleRenewFunction")
    fake = google.fake
    tasks, polls = Queue("calsync-google-renew"), Queue("calsync-poll")
    secret = ClientSecret(fake.client_id, fake.client_secret)
    endpoints = GoogleEndpoints(fake.auth_uri, fake.token_uri, fake.api_endpoint)
    deps = renew_deps(
        table=world.table,
        kms=google.kms,
        key_id=google.key_id,
        services=service_factory(lambda: secret, endpoints),
        webhook_url=WEBHOOK,
        links=LinkSettings.of(["meet.google.com"], [], []),
        caller=lambda: Caller(sleep=lambda _s: None),
        sqs=Sqs(tasks, polls),
        poll_queue_url=polls.url,
        renew_queue_url=tasks.url,
        clock=lambda: RENEW_AT,
        limit=world.limit or None,
    )
    claims = Counter[str]()

    def count(model: Any, params: dict[str, Any], **_: Any) -> None:
        body = params.get("body") or b""
        if model.name == "UpdateItem" and b"SET renewing" in (
            body.encode() if isinstance(body, str) else body
        ):
            claims["tried"] += 1

    old = set(fake.channels)
    events = world.table.meta.client.meta.events
    events.register("before-call.dynamodb", count, unique_id="calsync-sim-google-renew")
    per_invocation: list[int] = []
    try:
        with renew_app.wiring.use(deps), world.meter.phase("google renew (GoogleRenewFunction)") as ph:
            ctx = LambdaContext(
                "google-renew", 256, "arn:aws:lambda:::function:google-renew", "r", settings.timeout_s
            )
            with redirect_stdout(_SINK):
                answer = renew_app.lambda_handler({}, ctx)
            assert answer["renewTasksFailed"] == 0 and answer["pollTasksFailed"] == 0, answer
            ph.invocations += 1
            before = claims["tried"]
            for _ in run_tasks(tasks, renew_app.lambda_handler, "google-renew", 256, settings):
                per_invocation.append(claims["tried"] - before)
                before = claims["tried"]
            ph.invocations += len(per_invocation)
            ph.ops += claims["tried"]  # due channels read and claimed (or found held)
    finally:
        events.unregister("before-call.dynamodb", count, unique_id="calsync-sim-google-renew")
    opened = Counter(c.cal_id for c in fake.channels.values() if c.channel_id not in old)
    due = {cal for cal in google.due if cal not in google.held}
    stopped = {cal for cal, ch in google.due.items() if fake.channels[ch].stopped}
    calls = Counter(r.rsplit("/", 1)[-1] for r in fake.requests)
    world.google_renew = GoogleRenewRun(
        channels=google.channels,
        due=len(google.due),
        held=len(google.held),
        renewed=sum(1 for cal in due if opened[cal] == 1 and cal in stopped),
        twice=sum(1 for n in opened.values() if n > 1),
        unexpected=sum(n for cal, n in opened.items() if cal not in due) + len(stopped - due),
        invocations=len(per_invocation),
        per_invocation=per_invocation,
        bound=world.limit or RENEW_PAGE,
        google_calls=Counter(
            {"events.watch": calls["watch"], "channels.stop": calls["stop"], "token": fake.token_requests}
        ),
        poll_tasks=polls.sent,
    )


def run_cleanup(world: World, at: datetime, cleanup_app: Any) -> None:
    """One cleanup run as deployed: the schedule's handler dispatches one task per shard to the
    cleanup queue, and CleanupFunction's handler runs the tasks (``BatchSize`` records an
    invocation) until the queue is empty, handed-back rests included."""
    from calsync.wiring.tasks import task_deps
    from local.runtime import LambdaContext

    settings = fn_settings("CleanupFunction")
    q = Queue("calsync-cleanup")
    deps = task_deps(q.url, world.table, sqs=Sqs(q), clock=lambda: at)
    deleted = Counter[str]()

    def count(model: Any, params: dict[str, Any], **_: Any) -> None:
        if model.name == "BatchWriteItem":
            body = json.loads(params.get("body") or b"{}")
            for reqs in (body.get("RequestItems") or {}).values():
                deleted["items"] += sum(1 for r in reqs if "DeleteRequest" in r)

    events = world.table.meta.client.meta.events
    events.register("before-call.dynamodb", count, unique_id="calsync-sim-cleanup")
    try:
        with cleanup_app.wiring.use(deps), world.meter.phase("cleanup (CleanupFunction)") as ph:
            ctx = LambdaContext("cleanup", 256, "arn:aws:lambda:::function:cleanup", "r", settings.timeout_s)
            with redirect_stdout(_SINK):
                assert cleanup_app.lambda_handler({"detail-type": "Scheduled Event"}, ctx)["failed"] == 0
            ph.invocations += 1
            ph.invocations += sum(
                1 for _ in run_tasks(q, cleanup_app.lambda_handler, "cleanup", 256, settings)
            )
            world.cleanup_deleted = deleted["items"]
            ph.ops += world.cleanup_deleted
            cutoff = at - timedelta(minutes=61)
            world.cleanup_ended = sum(
                1 for p in world.sample for occ in _events(p.user_id, p.calendar) if occ.end <= cutoff
            )
    finally:
        events.unregister("before-call.dynamodb", count, unique_id="calsync-sim-cleanup")


def _moved(occ: Any) -> Any:
    from dataclasses import replace

    return replace(occ, start=occ.start + timedelta(hours=1), end=occ.end + timedelta(hours=1))


# ----------------------------------------------------------------------- the report


def _f(x: float) -> str:
    if x >= 100:
        return f"{x:,.0f}"
    return f"{x:,.2f}" if x >= 1 else f"{x:.3g}"


def report(world: World, total_s: float) -> tuple[str, dict[str, Any]]:
    from bench import table as render
    from bench.cost import (
        CAL_CHANGES,
        HTTP_PER_M,
        LAMBDA_GB,
        LAMBDA_GB_S,
        LAMBDA_REQ_PER_M,
        OPEN_MINUTES,
        RRU_PER_M,
        WRU_PER_M,
    )
    from calsync.store.keys import CHANNEL_SHARDS, CLEANUP_SHARDS, MS_SUB_SHARDS, POLL_SHARDS
    from calsync.sync import poll

    n = world.people
    ph = world.meter.phases
    lines: list[str] = []
    out: dict[str, Any] = {"people": n, "sample": len(world.sample)}

    lines.append(f"make sim: {n:,} people (sample of {len(world.sample):,} for the per-person work)")
    lines.append(f"seeding {world.seed_seconds:.1f} s; the day {total_s:.1f} s (DynamoDB Local, one process)")
    lines.append("")
    lines.append("== measured: each kind of work, through the handlers (per operation) ==")
    rows = []
    for p in ph.values():
        rows.append(
            [
                p.name,
                f"{p.ops:,}",
                f"{p.seconds:.1f}",
                _f(p.per_op(p.seconds) * 1000),
                _f(p.ops / p.seconds if p.seconds else 0),
                _f(p.per_op(p.calls)),
                _f(p.per_op(p.read_units)),
                _f(p.per_op(p.write_units)),
            ]
        )
    lines.append(
        render(["work", "ops", "wall s", "ms/op", "ops/s", "DDB calls/op", "RCU/op", "WCU/op"], rows)
    )
    out["phases"] = {
        p.name: {
            "ops": p.ops,
            "seconds": p.seconds,
            "calls": p.calls,
            "rcu": p.read_units,
            "wcu": p.write_units,
        }
        for p in ph.values()
    }

    # ---- the poll of every registered calendar
    bound = world.limit or poll.SHARD_BATCH
    per_inv = [x for r in world.runs for x in r.per_invocation]
    largest = max(per_inv, default=0)
    missed = sum(1 for c in world.calendars if world.enqueued[c] == 0)
    lines.append("")
    lines.append(
        f"== measured: the poll of all {n:,} registered calendars, {len(world.runs)} runs (30 minutes) =="
    )
    lines.append(
        render(
            ["run", "jobs", "invocations", "largest invocation", "wall s"],
            [
                [
                    str(i + 1),
                    f"{r.jobs:,}",
                    str(r.invocations),
                    f"{max(r.per_invocation, default=0):,}",
                    f"{r.seconds:.1f}",
                ]
                for i, r in enumerate(world.runs)
            ],
        )
    )
    lines.append(
        f"largest share of one invocation: {largest:,} jobs = {largest / n:.2%} of the registry "
        f"(bound: {bound:,} entries per invocation, SHARD_BATCH = {poll.SHARD_BATCH:,}: "
        f"{min(1.0, bound / n):.2%} at {n:,}{'' if n == 100_000 else f', {bound / 100_000:.2%} at 100,000'}; "
        f"{'within' if largest <= bound else 'ABOVE'} the bound)"
    )
    lines.append(
        f"every calendar enqueued in the cycle: {'yes' if missed == 0 else f'NO, {missed:,} missed'}; "
        f"enqueued twice in one run: {world.twice_in_a_run}"
    )
    out["poll"] = {
        "largest": largest,
        "bound": bound,
        "missed": missed,
        "twice": world.twice_in_a_run,
        "jobs_per_run": [r.jobs for r in world.runs],
        "invocations_per_run": [r.invocations for r in world.runs],
    }

    renew = world.renew
    if renew is not None:
        largest_renew = max(renew.per_invocation, default=0)
        lines.append("")
        lines.append(f"== measured: one Microsoft renew run over {renew.mailboxes:,} mailboxes ==")
        lines.append(
            f"{renew.jobs:,} renew jobs queued by {renew.invocations} MicrosoftRenewFunction task "
            f"invocations; largest invocation {largest_renew:,} jobs (bound: {renew.bound:,} mailboxes "
            f"read per invocation; {'within' if largest_renew <= renew.bound else 'ABOVE'} the bound)"
        )
        out["renew"] = {
            "mailboxes": renew.mailboxes,
            "jobs": renew.jobs,
            "invocations": renew.invocations,
            "largest": largest_renew,
            "bound": renew.bound,
        }

    grun = world.google_renew
    if grun is not None:
        largest_g = max(grun.per_invocation, default=0)
        lines.append("")
        every = world.google.due_every if world.google else GOOGLE_DUE_EVERY
        lines.append(
            f"== measured: one Google renew run over {grun.channels:,} channels (1 in {every} due) =="
        )
        lines.append(
            f"{grun.due:,} due, {grun.held:,} of them held by a parallel delivery (left alone); "
            f"{grun.renewed:,} renewed once by {grun.invocations} GoogleRenewFunction task invocations "
            f"against the fake over HTTP ({grun.google_calls['events.watch']:,} events.watch, "
            f"{grun.google_calls['channels.stop']:,} channels.stop, {grun.google_calls['token']:,} token "
            f"refreshes); renewed twice: {grun.twice}; unexpected: {grun.unexpected}; largest invocation "
            f"{largest_g:,} channels read (bound: {grun.bound:,} channels per invocation; "
            f"{'within' if largest_g <= grun.bound else 'ABOVE'} the bound); "
            f"{grun.poll_tasks} Google poll tasks dispatched, not run here"
        )
        out["google_renew"] = {
            "channels": grun.channels,
            "due": grun.due,
            "held": grun.held,
            "renewed": grun.renewed,
            "twice": grun.twice,
            "unexpected": grun.unexpected,
            "invocations": grun.invocations,
            "largest": largest_g,
            "bound": grun.bound,
            "google_calls": dict(grun.google_calls),
            "poll_tasks": grun.poll_tasks,
        }

    # ---- busiest partition
    everything: Counter[str] = Counter()
    for p in ph.values():
        everything.update(p.partitions)
    total_requests = sum(everything.values())
    lines.append("")
    lines.append("== measured: the busiest partitions of this run (item requests per partition key) ==")
    rows = [
        [pk, f"{c:,}", f"{c / total_requests:.2%}" if total_requests else "-"]
        for pk, c in everything.most_common(5)
    ]
    lines.append(render(["partition key", "requests", "share"], rows))
    # a real day: how often one partition sees each phase's work (per person or per run)
    runs_per_day = 86400 / (fn_settings("CaldavPollFunction").schedule_s() or PERIOD_S)
    jobs_share = sum(r.jobs for r in world.runs) / max(1, len(world.runs)) / n
    per_day = {
        "poll dispatch (CaldavPollFunction)": runs_per_day / len(world.runs),
        "poll shard (PollShardFunction)": runs_per_day / len(world.runs),
        "sync: unchanged calendar (poll)": jobs_share * runs_per_day,
        "sync: one event moved": CAL_CHANGES,
        "API: meetings read (200)": CAL_CHANGES + MEETINGS_BY_TIME + 1,
        "API: conditional read (304)": 0,  # the live channel refetches on a change only
        "cleanup (CleanupFunction)": 0.5,  # the run deleted two days of ends
    }
    day_requests: Counter[str] = Counter()
    for p in ph.values():
        for pk, c in p.partitions.items():
            day_requests[pk] += c * per_day.get(p.name, 1)
    hot, hot_n = day_requests.most_common(1)[0] if day_requests else ("-", 0.0)
    busiest, busiest_n = everything.most_common(1)[0] if everything else ("-", 0)
    lines.append(
        f"(extrapolated) the busiest partition of a day at {n:,}: {hot} with {hot_n:,.0f} item "
        f"requests a day ({hot_n / 86400:.3f}/s on average, x{PEAK_FACTOR:g} at peak: "
        f"{hot_n / 86400 * PEAK_FACTOR:.2f}/s) against DynamoDB's {PARTITION_READ_UNITS:,} RCU / "
        f"{PARTITION_WRITE_UNITS:,} WCU per partition and second"
    )
    out["busiest"] = {
        "pk": busiest,
        "requests": busiest_n,
        "total": total_requests,
        "day_pk": hot,
        "day_requests": hot_n,
    }

    # ---- ceilings at the template's settings
    shard = fn_settings("PollShardFunction")
    sync = fn_settings("CaldavSyncFunction")
    cleanup = fn_settings("CleanupFunction")
    poll_fn = fn_settings("CaldavPollFunction")
    api = fn_settings("ApiFunction")
    period = poll_fn.schedule_s() or PERIOD_S
    sp = ph["poll shard (PollShardFunction)"]
    t_inv = sp.seconds / max(1, sp.invocations)
    t_entry = sp.per_op(sp.seconds)  # per registry entry read, due or not
    conc = min(shard.max_concurrency or POLL_SHARDS, POLL_SHARDS)  # a shard's pages run in sequence
    jobs_per_run = sum(r.jobs for r in world.runs) / max(1, len(world.runs))
    job_share = jobs_per_run / n
    # the in-process queue answers at once: a SendMessageBatch of 10 jobs in a region is assumed
    t_entry_sqs = t_entry + job_share / 10 * SQS_CALL_S
    poll_ceiling = conc * period / t_entry_sqs  # shards in parallel, each one's pages in sequence
    unchanged = ph["sync: unchanged calendar (poll)"]
    t_job = unchanged.per_op(unchanged.seconds) + PROVIDER_RTT_S
    sync_rate = (sync.max_concurrency or 1) / t_job
    sync_ceiling = sync_rate * period / job_share
    read = ph["API: meetings read (200)"]
    reads_per_day = CAL_CHANGES + MEETINGS_BY_TIME + 1
    api_conc = ACCOUNT_CONCURRENCY if not isinstance(api.reserved, int) else api.reserved
    api_rate = api_conc / read.per_op(read.seconds)
    peak_per_person = reads_per_day / (OPEN_MINUTES * 60) * PEAK_FACTOR
    api_ceiling = api_rate / peak_per_person
    cl = ph["cleanup (CleanupFunction)"]
    delete_rate = cl.ops / cl.seconds if cl.seconds and cl.ops else 0.0
    cleanup_period = cleanup.schedule_s() or 900
    cleanup_conc = min(cleanup.max_concurrency or CLEANUP_SHARDS, CLEANUP_SHARDS)
    # the shards in parallel, each one's pages in sequence, within one schedule period
    per_cleanup_run = delete_rate * cleanup_conc * cleanup_period
    items_per_end = world.cleanup_deleted / world.cleanup_ended if world.cleanup_ended else 1.0
    ends_per_person_day = EVENTS_PER_DAY * items_per_end  # items deleted a person a day
    cleanup_ceiling = per_cleanup_run / (0.1 * ends_per_person_day) if per_cleanup_run else 0.0
    ms = fn_settings("MicrosoftRenewFunction")
    mr = ph.get("microsoft renew (MicrosoftRenewFunction)")
    t_mailbox = mr.per_op(mr.seconds) if mr else 0.0
    due_share = (world.renew.jobs / world.renew.mailboxes) if world.renew and world.renew.mailboxes else 0.0
    t_mailbox_sqs = t_mailbox + due_share / 10 * SQS_CALL_S
    # the shards in parallel, each one's pages in sequence: within the 5-minute poll, the tightest
    # of the schedules that walk the registry (renew hourly, reconcile daily, poll every 5 minutes)
    ms_conc = min(ms.max_concurrency or MS_SUB_SHARDS, MS_SUB_SHARDS)
    renew_ceiling = ms_conc * PERIOD_S / t_mailbox_sqs if t_mailbox_sqs else 0.0
    gs = fn_settings("GoogleRenewFunction")
    gr = ph.get("google renew (GoogleRenewFunction)")
    t_renewal = (
        gr.seconds / world.google_renew.renewed
        if gr and world.google_renew and world.google_renew.renewed
        else 0.0
    )
    t_renewal_google = t_renewal + 2 * GOOGLE_CALL_S
    g_conc = min(gs.max_concurrency or CHANNEL_SHARDS, CHANNEL_SHARDS)  # a shard's pages in sequence
    g_period = gs.schedule_s() or 3600
    # the due channels one run renews within its schedule period (the shards in parallel, each
    # one's pages in sequence); in steady state 1 channel in GOOGLE_DUE_EVERY is due a run
    google_due_ceiling = g_conc * g_period / t_renewal_google if t_renewal else 0.0
    google_ceiling = google_due_ceiling * GOOGLE_DUE_EVERY
    lines.append("")
    lines.append("== extrapolated: each component's ceiling at the template's settings ==")
    rows = [
        [
            "CalDAV poll fan-out",
            f"PollShardFunction MaximumConcurrency {shard.max_concurrency}, BatchSize {shard.batch_size}, "
            f"Timeout {shard.timeout_s} s; rate {period // 60} min",
            f"{t_entry * 1e6:.0f} µs per registry entry (+{(t_entry_sqs - t_entry) * 1e6:.0f} µs "
            "assumed SQS)",
            f"{poll_ceiling:,.0f} calendars",
        ],
        [
            "CalDAV sync workers",
            f"CaldavSyncFunction MaximumConcurrency {sync.max_concurrency}, BatchSize {sync.batch_size}, "
            f"Timeout {sync.timeout_s} s",
            f"{t_job * 1000:.0f} ms a job (+{PROVIDER_RTT_S * 1000:.0f} ms assumed RTT); "
            f"{job_share:.1%} of calendars a run",
            f"{sync_ceiling:,.0f} calendars",
        ],
        [
            "API meetings reads",
            f"ApiFunction no reserved concurrency (account {api_conc:,} assumed), Timeout {api.timeout_s} s",
            f"{read.per_op(read.seconds) * 1000:.0f} ms a read; {reads_per_day} reads/person/day, "
            f"peak x{PEAK_FACTOR:g}",
            f"{api_ceiling:,.0f} people",
        ],
        [
            "Cleanup",
            f"CleanupFunction MaximumConcurrency {cleanup.max_concurrency}, BatchSize "
            f"{cleanup.batch_size}, Timeout {cleanup.timeout_s} s, {cleanup.schedule}",
            f"{delete_rate:,.0f} deletes/s; busiest 15 min = 10 % of {ends_per_person_day:g} "
            "items/person/day",
            f"{cleanup_ceiling:,.0f} people",
        ],
        [
            "Microsoft renew fan-out",
            f"MicrosoftRenewFunction MaximumConcurrency {ms.max_concurrency}, BatchSize {ms.batch_size}, "
            f"Timeout {ms.timeout_s} s; hourly",
            f"{t_mailbox * 1e6:.0f} µs per mailbox (+{(t_mailbox_sqs - t_mailbox) * 1e6:.0f} µs assumed SQS)",
            f"{renew_ceiling:,.0f} mailboxes",
        ],
        [
            "Google channel renewal",
            f"GoogleRenewFunction MaximumConcurrency {gs.max_concurrency}, BatchSize {gs.batch_size}, "
            f"Timeout {gs.timeout_s} s; {gs.schedule}",
            f"{t_renewal * 1000:.0f} ms per renewal (+{2 * GOOGLE_CALL_S * 1000:.0f} ms assumed for 2 "
            f"Google calls); 1 in {GOOGLE_DUE_EVERY} due an hour",
            f"{google_due_ceiling:,.0f} due a run = {google_ceiling:,.0f} channels",
        ],
    ]
    lines.append(render(["component", "template settings", "measured input", "ceiling"], rows))
    out["ceilings"] = {
        "poll": poll_ceiling,
        "sync": sync_ceiling,
        "api": api_ceiling,
        "cleanup": cleanup_ceiling,
        "microsoft_renew": renew_ceiling,
        "google_renew": google_ceiling,
        "google_renew_due": google_due_ceiling,
    }

    # ---- throughput at N (the day, extrapolated)
    day = {
        "API reads": n * reads_per_day,
        "calendar changes (syncs)": n * CAL_CHANGES,
        "poll sync jobs": jobs_per_run * runs_per_day,
        "poll registry entries read": n * runs_per_day,
        "cleanup deletes": n * ends_per_person_day,
    }
    lines.append("")
    lines.append(f"== extrapolated: the day at {n:,} people ==")
    lines.append(
        render(
            ["work", "per day", "mean per s (24 h)"],
            [[k, f"{v:,.0f}", f"{v / 86400:,.1f}"] for k, v in day.items()],
        )
    )
    measured_ops = sum(p.ops for p in ph.values())
    lines.append(
        f"(measured) this run: {measured_ops:,} operations in {total_s:.1f} s "
        f"= {measured_ops / total_s:,.0f} ops/s"
    )

    # ---- cost per 1,000 people per month (bench/cost.py's prices)
    def lam(invocations: float, seconds: float) -> float:
        return invocations * LAMBDA_REQ_PER_M / 1e6 + seconds * LAMBDA_GB * LAMBDA_GB_S

    def ddb(phase: Phase, ops: float) -> float:
        return (
            ops
            * (phase.per_op(phase.read_units) * RRU_PER_M + phase.per_op(phase.write_units) * WRU_PER_M)
            / 1e6
        )

    per1000 = 1000 / n
    month_work, month_all = 21, 30
    changed = ph["sync: one event moved"]
    nm = ph["API: conditional read (304)"]
    sync_jobs_month = jobs_per_run * runs_per_day * month_all * per1000
    change_month = 1000 * CAL_CHANGES * month_work
    reads_month = 1000 * reads_per_day * month_work
    shard_inv_month = sp.invocations / len(world.runs) * runs_per_day * month_all * per1000
    cost_rows = [
        [
            "API reads (HTTP API + Lambda + DynamoDB)",
            reads_month,
            reads_month * HTTP_PER_M / 1e6
            + lam(reads_month, reads_month * read.per_op(read.seconds))
            + ddb(read, reads_month),
        ],
        [
            "calendar changes (sync + SQS FIFO)",
            change_month,
            lam(
                change_month / (sync.batch_size or 1),
                change_month * (changed.per_op(changed.seconds) + PROVIDER_RTT_S),
            )
            + ddb(changed, change_month)
            + change_month * 2 * SQS_FIFO_PER_M / 1e6,
        ],
        [
            "poll: sync jobs of unchanged calendars",
            sync_jobs_month,
            lam(sync_jobs_month / (sync.batch_size or 1), sync_jobs_month * t_job)
            + ddb(unchanged, sync_jobs_month)
            + sync_jobs_month / 10 * 2 * SQS_FIFO_PER_M / 1e6,
        ],
        [
            "poll: dispatch + shard invocations",
            shard_inv_month,
            lam(shard_inv_month, shard_inv_month * t_inv)
            + ddb(sp, sp.ops / len(world.runs) * runs_per_day * month_all * per1000)
            + shard_inv_month * 2 * SQS_STANDARD_PER_M / 1e6,
        ],
        [
            "cleanup",
            1000 * ends_per_person_day * month_all,
            ddb(cl, 1000 * ends_per_person_day * month_all) if cl.ops else 0.0,
        ],
    ]
    if gr and gr.ops:
        # a channel renewed every 3 days (GOOGLE_DUE_EVERY hourly runs); Lambda waits for Google
        renewals_month = 1000 / GOOGLE_EVERY * month_all * 24 / GOOGLE_DUE_EVERY
        cost_rows.append(
            [
                "Google channel renewal",
                renewals_month,
                lam(renewals_month * gr.invocations / gr.ops, renewals_month * t_renewal_google)
                + ddb(gr, renewals_month),
            ]
        )
    total = sum(c for _, _, c in cost_rows)
    lines.append("")
    lines.append(
        "== extrapolated: cost per 1,000 people per month (bench/cost.py's list prices; SQS "
        f"${SQS_STANDARD_PER_M}/${SQS_FIFO_PER_M} per M; 21 working days, polls and cleanup 30 days; "
        "Lambda GB-s from the measured in-process times) =="
    )
    lines.append(
        render(["work", "operations", "USD"], [[w, f"{o:,.0f}", f"${c:,.2f}"] for w, o, c in cost_rows])
    )
    lines.append(f"total: ${total:,.2f} per 1,000 people per month")
    _ = nm
    out["cost_per_1000"] = total
    return "\n".join(lines), out


# ----------------------------------------------------------------------- main


def simulate(
    people: int,
    *,
    endpoint: str | None = None,
    threads: int = 4,
    sample: int | None = None,
    shard_limit: int | None = None,
    google_due_every: int = GOOGLE_DUE_EVERY,
) -> tuple[str, dict[str, Any]]:
    """Seed, run the day, and return (the report, its figures). ``shard_limit``: the page of
    PollShardFunction and of the renewals instead of SHARD_BATCH, MAILBOX_PAGE and RENEW_PAGE
    (tests: a small registry then still needs several pages a shard); ``google_due_every``: one
    Google channel in this many is due at the renew run (tests: more than the steady state's)."""
    from calsync.wiring.tasks import task_deps
    from functions.caldav_poll import app as poll_app
    from functions.poll_shard import app as shard_app
    from tests.support.dynamodb_local import dynamodb_local
    from tests.support.template import table_create_kwargs

    sample_size = sample or max(MIN_SAMPLE, people // SAMPLE_EVERY)
    sample_size = min(sample_size, people)
    with (
        contextlib_nullcontext(endpoint) if endpoint else dynamodb_local() as url,
        google_side(google_due_every) as google,
    ):
        name = f"calsync-sim-{uuid.uuid4().hex[:6]}"
        ddb = resource(url)
        table = ddb.create_table(**table_create_kwargs(name))
        table.wait_until_exists()
        t = time.perf_counter()
        sample_people = seed(url, name, people, sample_size, threads, google=google)
        seed_s = time.perf_counter() - t
        poll_q, sync_q = Queue("calsync-poll"), Queue("calsync-caldav-sync.fifo")
        sqs = Sqs(poll_q, sync_q)
        world = World(people, sample_people, table, Metering(table), poll_q, sync_q)
        world.calendars = [calendar_id(i) for i in range(people)]
        world.seed_seconds = seed_s
        world.limit = shard_limit
        world.google = google
        shard = task_deps(
            poll_q.url, table, sqs=sqs, sync_queue_urls={"caldav": sync_q.url}, limit=shard_limit or None
        )
        with (
            poll_app.wiring.use(task_deps(poll_q.url, sqs=sqs, reads_table=False)),
            shard_app.wiring.use(shard),
        ):
            t = time.perf_counter()
            run_day(world)
            total = time.perf_counter() - t
        return report(world, total)


@contextmanager
def contextlib_nullcontext(value: str) -> Iterator[str]:
    yield value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sim", description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=4, help="seeding writers (default 4)")
    parser.add_argument(
        "--sample", type=int, help=f"people sampled (default max({MIN_SAMPLE}, N / {SAMPLE_EVERY}))"
    )
    parser.add_argument("--shard-limit", type=int, help="PollShardFunction's page (default SHARD_BATCH)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    # the command line only: quiet handlers (a test's process keeps its own environment)
    import os

    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "calsync")
    text, figures = simulate(
        args.people, threads=args.threads, sample=args.sample, shard_limit=args.shard_limit
    )
    print(text)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
