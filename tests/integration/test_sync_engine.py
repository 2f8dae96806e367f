"""The provider-independent sync engine against the in-memory fake source and a real table
(moto AND Amazon DynamoDB Local). Rules S6 (cursor after every page, no change lost, duplicates
harmless), S3/S5 (cheap check, full comparison, sweep), S10 (horizon), C10 (moved occurrences).

The clock is frozen: ``now`` is passed to every sync.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from calsync.api.calendar_sync import CalendarSync
from calsync.domain import limits
from calsync.domain.errors import Conflict
from calsync.domain.models import UTC, Occurrence, OwnerKind, Provider, Visibility
from calsync.observability import metrics
from calsync.store import keys
from calsync.store.items import Calendar
from calsync.store.repository import Repository
from calsync.store.sync_state import SyncStateStore
from calsync.sync import budget as budgets
from calsync.sync import failures
from calsync.sync.budget import LambdaBudget, OutOfTime
from calsync.sync.engine import LEASE_TTL, RECONCILE_AFTER, SyncEngine, SyncOutcome, default_horizon
from calsync.sync.fake import FakeSource
from calsync.sync.source import CalendarSource, CursorRejected, Horizon, ResourceChange
from tests.support.apigw import dynamodb_calls, snapshot

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
CAL = "cal-sync-1"


def occ(event_id: str, start: datetime, minutes: int = 30, **fields: Any) -> Occurrence:
    return Occurrence(
        provider=Provider.CALDAV,
        account_id="acc-1",
        calendar_id=CAL,
        event_id=event_id,
        title=fields.pop("title", event_id),
        start=start,
        end=start + timedelta(minutes=minutes),
        **fields,
    )


@pytest.fixture
def world(table: Any) -> dict[str, Any]:
    repo = Repository(table)
    calendar = Calendar(
        calendar_id=CAL,
        account_id="acc-1",
        owner_user_id="alice",
        provider=Provider.CALDAV,
        subscribers={"USER#alice": "primary", "ROOM#r1": "room"},
    )
    repo.put_calendar(calendar)
    state = SyncStateStore(table)
    return {"table": table, "repo": repo, "state": state, "engine": SyncEngine(repo, state), "cal": calendar}


def titles(
    repo: Repository, owner: str = "alice", *, kind: OwnerKind = OwnerKind.USER
) -> dict[str, str | None]:
    events = repo.read_owner_events(kind, owner, NOW - timedelta(days=1), NOW + timedelta(days=30))
    return {o.id: o.title for o in events.occurrences}


def test_first_sync_then_unchanged_costs_one_check_and_no_write(world: dict[str, Any]) -> None:
    # rule S3: an unchanged calendar is skipped after one cheap check, nothing written
    src = FakeSource()
    src.put("a", [occ("a", NOW + timedelta(hours=1))])
    src.put("b", [occ("b", NOW + timedelta(hours=2))])
    src.put("c", [occ("c", NOW + timedelta(hours=3))])
    out = world["engine"].sync(world["cal"], src, now=NOW)
    assert out.status == "synced" and out.full and out.stored == 3 and out.pages == 2
    assert sorted(titles(world["repo"]).values()) == ["a", "b", "c"]

    before = snapshot(world["table"])
    src.requests = 0
    with dynamodb_calls(world["table"]) as calls:
        again = world["engine"].sync(world["cal"], src, now=NOW + timedelta(minutes=5))
    assert again.status == "unchanged"
    assert src.requests == 1
    writes = [c for c in calls.calls if c in ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem")]
    assert writes == []
    assert snapshot(world["table"]) == before


def test_incremental_change_move_and_delete(world: dict[str, Any]) -> None:
    # rules S6 and C10: a changed resource replaces exactly its occurrences; a deleted one removes them
    src = FakeSource()
    series = [occ("s", NOW + timedelta(days=d), recurring=True, original_start=f"d{d}") for d in range(3)]
    src.put("series", series)
    src.put("single", [occ("single", NOW + timedelta(hours=1))])
    world["engine"].sync(world["cal"], src, now=NOW)
    assert len(titles(world["repo"])) == 4

    # one occurrence moved (same id: same original start), one dropped, the single deleted
    moved = occ("s", NOW + timedelta(days=1, hours=3), recurring=True, original_start="d1", title="moved")
    src.put("series", [series[0], moved])
    src.delete("single")
    out = world["engine"].sync(world["cal"], src, now=NOW + timedelta(minutes=5))
    assert out.status == "synced" and not out.full and out.stored == 1 and out.deleted == 1
    got = titles(world["repo"])
    assert got == {series[0].id: "s", moved.id: "moved"}
    assert moved.id == series[1].id
    # the room's copy follows too
    room = world["repo"].read_owner_events(
        OwnerKind.ROOM, "r1", NOW - timedelta(days=1), NOW + timedelta(days=30)
    )
    assert {o.id for o in room.occurrences} == set(got)


def test_rejected_cursor_leads_to_full_resync_that_loses_nothing(
    world: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    # rules S3/S6: a refused cursor -> full listing by etag; what is gone is swept, nothing else lost
    src = FakeSource()
    for name in "abcde":
        src.put(name, [occ(name, NOW + timedelta(hours=1))])
    world["engine"].sync(world["cal"], src, now=NOW)
    src.delete("b")
    src.put("c", [occ("c", NOW + timedelta(hours=5), title="c2")])
    src.expire_cursors()
    caplog.set_level(logging.INFO)
    out = world["engine"].sync(world["cal"], src, now=NOW + timedelta(minutes=5))
    [rejected] = [r for r in caplog.records if r.getMessage() == "cursor rejected: full resync"]
    assert (rejected.levelno, rejected.__dict__.get("calendar_id")) == (logging.INFO, CAL)
    assert out.full and out.skipped == 3 and out.stored == 1 and out.deleted == 1
    assert sorted(titles(world["repo"]).values()) == ["a", "c2", "d", "e"]
    assert world["state"].get(CAL).generation == 2
    assert {e.key for e in world["state"].list_resources(CAL)} == {"a", "c", "d", "e"}


def test_server_without_cursors_compares_etags_each_time(world: dict[str, Any]) -> None:
    # rule S3: no sync token -> full comparison by ETag, fetching only what changed
    src = FakeSource(supports_cursors=False)
    for name in "abc":
        src.put(name, [occ(name, NOW + timedelta(hours=1))])
    world["engine"].sync(world["cal"], src, now=NOW)
    src.put("a", [occ("a", NOW + timedelta(hours=2), title="a2")])
    out = world["engine"].sync(world["cal"], src, now=NOW + timedelta(minutes=5))
    assert out.full and out.stored == 1 and out.skipped == 2
    assert sorted(titles(world["repo"]).values()) == ["a2", "b", "c"]


def test_worker_failing_half_way_leaves_a_state_the_next_sync_completes(world: dict[str, Any]) -> None:
    # rule S6: the cursor moves only after every page is stored
    src = FakeSource(page_size=1)
    for name in "abc":
        src.put(name, [occ(name, NOW + timedelta(hours=1))])
    world["engine"].sync(world["cal"], src, now=NOW)
    cursor = world["state"].get(CAL).cursor
    src.put("a", [occ("a", NOW + timedelta(hours=1), title="a2")])
    src.put("b", [occ("b", NOW + timedelta(hours=1), title="b2")])
    src.delete("c")
    src.fail_after_pages = 1
    with pytest.raises(RuntimeError, match="injected"):
        world["engine"].sync(world["cal"], src, now=NOW + timedelta(minutes=5))
    state = world["state"].get(CAL)
    assert state.cursor == cursor  # not moved
    assert state.lease_owner is None  # let go: the next job need not wait for the lease to expire
    out = world["engine"].sync(world["cal"], src, now=NOW + timedelta(minutes=10))
    assert out.status == "synced"
    assert sorted(titles(world["repo"]).values()) == ["a2", "b2"]


def test_full_resync_failing_half_way_is_finished_by_the_next_sync(world: dict[str, Any]) -> None:
    # rule S6: a pending full resync stays pending (and sweeps) until one completes
    src = FakeSource(page_size=1)
    for name in "abcd":
        src.put(name, [occ(name, NOW + timedelta(hours=1))])
    world["engine"].sync(world["cal"], src, now=NOW)
    src.delete("d")
    src.expire_cursors()
    src.fail_after_pages = 1
    with pytest.raises(RuntimeError):
        world["engine"].sync(world["cal"], src, now=NOW + timedelta(minutes=5))
    assert world["state"].get(CAL).full_pending
    out = world["engine"].sync(world["cal"], src, now=NOW + timedelta(minutes=10))
    assert out.full and out.deleted == 1
    assert sorted(titles(world["repo"]).values()) == ["a", "b", "c"]
    assert not world["state"].get(CAL).full_pending


class _Racing:
    """A source that lets a second job arrive while the first sync lists its pages."""

    def __init__(self, inner: FakeSource, during: Any) -> None:
        self.inner, self.during, self.fired = inner, during, False

    def may_have_changed(self, cursor: str) -> bool:
        return self.inner.may_have_changed(cursor)

    @property
    def next_cursor(self) -> str | None:
        return self.inner.next_cursor

    def changes(self, cursor: Any, known: Any, horizon: Any) -> Any:
        for page in self.inner.changes(cursor, known, horizon):
            yield page
            if not self.fired:
                self.fired = True
                self.during()


def test_change_during_a_running_sync_leads_to_another_sync(
    world: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    # rule S6: a job that finds the calendar's sync running marks it dirty; the holder syncs again
    src = FakeSource(page_size=1)
    for name in "ab":
        src.put(name, [occ(name, NOW + timedelta(hours=1))])
    engine: SyncEngine = world["engine"]
    engine.sync(world["cal"], src, now=NOW)
    src.put("a", [occ("a", NOW + timedelta(hours=1), title="a2")])
    later = NOW + timedelta(minutes=5)
    results: list[str] = []

    def second_job() -> None:
        src.put("new", [occ("new", NOW + timedelta(hours=4))])  # the change behind the second job
        results.append(engine.sync(world["cal"], src, now=later).status)

    racing: CalendarSource = _Racing(src, second_job)
    caplog.set_level(logging.INFO)
    out = engine.sync(world["cal"], racing, now=later)
    assert results == ["busy"]
    [again] = [
        r for r in caplog.records if r.getMessage() == "calendar changed during its sync: syncing again"
    ]
    assert (again.levelno, again.__dict__.get("calendar_id")) == (logging.INFO, CAL)
    assert out.passes == 2
    assert not out.full  # the second pass is incremental too: only the changes since the cursor
    assert sorted(titles(world["repo"]).values()) == ["a2", "b", "new"]
    assert world["state"].get(CAL).dirty == 0


def test_a_room_registered_during_the_first_sync_ends_with_every_event(
    world: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    # rule R8: a room registered while the calendar's first sync runs is filled from the store at
    # once, when the store holds only the first page; the sync itself fills it with the rest
    src = FakeSource(page_size=1)
    for i, name in enumerate("abc"):
        src.put(name, [occ(name, NOW + timedelta(hours=1 + i))])
    # R4: what the engine fills the room with is the room's copy (a private event without title)
    src.put("d", [occ("d", NOW + timedelta(hours=4), visibility=Visibility.PRIVATE)])
    repo: Repository = world["repo"]

    def register_room() -> None:  # what the API does for the admin (functions/api)
        repo.subscribe(CAL, "ROOM#hq#r2", "room")
        CalendarSync(repo, {}).fill(CAL, "ROOM#hq#r2", "room")

    caplog.set_level(logging.INFO)
    out = world["engine"].sync(world["cal"], _Racing(src, register_room), now=NOW)
    assert out.status == "synced" and out.stored == 4
    room = titles(repo, "hq#r2", kind=OwnerKind.ROOM)
    assert sorted(room) == sorted(titles(repo)) and len(room) == 4
    assert sorted(t for t in room.values() if t is not None) == ["a", "b", "c"]
    [filled] = [
        r
        for r in caplog.records
        if r.getMessage() == "subscriber added during the sync filled from the store"
    ]
    fields = {k: filled.__dict__.get(k) for k in ("calendar_id", "owner", "copied")}
    assert fields == {"calendar_id": CAL, "owner": "ROOM#hq#r2", "copied": 3}
    # the fill was complete: the etags are kept (the next full pass need not fetch everything)
    assert all(e.etag for e in world["state"].list_resources(CAL))


def test_same_calendar_enqueued_many_times_at_once(world: dict[str, Any]) -> None:
    # rule S6: duplicates and concurrent runs yield one consistent state, no duplicate occurrence
    if "amazonaws.com" in str(world["table"].meta.client.meta.endpoint_url):
        # moto cancels a transaction by restoring a snapshot of the whole table taken before it, which
        # undoes a concurrent writer's work: concurrency is only meaningful on DynamoDB Local
        pytest.skip("moto's TransactWriteItems is not atomic across threads; DynamoDB Local runs this")
    src = FakeSource(page_size=3)
    for i in range(12):
        src.put(f"r{i}", [occ(f"r{i}", NOW + timedelta(hours=i), recurring=True, original_start="x")])
    engine: SyncEngine = world["engine"]
    statuses: list[str] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            statuses.append(engine.sync(world["cal"], src, now=NOW).status)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert "synced" in statuses
    # whatever ran, one more job (the dirty marks, or a poll) settles to the same state
    engine.sync(world["cal"], src, now=NOW + timedelta(minutes=1))
    items = [
        i for i in snapshot(world["table"]) if i["pk"] == "USER#alice" and str(i["sk"]).startswith("EV#")
    ]
    assert len(items) == len({i["occId"] for i in items}) == 12
    assert len(list(world["state"].list_resources(CAL))) == 12
    assert world["state"].get(CAL).lease_owner is None


def test_horizon_and_reexpansion_of_recurring_resources(world: dict[str, Any]) -> None:
    # rule S10: only what overlaps yesterday 00:00 UTC .. +60 days is stored; a recurring resource
    # is expanded again by a full pass once the horizon moved on
    horizon = default_horizon(NOW)
    assert horizon.start == datetime(2026, 11, 19, tzinfo=UTC)
    assert horizon.end >= NOW + timedelta(days=60)
    src = FakeSource()
    weekly = [occ("w", NOW + timedelta(weeks=w), recurring=True, original_start=f"w{w}") for w in range(12)]
    src.put("weekly", weekly)
    world["engine"].sync(world["cal"], src, now=NOW)
    index = [i for i in snapshot(world["table"]) if str(i["sk"]).startswith(keys.OCC_PREFIX)]
    assert len(index) == 9  # weeks 0..8 are inside 60 days
    later = NOW + timedelta(days=14)
    out = world["engine"].sync(world["cal"], src, now=later, full=True)
    assert out.stored == 1 and out.skipped == 0  # re-expanded although its etag did not change
    stored = {i["occId"] for i in snapshot(world["table"]) if str(i["sk"]).startswith(keys.OCC_PREFIX)}
    # weeks 2..10 now: the new weeks 9 and 10 appear, those before the horizon's start are gone
    assert stored == {o.id for o in weekly[2:11]}


# ---- S11: no poison pill ------------------------------------------------------------------------
def test_oversized_fields_are_bounded_and_every_event_is_stored(world: dict[str, Any]) -> None:
    # S11: a 410,000-character SUMMARY and a 450 KB meeting URL among normal events: before, the
    # item exceeded 400 KB, the page's BatchWriteItem failed on every pass and nothing after it synced
    src = FakeSource(page_size=10)
    for i in range(25):
        src.put(f"e{i:02}", [occ(f"e{i:02}", NOW + timedelta(hours=i))])
    src.put("huge-title", [occ("huge-title", NOW + timedelta(hours=2), title="x" * 410_000)])
    huge_url = "https://meet.example.com/" + "a" * 450_000
    src.put("huge-link", [occ("huge-link", NOW + timedelta(hours=3), meeting_link=huge_url)])
    out = world["engine"].sync(world["cal"], src, now=NOW)
    assert out.status == "synced" and out.stored == 27 and out.unstorable == []
    events = world["repo"].read_owner_events(
        OwnerKind.USER, "alice", NOW - timedelta(days=1), NOW + timedelta(days=30)
    )
    by_event = {o.event_id: o for o in events.occurrences}
    assert len(by_event) == 27
    assert by_event["huge-title"].title == "x" * (limits.MAX_TITLE - 1) + "…"
    assert by_event["huge-link"].meeting_link is None and by_event["huge-link"].title == "huge-link"
    assert world["state"].get(CAL).last_synced_at == NOW  # the cursor moved


def test_event_that_cannot_be_stored_is_skipped_counted_and_logged(
    world: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    # S11: a hostile server's 450 KB href (its index entry cannot be stored) and a 2,000-character
    # event id (a cut id would name another event) are skipped and reported; the rest syncs
    src = FakeSource(page_size=10)
    for i in range(12):
        src.put(f"e{i:02}", [occ(f"e{i:02}", NOW + timedelta(hours=i))])
    src.put("h" * 450_000, [occ("long-href", NOW + timedelta(hours=1))])
    src.put("long-id", [occ("i" * 2000, NOW + timedelta(hours=1))])
    out = world["engine"].sync(world["cal"], src, now=NOW)
    assert out.status == "synced" and out.stored == 12 and len(out.unstorable) == 2
    assert sorted(titles(world["repo"]).values()) == [f"e{i:02}" for i in range(12)]
    warnings = [r for r in caplog.records if "cannot be stored" in r.getMessage()]
    assert len(warnings) == 2 and {w.levelname for w in warnings} == {"WARNING"}
    assert all(len(repr(w.__dict__)) < 4000 for w in warnings)  # never the 450 KB value itself
    reasons = [
        f"the event's identifier is longer than {limits.MAX_RESOURCE_KEY} characters",
        f"the event's event id is longer than {limits.MAX_EVENT_ID} characters",
    ]
    assert sorted(out.unstorable) == sorted(reasons)
    message = "an event cannot be stored: skipped, the rest of the calendar syncs"
    fields = sorted(
        (w.getMessage(), w.__dict__.get("calendar_id"), w.__dict__.get("resource"), w.__dict__.get("why"))
        for w in warnings
    )
    assert fields == sorted(
        [(message, CAL, "h" * 117 + "...", reasons[0]), (message, CAL, "long-id", reasons[1])]
    )
    # the next full pass does not sweep the normal events, and does not fail either
    again = world["engine"].sync(world["cal"], src, now=NOW + timedelta(minutes=5), full=True)
    assert again.status == "synced" and len(titles(world["repo"])) == 12


def test_long_event_gets_index_entries_inside_the_horizon_only(world: dict[str, Any]) -> None:
    # S11: a ten-year event: one entry per 24 h inside the horizon (before: 3,650 per owner, and an
    # index item of 7,300 copy references, over 400 KB, so the event could never be stored)
    src = FakeSource()
    start = NOW - timedelta(days=5 * 365)
    src.put("decade", [occ("decade", start, minutes=10 * 365 * 24 * 60)])
    # 120 days: storable without the bound too, with 120 entries per owner instead of the horizon's
    # (on a page of its own: the decade's would fail the page's batch and store it alone)
    src.put("z-quarter", [occ("quarter", NOW - timedelta(days=30), minutes=120 * 24 * 60)])
    src.put("short", [occ("short", NOW + timedelta(hours=1))])
    out = world["engine"].sync(world["cal"], src, now=NOW)
    assert out.status == "synced" and out.unstorable == []
    assert set(titles(world["repo"]).values()) == {"decade", "quarter", "short"}
    horizon = default_horizon(NOW)
    days = (horizon.end - horizon.start).days
    for event in ("decade", "quarter"):
        items = [i for i in snapshot(world["table"]) if i["pk"] == "USER#alice" and i.get("eventId") == event]
        assert days <= len(items) <= days + 1


def test_full_sync_reads_and_writes_the_index_a_page_at_a_time(world: dict[str, Any]) -> None:
    # S12: no GetItem / PutItem per resource any more; a page's worth in batches
    src = FakeSource(page_size=100)
    for i in range(200):
        src.put(f"e{i:03}", [occ(f"e{i:03}", NOW + timedelta(hours=i % 50, minutes=i))])
    with dynamodb_calls(world["table"]) as calls:
        out = world["engine"].sync(world["cal"], src, now=NOW)
    assert out.stored == 200 and len(titles(world["repo"])) == 200
    # GetItem: the sync state, and the calendar once after the commit (R8: subscribers added
    # meanwhile); PutItem: the owner's "look again" for the live schedule (docs/adr/0018), one per
    # page's version bump, never one per resource
    assert calls.count("GetItem") == 2 and calls.calls.count("PutItem") <= 2
    assert len(calls.calls) < 60, calls.calls  # 2 pages: ~50 BatchWriteItem of 25
    # a full pass reads the index once (one Query), not page by page: the two BatchGetItem are the
    # store's (one per page)
    assert calls.calls.count("BatchGetItem") == 2, calls.calls
    for i in range(0, 200, 2):  # half of them change: the incremental pass batches too
        src.put(f"e{i:03}", [occ(f"e{i:03}", NOW + timedelta(hours=i % 50, minutes=i), title="changed")])
    with dynamodb_calls(world["table"]) as calls:
        out = world["engine"].sync(world["cal"], src, now=NOW + timedelta(minutes=5))
    assert out.stored == 100 and not out.full
    assert calls.calls.count("GetItem") == 2 and calls.calls.count("PutItem") <= 2  # as above
    assert sorted(titles(world["repo"]).values()).count("changed") == 100


def test_occurrence_moving_to_another_resource_in_the_same_page_is_kept(world: dict[str, Any]) -> None:
    # the same event (same id) leaves resource "b" and appears under "a" (a CalDAV UID under a new
    # href): storing a page in batches must not delete it as b's obsolete occurrence
    src = FakeSource(page_size=10)
    moving = occ("uid-1", NOW + timedelta(hours=1))
    src.put("b", [moving, occ("other", NOW + timedelta(hours=2))])
    world["engine"].sync(world["cal"], src, now=NOW)
    src.put("a", [moving])
    src.put("b", [occ("other", NOW + timedelta(hours=2))])
    out = world["engine"].sync(world["cal"], src, now=NOW + timedelta(minutes=5))
    assert out.stored == 2
    assert sorted(titles(world["repo"]).values()) == ["other", "uid-1"]


def test_failure_is_recorded_on_the_calendar_and_cleared_by_the_next_sync(world: dict[str, Any]) -> None:
    # S13: a failed sync leaves a short, safe reason on the calendar's sync state; a successful one
    # (also one that finds nothing changed) clears it
    src = FakeSource()
    src.put("a", [occ("a", NOW + timedelta(hours=1))])
    world["engine"].sync(world["cal"], src, now=NOW)
    src.put("b", [occ("b", NOW + timedelta(hours=2))])
    src.fail_after_pages = 0
    with pytest.raises(RuntimeError):
        world["engine"].sync(world["cal"], src, now=NOW + timedelta(minutes=1))
    state = world["state"].get(CAL)
    assert state.last_error_class == "RuntimeError" and state.last_error == failures.UNEXPECTED
    assert state.last_error_at == NOW + timedelta(minutes=1) and "injected" not in state.last_error
    out = world["engine"].sync(world["cal"], src, now=NOW + timedelta(minutes=2))
    assert out.status == "synced" and world["state"].get(CAL).last_error is None

    world["state"].record_failure(CAL, NOW, "SourceUnavailable", "The provider could not be reached.")
    out = world["engine"].sync(world["cal"], src, now=NOW + timedelta(minutes=3))
    assert out.status == "unchanged" and world["state"].get(CAL).last_error is None


@pytest.fixture
def local_zone_kiritimati(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time zone is UTC+14 (Lambda's is UTC; a developer's machine may not be)."""
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_default_horizon_is_yesterday_to_the_61st_day_in_utc_whatever_the_local_zone(
    local_zone_kiritimati: None,
) -> None:
    # rule S10: from yesterday 00:00 UTC to 00:00 UTC after the 60th day ahead; 23:30 UTC on
    # 2026-11-20 is already 2026-11-21 in the local zone (and in the zone ``now`` is given in)
    late = datetime(2026, 11, 20, 23, 30, tzinfo=UTC)
    for now in (late, late.astimezone(ZoneInfo("Pacific/Kiritimati"))):
        horizon = default_horizon(now)
        assert horizon.start == datetime(2026, 11, 19, tzinfo=UTC)
        assert horizon.end == datetime(2027, 1, 20, tzinfo=UTC)  # 2026-11-20 + 61 days


def test_a_forced_full_sync_runs_although_nothing_changed(world: dict[str, Any]) -> None:
    # rule S5: the reconcile schedule's full pass is never skipped by the cheap "may have changed"
    src = FakeSource()
    for name in "abc":
        src.put(name, [occ(name, NOW + timedelta(hours=1))])
    world["engine"].sync(world["cal"], src, now=NOW)
    out = world["engine"].sync(world["cal"], src, now=NOW + timedelta(minutes=5), full=True)
    assert out.status == "synced" and out.full
    assert (out.skipped, out.stored, out.deleted) == (3, 0, 0)


def test_a_calendar_is_reconciled_in_full_once_reconcile_after_has_passed(world: dict[str, Any]) -> None:
    # rule S5: a backstop full pass RECONCILE_AFTER (12 h) after the last one, even when the source
    # says nothing changed; not a second earlier
    src = FakeSource()
    src.put("a", [occ("a", NOW + timedelta(days=1))])
    world["engine"].sync(world["cal"], src, now=NOW)
    just_before = world["engine"].sync(world["cal"], src, now=NOW + RECONCILE_AFTER - timedelta(seconds=1))
    assert just_before.status == "unchanged"
    due = world["engine"].sync(world["cal"], src, now=NOW + RECONCILE_AFTER)
    assert due.status == "synced" and due.full and due.skipped == 1
    assert world["state"].get(CAL).last_full_at == NOW + RECONCILE_AFTER


def test_recurring_resources_are_expanded_again_only_once_the_horizon_moved_a_day(
    world: dict[str, Any],
) -> None:
    # rule S10 / C10: a full pass skips a recurring resource whose etag it has while the horizon it
    # was expanded for is less than a day behind; from one day on, it is fetched and expanded again
    src = FakeSource()
    src.put(
        "weekly",
        [occ("w", NOW + timedelta(weeks=w), recurring=True, original_start=f"w{w}") for w in range(3)],
    )
    src.put("single", [occ("single", NOW + timedelta(hours=2))])
    h0 = default_horizon(NOW)
    world["engine"].sync(world["cal"], src, now=NOW, horizon=h0)

    same = world["engine"].sync(world["cal"], src, now=NOW + timedelta(minutes=1), full=True, horizon=h0)
    assert (same.stored, same.skipped) == (0, 2)
    almost = Horizon(h0.start, h0.end + timedelta(days=1) - timedelta(seconds=1))
    out = world["engine"].sync(world["cal"], src, now=NOW + timedelta(minutes=2), full=True, horizon=almost)
    assert (out.stored, out.skipped) == (0, 2)
    a_day = Horizon(h0.start, h0.end + timedelta(days=1))
    out = world["engine"].sync(world["cal"], src, now=NOW + timedelta(minutes=3), full=True, horizon=a_day)
    assert (out.stored, out.skipped) == (1, 1)  # the series again; the single event is not recurring
    assert {e.key: e.horizon_end for e in world["state"].list_resources(CAL)}["weekly"] == a_day.end


class _TakenMeanwhile:
    """A source whose cheap check lets another worker take the calendar's lease meanwhile."""

    def __init__(self, inner: FakeSource, take: Any) -> None:
        self.inner, self.take = inner, take

    def may_have_changed(self, cursor: str) -> bool:
        self.take()
        return self.inner.may_have_changed(cursor)

    @property
    def next_cursor(self) -> str | None:
        return self.inner.next_cursor

    def changes(self, cursor: Any, known: Any, horizon: Any) -> Any:
        return self.inner.changes(cursor, known, horizon)


def test_lease_taken_between_the_check_and_the_take_marks_the_calendar_dirty(world: dict[str, Any]) -> None:
    # rule S6: a job that loses the race for the lease leaves a dirty mark, so the holder syncs again
    src = FakeSource()
    src.put("a", [occ("a", NOW + timedelta(hours=1))])
    world["engine"].sync(world["cal"], src, now=NOW)
    src.put("a", [occ("a", NOW + timedelta(hours=1), title="a2")])
    later = NOW + timedelta(minutes=5)
    racing: CalendarSource = _TakenMeanwhile(
        src, lambda: world["state"].acquire(CAL, "another-worker", later, LEASE_TTL)
    )
    out = world["engine"].sync(world["cal"], racing, now=later)
    assert out.status == "busy" and out.passes == 0
    state = world["state"].get(CAL)
    assert (state.lease_owner, state.dirty) == ("another-worker", 1)


def test_a_full_pass_that_failed_is_finished_in_full_although_the_cursor_is_still_valid(
    world: dict[str, Any],
) -> None:
    # rules S5/S6: a full pass that died half-way leaves "full pending"; the next sync is a full pass
    # (and sweeps), even though the old cursor would still be accepted
    src = FakeSource(page_size=1)
    for name in "abc":
        src.put(name, [occ(name, NOW + timedelta(hours=1))])
    world["engine"].sync(world["cal"], src, now=NOW)
    src.fail_after_pages = 1
    with pytest.raises(RuntimeError, match="injected"):
        world["engine"].sync(world["cal"], src, now=NOW + timedelta(minutes=5), full=True)
    state = world["state"].get(CAL)
    assert state.full_pending and state.cursor is not None
    out = world["engine"].sync(world["cal"], src, now=NOW + timedelta(minutes=10))
    assert out.status == "synced" and out.full and out.skipped == 3
    assert not world["state"].get(CAL).full_pending


class _NoCursor:
    """A server that hands out no cursor at all (CalDAV without sync-token: ctag and etags only)."""

    def __init__(self, inner: FakeSource) -> None:
        self.inner = inner

    def may_have_changed(self, cursor: str) -> bool:
        return self.inner.may_have_changed(cursor)

    @property
    def next_cursor(self) -> str | None:
        return None

    def changes(self, cursor: Any, known: Any, horizon: Any) -> Any:
        return self.inner.changes(cursor, known, horizon)


def test_without_a_cursor_every_sync_is_a_full_comparison_that_sweeps(world: dict[str, Any]) -> None:
    # rule S3: no token -> full comparison by ETag every time (also between reconciles), so that a
    # deleted event is swept
    inner = FakeSource()
    for name in "abc":
        inner.put(name, [occ(name, NOW + timedelta(hours=1))])
    src: CalendarSource = _NoCursor(inner)
    world["engine"].sync(world["cal"], src, now=NOW)
    assert world["state"].get(CAL).cursor is None
    inner.delete("b")
    out = world["engine"].sync(world["cal"], src, now=NOW + timedelta(minutes=5))
    assert out.full and (out.skipped, out.stored, out.deleted) == (2, 0, 1)
    assert sorted(titles(world["repo"]).values()) == ["a", "c"]


class _DirtyEveryPass:
    """A source during whose every listing another job arrives (the calendar never stays clean)."""

    def __init__(self, inner: FakeSource, during: Any) -> None:
        self.inner, self.during = inner, during

    def may_have_changed(self, cursor: str) -> bool:
        return self.inner.may_have_changed(cursor)

    @property
    def next_cursor(self) -> str | None:
        return self.inner.next_cursor

    def changes(self, cursor: Any, known: Any, horizon: Any) -> Any:
        for page in self.inner.changes(cursor, known, horizon):
            yield page
            self.during()


def test_a_calendar_that_keeps_changing_is_let_go_after_max_passes_and_stays_dirty(
    world: dict[str, Any],
) -> None:
    # rule S6: a sync does at most three passes; then it lets go of the lease (the pending jobs sync
    # again at once, they need not wait for the lease to expire) and the dirty mark stays
    src = FakeSource()
    src.put("a", [occ("a", NOW + timedelta(hours=1))])
    engine: SyncEngine = world["engine"]
    engine.sync(world["cal"], src, now=NOW)
    src.put("a", [occ("a", NOW + timedelta(hours=1), title="changed")])
    later = NOW + timedelta(minutes=5)
    results: list[str] = []
    counter = iter(range(100))

    def another_job() -> None:
        src.put("a", [occ("a", NOW + timedelta(hours=1), title=f"a{next(counter)}")])
        results.append(engine.sync(world["cal"], src, now=later).status)

    out = engine.sync(world["cal"], _DirtyEveryPass(src, another_job), now=later)
    assert out.passes == 3 and results == ["busy"] * 3
    state = world["state"].get(CAL)
    assert state.lease_owner is None and state.dirty > 0
    assert engine.sync(world["cal"], src, now=later).status == "synced"  # the next job is not "busy"


class _PausedAfterFirstPage:
    """A source that, after its first page, tells the test and waits for it (a slow worker).

    The events order the two workers' steps; their timeouts only bound a broken run."""

    def __init__(self, inner: FakeSource, reached: threading.Event, resume: threading.Event) -> None:
        self.inner, self.reached, self.resume = inner, reached, resume

    def may_have_changed(self, cursor: str) -> bool:
        return self.inner.may_have_changed(cursor)

    @property
    def next_cursor(self) -> str | None:
        return self.inner.next_cursor

    def changes(self, cursor: Any, known: Any, horizon: Any) -> Any:
        for n, page in enumerate(self.inner.changes(cursor, known, horizon)):
            yield page
            if n == 0:
                self.reached.set()
                assert self.resume.wait(60), "the other worker never got there"


def test_a_worker_that_outlived_its_lease_does_not_commit_over_the_one_that_took_it(
    world: dict[str, Any],
) -> None:
    # rule S6: worker A's lease expires while it is still listing; worker B takes the lease over. A must
    # then neither move the cursor nor let go of B's lease: its commit fails (the job is retried), B's
    # sync completes. Each worker's lease is its own (a unique owner), not merely "a lease".
    src = FakeSource(page_size=1)
    for name in "ab":
        src.put(name, [occ(name, NOW + timedelta(hours=1))])
    engine: SyncEngine = world["engine"]
    engine.sync(world["cal"], src, now=NOW)
    src.put("a", [occ("a", NOW + timedelta(hours=1), title="a2")])
    src.put("b", [occ("b", NOW + timedelta(hours=1), title="b2")])

    a_paused, b_holds, a_done = threading.Event(), threading.Event(), threading.Event()
    a_result: list[object] = []

    def worker_a() -> None:
        try:
            a_result.append(engine.sync(world["cal"], _PausedAfterFirstPage(src, a_paused, b_holds), now=NOW))
        except Exception as exc:
            a_result.append(exc)
        finally:
            a_done.set()

    thread = threading.Thread(target=worker_a)
    thread.start()
    assert a_paused.wait(60)
    after_a_lease = NOW + LEASE_TTL + timedelta(minutes=1)
    b = engine.sync(world["cal"], _PausedAfterFirstPage(src, b_holds, a_done), now=after_a_lease)
    thread.join(60)

    assert len(a_result) == 1 and isinstance(a_result[0], Conflict)
    assert b.status == "synced"
    state = world["state"].get(CAL)
    assert state.lease_owner is None and state.last_synced_at == after_a_lease
    assert sorted(titles(world["repo"]).values()) == ["a2", "b2"]


class _WithUnreadable:
    """A source that reports, with one resource, VEVENTs it could not read (S11)."""

    def __init__(self, inner: FakeSource | _WithUnreadable, key: str, errors: tuple[str, ...]) -> None:
        self.inner, self.key, self.errors = inner, key, errors

    def may_have_changed(self, cursor: str) -> bool:
        return self.inner.may_have_changed(cursor)

    @property
    def next_cursor(self) -> str | None:
        return self.inner.next_cursor

    def changes(self, cursor: Any, known: Any, horizon: Any) -> Any:
        for page in self.inner.changes(cursor, known, horizon):
            yield [
                ResourceChange(c.key, c.etag, c.occurrences, c.deleted, c.unchanged, self.errors)
                if c.key == self.key
                else c
                for c in page
            ]


def test_an_unreadable_vevent_is_logged_as_one_structured_warning_and_the_rest_is_synced(
    world: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    # rules S11/S13: one warning per VEVENT that could not be read, with the calendar, the resource
    # and the reason as fields; the outcome lists it; the resource's other occurrences are stored
    inner = FakeSource()
    inner.put("ok", [occ("ok", NOW + timedelta(hours=1))])
    inner.put("mixed", [occ("readable", NOW + timedelta(hours=2))])
    src: CalendarSource = _WithUnreadable(inner, "mixed", ("DTSTART missing",))
    caplog.set_level(logging.INFO)
    metrics.clear_metrics()
    out = world["engine"].sync(world["cal"], src, now=NOW)
    assert out.errors == ["mixed: DTSTART missing"]
    # shown on the calendar (the sync state's count) and metered
    assert world["state"].get(CAL).skipped_events == 1
    assert metrics.metric_set["SyncEventsSkipped"]["Value"] == [1.0]
    assert metrics.metric_set["SyncEventsSkipped"]["Unit"] == "Count"
    metrics.clear_metrics()
    assert sorted(titles(world["repo"]).values()) == ["ok", "readable"]
    [warning] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert warning.levelno == logging.WARNING
    assert warning.getMessage() == "a VEVENT could not be read; the rest is synced"
    fields = (
        warning.__dict__.get("calendar_id"),
        warning.__dict__.get("resource"),
        warning.__dict__.get("error"),
    )
    assert fields == (CAL, "mixed", "DTSTART missing")


def test_the_outcome_counts_every_resource_and_occurrence(world: dict[str, Any]) -> None:
    # rules S6/S13: what a sync did is reported in full (the worker logs and meters it)
    src = FakeSource(page_size=10)
    src.put(
        "series",
        [occ("s", NOW + timedelta(days=d), recurring=True, original_start=f"d{d}") for d in range(3)],
    )
    src.put("pair", [occ("p", NOW + timedelta(hours=h), original_start=f"h{h}") for h in (1, 2)])
    for name in "xyz":
        src.put(name, [occ(name, NOW + timedelta(hours=5))])
    first = world["engine"].sync(world["cal"], src, now=NOW)
    # items written: each of the 8 occurrences for its two subscribers and the calendar's index
    assert (first.stored, first.occurrences) == (5, 3 * 8)
    src.delete("x")
    src.delete("y")
    src.put("pair", [occ("p", NOW + timedelta(hours=h), original_start=f"h{h}", title="p2") for h in (1, 2)])
    out = world["engine"].sync(world["cal"], src, now=NOW + timedelta(minutes=5))
    assert not out.full and (out.stored, out.occurrences, out.deleted) == (1, 3 * 2, 2)
    # a full listing that no longer has two resources sweeps both
    src.delete("z")
    src.delete("series")
    src.expire_cursors()
    swept = world["engine"].sync(world["cal"], src, now=NOW + timedelta(minutes=10))
    assert swept.full and swept.deleted == 2 and swept.skipped == 1


def test_a_calendar_left_dirty_is_synced_although_the_source_says_nothing_changed(
    world: dict[str, Any],
) -> None:
    # rule S6: a dirty mark (a job that found the sync running) is never skipped by the cheap check
    src = FakeSource()
    src.put("a", [occ("a", NOW + timedelta(hours=1))])
    world["engine"].sync(world["cal"], src, now=NOW)
    world["state"].mark_dirty(CAL)
    out = world["engine"].sync(world["cal"], src, now=NOW + timedelta(minutes=5))
    assert out.status == "synced" and not out.full
    assert world["state"].get(CAL).dirty == 0


def test_a_worker_dying_while_storing_leaves_an_index_that_knows_every_occurrence(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # rule S6: before new occurrences are written, the resource's index entry lists the old and the
    # new ones (etag unknown, generation and horizon as before), so a worker dying meanwhile leaves no
    # occurrence that nothing knows of; the next sync replaces the resource and deletes what is gone
    src = FakeSource()
    old = [occ("s", NOW + timedelta(days=d), recurring=True, original_start=f"d{d}") for d in range(2)]
    src.put("series", old)
    world["engine"].sync(world["cal"], src, now=NOW)
    before = world["state"].get_resource(CAL, "series")
    assert before is not None and before.recurring and before.horizon_end is not None

    new = [occ("s", NOW + timedelta(days=d), recurring=True, original_start=f"d{d}") for d in (1, 2)]
    src.put("series", new)
    repo: Repository = world["repo"]
    real_store = repo.store_occurrences

    def dying(calendar: Calendar, occurrences: Any, **kwargs: Any) -> int:
        real_store(calendar, occurrences[:1], **kwargs)
        raise RuntimeError("worker died")

    monkeypatch.setattr(repo, "store_occurrences", dying)
    with pytest.raises(RuntimeError, match="worker died"):
        world["engine"].sync(world["cal"], src, now=NOW + timedelta(minutes=5))
    entry = world["state"].get_resource(CAL, "series")
    assert entry is not None
    assert entry.occ_ids == sorted({o.id for o in old} | {o.id for o in new})
    assert (entry.etag, entry.generation, entry.recurring, entry.horizon_end) == (
        "",
        before.generation,
        True,
        before.horizon_end,
    )

    monkeypatch.setattr(repo, "store_occurrences", real_store)
    world["engine"].sync(world["cal"], src, now=NOW + timedelta(minutes=10))
    assert set(titles(world["repo"])) == {o.id for o in new}
    done = world["state"].get_resource(CAL, "series")
    assert done is not None and done.occ_ids == sorted(o.id for o in new) and done.etag == src.etag("series")


def test_a_resource_without_new_occurrences_is_indexed_once(world: dict[str, Any]) -> None:
    # rule S6: when no new occurrence appears, the index entry is written once, after the store
    src = FakeSource()
    src.put("pair", [occ("p", NOW + timedelta(hours=h), original_start=f"h{h}") for h in (1, 2)])
    world["engine"].sync(world["cal"], src, now=NOW)
    src.put("pair", [occ("p", NOW + timedelta(hours=1), original_start="h1", title="p2")])
    puts: list[str] = []
    state: SyncStateStore = world["state"]
    real_write = state.write_resources

    def counting(calendar_id: str, entries: Any, **kwargs: Any) -> None:
        entries = list(entries)
        puts.extend(e.etag for e in entries)
        real_write(calendar_id, entries, **kwargs)

    state.write_resources = counting  # type: ignore[method-assign]
    world["engine"].sync(world["cal"], src, now=NOW + timedelta(minutes=5))
    assert puts == [src.etag("pair")]
    # the same occurrences again (a changed title): nothing new either
    puts.clear()
    src.put("pair", [occ("p", NOW + timedelta(hours=1), original_start="h1", title="p3")])
    world["engine"].sync(world["cal"], src, now=NOW + timedelta(minutes=6))
    assert puts == [src.etag("pair")]


def test_the_sync_error_wins_over_a_failure_to_let_go_of_the_lease(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # rule S13: the failure that is reported is the sync's own, not the clean-up's
    src = FakeSource(page_size=1)
    for name in "ab":
        src.put(name, [occ(name, NOW + timedelta(hours=1))])
    src.fail_after_pages = 1

    def release_fails(calendar_id: str, owner: str) -> None:
        raise ConnectionError("store unreachable")

    monkeypatch.setattr(world["state"], "release", release_fails)
    with pytest.raises(RuntimeError, match="injected"):
        world["engine"].sync(world["cal"], src, now=NOW)


# ---- S12: the time budget, as the engine keeps to it ----------------------------------------------
class _Remaining:
    """A Lambda context whose remaining time the test sets (no clock)."""

    def __init__(self, ms: int) -> None:
        self.ms = ms

    def get_remaining_time_in_millis(self) -> int:
        return self.ms


def _run_out_while_storing(monkeypatch: pytest.MonkeyPatch, repo: Repository, context: _Remaining) -> None:
    """The time runs out while the first page is stored."""
    real_store = repo.store_occurrences

    def store_then_run_out(*args: Any, **kwargs: Any) -> int:
        written = real_store(*args, **kwargs)
        context.ms = 0
        return written

    monkeypatch.setattr(repo, "store_occurrences", store_then_run_out)


def test_out_of_time_before_the_start_touches_nothing(world: dict[str, Any]) -> None:
    src = FakeSource()
    src.put("a", [occ("a", NOW + timedelta(hours=1))])
    spent = LambdaBudget(_Remaining(0), reserve_ms=1_000)
    with pytest.raises(OutOfTime) as caught:
        world["engine"].sync(world["cal"], src, now=NOW, budget=spent)
    assert str(caught.value) == "no time left to start"
    # the queue worker's current budget is the default
    with budgets.running(spent), pytest.raises(OutOfTime):
        world["engine"].sync(world["cal"], src, now=NOW)
    assert src.requests == 0 and titles(world["repo"]) == {}
    assert world["state"].get(CAL).lease_owner is None


def test_an_incremental_pass_out_of_time_keeps_its_progress_and_the_next_one_skips_it(
    world: dict[str, Any], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # S12: the sync stops between two pages, says so in one INFO line, and hands its outcome up; the
    # next one lists the same changes (the cursor did not move) and skips what the first stored
    src = FakeSource(page_size=2)
    src.put("base", [occ("base", NOW + timedelta(hours=1))])
    engine: SyncEngine = world["engine"]
    engine.sync(world["cal"], src, now=NOW)
    series = [occ("a", NOW + timedelta(days=d), recurring=True, original_start=f"d{d}") for d in range(2)]
    src.put("a", series)  # the first page: a (recurring) and b; the second: c and d
    for hours, name in enumerate("bcd", start=2):
        src.put(name, [occ(name, NOW + timedelta(hours=hours))])
    context = _Remaining(60_000)
    _run_out_while_storing(monkeypatch, world["repo"], context)
    caplog.set_level(logging.INFO)
    later = NOW + timedelta(minutes=5)
    with pytest.raises(OutOfTime) as caught:
        engine.sync(world["cal"], src, now=later, budget=LambdaBudget(context, reserve_ms=1_000))
    assert str(caught.value) == "stopped after 1 page(s)"
    outcome = caught.value.outcome
    assert isinstance(outcome, SyncOutcome)
    assert (outcome.full, outcome.pages, outcome.stored) == (False, 1, 2)
    message = "time budget spent: the sync continues in the next invocation"
    [spent] = [r for r in caplog.records if r.getMessage() == message]
    assert (spent.levelno, spent.__dict__.get("calendar_id"), spent.__dict__.get("pages")) == (
        logging.INFO,
        CAL,
        1,
    )
    assert world["state"].get(CAL).lease_owner is None
    monkeypatch.undo()

    again = engine.sync(world["cal"], src, now=later)
    assert not again.full and (again.skipped, again.stored) == (2, 2)
    assert sorted(titles(world["repo"]).values()) == ["a", "a", "b", "base", "c", "d"]


def test_a_full_pass_out_of_time_is_finished_by_the_next_sync_without_fetching_again(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # S12: a full pass stops between two pages too; the next (full again) skips what it stored
    src = FakeSource(page_size=2)
    for hours, name in enumerate("abcd", start=1):
        src.put(name, [occ(name, NOW + timedelta(hours=hours))])
    context = _Remaining(60_000)
    _run_out_while_storing(monkeypatch, world["repo"], context)
    with pytest.raises(OutOfTime) as caught:
        world["engine"].sync(world["cal"], src, now=NOW, budget=LambdaBudget(context, reserve_ms=1_000))
    outcome = caught.value.outcome
    assert isinstance(outcome, SyncOutcome) and (outcome.full, outcome.pages, outcome.stored) == (True, 1, 2)
    monkeypatch.undo()
    again = world["engine"].sync(world["cal"], src, now=NOW + timedelta(minutes=1))
    assert again.full and (again.skipped, again.stored, again.deleted) == (2, 2, 0)
    assert sorted(titles(world["repo"]).values()) == ["a", "b", "c", "d"]


@pytest.mark.parametrize("runs_out", [False, True])
def test_a_subscriber_added_during_the_sync_is_filled_within_the_budget(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch, runs_out: bool
) -> None:
    # R8 within S12: the newcomer is filled from the store while time is left; when the time runs
    # out first, the etags are forgotten so that the next full pass fetches (and fills) everything
    src = FakeSource(page_size=1)
    for hours, name in enumerate("abc", start=1):
        src.put(name, [occ(name, NOW + timedelta(hours=hours))])
    repo: Repository = world["repo"]
    state: SyncStateStore = world["state"]
    context = _Remaining(60_000)

    def register_room() -> None:
        repo.subscribe(CAL, "ROOM#hq#r3", "room")  # not filled by the API: only the engine fills it

    real_commit = state.commit

    def commit_then_maybe_run_out(*args: Any, **kwargs: Any) -> bool:
        done = real_commit(*args, **kwargs)
        if runs_out:
            context.ms = 0
        return done

    monkeypatch.setattr(state, "commit", commit_then_maybe_run_out)
    budget = LambdaBudget(context, reserve_ms=1_000)
    out = world["engine"].sync(world["cal"], _Racing(src, register_room), now=NOW, budget=budget)
    assert out.status == "synced"
    room = titles(repo, "hq#r3", kind=OwnerKind.ROOM)
    etags = [e.etag for e in state.list_resources(CAL)]
    if runs_out:
        assert room == {} and etags == ["", "", ""]
    else:
        assert sorted(room.values()) == ["a", "b", "c"] and all(etags)


# ---- S11 and S6: what the outcome and the logs report -------------------------------------------
def test_a_long_error_text_and_a_long_resource_key_are_shortened_in_the_report(
    world: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    # S11: a provider's text is cut at 300 characters and a resource key at 120 in the outcome and
    # the log line (a hostile server may send 450 KB); up to the bound they are whole
    inner = FakeSource()
    fits, long_key = "k" * 120, "m" * 121
    inner.put(fits, [occ("one", NOW + timedelta(hours=1))])
    inner.put(long_key, [occ("two", NOW + timedelta(hours=2))])
    src = _WithUnreadable(_WithUnreadable(inner, fits, ("e" * 300,)), long_key, ("f" * 301,))
    caplog.set_level(logging.INFO)
    out = world["engine"].sync(world["cal"], src, now=NOW)
    short_key = "m" * 117 + "..."
    assert out.errors == [f"{fits}: {'e' * 300}", f"{short_key}: {'f' * 297}..."]
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    fields = [(w.__dict__.get("resource"), w.__dict__.get("error")) for w in warnings]
    assert fields == [(fits, "e" * 300), (short_key, "f" * 297 + "...")]
    assert sorted(titles(world["repo"]).values()) == ["one", "two"]


def test_a_resource_with_too_many_occurrences_stores_the_first_ones_by_start(
    world: dict[str, Any], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # S11: at most MAX_OCCURRENCES_PER_RESOURCE occurrences of one resource, the earliest ones (the
    # bound made small here); a resource with exactly that many is stored whole, without a warning
    engine = replace(world["engine"], max_occurrences=3)
    # the earliest is also the longest: by end it would come last
    many = [occ("m", NOW + timedelta(hours=1), minutes=600, original_start="h1", title="m1")]
    many += [occ("m", NOW + timedelta(hours=h), original_start=f"h{h}", title=f"m{h}") for h in (2, 3, 4)]
    src = FakeSource(page_size=10)
    src.put("many", many)
    src.put(
        "three",
        [occ("t", NOW + timedelta(hours=h), original_start=f"h{h}", title=f"t{h}") for h in (1, 2, 3)],
    )
    caplog.set_level(logging.INFO)
    out = engine.sync(world["cal"], src, now=NOW)
    assert out.status == "synced" and out.stored == 2
    assert sorted(titles(world["repo"]).values()) == ["m1", "m2", "m3", "t1", "t2", "t3"]
    [warning] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert (
        warning.getMessage() == "an event has too many occurrences in the horizon: the first ones are stored"
    )
    fields = {k: warning.__dict__.get(k) for k in ("calendar_id", "resource", "occurrences", "stored")}
    assert fields == {"calendar_id": CAL, "resource": "many", "occurrences": 4, "stored": 3}


def test_an_event_stored_before_that_cannot_be_stored_now_is_kept_by_a_full_pass(
    world: dict[str, Any],
) -> None:
    # S11: a skipped resource counts as listed: the full pass does not sweep what it stored before
    src = FakeSource()
    src.put("grows", [occ("grows", NOW + timedelta(hours=1))])
    src.put("other", [occ("other", NOW + timedelta(hours=2))])
    world["engine"].sync(world["cal"], src, now=NOW)
    src.put("grows", [occ("i" * 2000, NOW + timedelta(hours=1))])
    out = world["engine"].sync(world["cal"], src, now=NOW + timedelta(minutes=5), full=True)
    assert out.full and out.deleted == 0
    assert out.unstorable == [f"the event's event id is longer than {limits.MAX_EVENT_ID} characters"]
    assert sorted(titles(world["repo"]).values()) == ["grows", "other"]


def test_a_page_with_an_unstorable_event_stores_the_others_one_by_one_within_the_horizon(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # S11/S12: when a page's batch fails on one event, each resource is stored on its own, a long
    # event still with index entries inside the horizon only; the outcome counts what was written
    src = FakeSource(page_size=10)
    src.put("decade", [occ("decade", NOW - timedelta(days=5 * 365), minutes=10 * 365 * 24 * 60)])
    src.put("long-id", [occ("i" * 2000, NOW + timedelta(hours=1))])
    src.put("short", [occ("short", NOW + timedelta(hours=1))])
    repo: Repository = world["repo"]
    real_store = repo.store_occurrences
    written: list[int] = []

    def counting(*args: Any, **kwargs: Any) -> int:
        n = real_store(*args, **kwargs)
        written.append(n)
        return n

    monkeypatch.setattr(repo, "store_occurrences", counting)
    out = world["engine"].sync(world["cal"], src, now=NOW)
    assert out.stored == 2 and len(out.unstorable) == 1
    assert len(written) == 2 and all(written) and out.occurrences == sum(written)
    horizon = default_horizon(NOW)
    days = (horizon.end - horizon.start).days
    items = [i for i in snapshot(world["table"]) if i["pk"] == "USER#alice" and i.get("eventId") == "decade"]
    assert days <= len(items) <= days + 1


def test_deletions_over_several_pages_and_a_sweep_in_one_sync_are_all_counted(
    world: dict[str, Any],
) -> None:
    # S6/S13: the outcome counts every removed resource: those reported deleted page by page, and
    # those swept by the full pass that follows a cursor refused half-way through the listing
    src = FakeSource(page_size=1)
    for hours, name in enumerate("abcde", start=1):
        src.put(name, [occ(name, NOW + timedelta(hours=hours))])
    engine: SyncEngine = world["engine"]
    first = engine.sync(world["cal"], src, now=NOW)
    # five pages: every page's writes are counted (each occurrence for two subscribers and the index)
    assert (first.pages, first.occurrences) == (5, 3 * 5)
    src.delete("a")
    src.delete("b")
    two_pages = engine.sync(world["cal"], src, now=NOW + timedelta(minutes=1))
    assert not two_pages.full and (two_pages.pages, two_pages.deleted) == (2, 2)

    src.delete("c")
    src.delete("d")
    out = engine.sync(world["cal"], _RefusedAfterFirstPage(src), now=NOW + timedelta(minutes=2))
    # c is reported deleted on the first page; d is swept by the full pass
    assert out.full and out.deleted == 2
    assert sorted(titles(world["repo"]).values()) == ["e"]


class _RefusedAfterFirstPage:
    """A source whose cursor is refused after the first page of an incremental listing (a delta
    token that expires half-way)."""

    def __init__(self, inner: FakeSource) -> None:
        self.inner = inner

    def may_have_changed(self, cursor: str) -> bool:
        return self.inner.may_have_changed(cursor)

    @property
    def next_cursor(self) -> str | None:
        return self.inner.next_cursor

    def changes(self, cursor: Any, known: Any, horizon: Any) -> Any:
        for n, page in enumerate(self.inner.changes(cursor, known, horizon)):
            if cursor is not None and n == 1:
                raise CursorRejected("the token expired")
            yield page


def test_the_sync_error_wins_over_a_failure_to_record_it(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # rule S13: recording the failure is best effort; the failure that goes up is the sync's own
    src = FakeSource()
    src.put("a", [occ("a", NOW + timedelta(hours=1))])
    src.fail_after_pages = 0

    def record_fails(*args: Any) -> None:
        raise ConnectionError("store unreachable")

    monkeypatch.setattr(world["state"], "record_failure", record_fails)
    with pytest.raises(RuntimeError, match="injected"):
        world["engine"].sync(world["cal"], src, now=NOW)


def test_a_sync_of_a_calendar_past_the_threshold_widens_it_first(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # docs/adr/0021: the sync widens a calendar past the threshold under its lease, then stores

    src = FakeSource()
    src.put("a", [occ("a", NOW + timedelta(hours=1))])
    world["engine"].sync(world["cal"], src, now=NOW)
    repo: Repository = world["repo"]
    assert (repo.get_calendar(CAL) or world["cal"]).layout == "copies"
    monkeypatch.setattr(repo, "wide_threshold", 1)  # alice and the room: past it now
    src.put("b", [occ("b", NOW + timedelta(hours=2))])
    budget = LambdaBudget(_Remaining(60_000), reserve_ms=1_000)  # time left: the widening finishes
    cal = repo.get_calendar(CAL) or world["cal"]
    out = world["engine"].sync(cal, src, now=NOW + timedelta(minutes=5), budget=budget)
    widened = repo.get_calendar(CAL)
    assert out.status == "synced" and widened is not None and widened.layout == "wide"
    # every event had a copy to widen from: nothing to fetch again, the pass stays incremental
    assert not out.full and all(e.etag for e in world["state"].list_resources(CAL))
    # the pass wrote to the calendar as it is now (wide): b once, in the calendar's partition, and
    # no copy in alice's own
    profile = repo.get_profile("alice")
    assert profile is not None and profile.wide_calendars == {CAL: "primary"}
    start, end = NOW - timedelta(days=1), NOW + timedelta(days=30)
    own = repo.read_owner_events(OwnerKind.USER, "alice", start, end, {})
    assert own.occurrences == []
    read = repo.read_owner_events(OwnerKind.USER, "alice", start, end, profile.wide_calendars)
    assert sorted(o.title or "" for o in read.occurrences) == ["a", "b"]


def test_a_widening_out_of_time_stops_and_goes_on_with_the_next_sync(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # docs/adr/0021 within S12: the widening asks the budget between its steps

    src = FakeSource()
    src.put("a", [occ("a", NOW + timedelta(hours=1))])
    world["engine"].sync(world["cal"], src, now=NOW)
    repo: Repository = world["repo"]
    monkeypatch.setattr(repo, "wide_threshold", 1)
    src.put("b", [occ("b", NOW + timedelta(hours=2))])
    context = _Remaining(60_000)
    state: SyncStateStore = world["state"]
    real_acquire = state.acquire

    def acquire_then_run_out(*args: Any, **kwargs: Any) -> Any:
        leased = real_acquire(*args, **kwargs)
        context.ms = 0  # the time runs out once the lease is taken, before the widening
        return leased

    monkeypatch.setattr(state, "acquire", acquire_then_run_out)
    cal = repo.get_calendar(CAL) or world["cal"]
    with pytest.raises(OutOfTime):
        world["engine"].sync(cal, src, now=NOW + timedelta(minutes=5), budget=LambdaBudget(context, 1_000))
    assert (repo.get_calendar(CAL) or cal).layout != "wide"
    monkeypatch.setattr(state, "acquire", real_acquire)
    out = world["engine"].sync(repo.get_calendar(CAL) or cal, src, now=NOW + timedelta(minutes=6))
    assert out.status == "synced" and (repo.get_calendar(CAL) or cal).layout == "wide"


def test_a_widening_without_copies_to_widen_from_fetches_everything_again(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # docs/adr/0021: what has no copy to widen from is "missing": the sync forgets the etags and
    # runs a full pass, which fetches (and stores) every event again

    src = FakeSource()
    for hours, name in enumerate("ab", start=1):
        src.put(name, [occ(name, NOW + timedelta(hours=hours))])
    world["engine"].sync(world["cal"], src, now=NOW)
    table = world["table"]
    for item in snapshot(table):
        if item.get("eventId") and not str(item["pk"]).startswith("CAL#"):  # the copies, not the index
            table.delete_item(Key={"pk": item["pk"], "sk": item["sk"]})
    monkeypatch.setattr(world["repo"], "wide_threshold", 1)
    src.put("c", [occ("c", NOW + timedelta(hours=3))])  # a change: the sync runs
    repo: Repository = world["repo"]
    out = world["engine"].sync(repo.get_calendar(CAL) or world["cal"], src, now=NOW + timedelta(minutes=5))
    assert out.full and (out.stored, out.skipped) == (3, 0)
    assert all(e.etag for e in world["state"].list_resources(CAL))
