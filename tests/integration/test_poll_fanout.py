"""The poll fan-out (S3, S5; docs/adr/0016): no invocation does more than a bounded share of a poll.

A poll of many registered CalDAV calendars, on moto: the schedule dispatches one task per shard to
the poll queue; PollShardFunction (one task per invocation, BatchSize 1) reads at most
``SHARD_BATCH`` entries and hands the rest of its shard back. Every calendar is enqueued exactly
once, no invocation sends more than 1,000 jobs — 1 % of a 100,000-calendar poll — and an
invocation whose time budget runs short hands back the rest (the remaining time comes from a
counter, never a clock). The bound is absolute (it does not grow with the registry), so by default
the large-poll test runs 1,600 calendars with a page of 50 (the same code path: each shard needs
several invocations, each hands the rest back); ``CALSYNC_POLL_CALENDARS=100000
CALSYNC_POLL_LIMIT=1000`` runs the full size — slow on moto, whose SQS checks every held message on
each call (quadratic in the messages sent).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from calsync.store.sync_state import PollEntry, SyncStateStore, poll_item
from calsync.sync import poll
from calsync.sync.tasks import run_number
from calsync.wiring.presence import presence_deps
from calsync.wiring.tasks import task_deps
from functions.caldav_poll import app as poll_app
from tests.support.apigw import LambdaContext
from tests.support.poll import PollFanOut

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
EVENT = json.loads((Path(__file__).parents[2] / "events" / "caldav_poll-schedule.json").read_text())


@dataclass
class Draining(LambdaContext):
    """A context whose remaining time drops by ``tick`` ms at each read (no wall clock)."""

    left: int = 60_000
    tick: int = 0

    def get_remaining_time_in_millis(self) -> int:
        self.left -= self.tick
        return self.left


def register(table: Any, n: int, *, changed_at: datetime | None) -> list[str]:
    cals = [f"cal-{i:06d}" for i in range(n)]
    with table.batch_writer() as batch:
        for cal in cals:
            entry = PollEntry(calendar_id=cal, user_id=f"u{cal}", account_id="a1", changed_at=changed_at)
            batch.put_item(Item=poll_item("caldav", entry))
    return cals


LIMIT = int(os.environ.get("CALSYNC_POLL_LIMIT", "50"))


@pytest.fixture
def world(moto_table: Any) -> Any:
    sqs = boto3.client("sqs", region_name="eu-west-1")
    # a standard queue stands for CaldavSyncQueue here: moto checks a FIFO queue's deduplication ids
    # against every message it holds (quadratic at 100,000); FIFO behaviour is tested in
    # tests/unit/test_sync_jobs.py
    sync_url = sqs.create_queue(QueueName="sync")["QueueUrl"]
    fan_out = PollFanOut(moto_table, sqs, {"caldav": sync_url}, limit=LIMIT)
    with poll_app.wiring.use(task_deps(fan_out.url, sqs=sqs, reads_table=False)):
        yield moto_table, fan_out
    fan_out.close()


def schedule(now: datetime) -> None:
    with poll_app.wiring.use(replace(poll_app.wiring(), clock=lambda: now)):
        assert poll_app.lambda_handler(EVENT, LambdaContext(function_name="caldav-poll")) == {
            "dispatched": 16,
            "failed": 0,
        }


def enqueued(fan_out: PollFanOut) -> Counter[str]:
    return Counter(json.loads(b)["calendarId"] for b in fan_out.counting.bodies)


def test_a_large_poll_is_shared_by_invocations_of_a_bounded_page(world: Any) -> None:
    table, fan_out = world
    n = int(os.environ.get("CALSYNC_POLL_CALENDARS", "1600"))
    cals = register(table, n, changed_at=NOW - timedelta(hours=1))  # all active: all due in every run
    schedule(NOW)
    per_invocation = fan_out.run(NOW)
    assert enqueued(fan_out) == Counter(cals)  # each exactly once
    assert max(per_invocation) <= LIMIT  # the bound, whatever n (SHARD_BATCH: 1 % of 100,000)
    assert poll.SHARD_BATCH / 100_000 == 0.01
    assert len(per_invocation) >= max(16, n // LIMIT)  # one task per shard, one page per invocation
    assert len(per_invocation) > 16  # the shards did not fit one page: the rest was handed back


def test_an_invocation_short_of_time_hands_the_rest_back(world: Any) -> None:
    table, fan_out = world
    cals = register(table, 800, changed_at=NOW - timedelta(hours=1))
    schedule(NOW)
    # every read of the remaining time costs 10 s of a 60 s invocation and 12.5 s are kept back:
    # two SendMessageBatch calls (20 jobs) fit, fewer than a page (LIMIT) holds
    per_invocation = fan_out.run(NOW, lambda: Draining(tick=10_000))
    assert enqueued(fan_out) == Counter(cals)  # nothing lost, nothing twice
    assert max(per_invocation) == 20 < LIMIT
    assert len(per_invocation) >= 800 // 20


def test_quiet_calendars_are_polled_less_often_and_never_staler_than_30_minutes(world: Any) -> None:
    table, fan_out = world
    state = SyncStateStore(table)
    ages = {"busy": timedelta(hours=1), "week": timedelta(days=3), "quiet": timedelta(days=30), "new": None}
    calendars = {f"{kind}-{i}": age for kind, age in ages.items() for i in range(20)}
    for cal, age in calendars.items():
        state.register_poll(
            "caldav",
            PollEntry(calendar_id=cal, user_id="u", account_id="a", changed_at=NOW - age if age else None),
        )
    runs = [NOW + poll.POLL_EVERY * i for i in range(6)]  # 30 minutes: MAX_STALENESS
    for now in runs:
        schedule(now)
        fan_out.run(now)
    got = enqueued(fan_out)
    slots = {run_number(t, poll.POLL_EVERY) % poll.RECONCILE_SLOTS for t in runs}
    reconciled = {cal for cal in calendars if poll.reconcile_slot(cal) in slots}
    for cal, age in calendars.items():
        expected = {"busy": 6, "week": 2, "quiet": 1, "new": 1}[cal.split("-")[0]]
        if cal in reconciled:  # its full pass is due whatever its interval (S5)
            assert got[cal] in (expected, expected + 1), cal
        else:
            assert got[cal] == expected, (cal, age)
    assert timedelta(minutes=30) == poll.MAX_STALENESS


def test_a_sync_that_changed_the_calendar_makes_it_busy_again(moto_table: Any) -> None:
    state = SyncStateStore(moto_table)
    state.register_poll("caldav", PollEntry(calendar_id="c1", user_id="u", account_id="a"))
    [entry] = list(state.list_poll("caldav", poll.keys.poll_shard("c1")))
    assert poll.poll_every(entry.changed_at, NOW) == poll.QUIET_EVERY
    state.mark_poll_changed("caldav", "c1", NOW)
    [entry] = list(state.list_poll("caldav", poll.keys.poll_shard("c1")))
    assert entry.changed_at == NOW and poll.poll_every(entry.changed_at, NOW) == 1
    # a calendar forgotten meanwhile is not brought back by a late mark
    state.forget_calendar("caldav", "c1")
    state.mark_poll_changed("caldav", "c1", NOW)
    assert list(state.list_poll("caldav", poll.keys.poll_shard("c1"))) == []


def test_a_person_signing_in_makes_their_quiet_calendars_polled_every_run_while_online(
    moto_table: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # issue 16: "people online -> more often": the CalDAV calendars of a person's configuration are
    # polled every run for the lifetime of the session she opened; then their own interval again
    import importlib

    from calsync.config import get_presence_settings
    from calsync.store.accounts import AccountRepository, CalendarConfig
    from tests.support import apigw

    state = SyncStateStore(moto_table)
    long_ago = NOW - timedelta(days=30)
    for cal in ("c-primary", "c-conflict", "c-not-hers"):
        state.register_poll(
            "caldav", PollEntry(calendar_id=cal, user_id="alice", account_id="a", changed_at=long_ago)
        )
    config = CalendarConfig(
        location_id="hq", primary_calendar_id="c-primary", conflict_calendar_ids=["c-conflict"]
    )
    AccountRepository(moto_table).put_config("alice", config)
    monkeypatch.setenv("SESSION_TTL_SECONDS", str(8 * 3600))
    for name in ("PHOTO_BUCKET", "PRESENCE_BUS_NAME"):
        monkeypatch.delenv(name, raising=False)
    get_presence_settings.cache_clear()
    presence = importlib.import_module("functions.presence.app")
    try:
        with presence.wiring.use(presence_deps(moto_table, clock=lambda: NOW)):
            event = apigw.event("POST", "/v1/me/sessions", claims=apigw.claims("alice", ["hq"]))
            assert apigw.answer(presence.lambda_handler(event, LambdaContext())).status == 201
    finally:
        get_presence_settings.cache_clear()

    entries = {e.calendar_id: e for s in range(poll.keys.POLL_SHARDS) for e in state.list_poll("caldav", s)}
    until = NOW + timedelta(hours=8)
    assert {c: e.online_until for c, e in entries.items()} == {
        "c-primary": until,
        "c-conflict": until,
        "c-not-hers": None,
    }
    for later, expected in ((NOW + timedelta(hours=1), 1), (until, poll.QUIET_EVERY)):
        assert (
            poll.poll_every(entries["c-primary"].changed_at, later, entries["c-primary"].online_until)
            == expected
        )
    runs = range(run_number(NOW, poll.POLL_EVERY), run_number(NOW, poll.POLL_EVERY) + poll.QUIET_EVERY)
    assert all(poll.is_due(entries["c-primary"], run, NOW) for run in runs)
    assert sum(poll.is_due(entries["c-not-hers"], run, NOW) for run in runs) == 1
    # a later mark never moves the end back
    assert not state.mark_poll_online("caldav", "c-primary", NOW + timedelta(hours=1))


def test_a_malformed_poll_task_is_dropped(world: Any) -> None:
    _, fan_out = world
    fan_out.sqs.send_message(QueueUrl=fan_out.url, MessageBody='{"provider": "caldav", "shard": 99}')
    assert fan_out.run(NOW) == [0]  # run once, dropped (X5), not retried forever
