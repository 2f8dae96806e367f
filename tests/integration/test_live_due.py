"""Time-driven live events (issue 15, docs/adr/0018): LiveDueFunction, run as its schedule and its
task queue run it (the schedule handles up to INLINE_PEOPLE itself and hands the rest of the DUE
shards to the queue as tasks, moto's SQS; docs/adr/0026), with a frozen clock on moto.
The presence API writes down when a person's answers change by time;
the schedule publishes at (after) that instant, with no client timer: a meeting starting or ending,
a session expiring; nothing when nothing is due."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from calsync import live
from calsync.api.time_driven import INLINE_PEOPLE, DueTask, run_shard
from calsync.config import get_presence_settings
from calsync.store import due, keys
from calsync.store.repository import Repository
from calsync.sync.tasks import run_number
from calsync.wiring.live import live_due_deps
from calsync.wiring.presence import presence_deps
from tests.support import apigw
from tests.support.apigw import LambdaContext, answer, calendar, occurrence
from tests.support.tasks import TaskQueue

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)  # a Friday
ALICE = apigw.claims("alice", ["hq"])
BOB = apigw.claims("bob", ["hq"])
SCHEDULED = {
    "version": "0",
    "id": "x",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2026-11-20T09:00:00Z",
    "region": "eu-west-1",
    "resources": [],
    "detail": {},
}


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def publish(self, channel: str, events: list[Any]) -> bool:
        self.events += [(channel, dict(e)) for e in events]
        return True

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for _, e in self.events if e["type"] == kind]


@dataclass
class World:
    table: Any
    published: Recorder
    queue: TaskQueue
    now: datetime = NOW
    context: LambdaContext = field(default_factory=LambdaContext)

    def presence(self, method: str, path: str, claims: dict[str, Any], body: Any = None) -> Any:
        module = importlib.import_module("functions.presence.app")
        event = apigw.event(method, path, claims=claims, body=body)
        return answer(module.lambda_handler(event, self.context))

    def tick(self, at: datetime, *, redeliver: bool = False) -> dict[str, Any]:
        """The schedule's run at ``at``: its tasks dispatched, then run by the queue to the end
        (``redeliver``: each task delivered twice, as a standard queue may)."""
        self.now = at
        module = importlib.import_module("functions.live_due.app")
        dispatched = dict(module.lambda_handler(SCHEDULED, self.context))
        self.queue.run(redeliver=redeliver)
        return dispatched


@pytest.fixture
def world(moto_table: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for name in ("PHOTO_BUCKET", "PRESENCE_BUS_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SESSION_TTL_SECONDS", str(8 * 3600))
    get_presence_settings.cache_clear()
    presence = importlib.import_module("functions.presence.app")
    scheduled = importlib.import_module("functions.live_due.app")
    recorder = Recorder()
    queue = TaskQueue(boto3.client("sqs", region_name="eu-west-1"), scheduled, "live-due")
    w = World(moto_table, recorder, queue)
    live.use(recorder)
    repo = Repository(moto_table)
    repo.set_member_locations("alice", ["hq"])
    repo.set_member_locations("bob", ["hq"])
    due.DueStore(moto_table).set_cursor(NOW)  # the schedule has been running every minute
    try:
        with ExitStack() as wired:
            wired.enter_context(presence.wiring.use(presence_deps(moto_table, clock=lambda: w.now)))
            deps = live_due_deps(moto_table, sqs=queue.sqs, task_queue_url=queue.url, clock=lambda: w.now)
            wired.enter_context(scheduled.wiring.use(deps))
            yield w
    finally:
        live.use(None)
        get_presence_settings.cache_clear()


def meeting(world: World, name: str, start: datetime, end: datetime) -> None:
    repo = Repository(world.table)
    cal = calendar(repo, "cal-a", "acc-a", "alice", subscribers={"USER#alice": "primary"})
    repo.store_occurrences(cal, [occurrence(cal, name, name, start, end)])


def sign_in(world: World) -> None:
    assert world.presence("POST", "/v1/me/sessions", ALICE).status == 201


def test_a_meeting_starting_publishes_one_presence_event_with_a_grown_version(world: World) -> None:
    meeting(world, "standup", NOW + timedelta(minutes=30), NOW + timedelta(minutes=45))
    sign_in(world)
    world.tick(NOW + timedelta(minutes=1))  # the sync's "look again": nothing changed by time yet
    signed_in = world.published.of("presence")[-1]
    assert signed_in["presence"]["status"] == "available"
    world.published.events.clear()

    world.tick(NOW + timedelta(minutes=29))
    assert world.published.events == []  # nothing due before the meeting

    world.tick(NOW + timedelta(minutes=30, seconds=20))
    [event] = world.published.of("presence")
    assert event["id"] == "alice" and event["version"] > signed_in["version"]
    assert event["presence"]["status"] == "busy"
    assert event["presence"]["inMeetingUntil"].startswith("2026-11-20T09:45")
    # the same answer a colleague GETs, with its ETag: no refetch needed (and a 304 if one is made)
    got = world.presence("GET", "/v1/users/alice/presence", BOB)
    assert json.loads(got.body) == event["presence"] and got.headers["ETag"] == event["etag"]

    world.published.events.clear()
    world.tick(NOW + timedelta(minutes=45))
    [ended] = world.published.of("presence")
    assert ended["presence"]["status"] == "available" and ended["version"] > event["version"]


def test_a_session_expiring_publishes_offline(world: World) -> None:
    sign_in(world)
    world.published.events.clear()
    world.tick(NOW + timedelta(hours=7, minutes=59))
    assert world.published.events == []
    world.tick(NOW + timedelta(hours=8))
    [event] = world.published.of("presence")
    assert event["presence"]["status"] == "offline" and event["presence"]["acceptsCalls"] is False
    world.published.events.clear()
    world.tick(NOW + timedelta(hours=8, minutes=1))
    assert world.published.events == []  # offline for good: nothing armed any more
    shard = keys.due_shard("alice")
    assert not due.DueStore(world.table).page(due.bucket_pk(NOW + timedelta(days=1), shard), 10)


def test_nothing_is_published_when_nothing_is_due(world: World) -> None:
    sign_in(world)  # armed: the session's expiry, 8 h on
    world.published.events.clear()
    for minute in range(1, 6):
        assert world.tick(NOW + timedelta(minutes=minute)) == {"handled": 0, "dispatched": 0, "failed": 0}
    assert world.published.events == []
    assert world.queue.bodies == []  # the schedule read every shard itself: no task, no invocation


def test_a_meeting_leaving_the_meetings_answer_tells_the_person(world: World) -> None:
    meeting(world, "early", NOW - timedelta(hours=1), NOW - timedelta(minutes=30))
    world.tick(NOW)  # the sync's "look again": arms the instant the meeting leaves the answer (U2)
    world.published.events.clear()
    world.tick(NOW + timedelta(minutes=30))
    assert world.published.events == []
    world.tick(NOW + timedelta(minutes=31))  # ended 61 min before: it leaves the list (U2)
    [event] = world.published.of("meetings")
    assert event["id"] == "alice"
    assert world.published.of("presence") == []  # alice has no session: her presence did not change


def test_a_change_by_time_arms_its_next_instant_without_a_look_again(world: World) -> None:
    # docs/adr/0026: the schedule's own meetings bump puts nobody in DUE#SOON (the look again would
    # find the instant it has just armed, for 3 writes and 3 read units)
    meeting(world, "early", NOW - timedelta(hours=1), NOW - timedelta(minutes=30))
    meeting(world, "later", NOW + timedelta(hours=2), NOW + timedelta(hours=3))
    world.tick(NOW)  # the sync's look again
    store = due.DueStore(world.table)
    soon = due.soon_pk(keys.due_shard("alice"))
    assert store.page(soon, 10) == []
    world.tick(NOW + timedelta(minutes=31))  # "early" leaves the answer: published by time
    assert [e["id"] for e in world.published.of("meetings")][-1:] == ["alice"]
    assert store.page(soon, 10) == []  # no look again of its own
    # the next instant is armed: "later" leaves the answer 61 min after its end
    armed = store.page(due.bucket_pk(NOW + timedelta(hours=4, minutes=1), keys.due_shard("alice")), 10)
    assert [d.user_id for d in armed] == ["alice"]


def test_a_look_again_that_finds_the_next_instant_armed_writes_no_instant(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # docs/adr/0026: a calendar change after the next instant leaves that instant as it was; the
    # look again reads the bucket (one GetItem) instead of putting the same item again
    meeting(world, "standup", NOW + timedelta(minutes=30), NOW + timedelta(minutes=45))
    sign_in(world)  # arms the standup's start
    world.tick(NOW + timedelta(minutes=1))
    armed: list[tuple[str, datetime]] = []
    original = due.DueStore.arm

    def spy(self: due.DueStore, user_id: str, at: datetime) -> None:
        armed.append((user_id, at))
        original(self, user_id, at)

    monkeypatch.setattr(due.DueStore, "arm", spy)
    meeting(world, "later", NOW + timedelta(hours=3), NOW + timedelta(hours=4))  # a calendar change
    world.published.events.clear()
    world.tick(NOW + timedelta(minutes=2))  # its look again: the next instant is still the standup's
    assert armed == []
    world.tick(NOW + timedelta(minutes=30, seconds=20))  # and the chain goes on from it
    [event] = world.published.of("presence")
    assert event["presence"]["status"] == "busy"
    assert armed and armed[-1][0] == "alice"  # the standup's end, armed by the run that handled it


def test_a_status_set_meanwhile_is_not_taken_for_a_change_by_time(world: World) -> None:
    meeting(world, "standup", NOW + timedelta(minutes=30), NOW + timedelta(minutes=45))
    sign_in(world)
    world.tick(NOW + timedelta(minutes=1))
    world.now = NOW + timedelta(minutes=10)
    assert world.presence("PUT", "/v1/me/presence", ALICE, body={"status": "away"}).status == 200
    [event] = world.published.of("presence")[-1:]
    assert event["presence"]["status"] == "away"
    world.published.events.clear()
    world.tick(NOW + timedelta(minutes=30))  # the meeting starts, but a chosen status wins (P6)
    assert world.published.events == []


def test_the_budget_stops_a_run_and_the_next_one_goes_on(world: World) -> None:
    deps = importlib.import_module("functions.live_due.app").wiring()
    store, service = deps.due, deps.service
    users = [u for u in (f"u{n}" for n in range(200)) if keys.due_shard(u) == 3][:3]
    for user in users:
        store.arm(user, NOW - timedelta(seconds=30))
    task = DueTask(shard=3, run=run_number(NOW, due.MINUTE))
    calls = iter([True, False])
    first = run_shard(store, service, task, NOW, in_time=lambda: next(calls, False))
    assert first.people == 1 and first.rest == task.continued(keys.iso(NOW))
    second = run_shard(store, service, first.rest, NOW)
    assert (second.people, second.rest) == (2, None)
    assert store.page(due.bucket_pk(NOW, 3), 10) == []
    assert store.cursor(3) == NOW + due.MINUTE


def test_a_meeting_of_a_wide_calendar_starting_publishes_busy(world: World) -> None:
    # docs/adr/0018 with 0021: the schedule reads the person's wide calendars too (stored once)
    repo = Repository(world.table, wide_threshold=2)
    subscribers = {"USER#alice": "primary", "USER#bob": "primary", "USER#carol": "primary"}
    cal = calendar(repo, "cal-team", "acc-t", "carol", subscribers=subscribers)
    assert repo.widen("cal-team") is not None
    profile, widened = repo.get_profile("alice"), repo.get_calendar("cal-team")
    assert profile is not None and profile.wide_calendars == {"cal-team": "primary"}
    assert widened is not None and widened.layout == "wide"
    cal = widened  # its events are stored once, in WIDE#cal-team
    repo.store_occurrences(
        cal,
        [occurrence(cal, "all-hands", "All hands", NOW + timedelta(minutes=30), NOW + timedelta(hours=1))],
    )
    sign_in(world)
    world.tick(NOW + timedelta(minutes=1))
    world.published.events.clear()
    world.tick(NOW + timedelta(minutes=30, seconds=20))
    [event] = [e for e in world.published.of("presence") if e["id"] == "alice"]
    assert event["presence"]["status"] == "busy"
    assert event["presence"]["inMeetingUntil"].startswith("2026-11-20T10:00")


# ---- the fan-out over the DUE shards (docs/adr/0018, "Scale and limits") ----------------------------


def people_of(shard: int, n: int) -> list[str]:
    return [u for u in (f"p{i}" for i in range(100 * n)) if keys.due_shard(u) == shard][:n]


@pytest.fixture
def handled(world: World, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every person the schedule handled (published or not), in order."""
    service = importlib.import_module("functions.live_due.app").wiring().service
    seen: list[str] = []
    original = service.publish_time_driven

    def recording(user_id: str, since: datetime | None, now: datetime) -> Any:
        seen.append(user_id)
        return original(user_id, since, now)

    monkeypatch.setattr(service, "publish_time_driven", recording)
    return seen


def test_a_bucket_larger_than_the_bound_is_handled_by_several_invocations_each_person_once(
    world: World, handled: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    module = importlib.import_module("functions.live_due.app")
    store = module.wiring().due
    crowd = people_of(3, 10) + people_of(7, 2)
    for user in crowd:
        store.arm(user, NOW + timedelta(minutes=1, seconds=-30))  # one minute's bucket, two shards
    store.arm_soon(crowd[0])  # and once in the shard's "look again" bucket
    world.now = NOW + timedelta(minutes=1)
    with module.wiring.use(replace(module.wiring(), limit=3)):  # people per invocation (a test's bound)
        # the schedule's own share: shards 0-2 (nobody) and 3 people of shard 3; the rest of
        # shard 3 and shards 4-15 go to the queue
        assert module.lambda_handler(SCHEDULED, world.context) == {
            "handled": 3,
            "dispatched": 13,
            "failed": 0,
        }
        per_invocation = world.queue.run(measure=lambda: len(handled))
    assert max(per_invocation) == 3  # none above the bound
    assert sum(1 for n in per_invocation if n) >= 3 + 1  # shard 3's other 8 take three, shard 7's one
    assert sorted(handled) == sorted([*crowd, crowd[0]])  # each person once per instant armed
    assert store.page(due.bucket_pk(NOW + timedelta(minutes=1), 3), 10) == []
    assert {store.cursor(s) for s in range(keys.DUE_SHARDS)} == {NOW + timedelta(minutes=2)}


def test_a_minute_with_more_people_due_than_the_schedule_s_share_fans_out(
    world: World, handled: list[str]
) -> None:
    # docs/adr/0026: the schedule handles INLINE_PEOPLE itself, the queue the rest (in parallel)
    module = importlib.import_module("functions.live_due.app")
    store = module.wiring().due
    crowd = [f"p{i}" for i in range(INLINE_PEOPLE + 10)]
    for user in crowd:
        store.arm(user, NOW + timedelta(seconds=30))
    world.now = NOW + timedelta(minutes=1)
    got = module.lambda_handler(SCHEDULED, world.context)
    assert got["handled"] == INLINE_PEOPLE and got["failed"] == 0 and 1 <= got["dispatched"] < keys.DUE_SHARDS
    world.queue.run()
    assert len(world.queue.bodies) == got["dispatched"]
    assert sorted(handled) == sorted(crowd)  # each once: the schedule's, then the tasks'
    assert {store.cursor(s) for s in range(keys.DUE_SHARDS)} == {NOW + timedelta(minutes=2)}


def test_a_shard_failing_in_the_schedule_s_run_goes_to_the_queue_and_the_others_are_handled(
    world: World, handled: list[str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    module = importlib.import_module("functions.live_due.app")
    store = module.wiring().due
    crowd = people_of(4, 2) + people_of(9, 2)
    for user in crowd:
        store.arm(user, NOW + timedelta(seconds=30))
    page, failing = store.page, {due.bucket_pk(NOW + timedelta(minutes=1), 4)}

    def throttled_once(pk: str, limit: int) -> list[due.Due]:
        if pk in failing:
            failing.discard(pk)
            raise RuntimeError("ProvisionedThroughputExceededException")
        return page(pk, limit)

    monkeypatch.setattr(store, "page", throttled_once)
    world.now = NOW + timedelta(minutes=1)
    got = module.lambda_handler(SCHEDULED, world.context)
    assert got == {"handled": 2, "dispatched": 1, "failed": 0}  # shard 9's two; shard 4 to the queue
    assert sorted(handled) == sorted(people_of(9, 2))
    [warned] = [r for r in caplog.records if "failed in the schedule's run" in r.getMessage()]
    assert warned.levelname == "WARNING" and warned.__dict__["shard"] == 4
    world.queue.run()
    assert sorted(handled) == sorted(crowd)


def test_a_redelivered_task_publishes_nothing_twice(world: World) -> None:
    meeting(world, "standup", NOW + timedelta(minutes=30), NOW + timedelta(minutes=45))
    sign_in(world)
    world.tick(NOW + timedelta(minutes=1), redeliver=True)
    world.published.events.clear()
    world.tick(NOW + timedelta(minutes=30), redeliver=True)
    [event] = world.published.of("presence")
    assert event["presence"]["status"] == "busy"
    assert world.published.of("meetings") == []


def test_two_tasks_of_one_shard_reading_one_bucket_handle_each_person_once(
    world: World, handled: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # a shard's rest still running when the next minute's task of the shard starts: both read the
    # same page; the one whose DeleteItem removed a person's item handles them, the other skips them
    deps = importlib.import_module("functions.live_due.app").wiring()
    store, service = deps.due, deps.service
    crowd = people_of(5, 4)
    for user in crowd:
        store.arm(user, NOW - timedelta(seconds=30))
    task = DueTask(shard=5, run=run_number(NOW, due.MINUTE))
    page = store.page
    overlapping: list[Any] = []

    def page_then_overlap(pk: str, limit: int) -> list[due.Due]:
        got = page(pk, limit)
        if got and not overlapping:  # between this task's Query and its first person
            overlapping.append(None)
            overlapping[0] = run_shard(store, service, task, NOW)
        return got

    monkeypatch.setattr(store, "page", page_then_overlap)
    first = run_shard(store, service, task, NOW)
    [second] = overlapping
    assert (second.people, first.people) == (4, 0)
    assert sorted(handled) == sorted(crowd)


def test_the_unsharded_buckets_of_before_are_still_read(world: World, handled: list[str]) -> None:
    # written by the deployed code before the shards: DUE#SOON and DUE#<minute> (shard 0's task)
    world.table.put_item(Item={"pk": due.SOON, "sk": keys.user_pk("old-soon")})
    at = NOW + timedelta(seconds=30)
    world.table.put_item(
        Item={
            "pk": due.bucket_pk(NOW + timedelta(minutes=1)),
            "sk": keys.user_pk("old-due"),
            "at": int(at.timestamp()),
        }
    )
    world.tick(NOW + timedelta(minutes=1))
    assert sorted(handled) == ["old-due", "old-soon"]
    store = due.DueStore(world.table)
    assert store.page(due.SOON, 10) == [] and store.page(due.bucket_pk(NOW + timedelta(minutes=1)), 10) == []


def test_handler_with_the_sample_events(world: World) -> None:
    # the schedule handles the shards itself when few are due (events/live_due-schedule.json, as
    # `sam local invoke -e`); a queue's invocation handles a task (events/live_due-task.json is one)
    module = importlib.import_module("functions.live_due.app")
    root = Path(__file__).resolve().parents[2] / "events"
    schedule = json.loads((root / "live_due-schedule.json").read_text())
    assert module.lambda_handler(schedule, world.context) == {"handled": 0, "dispatched": 0, "failed": 0}
    assert world.queue.run() == []  # nobody due: no task
    task = json.loads((root / "live_due-task.json").read_text())
    assert module.lambda_handler(task, world.context) == {"batchItemFailures": []}
