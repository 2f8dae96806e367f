"""Sync jobs and the poll schedule (rules S3, S5, S6) on moto's SQS FIFO and table."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from pydantic import ValidationError

from calsync.domain.models import UTC
from calsync.store.sync_state import PollEntry, SyncStateStore
from calsync.sync import poll as poll_module
from calsync.sync.jobs import SyncJob, enqueue_sync
from calsync.sync.poll import POLL_EVERY, RECONCILE_SLOTS, dispatch, reconcile_slot
from calsync.sync.queue_worker import backoff
from calsync.sync.tasks import run_number
from functions.caldav_sync import app as sync_app
from tests.support.apigw import LambdaContext
from tests.support.poll import PollFanOut

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
EVENTS = Path(__file__).resolve().parents[2] / "events"


@pytest.fixture
def queue(moto_table: Any) -> tuple[Any, str]:
    sqs = boto3.client("sqs", region_name="eu-west-1")
    url = sqs.create_queue(
        QueueName="jobs.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "false"}
    )["QueueUrl"]
    return sqs, url


def job(cal: str = "c1", **kw: Any) -> SyncJob:
    return SyncJob(calendar_id=cal, user_id="alice", account_id="a1", **kw)


def received(sqs: Any, url: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]).get(
            "Messages", []
        )
        if not msgs:
            return out
        for m in msgs:
            out.append(m)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def test_job_body_is_camel_case_and_validated() -> None:
    body = json.loads(job(reason="config", full=True).body())
    assert body == {
        "calendarId": "c1",
        "userId": "alice",
        "accountId": "a1",
        "reason": "config",
        "full": True,
    }
    assert SyncJob.model_validate_json(json.dumps(body)) == job(reason="config", full=True)
    with pytest.raises(ValidationError):
        SyncJob.model_validate({**body, "reason": "because"})
    with pytest.raises(ValidationError):
        SyncJob.model_validate({**body, "calendarId": "with space"})  # not a valid MessageGroupId


def test_the_same_job_sent_twice_is_delivered_twice(queue: tuple[Any, str]) -> None:
    # rule S6: a job sent while a sync of the calendar runs must not be deduplicated away
    sqs, url = queue
    enqueue_sync(sqs, url, job())
    enqueue_sync(sqs, url, job())
    msgs = received(sqs, url)
    assert len(msgs) == 2
    assert {m["Attributes"]["MessageGroupId"] for m in msgs} == {"c1"}


def test_poll_enqueues_every_registered_calendar_once_per_slot(
    moto_table: Any, queue: tuple[Any, str]
) -> None:
    # rules S3 and S5: every registered calendar is enqueued; its reconcile slot makes it a full job.
    # The schedule dispatches one task per shard; PollShardFunction runs each.
    sqs, url = queue
    state = SyncStateStore(moto_table)
    cals = [f"cal-{i}" for i in range(25)]
    for cal in cals:
        state.register_poll("caldav", PollEntry(calendar_id=cal, user_id="alice", account_id="a1"))
    state.register_poll("google", PollEntry(calendar_id="g1", user_id="alice", account_id="a2"))
    fan_out = PollFanOut(moto_table, sqs, {"caldav": url, "google": "unused"})
    try:
        for now in (NOW, NOW + timedelta(minutes=1)):  # the schedule firing twice in a slot
            assert dispatch(sqs, fan_out.url, "caldav", now, adaptive=False) == []
            assert len(fan_out.run(now)) == 16  # one invocation per shard
    finally:
        fan_out.close()
    msgs = received(sqs, url)
    assert sorted(json.loads(m["Body"])["calendarId"] for m in msgs) == sorted(cals)
    run = run_number(NOW, POLL_EVERY)
    for m in msgs:
        body = json.loads(m["Body"])
        due = reconcile_slot(body["calendarId"]) == run % RECONCILE_SLOTS
        assert body["full"] is due and body["reason"] == ("reconcile" if due else "poll")


def test_every_calendar_is_reconciled_once_in_six_hours() -> None:
    # rule S5: over 72 runs of 5 minutes each calendar gets exactly one full pass
    runs = [run_number(NOW + timedelta(minutes=5 * i), POLL_EVERY) for i in range(RECONCILE_SLOTS)]
    for cal in ("a", "b", "3f0c8a9e2b7d4c1a9e8f7a6b5c4d3e2f"):
        assert sum(reconcile_slot(cal) == r % RECONCILE_SLOTS for r in runs) == 1
    assert timedelta(hours=6) == poll_module.RECONCILE_EVERY


def test_malformed_job_is_dropped_not_retried() -> None:
    # rule X5: a message that is not a job is logged and dropped (it would fail forever)
    event = json.loads((EVENTS / "caldav_sync-jobs.json").read_text())
    event["Records"] = event["Records"][:1]
    event["Records"][0]["body"] = '{"calendarId": 42}'
    assert sync_app.lambda_handler(event, LambdaContext()) == {"batchItemFailures": []}


def test_backoff_doubles_and_is_capped() -> None:
    # rule S8: retries without Retry-After back off exponentially
    assert [backoff(n) for n in (1, 2, 3, 4, 5, 6, 10)] == [30, 60, 120, 240, 480, 900, 900]
