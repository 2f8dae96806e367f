"""The cleanup function (rule S9) against a real table (moto AND Amazon DynamoDB Local).

The clock is frozen: ``now`` is passed explicitly, or the handler's ``clock`` is replaced.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from calsync.domain.models import UTC, Occurrence, OwnerKind, Provider
from calsync.store import keys
from calsync.store.items import Calendar
from calsync.store.repository import Repository
from functions.cleanup import app

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2025, 3, 10, 12, 20, 30, tzinfo=UTC)
GRACE = timedelta(minutes=61)
SUBSCRIBERS: dict[str, Any] = {"USER#alice": "primary", "USER#bob": "conflict", "ROOM#r1": "room"}


def occ(event_id: str, end: datetime, hours: float = 1, calendar_id: str = "cal-1") -> Occurrence:
    return Occurrence(
        Provider.GOOGLE,
        "acc-1",
        calendar_id,
        event_id,
        f"title {event_id}",
        start=end - timedelta(hours=hours),
        end=end,
    )


def calendar(calendar_id: str = "cal-1") -> Calendar:
    return Calendar(
        calendar_id=calendar_id,
        account_id="acc-1",
        owner_user_id="alice",
        provider=Provider.GOOGLE,
        subscribers=SUBSCRIBERS,
    )


@contextmanager
def counted(table: Any) -> Iterator[Counter[str]]:
    """Count the DynamoDB operations made meanwhile (botocore's own event hooks); never a Scan."""
    calls: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    events = table.meta.client.meta.events
    events.register("before-call.dynamodb.*", count)
    try:
        yield calls
    finally:
        events.unregister("before-call.dynamodb.*", count)
    assert calls["Scan"] == 0, calls  # rule S9: the cleanup never scans the table
    assert calls["Query"] > 0, calls  # (the hook does see the calls)


def clean(repo: Repository, now: datetime) -> tuple[int, Counter[str]]:
    with counted(repo.table) as calls:
        deleted = app.clean(repo, now)
    return deleted, calls


@pytest.fixture
def repo(table: Any) -> Repository:
    return Repository(table)


def store(repo: Repository, *occurrences: Occurrence) -> None:
    cal = calendar()
    repo.put_calendar(cal)
    repo.store_occurrences(cal, occurrences)


def remaining(table: Any) -> set[str]:
    """The event ids that still have a copy or an index entry (the test may Scan; cleanup may not)."""
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"ConsistentRead": True}
    while True:
        resp = table.scan(**kwargs)
        items.extend(resp["Items"])
        if "LastEvaluatedKey" not in resp:
            break
        kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
    return {str(i["occId"]) for i in items if "occId" in i}


def ids(*occurrences: Occurrence) -> set[str]:
    return {o.id for o in occurrences}


def test_ended_more_than_61_minutes_ago_is_deleted_exactly_61_is_kept(repo: Repository, table: Any) -> None:
    # rule S9: "ended more than 61 minutes ago" (and U2/R2 agree on the same boundary)
    over = occ("over", NOW - GRACE - timedelta(seconds=1))
    exactly = occ("exactly", NOW - GRACE)
    recent = occ("recent", NOW - timedelta(minutes=5))
    future = occ("future", NOW + timedelta(hours=2))
    long_running = occ("long", NOW + timedelta(hours=1), hours=72)  # started 3 days ago, ends later
    store(repo, over, exactly, recent, future, long_running)

    deleted, calls = clean(repo, NOW)

    assert deleted == 3 + 1  # three copies and the index entry of "over"
    assert remaining(table) == ids(exactly, recent, future, long_running)
    for owner in ("alice", "bob"):
        read = repo.read_owner_events(OwnerKind.USER, owner, NOW - timedelta(days=1), NOW + timedelta(days=2))
        assert over.id not in {o.id for o in read.occurrences}
    assert calls["Query"] >= keys.CLEANUP_SHARDS  # hour buckets x shards, read with Query


def test_a_second_run_deletes_nothing_more_and_a_later_run_catches_up(repo: Repository, table: Any) -> None:
    # rule S9: idempotent; the partial hour is read again, so "exactly 61 min" goes on a later run
    exactly = occ("exactly", NOW - GRACE)
    over = occ("over", NOW - GRACE - timedelta(minutes=30))
    store(repo, exactly, over)
    assert clean(repo, NOW)[0] == 4
    assert repo.get_cleanup_cursor() == datetime(2025, 3, 10, 11, tzinfo=UTC)  # hour of now - 61 min
    deleted, calls = clean(repo, NOW)
    assert deleted == 0
    assert calls["BatchWriteItem"] == 0
    assert calls["Query"] == keys.CLEANUP_SHARDS  # only the hour of the cursor (11:00), re-read
    assert remaining(table) == ids(exactly)
    later = NOW + timedelta(minutes=15)
    assert clean(repo, later)[0] == 4
    assert remaining(table) == set()


def test_first_run_looks_back_48_hours(repo: Repository, table: Any) -> None:
    # rule S9: with no cursor yet, the last 48 h are cleaned (older items are left to TTL, the backstop)
    inside = occ("inside", NOW - timedelta(hours=47))
    outside = occ("outside", NOW - timedelta(hours=50))
    store(repo, inside, outside)
    assert repo.get_cleanup_cursor() is None
    deleted, calls = clean(repo, NOW)
    assert deleted == 4
    assert remaining(table) == ids(outside)
    # 48 h back from 12:20 starts in the 12:00 bucket two days ago; the last bucket is 11:00 today
    assert calls["Query"] == 48 * keys.CLEANUP_SHARDS


def test_works_across_many_hours_since_the_cursor(repo: Repository, table: Any) -> None:
    # rule S9: a function that did not run for a day catches up in one run, every hour and shard
    repo.set_cleanup_cursor(NOW - timedelta(days=1))
    ended = [
        occ(f"e{h}", NOW - timedelta(hours=h, minutes=2), calendar_id=f"cal-{h % 3}") for h in range(2, 24)
    ]
    kept = occ("kept", NOW - timedelta(minutes=30))
    for cal_id in ("cal-0", "cal-1", "cal-2"):
        cal = calendar(cal_id)
        repo.put_calendar(cal)
        repo.store_occurrences(cal, [o for o in [*ended, kept] if o.calendar_id == cal_id])
    deleted, calls = clean(repo, NOW)
    assert deleted == len(ended) * 4
    assert remaining(table) == ids(kept)
    assert calls["Query"] == 24 * keys.CLEANUP_SHARDS  # 12:00 yesterday … 11:00 today
    assert calls["BatchWriteItem"] >= 1


def test_all_day_events_are_kept_until_they_ended_in_every_time_zone(repo: Repository, table: Any) -> None:
    # rule S9 with U10: an all-day event on 9 March ends at 00:00 on the 10th in the owner's zone,
    # which is 12:00 UTC for an owner in UTC-12; it must not be deleted before then (+ 61 min)
    holiday = Occurrence(
        Provider.GOOGLE,
        "acc-1",
        "cal-1",
        "holiday",
        "Holiday",
        start_date=date(2025, 3, 9),
        end_date=date(2025, 3, 10),
    )
    store(repo, holiday)
    latest_end = datetime(2025, 3, 10, 12, tzinfo=UTC)
    assert clean(repo, latest_end + GRACE)[0] == 0
    assert remaining(table) == ids(holiday)
    # indexed over 8 Mar 10:00 UTC (UTC+14) .. 10 Mar 12:00 UTC: 3 entries per copy, + the index entry
    assert clean(repo, latest_end + GRACE + timedelta(seconds=1))[0] == len(SUBSCRIBERS) * 3 + 1
    assert remaining(table) == set()


def test_items_of_every_shard_are_found(repo: Repository, table: Any) -> None:
    # rule S9: partitions hash to all 16 shards of an hour bucket; none is forgotten
    people = {f"USER#p{i}": "primary" for i in range(80)}
    shards = {keys.cleanup_shard(pk) for pk in people}
    assert len(shards) == keys.CLEANUP_SHARDS
    cal = Calendar(
        calendar_id="busy",
        account_id="acc-1",
        owner_user_id="p0",
        provider=Provider.GOOGLE,
        subscribers=people,
    )
    repo.put_calendar(cal)
    repo.store_occurrences(cal, [occ("all-hands", NOW - timedelta(hours=3), calendar_id="busy")])
    assert clean(repo, NOW)[0] == len(people) + 1
    assert remaining(table) == set()


def test_handler_with_the_sample_schedule_event(
    repo: Repository, table: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # rule S9: the scheduled function itself (events/cleanup-schedule.json, as `sam local invoke -e`)
    event = json.loads((ROOT / "events" / "cleanup-schedule.json").read_text())
    assert event["detail-type"] == "Scheduled Event"
    store(repo, occ("over", NOW - timedelta(hours=2)), occ("future", NOW + timedelta(hours=1)))
    monkeypatch.setattr(app, "clock", lambda: NOW)
    monkeypatch.setattr(app, "repository", lambda: repo)
    with counted(table):
        assert app.lambda_handler(event, LambdaContextStub()) == {"deleted": 4}
        assert app.lambda_handler(event, LambdaContextStub()) == {"deleted": 0}
    assert repo.get_cleanup_cursor() == app.next_cursor(NOW)


def test_next_cursor_is_the_start_of_the_hour_61_minutes_ago() -> None:
    # rule S9: the partial hour is re-read on the next run
    assert app.next_cursor(datetime(2025, 3, 10, 12, 0, tzinfo=UTC)) == datetime(2025, 3, 10, 10, tzinfo=UTC)
    assert app.next_cursor(datetime(2025, 3, 10, 12, 1, tzinfo=UTC)) == datetime(2025, 3, 10, 11, tzinfo=UTC)
    assert app.next_cursor(datetime(2025, 3, 10, 0, 30, tzinfo=UTC)) == datetime(2025, 3, 9, 23, tzinfo=UTC)


class LambdaContextStub:
    function_name = "calsync-cleanup"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:calsync-cleanup"
    aws_request_id = "req-1"
