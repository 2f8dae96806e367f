"""(h) What reads and updates cost per 1,000 people per month, polling vs the live channel (issue 15).

Measured here, in-process on moto (the table from template.yaml) through the API, presence and
LiveDue functions: the DynamoDB requests, read units and writes of each kind of request — a full
meetings answer (200), a conditional one (304), the same for presence — what a calendar change and a
status set write and publish (and whether the presence event carries the answer), what the schedule
does when it looks again after a calendar change, and one working day of one person with the
schedule run every minute on a frozen clock: the presence and meetings events that time alone
publishes (meetings starting and ending, a meeting leaving the answer), the people-instants handled
and their reads and writes, and the fixed cost of a run with nobody due. Read units are computed from
the sizes of the items each read returns (DynamoDB's rules: 4 KB per strongly consistent read unit,
items summed per Query); moto's own ConsumedCapacity does not look at sizes.

Priced at list prices (US East, USD; docs/adr/0015 cites the pages):
HTTP API $1.00 per million requests; Lambda $0.20 per million requests and $0.0000133334 per
GB-second (arm64), 512 MB; DynamoDB on demand $0.125 per million read request units and $0.625 per
million write request units; AppSync Events $1.00 per million operations (a publish, and each
delivery to a subscriber) and $0.08 per million connection-minutes.

Usage (issue 15): apps open 10 h a day on 21 working days; 20 calendar changes and 10 presence
changes per person per day. Assumed besides (stated, not measured): polling asks for the meetings
every 60 s (the issue's baseline); a person has 4 meetings of 45 min a day (MEETING_HOURS; the
time-driven events follow from them and are measured); each person's presence is watched by
L = 5 colleagues' apps (WATCHERS), so a presence event is 1 publish + 5 deliveries; one connection
a day with 2 subscriptions (own meetings, the location's presence), and at connect the app fetches
its meetings once and each watched colleague's presence once; the meetings answer also changes at
midnight (a publish nobody receives); Lambda durations 30 ms for a full answer, 10 ms for a 304,
20 ms per scheduled run and per person it handles (not measured: moto is not DynamoDB's latency).
Deliveries are publishes times subscribers: the publishes are counted, the subscribers assumed.
The schedule's runs (every minute, all month) are a fixed cost, charged here in full to 1,000 people.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

PEOPLE = 1_000
DAYS = 21
OPEN_MINUTES = 10 * 60
POLL_EVERY_MIN = 1
CAL_CHANGES, PRESENCE_CHANGES = 20, 10
WATCHERS = 5  # colleagues' apps subscribed to each person's presence
# own meetings, and each watched colleague's presence channel (as the reference page subscribes,
# local/web/app.js; one `…/presence/*` subscription instead would deliver the whole location's events)
SUBSCRIPTIONS = 1 + WATCHERS
# AppSync GraphQL's real-time updates are metered in 5 KB payload increments; whether Event API
# operations are too is not on the pricing text found (docs/adr/0026): counted as if they were, so an
# event over 5 KB is charged as more than one operation (a presence event is ~250 bytes: one)
EVENT_OP_BYTES = 5 * 1024
AT_SCALE = 100_000  # people sharing the schedule's fixed cost in the second live row
MEETING_HOURS = (9, 11, 14, 16)  # 4 meetings of 45 min a day (UTC; the person's zone is Berlin)
SCHEDULE_RUNS = 60 * 24 * 30  # LiveDueFunction every minute, all month: a fixed cost, whatever the people
SCHEDULE_RUN_MS, PERSON_MS = 20, 20
# a run handles its minute itself up to time_driven.INLINE_PEOPLE people (docs/adr/0026, amended):
# one invocation, and the tasks an idle run hands to the queue are measured (``run_tasks``: none).
# A minute with more people due fans out as before: a task per DUE shard (16 invocations; SQS: 2
# SendMessageBatch, a receive and a delete per task). How many minutes do is not measured: at most
# the month's people-instants / INLINE_PEOPLE (every such minute has more than INLINE_PEOPLE), and
# at most every run; charged at that bound. (The event source mapping's empty long polls between
# runs are not counted, as before.)
FANOUT_TASKS = 16
SQS_PER_M = 0.40
TARGET = 3.0

HTTP_PER_M = 1.00
LAMBDA_REQ_PER_M = 0.20
LAMBDA_GB_S = 0.0000133334
LAMBDA_GB = 0.5
FULL_MS, NOT_MODIFIED_MS = 30, 10
RRU_PER_M, WRU_PER_M = 0.125, 0.625
EVENTS_OP_PER_M, EVENTS_CONN_MIN_PER_M = 1.00, 0.08

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def _size(value: Any) -> int:
    """A value's size by DynamoDB's rules (strings and binaries by length, numbers about one byte
    per two digits, lists and maps 3 bytes plus 1 per element). The values are the ones the table
    resource hands back (its hook deserializes before ours runs)."""
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if isinstance(value, bool) or value is None:
        return 1
    if isinstance(value, dict):
        return 3 + sum(1 + len(str(k).encode()) + _size(v) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return 3 + sum(1 + _size(v) for v in value)
    return len(str(value)) // 2 + 1  # a number


def _item_size(item: dict[str, Any]) -> int:
    return sum(len(str(k).encode()) + _size(v) for k, v in item.items())


WRITES = ("PutItem", "UpdateItem", "DeleteItem")


@dataclass
class Meter:
    """DynamoDB requests, read units and write units of the calls made through one client (botocore
    hooks). Write units by DynamoDB's rules (1 KB per unit, the larger of the item before and after;
    https://aws.amazon.com/dynamodb/pricing/on-demand/): a PutItem's item as sent, an UpdateItem's
    or DeleteItem's as returned (``ALL_NEW``/``ALL_OLD``), 1 when the call returns none."""

    calls: list[str] = field(default_factory=list)
    read_units: float = 0.0
    writes: int = 0
    write_log: list[tuple[str, int]] = field(default_factory=list)  # (operation, write units)
    _sent: dict[str, Any] = field(default_factory=dict)

    def params(self, params: dict[str, Any], **_: Any) -> None:
        self._sent = dict(params)

    def __call__(self, event_name: str, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        op = event_name.rsplit(".", 1)[-1]
        self.calls.append(op)
        if op == "GetItem":
            self.read_units += max(1, math.ceil(_item_size(parsed.get("Item") or {}) / 4096))
        elif op == "Query":
            total = sum(_item_size(i) for i in parsed.get("Items", []))
            self.read_units += max(1, math.ceil(total / 4096))  # strongly consistent
        elif op in WRITES:
            self.writes += 1
            item = self._sent.get("Item") if op == "PutItem" else parsed.get("Attributes")
            self.write_log.append((op, max(1, math.ceil(_item_size(item or {}) / 1024))))
        elif op == "BatchWriteItem":
            self.writes += 25  # at most; only the bump writes are priced below

    def units(self, *ops: str) -> int:
        """Write units of the calls of these operations (all writes when none given)."""
        return sum(u for op, u in self.write_log if op in (ops or WRITES))


@contextmanager
def metered(table: Any) -> Iterator[Meter]:
    meter = Meter()
    events = table.meta.client.meta.events
    # provide-client-params: before the table resource serializes them (its values are Python's)
    events.register("provide-client-params.dynamodb", meter.params, unique_id="calsync-bench-params")
    events.register("after-call.dynamodb", meter, unique_id="calsync-bench-meter")
    try:
        yield meter
    finally:
        events.unregister("after-call.dynamodb", meter, unique_id="calsync-bench-meter")
        events.unregister("provide-client-params.dynamodb", meter.params, unique_id="calsync-bench-params")


class _Counting:
    def __init__(self) -> None:
        self.published = 0
        self.by_type: dict[str, int] = {}
        self.last: dict[str, Any] = {}

    def publish(self, channel: str, events: list[Any]) -> bool:
        self.published += len(events)
        for event in events:
            self.by_type[event["type"]] = self.by_type.get(event["type"], 0) + 1
            self.last = dict(event)
        return True

    def reset(self) -> None:
        self.published = 0
        self.by_type = {}


@dataclass
class Measured:
    full_reads: float
    full_calls: int
    nm_reads: float
    nm_calls: int
    presence_reads: float
    presence_nm_reads: float
    change_writes: int  # a calendar change: the version bump and the "look again" (DUE#SOON)
    change_publishes: int
    change_look_reads: float  # the schedule's "look again" after it (idle run's cost left out)
    change_look_writes: int
    presence_writes: int  # a status set through the API, for the live channel: the bump, the next instant
    presence_reads_on_write: float
    presence_publishes: int
    presence_event_has_answer: bool
    presence_event_bytes: int
    # one simulated working day of one person (the schedule run every minute, frozen clock)
    day_runs: int
    day_time_presence: int  # presence events published by time (meetings starting/ending, offline)
    day_time_meetings: int  # meetings events published by time (a meeting leaving the answer)
    day_handled: int  # people-instants the schedule handled (re-checks included)
    day_reads: float  # read units of the schedule's runs for this person (idle runs' cost left out)
    day_writes: int  # writes for this person (bumps, instants armed and deleted)
    run_reads: float  # a run with nobody due (the buckets' Queries, the cursor)
    run_writes: int
    run_tasks: int  # the tasks such a run hands to the queue (each an invocation)


def _seed_meetings(repo: Any, day: datetime) -> Any:
    from tests.support.apigw import calendar, occurrence

    cal = calendar(repo, "cal-a", "acc-a", "alice", subscribers={"USER#alice": "primary"})
    occs = [
        occurrence(
            cal,
            uuid.uuid4().hex,
            f"Meeting {d}-{h}",
            day + timedelta(days=d, hours=h),
            day + timedelta(days=d, hours=h, minutes=45),
        )
        for d in range(3)
        for h in MEETING_HOURS
    ]
    repo.store_occurrences(cal, occs)
    return cal


def measure() -> Measured:
    import importlib
    import json

    import boto3
    from moto import mock_aws

    from calsync import live
    from calsync.api import time_driven
    from calsync.config import get_presence_settings
    from calsync.store import due, keys
    from calsync.store.repository import Repository
    from calsync.wiring.presence import presence_deps, presence_service
    from tests.support import apigw
    from tests.support.apigw import api_on, occurrence
    from tests.support.template import table_create_kwargs

    counting = _Counting()
    live.use(counting)
    get_presence_settings.cache_clear()
    presence_module = importlib.import_module("functions.presence.app")
    clock = {"now": NOW}
    wired = ExitStack()
    try:
        with mock_aws():
            table = boto3.resource("dynamodb", region_name="eu-west-1").create_table(
                **table_create_kwargs("calsync-bench-cost")
            )
            repo = Repository(table)
            repo.update_profile("alice", time_zone="Europe/Berlin")
            repo.set_member_locations("alice", ["hq"])
            repo.set_member_locations("bob", ["hq"])
            cal = _seed_meetings(repo, NOW.replace(hour=0))
            alice = apigw.claims("alice", ["hq"])
            with api_on(table, NOW) as api:
                first = api.get("/v1/me/meetings", claims=alice)
                with metered(table) as full:
                    api.get("/v1/me/meetings", claims=alice)
                with metered(table) as nm:
                    got = api.get(
                        "/v1/me/meetings", claims=alice, headers={"if-none-match": first.headers["ETag"]}
                    )
                assert got.status == 304, (got.status, got.body)
            wired.enter_context(presence_module.wiring.use(presence_deps(table, clock=lambda: clock["now"])))
            store = due.DueStore(table)
            parts = store, presence_service(table, due=store)  # the live schedule's (LiveDueDeps)
            for shard in range(keys.DUE_SHARDS):  # the schedule has been running
                due.DueStore(table).set_cursor(NOW, shard)
            ctx = apigw.LambdaContext()

            def presence(method: str, path: str, who: str, **kw: Any) -> apigw.Answer:
                event = apigw.event(method, path, claims=apigw.claims(who, ["hq"]), **kw)
                return apigw.answer(presence_module.lambda_handler(event, ctx))

            assert presence("POST", "/v1/me/sessions", "alice").status == 201  # the day starts
            seen = presence("GET", "/v1/users/alice/presence", "bob")
            with metered(table) as p_full:
                presence("GET", "/v1/users/alice/presence", "bob")
            with metered(table) as p_nm:
                got = presence(
                    "GET", "/v1/users/alice/presence", "bob", headers={"if-none-match": seen.headers["ETag"]}
                )
                assert got.status == 304
            counting.reset()
            with metered(table) as change:
                repo.store_occurrences(
                    cal, [occurrence(cal, "new", "New", NOW + timedelta(hours=3), NOW + timedelta(hours=4))]
                )
            change_publishes = counting.published
            soon_key = {"pk": due.soon_pk(keys.due_shard("alice")), "sk": "USER#alice"}
            soon = table.get_item(Key=soon_key).get("Item") is not None
            idle_table = boto3.resource("dynamodb", region_name="eu-west-1").create_table(
                **table_create_kwargs("calsync-bench-idle")
            )
            for shard in range(keys.DUE_SHARDS):  # a run with nobody due: the schedule's fixed cost
                due.DueStore(idle_table).set_cursor(NOW, shard)
            with metered(idle_table) as idle:
                idle_run = time_driven.run(due.DueStore(idle_table), parts[1], NOW)
                assert idle_run.people == 0
            with metered(table) as looked:  # the schedule's next run: the change's "look again"
                assert time_driven.run(*parts, NOW).people == 1
            counting.reset()
            with metered(table) as pchange:
                assert presence("PUT", "/v1/me/presence", "alice", body={"status": "busy"}).status == 200
            presence_publishes = counting.published
            event = counting.last
            assert presence("DELETE", "/v1/me/presence", "alice").status in (200, 204)
            # a working day, the schedule run every minute (as EventBridge does), nothing else written
            time_driven.run(*parts, NOW)  # the writes above: their "look again"
            counting.reset()
            handled = 0
            with metered(table) as day:
                for minute in range(1, OPEN_MINUTES + 1):
                    clock["now"] = NOW + timedelta(minutes=minute)
                    handled += time_driven.run(*parts, clock["now"]).people
            day_types = dict(counting.by_type)
    finally:
        wired.close()
        live.use(None)
        get_presence_settings.cache_clear()
    return Measured(
        full_reads=full.read_units,
        full_calls=len(full.calls),
        nm_reads=nm.read_units,
        nm_calls=len(nm.calls),
        presence_reads=p_full.read_units,
        presence_nm_reads=p_nm.read_units,
        change_writes=change.units("UpdateItem") + soon,  # the bump; the "look again" put (1 unit)
        change_publishes=change_publishes,
        presence_writes=pchange.units() - pchange.write_log[0][1],  # the status item is there anyway
        presence_reads_on_write=pchange.read_units,
        presence_publishes=presence_publishes,
        presence_event_has_answer="presence" in event and "etag" in event,
        presence_event_bytes=len(json.dumps(event, separators=(",", ":"))),
        day_runs=OPEN_MINUTES,
        day_time_presence=day_types.get("presence", 0),
        day_time_meetings=day_types.get("meetings", 0),
        day_handled=handled,
        day_reads=day.read_units - OPEN_MINUTES * idle.read_units,
        day_writes=day.units() - OPEN_MINUTES * idle.units(),
        change_look_reads=looked.read_units - idle.read_units,
        change_look_writes=looked.units() - idle.units(),
        run_reads=idle.read_units,
        run_writes=idle.units(),
        run_tasks=idle_run.tasks,
    )


def _lambda(invocations: float, ms: float) -> float:
    return invocations * LAMBDA_REQ_PER_M / 1e6 + invocations * ms / 1000 * LAMBDA_GB * LAMBDA_GB_S


def _reads(invocations: float, units: float) -> float:
    return invocations * units * RRU_PER_M / 1e6


def _tasks(tasks: float) -> float:
    """Lambda and SQS of ``tasks`` queue tasks sent in one run (SendMessageBatch of 10, a receive
    and a delete each), their invocations ``SCHEDULE_RUN_MS`` each."""
    return _lambda(tasks, SCHEDULE_RUN_MS) + (math.ceil(tasks / 10) + 2 * tasks) * SQS_PER_M / 1e6


def _fanout(people: int, m: Measured) -> float:
    """The month's minutes with more than INLINE_PEOPLE of ``people`` due, at most (module notes),
    each charged a task per DUE shard."""
    from calsync.api.time_driven import INLINE_PEOPLE

    minutes = min(SCHEDULE_RUNS, people * DAYS * m.day_handled / INLINE_PEOPLE)
    return minutes * _tasks(FANOUT_TASKS)


def model(m: Measured) -> tuple[list[list[str]], dict[str, float], list[list[str]], list[str]]:
    """Per 1,000 people per month: (rows, totals by approach, the live channel part by part, notes)."""
    n = PEOPLE * DAYS  # person-days
    polls = n * OPEN_MINUTES / POLL_EVERY_MIN
    time_meetings = m.day_time_meetings + 1  # measured in the open hours; + midnight (window moves)
    changes = n * (CAL_CHANGES + time_meetings)
    version_writes = n * CAL_CHANGES * WRU_PER_M / 1e6  # the bump of each calendar change

    def approach(http: float, lam: float, ddb: float, events: float) -> list[float]:
        return [http, lam, ddb, events, http + lam + ddb + events]

    plain = approach(polls * HTTP_PER_M / 1e6, _lambda(polls, FULL_MS), _reads(polls, m.full_reads), 0.0)
    conditional = approach(
        polls * HTTP_PER_M / 1e6,
        _lambda(changes, FULL_MS) + _lambda(polls - changes, NOT_MODIFIED_MS),
        _reads(changes, m.full_reads) + _reads(polls - changes, m.nm_reads) + version_writes,
        0.0,
    )
    # the live channel, from what the code was measured to do; each part on its own (``parts``)
    refetches = n * (CAL_CHANGES + m.day_time_meetings + 1)  # own meetings: each event + the connect
    presence_events = n * (PRESENCE_CHANGES * m.presence_publishes + m.day_time_presence)
    presence_gets = n * WATCHERS  # each colleague's presence once, at connect
    if not m.presence_event_has_answer:
        presence_gets += presence_events * WATCHERS  # a refetch per delivery
    per_delivery = math.ceil(m.presence_event_bytes / EVENT_OP_BYTES)  # operations per presence event
    connect_ops = n * (1 + SUBSCRIPTIONS)
    meetings_ops = n * (
        CAL_CHANGES * m.change_publishes * 2 + m.day_time_meetings * 2 + 1
    )  # midnight: 0 receivers
    presence_ops = presence_events * per_delivery * (1 + WATCHERS)  # publish + a delivery to each watcher
    connection = n * OPEN_MINUTES * EVENTS_CONN_MIN_PER_M / 1e6
    ops = EVENTS_OP_PER_M / 1e6

    def gets(count: float, units: float) -> float:  # HTTP API, Lambda and DynamoDB of ``count`` GETs
        return count * HTTP_PER_M / 1e6 + _lambda(count, FULL_MS) + _reads(count, units)

    # the schedule's parts, each split by service (the table's columns are summed from them below)
    handling_ddb = n * (m.day_reads * RRU_PER_M + m.day_writes * WRU_PER_M) / 1e6
    handling_lambda = n * m.day_handled * PERSON_MS / 1000 * (LAMBDA_GB * LAMBDA_GB_S)
    fanout = _fanout(PEOPLE, m)  # Lambda and SQS
    fixed_ddb = SCHEDULE_RUNS * (m.run_reads * RRU_PER_M + m.run_writes * WRU_PER_M) / 1e6
    fixed_lambda = _lambda(SCHEDULE_RUNS, SCHEDULE_RUN_MS) + SCHEDULE_RUNS * _tasks(m.run_tasks)  # and SQS

    parts: list[tuple[str, str, float]] = [  # (what, service, $)
        ("connection-minutes (10 h a day)", "AppSync", connection),
        (f"connect + {SUBSCRIPTIONS} subscriptions a day", "AppSync", connect_ops * ops),
        ("own meetings events: publish + delivery", "AppSync", meetings_ops * ops),
        (f"presence events: publish + {WATCHERS} deliveries", "AppSync", presence_ops * ops),
        (
            "own meetings refetched after each event and at connect",
            "HTTP+Lambda+DDB",
            gets(refetches, m.full_reads),
        ),
        ("colleagues' presence read at connect", "HTTP+Lambda+DDB", gets(presence_gets, m.presence_reads)),
        (
            "calendar changes: version bump + look again",
            "DynamoDB",
            n
            * CAL_CHANGES
            * ((m.change_writes + m.change_look_writes) * WRU_PER_M + m.change_look_reads * RRU_PER_M)
            / 1e6,
        ),
        (
            "status sets: version bump + next instant",
            "DynamoDB",
            n * PRESENCE_CHANGES * m.presence_writes * WRU_PER_M / 1e6,
        ),
        ("changes by time: the schedule's handling", "DynamoDB+Lambda", handling_ddb + handling_lambda),
        (
            "minutes with more people due than a run handles itself: fanned out (at most)",
            "Lambda+SQS",
            fanout,
        ),
        ("the schedule's fixed cost (every minute, all month)", "Lambda+SQS+DDB", fixed_lambda + fixed_ddb),
    ]
    http = (refetches + presence_gets) * HTTP_PER_M / 1e6
    appsync = sum(cost for _, service, cost in parts if service == "AppSync")
    total = sum(cost for _, _, cost in parts)
    # Lambda (and SQS, the schedule's): the GETs' functions, the handling of people, the runs
    lam = _lambda(refetches + presence_gets, FULL_MS) + handling_lambda + fanout + fixed_lambda
    ddb = total - appsync - http - lam
    live_cost = approach(http, lam, ddb, appsync)
    at_scale = approach(  # the fixed cost shared; the fan-out of AT_SCALE people's busier minutes
        http,
        lam - fixed_lambda * (1 - PEOPLE / AT_SCALE) - fanout + _fanout(AT_SCALE, m) * PEOPLE / AT_SCALE,
        ddb - fixed_ddb * (1 - PEOPLE / AT_SCALE),
        appsync,
    )
    rows = []
    for name, costs in (
        ("polling every 60 s", plain),
        ("polling with If-None-Match", conditional),
        ("live channel (AppSync Events)", live_cost),
        (f"live, per 1,000 of {AT_SCALE:,} people", at_scale),
    ):
        rows.append([name, *(f"${c:,.2f}" for c in costs)])
    per_event = n * per_delivery * (1 + WATCHERS) * ops  # one presence event a person-day, L watchers
    explained = [[what, service, f"${cost:.2f}"] for what, service, cost in parts]
    explained.append(
        ["AppSync Events alone (what the usage makes it publish and deliver)", "AppSync", f"${appsync:.2f}"]
    )
    explained.append(["the rest of the stack", "", f"${total - appsync:.2f}"])
    notes = [
        f"usage: {n:,} person-days; {CAL_CHANGES} calendar changes + {m.day_time_meetings} by time "
        "+ midnight, "
        f"{PRESENCE_CHANGES * m.presence_publishes + m.day_time_presence} presence events "
        f"({PRESENCE_CHANGES} chosen + {m.day_time_presence} by time, measured) a person-day; "
        f"each presence event per person-day delivered to {WATCHERS} watchers is ${per_event:.2f}",
        f"AppSync Events alone is ${appsync:.2f} against the ${TARGET:.2f} target: "
        + (
            "the target is out of reach under this usage whatever the rest costs"
            if appsync > TARGET
            else "within it"
        ),
    ]
    return (
        rows,
        {"polling": plain[-1], "conditional": conditional[-1], "live": live_cost[-1]},
        explained,
        notes,
    )


def bench_cost() -> int:
    from bench.__main__ import table as render

    m = measure()
    print("(h) reads and updates per 1,000 people per month, polling vs live (issue 15)")
    print("    assumptions and list prices: bench/cost.py; measured per request:")
    print(
        f"    full meetings answer {m.full_calls} DynamoDB calls, {m.full_reads:g} read units; "
        f"304 {m.nm_calls} call, {m.nm_reads:g} read unit; presence {m.presence_reads:g} read units, "
        f"304 {m.presence_nm_reads:g}"
    )
    print(
        f"    a calendar change: {m.change_writes} writes for the live channel (version, look-again) and "
        f"{m.change_look_writes} writes, {m.change_look_reads:g} read units when the schedule looks again, "
        f"{m.change_publishes} publish; a status set: {m.presence_writes} writes, {m.presence_publishes} "
        f"publish (one per location), the answer in the event: {m.presence_event_has_answer} "
        f"({m.presence_event_bytes} bytes)"
    )
    print(
        f"    one working day ({len(MEETING_HOURS)} meetings, the schedule run every minute for "
        f"{m.day_runs} min): {m.day_time_presence} presence and {m.day_time_meetings} meetings events "
        f"by time, {m.day_handled} people-instants handled, {m.day_reads:g} read units, "
        f"{m.day_writes} writes; a run with nobody due: {m.run_reads:g} read units, {m.run_writes} "
        f"writes, {m.run_tasks} tasks to the queue"
    )
    rows, totals, parts, notes = model(m)
    print(render(["approach", "HTTP API", "Lambda", "DynamoDB", "AppSync Events", "total"], rows))
    print("    the live channel part by part (per 1,000 people per month, the first row's):")
    print(render(["part", "service", "cost"], parts))
    for line in notes:
        print(f"    {line}")
    met = totals["live"] <= TARGET
    verdict = "met" if met else "NOT met"
    print(f"    target with the live channel: <= ${TARGET:.2f}: {verdict} (${totals['live']:.2f})")
    return 0 if met else 1
