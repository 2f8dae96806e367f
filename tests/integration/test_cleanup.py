"""The cleanup function (rule S9) against a real table (moto AND Amazon DynamoDB Local).

The clock is frozen: ``now`` is passed explicitly, or the handler's ``clock`` is replaced.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from calsync.domain.models import UTC, Occurrence, OwnerKind, Provider
from calsync.store import keys
from calsync.store.items import Calendar
from calsync.store.repository import Repository
from calsync.sync import cleanup
from calsync.sync.tasks import run_number
from calsync.wiring.tasks import task_deps
from functions.cleanup import app
from tests.support.apigw import LambdaContext
from tests.support.tasks import TaskQueue, run_cleanup
from tests.support.template import table_create_kwargs

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
    """One scheduled run: its 16 shard tasks (and what they hand back), as the queue runs them."""
    with counted(repo.table) as calls:
        deleted = run_cleanup(repo, now).total
    return deleted, calls


def cursors(repo: Repository) -> set[datetime | None]:
    return {repo.get_cleanup_cursor(s) for s in range(keys.CLEANUP_SHARDS)}


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
    assert cursors(repo) == {datetime(2025, 3, 10, 11, tzinfo=UTC)}  # hour of now - 61 min
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
    assert cursors(repo) == {None}
    deleted, calls = clean(repo, NOW)
    assert deleted == 4
    assert remaining(table) == ids(outside)
    # 48 h back from 12:20 starts in the 12:00 bucket two days ago; the last bucket is 11:00 today
    assert calls["Query"] == 48 * keys.CLEANUP_SHARDS


def test_works_across_many_hours_since_the_cursor(repo: Repository, table: Any) -> None:
    # rule S9: a function that did not run for a day catches up in one run, every hour and shard
    for shard in range(keys.CLEANUP_SHARDS):
        repo.advance_cleanup_cursor(shard, NOW - timedelta(days=1))
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


@contextmanager
def deletes(table: Any) -> Iterator[list[int]]:
    """Counts the keys sent in BatchWriteItem delete requests meanwhile (``[n]``)."""
    count = [0]

    def seen(params: dict[str, Any], **_: Any) -> None:
        count[0] += sum(len(reqs) for reqs in params["RequestItems"].values())

    events = table.meta.client.meta.events
    events.register("provide-client-params.dynamodb.BatchWriteItem", seen)
    try:
        yield count
    finally:
        events.unregister("provide-client-params.dynamodb.BatchWriteItem", seen)


@pytest.fixture
def queued(moto_table: Any) -> Iterator[tuple[Repository, TaskQueue]]:
    """The cleanup function wired to a CleanupQueue (moto: table and queue)."""
    repo = Repository(moto_table)
    queue = TaskQueue(boto3.client("sqs", region_name="eu-west-1"), app, "cleanup")
    with app.wiring.use(task_deps(queue.url, moto_table, sqs=queue.sqs, clock=lambda: NOW)):
        yield repo, queue


def many_ended(repo: Repository, n: int) -> list[Occurrence]:
    """``n`` events that ended over the last ``n`` hours (each 3 copies and an index entry)."""
    ended = [occ(f"e{i}", NOW - timedelta(hours=2 + i % 20, minutes=i % 50)) for i in range(n)]
    store(repo, *ended)
    return ended


def test_handler_with_the_sample_events(queued: tuple[Repository, TaskQueue]) -> None:
    # rule S9: the schedule dispatches one task per shard (events/cleanup-schedule.json, as
    # `sam local invoke -e`), the queue's invocations delete (events/cleanup-task.json is one)
    repo, queue = queued
    event = json.loads((ROOT / "events" / "cleanup-schedule.json").read_text())
    assert event["detail-type"] == "Scheduled Event"
    future = occ("future", NOW + timedelta(hours=1))
    store(repo, occ("over", NOW - timedelta(hours=2)), future)
    assert app.lambda_handler(event, LambdaContext(function_name="calsync-cleanup")) == {
        "dispatched": 16,
        "failed": 0,
    }
    with deletes(repo.table) as n:
        assert len(queue.run()) == keys.CLEANUP_SHARDS  # one invocation per shard: nothing left
    assert n == [4]
    assert remaining(repo.table) == ids(future) and cursors(repo) == {cleanup.next_cursor(NOW)}
    sample = json.loads((ROOT / "events" / "cleanup-task.json").read_text())
    assert app.lambda_handler(sample, LambdaContext(function_name="calsync-cleanup")) == {
        "batchItemFailures": []
    }


def test_a_large_cleanup_is_shared_by_invocations_of_a_bounded_page(
    queued: tuple[Repository, TaskQueue],
) -> None:
    # issue 16: no invocation deletes more than its page (7 here, CLEANUP_PAGE = 1,000 deployed);
    # what a shard holds beyond it is handed back; everything ended is deleted, each key once
    repo, queue = queued
    ended = many_ended(repo, 60)
    kept = occ("kept", NOW - timedelta(minutes=30))
    store(repo, kept)
    deps = task_deps(queue.url, repo.table, sqs=queue.sqs, clock=lambda: NOW, limit=7)
    with app.wiring.use(deps), deletes(repo.table) as n:
        app.lambda_handler({"detail-type": "Scheduled Event"}, LambdaContext(function_name="calsync-cleanup"))
        per = queue.run(measure=lambda: n[0])
    assert max(per) <= 7
    assert sum(per) == len(ended) * 4  # three copies and an index entry each: none twice
    assert len(per) > keys.CLEANUP_SHARDS  # shards needed several invocations: the rest came back
    assert remaining(repo.table) == ids(kept)
    assert cursors(repo) == {cleanup.next_cursor(NOW)}


@dataclass
class Draining(LambdaContext):
    """A context whose remaining time drops by ``tick`` ms at each read (no wall clock)."""

    left: int = 300_000
    tick: int = 0

    def get_remaining_time_in_millis(self) -> int:
        self.left -= self.tick
        return self.left


def test_an_invocation_short_of_time_hands_the_rest_back(queued: tuple[Repository, TaskQueue]) -> None:
    # issue 16: the budget (a quarter of 300 s kept back) is spent after a few Queries: the
    # invocation stops and hands the rest back; a redelivered task deletes nothing twice
    repo, queue = queued
    ended = many_ended(repo, 40)
    for shard in range(keys.CLEANUP_SHARDS):
        repo.advance_cleanup_cursor(shard, NOW - timedelta(hours=24))
    app.lambda_handler({"detail-type": "Scheduled Event"}, LambdaContext(function_name="calsync-cleanup"))
    with deletes(repo.table) as n:
        per = queue.run(lambda: Draining(tick=20_000), measure=lambda: n[0], redeliver=True)
    assert sum(per) == len(ended) * 4
    assert remaining(repo.table) == set()
    # 20 s a read: the budget (70 s kept back of 280 s) allows 9 Queries an invocation, so the
    # 25 hour buckets of each shard since its cursor take 3 invocations, each handing the rest back
    assert sum(1 for b in queue.bodies if '"after"' in b) > keys.CLEANUP_SHARDS
    assert cursors(repo) == {cleanup.next_cursor(NOW)}


def test_the_cursor_never_moves_back(repo: Repository) -> None:
    # issue 16: tasks of one shard finishing in any order (a redelivery, or the next run's task)
    assert repo.advance_cleanup_cursor(3, NOW)
    assert not repo.advance_cleanup_cursor(3, NOW - timedelta(hours=2))
    assert not repo.advance_cleanup_cursor(3, NOW)
    assert repo.get_cleanup_cursor(3) == NOW.replace(microsecond=0)
    # a shard without a cursor of its own falls back to the one cursor kept before the fan-out
    repo.table.put_item(Item={**keys.CLEANUP_CURSOR, "until": keys.iso(NOW - timedelta(hours=5))})
    assert repo.get_cleanup_cursor(4) == NOW.replace(microsecond=0) - timedelta(hours=5)
    assert repo.get_cleanup_cursor(3) == NOW.replace(microsecond=0)


def test_two_invocations_of_one_shard_at_once_on_dynamodb_local(ddb_local_endpoint: str) -> None:
    # issue 16 (DynamoDB Local, real concurrency): a task delivered twice runs in two invocations
    # at the same time; together they delete every ended key of the shard, and the cursor ends
    # where one run alone would put it (conditional, forward only)
    resource = boto3.resource("dynamodb", region_name="eu-west-1", endpoint_url=ddb_local_endpoint)
    table = resource.create_table(**table_create_kwargs(f"calsync-cleanup-{uuid.uuid4().hex[:8]}"))
    table.wait_until_exists()
    try:
        repo = Repository(table)
        many_ended(repo, 80)
        shard = keys.cleanup_shard("USER#alice")
        task = cleanup.CleanupTask(shard=shard, run=run_number(NOW, cleanup.CLEANUP_EVERY))
        barrier = threading.Barrier(2)

        def invocation() -> int:
            barrier.wait()
            done = 0
            rest: cleanup.CleanupTask | None = task
            while rest is not None:
                summary = cleanup.clean_shard(Repository(table), rest, NOW, limit=5)
                assert summary.deleted <= 5
                done += summary.deleted
                rest = summary.rest
            return done

        with ThreadPoolExecutor(2) as pool:
            done = [f.result() for f in [pool.submit(invocation), pool.submit(invocation)]]
        assert sum(done) >= 80  # alice's copies (each deleted by one of them, or by both)
        left = table.query(
            IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :b",
            ExpressionAttributeValues={":b": keys.end_bucket(NOW - timedelta(hours=2), shard)},
        )["Items"]
        assert left == []
        assert "USER#alice" not in {
            str(i["pk"]) for i in table.scan(ConsistentRead=True)["Items"] if "occId" in i
        }
        assert repo.get_cleanup_cursor(shard) == cleanup.next_cursor(NOW)
    finally:
        table.delete()


def test_next_cursor_is_the_start_of_the_hour_61_minutes_ago() -> None:
    # rule S9: the partial hour is re-read on the next run
    assert cleanup.next_cursor(datetime(2025, 3, 10, 12, 0, tzinfo=UTC)) == datetime(
        2025, 3, 10, 10, tzinfo=UTC
    )
    assert cleanup.next_cursor(datetime(2025, 3, 10, 12, 1, tzinfo=UTC)) == datetime(
        2025, 3, 10, 11, tzinfo=UTC
    )
    assert cleanup.next_cursor(datetime(2025, 3, 10, 0, 30, tzinfo=UTC)) == datetime(
        2025, 3, 9, 23, tzinfo=UTC
    )
