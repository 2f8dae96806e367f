"""(h) What reads and updates cost per 1,000 people per month, polling vs the live channel (issue 15).

Measured here, in-process on moto (the table from template.yaml) through the API and presence
functions' handlers: the DynamoDB requests, read units and writes of each kind of request — a full
meetings answer (200), a conditional one (304), the same for presence — and what a calendar change
and a presence change write and publish. Read units are computed from the sizes of the items each
read returns (DynamoDB's rules: 4 KB per strongly consistent read unit, items summed per Query);
moto's own ConsumedCapacity does not look at sizes.

Priced at list prices (US East, USD; docs/adr/0015 cites the pages):
HTTP API $1.00 per million requests; Lambda $0.20 per million requests and $0.0000133334 per
GB-second (arm64), 512 MB; DynamoDB on demand $0.125 per million read request units and $0.625 per
million write request units; AppSync Events $1.00 per million operations and $0.08 per million
connection-minutes.

Usage (issue 15): apps open 10 h a day on 21 working days; 20 calendar changes and 10 presence
changes per person per day. Assumed besides (stated, not measured): polling asks for the meetings
every 60 s (the issue's baseline); a person's answer also changes by time about 6 times a day (a
meeting ending, midnight), a refetch each; with the live channel each person's presence is watched
by L = 5 colleagues' apps, each refetching it conditionally on an event (a 200: the version
changed), presence changes include 8 time-driven ones a day (meetings starting and ending); one
connection a day with 2 subscriptions (own meetings, the location's presence); Lambda durations
30 ms for a full answer and 10 ms for a 304 (not measured here: moto is not DynamoDB's latency).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

PEOPLE = 1_000
DAYS = 21
OPEN_MINUTES = 10 * 60
POLL_EVERY_MIN = 1
CAL_CHANGES, PRESENCE_CHANGES, TIME_CHANGES, TIME_PRESENCE = 20, 10, 6, 8
WATCHERS = 5
EVENTS_PER_DAY = 8  # events in each person's window per day (3 days shown)
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


@dataclass
class Meter:
    """DynamoDB requests and read units of the calls made through one client (botocore hooks)."""

    calls: list[str] = field(default_factory=list)
    read_units: float = 0.0
    writes: int = 0

    def __call__(self, event_name: str, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        op = event_name.rsplit(".", 1)[-1]
        self.calls.append(op)
        if op == "GetItem":
            self.read_units += max(1, math.ceil(_item_size(parsed.get("Item") or {}) / 4096))
        elif op == "Query":
            total = sum(_item_size(i) for i in parsed.get("Items", []))
            self.read_units += max(1, math.ceil(total / 4096))  # strongly consistent
        elif op in ("PutItem", "UpdateItem", "DeleteItem"):
            self.writes += 1
        elif op == "BatchWriteItem":
            self.writes += 25  # at most; only the bump writes are priced below


@contextmanager
def metered(table: Any) -> Iterator[Meter]:
    meter = Meter()
    events = table.meta.client.meta.events
    events.register("after-call.dynamodb", meter, unique_id="calsync-bench-meter")
    try:
        yield meter
    finally:
        events.unregister("after-call.dynamodb", meter, unique_id="calsync-bench-meter")


class _Counting:
    def __init__(self) -> None:
        self.published = 0

    def publish(self, channel: str, events: list[Any]) -> bool:
        self.published += len(events)
        return True


@dataclass
class Measured:
    full_reads: float
    full_calls: int
    nm_reads: float
    nm_calls: int
    presence_reads: float
    presence_nm_reads: float
    change_bumps: int
    change_publishes: int
    presence_bumps: int
    presence_publishes: int


def measure() -> Measured:
    import importlib

    import boto3
    from moto import mock_aws

    from calsync import live
    from calsync.config import get_presence_settings
    from calsync.domain.presence import Status
    from calsync.store.presence import PresenceRepository
    from calsync.store.repository import Repository
    from tests.support import apigw
    from tests.support.apigw import api_on, calendar, occurrence
    from tests.support.template import table_create_kwargs

    counting = _Counting()
    live.use(counting)
    get_presence_settings.cache_clear()
    try:
        with mock_aws():
            table = boto3.resource("dynamodb", region_name="eu-west-1").create_table(
                **table_create_kwargs("calsync-bench-cost")
            )
            repo = Repository(table)
            repo.update_profile("alice", time_zone="Europe/Berlin")
            repo.set_member_locations("alice", ["hq"])
            repo.set_member_locations("bob", ["hq"])
            cal = calendar(repo, "cal-a", "acc-a", "alice", subscribers={"USER#alice": "primary"})
            occs = [
                occurrence(
                    cal,
                    uuid.uuid4().hex,
                    f"Meeting {d}-{h}",
                    NOW + timedelta(days=d, hours=h),
                    NOW + timedelta(days=d, hours=h, minutes=45),
                )
                for d in range(3)
                for h in range(EVENTS_PER_DAY)
            ]
            repo.store_occurrences(cal, occs)
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
            presence_module = importlib.import_module("functions.presence.app")
            presence_module.set_aws(table=table)
            saved = presence_module.clock
            presence_module.clock = lambda: NOW
            try:
                ctx = apigw.LambdaContext()

                def presence(headers: dict[str, str] | None = None) -> apigw.Answer:
                    event = apigw.event(
                        "GET", "/v1/users/alice/presence", claims=apigw.claims("bob", ["hq"]), headers=headers
                    )
                    return apigw.answer(presence_module.lambda_handler(event, ctx))

                PresenceRepository(table).create_session("alice", "s1", NOW, timedelta(hours=12))
                seen = presence()
                with metered(table) as p_full:
                    presence()
                with metered(table) as p_nm:
                    assert presence({"if-none-match": seen.headers["ETag"]}).status == 304
            finally:
                presence_module.clock = saved
                presence_module.set_aws()
            counting.published = 0
            with metered(table) as change:
                repo.store_occurrences(
                    cal, [occurrence(cal, "new", "New", NOW + timedelta(hours=3), NOW + timedelta(hours=4))]
                )
            change_publishes = counting.published
            counting.published = 0
            with metered(table) as pchange:
                PresenceRepository(table).set_status("alice", Status.BUSY, None, NOW)
            presence_publishes = counting.published
    finally:
        live.use(None)
        get_presence_settings.cache_clear()
    return Measured(
        full_reads=full.read_units,
        full_calls=len(full.calls),
        nm_reads=nm.read_units,
        nm_calls=len(nm.calls),
        presence_reads=p_full.read_units,
        presence_nm_reads=p_nm.read_units,
        change_bumps=change.calls.count("UpdateItem"),
        change_publishes=change_publishes,
        presence_bumps=pchange.calls.count("UpdateItem") - 1,  # the PRESENCE item itself is not a bump
        presence_publishes=presence_publishes,
    )


def _lambda(invocations: float, ms: float) -> float:
    return invocations * LAMBDA_REQ_PER_M / 1e6 + invocations * ms / 1000 * LAMBDA_GB * LAMBDA_GB_S


def _reads(invocations: float, units: float) -> float:
    return invocations * units * RRU_PER_M / 1e6


def model(m: Measured) -> tuple[list[list[str]], dict[str, float]]:
    """Per 1,000 people per month: (rows, totals by approach)."""
    n = PEOPLE * DAYS
    polls = n * OPEN_MINUTES / POLL_EVERY_MIN
    changes = n * (CAL_CHANGES + TIME_CHANGES)
    writes_per_change = n * CAL_CHANGES * m.change_bumps * WRU_PER_M / 1e6  # the version bumps only
    presence_events = n * (PRESENCE_CHANGES + TIME_PRESENCE)

    def approach(http: float, lam: float, ddb: float, events: float) -> list[float]:
        return [http, lam, ddb, events, http + lam + ddb + events]

    plain = approach(polls * HTTP_PER_M / 1e6, _lambda(polls, FULL_MS), _reads(polls, m.full_reads), 0.0)
    conditional = approach(
        polls * HTTP_PER_M / 1e6,
        _lambda(changes, FULL_MS) + _lambda(polls - changes, NOT_MODIFIED_MS),
        _reads(changes, m.full_reads) + _reads(polls - changes, m.nm_reads) + writes_per_change,
        0.0,
    )
    refetches = changes + n  # one per change, one per (re)connect (a 304 mostly: priced as a 200)
    presence_refetches = presence_events * WATCHERS
    ops = (
        n * 3  # connect + 2 subscriptions
        + n * CAL_CHANGES * m.change_publishes * 2  # publish + delivery to the person's app
        + presence_events * m.presence_publishes * (1 + WATCHERS)  # publish + deliveries
    )
    live_cost = approach(
        (refetches + presence_refetches) * HTTP_PER_M / 1e6,
        _lambda(refetches + presence_refetches, FULL_MS),
        _reads(refetches, m.full_reads)
        + _reads(presence_refetches, m.presence_reads)
        + writes_per_change
        + n * PRESENCE_CHANGES * m.presence_bumps * WRU_PER_M / 1e6,
        ops * EVENTS_OP_PER_M / 1e6 + n * OPEN_MINUTES * EVENTS_CONN_MIN_PER_M / 1e6,
    )
    rows = []
    for name, costs in (
        ("polling every 60 s", plain),
        ("polling with If-None-Match", conditional),
        ("live channel (AppSync Events)", live_cost),
    ):
        rows.append([name, *(f"${c:,.2f}" for c in costs)])
    return rows, {"polling": plain[-1], "conditional": conditional[-1], "live": live_cost[-1]}


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
        f"    a calendar change: {m.change_bumps} version bump, {m.change_publishes} publish; "
        f"a presence change: {m.presence_bumps} bump, {m.presence_publishes} publish (one per location)"
    )
    rows, totals = model(m)
    print(render(["approach", "HTTP API", "Lambda", "DynamoDB", "AppSync Events", "total"], rows))
    met = totals["live"] <= TARGET
    verdict = "met" if met else "NOT met"
    print(f"    target with the live channel: <= ${TARGET:.2f}: {verdict} (${totals['live']:.2f})")
    return 0 if met else 1
