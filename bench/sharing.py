"""(h) Write cost of one moved event on a calendar with N subscribers (docs/adr/0002, 0016).

A calendar with N subscribers (its owner's ``primary`` and N - 1 people's ``conflict``) holds one
event; the event moves by a day (its index chunk, hence the sort key of every copy, changes) and
the sync engine stores the change from the in-memory ``FakeSource``. Measured for the second sync
only: the write requests (items put, updated or deleted, whether one by one or in a
BatchWriteItem) and, on DynamoDB Local, the write capacity units it reports
(``ReturnConsumedCapacity=INDEXES``: the table's and the KEYS_ONLY GSI's). moto's figures are
item counts only: its ConsumedCapacity knows neither item sizes nor indexes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

SUBSCRIBERS = (1, 10, 100, 1000)
NOW = datetime(2026, 11, 20, 8, 0)
WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
READS = ("GetItem", "Query", "BatchGetItem")


class Meter:
    """Counts a table's write requests and consumed capacity through botocore's events."""

    def __init__(self, table: Any) -> None:
        self.items: Counter[str] = Counter()
        self.capacity: Counter[str] = Counter()
        events = table.meta.client.meta.events
        events.register("before-parameter-build.dynamodb", self._ask)
        events.register("after-call.dynamodb", self._count)

    def reset(self) -> None:
        self.items.clear()
        self.capacity.clear()

    def _ask(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name in WRITES + READS:
            params["ReturnConsumedCapacity"] = "INDEXES"
        if model.name == "BatchWriteItem":
            for requests in params.get("RequestItems", {}).values():
                for r in requests:
                    self.items["put" if "PutRequest" in r else "delete"] += 1
        elif model.name in ("PutItem", "UpdateItem", "DeleteItem"):
            self.items[model.name.removesuffix("Item").lower()] += 1

    def _count(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        consumed = parsed.get("ConsumedCapacity")
        for c in consumed if isinstance(consumed, list) else [consumed] if consumed else []:
            kind = "write" if model.name in WRITES else "read"
            self.capacity[f"{kind} table"] += float(c.get("Table", {}).get("CapacityUnits", 0.0))
            for gsi in (c.get("GlobalSecondaryIndexes") or {}).values():
                self.capacity[f"{kind} gsi"] += float(gsi.get("CapacityUnits", 0.0))
            if "Table" not in c:
                self.capacity[f"{kind} table"] += float(c.get("CapacityUnits", 0.0))


def moved_event_cost(make_table: Callable[[], Any], n: int) -> tuple[Counter[str], Counter[str]]:
    """(items written by kind, capacity units by kind) of storing one moved event at ``n``
    subscribers."""
    from calsync.domain.models import UTC, Occurrence, Provider
    from calsync.store.items import Calendar
    from calsync.store.repository import Repository
    from calsync.store.sync_state import SyncStateStore
    from calsync.sync.engine import SyncEngine
    from calsync.sync.fake import FakeSource

    now = NOW.replace(tzinfo=UTC)
    tbl = make_table()
    meter = Meter(tbl)
    engine = SyncEngine(Repository(tbl), SyncStateStore(tbl))
    people = {f"USER#p{i:04d}": "conflict" for i in range(1, n)}
    subscribers: dict[str, Any] = {"USER#owner": "primary", **people}
    cal = Calendar(
        calendar_id=f"team-{n}",
        account_id="bench",
        owner_user_id="owner",
        provider=Provider.CALDAV,
        subscribers=subscribers,
    )
    engine.repository.put_calendar(cal)

    def event(start: datetime) -> Occurrence:
        return Occurrence(
            provider=Provider.CALDAV,
            account_id="bench",
            calendar_id=cal.calendar_id,
            event_id="weekly-review",
            title="Weekly review of the team's roadmap",
            start=start,
            end=start + timedelta(hours=1),
            organizer="lead@example.com",
            meeting_link="https://meet.calsync.test/weekly-review",
        )

    source = FakeSource(page_size=100)
    source.put("weekly-review", [event(now + timedelta(hours=3))])
    engine.sync(cal, source, now=now)
    source.put("weekly-review", [event(now + timedelta(days=1, hours=3))])  # moved by a day
    meter.reset()
    outcome = engine.sync(cal, source, now=now + timedelta(minutes=5))
    assert outcome.status == "synced" and outcome.stored == 1, outcome
    return meter.items, meter.capacity


def bench_sharing(counts: tuple[int, ...] = SUBSCRIBERS) -> int:
    from bench.__main__ import table as render
    from bench.fullsync import _backends

    rows: list[list[str]] = []
    for backend, make_table in _backends():
        for n in counts:
            items, capacity = moved_event_cost(make_table, n)
            wcu = capacity["write table"] + capacity["write gsi"]
            rows.append(
                [
                    backend,
                    str(n),
                    str(sum(items.values())),
                    ", ".join(f"{k} {v}" for k, v in sorted(items.items())),
                    f"{wcu:g}" if backend != "moto" else "-",
                    f"{capacity['write table']:g} + {capacity['write gsi']:g}" if backend != "moto" else "-",
                    f"{capacity['read table']:g}" if backend != "moto" else "-",
                ]
            )
    print("(h) write cost of one moved event at N subscribers (sync engine, FakeSource; the second sync)")
    print(render(["DynamoDB", "N", "items", "by kind", "WCU", "table + gsi1", "RCU"], rows))
    print()
    return 0
