"""(h) Write cost of one moved event on a calendar with N subscribers (docs/adr/0002, 0016, 0021),
and read cost of one subscriber's meetings read, for both layouts side by side: ``copies`` (before:
every subscriber's partition holds a copy, as with any N before 0021) and ``0021`` (after: past
``WIDE_THRESHOLD`` subscribers the calendar is widened and stored once).

A calendar with N subscribers (its owner's ``primary`` and N - 1 people's ``conflict``) holds one
event; the event moves by a day (its index chunk, hence the sort key of every copy, changes) and
the sync engine stores the change from the in-memory ``FakeSource``. Measured for the second sync
only: the write requests (items put, updated or deleted, whether one by one or in a
BatchWriteItem) and, on DynamoDB Local, the write capacity units it reports
(``ReturnConsumedCapacity=INDEXES``: the table's and the KEYS_ONLY GSI's). moto's figures are
item counts only: its ConsumedCapacity knows neither item sizes nor indexes.

The read: what ``GET /v1/me/meetings`` asks of the store for one of the subscribers (not the
calendar's owner) after the move: the profile's GetItem, the wide calendars' versions (one
BatchGetItem, only with wide calendars) and the Queries; its RCU (strongly consistent) and the
number of Queries.
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


def moved_event_cost(
    make_table: Callable[[], Any], n: int, *, threshold: int | None = None
) -> tuple[Counter[str], Counter[str], Counter[str]]:
    """(items written by kind, capacity units by kind, the read's requests and units) of storing
    one moved event at ``n`` subscribers, then one subscriber's meetings read. ``threshold``: the
    wide threshold in force (``None``: copies whatever N, as before 0021)."""
    from calsync.domain.models import UTC, Provider
    from calsync.store.items import Calendar
    from calsync.store.repository import Repository
    from calsync.store.sync_state import SyncStateStore
    from calsync.sync.engine import SyncEngine

    now = NOW.replace(tzinfo=UTC)
    tbl = make_table()
    meter = Meter(tbl)
    repo = Repository(tbl, wide_threshold=threshold if threshold is not None else 10**9)
    engine = SyncEngine(repo, SyncStateStore(tbl))
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
    return _moved(engine, cal, meter, now)


def _moved(
    engine: Any, cal: Any, meter: Meter, now: datetime
) -> tuple[Counter[str], Counter[str], Counter[str]]:
    from zoneinfo import ZoneInfo

    from calsync.domain.models import Occurrence, OwnerKind, Provider
    from calsync.domain.rules import window
    from calsync.sync.fake import FakeSource

    repo = engine.repository
    repo.widen(cal.calendar_id)  # what a subscription past the threshold does (CalendarSync.fill)
    cal = repo.get_calendar(cal.calendar_id) or cal

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
    items, capacity = Counter(meter.items), Counter(meter.capacity)
    reader = sorted(cal.subscribers)[-1].removeprefix("USER#")  # a subscriber (the owner at N = 1)
    meter.reset()
    calls: Counter[str] = Counter()
    hook = lambda model, **_: calls.update([model.name])  # noqa: E731
    events = repo.table.meta.client.meta.events
    events.register("before-call.dynamodb", hook)
    try:
        profile = repo.get_profile(reader)
        wide_calendars = profile.wide_calendars if profile else {}
        repo.meetings_version(profile.version if profile else 0, wide_calendars)
        start, end = window(now, ZoneInfo("UTC"))
        found = repo.read_owner_events(OwnerKind.USER, reader, start, end, wide_calendars)
    finally:
        events.unregister("before-call.dynamodb", hook)
    assert len(found.occurrences) == 1, found
    read = Counter({"rcu": meter.capacity["read table"], **calls})
    return items, capacity, read


def bench_sharing(counts: tuple[int, ...] = SUBSCRIBERS) -> int:
    from bench.__main__ import table as render
    from bench.fullsync import _backends
    from calsync.store.wide import WIDE_THRESHOLD

    rows: list[list[str]] = []
    for backend, make_table in _backends():
        for n in counts:
            for layout, threshold in (("copies", None), ("0021", WIDE_THRESHOLD)):
                items, capacity, read = moved_event_cost(make_table, n, threshold=threshold)
                wcu = capacity["write table"] + capacity["write gsi"]
                measured = backend != "moto"
                rows.append(
                    [
                        backend,
                        str(n),
                        layout,
                        str(sum(items.values())),
                        ", ".join(f"{k} {v}" for k, v in sorted(items.items())),
                        f"{wcu:g}" if measured else "-",
                        f"{capacity['write table']:g} + {capacity['write gsi']:g}" if measured else "-",
                        f"{capacity['read table']:g}" if measured else "-",
                        ", ".join(f"{k} {read[k]}" for k in ("GetItem", "BatchGetItem", "Query") if read[k]),
                        f"{read['rcu']:g}" if measured else "-",
                    ]
                )
    print(
        "(h) one moved event at N subscribers (sync engine, FakeSource; the second sync), before (copies) "
        f"and after (0021: wide past {WIDE_THRESHOLD}); then one subscriber's meetings read"
    )
    header = ["DynamoDB", "N", "layout", "items", "by kind", "WCU", "table + gsi1", "sync RCU"]
    print(render([*header, "read requests", "read RCU"], rows))
    print()
    return 0
