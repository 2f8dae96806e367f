"""Event sources of the local stack (local/sources.py): SQS batches with partial batch failures
(failed records come back, rule S8's retry path) and schedules (rule S9's trigger)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from local.sources import (
    Scheduler,
    SqsPoller,
    cron_next,
    rate_seconds,
    scheduled_event,
    sqs_record,
    to_delete,
)
from local.template import ScheduleSource, SqsSource


def _records(*ids: str) -> list[dict[str, Any]]:
    return [{"messageId": i, "receiptHandle": f"rh-{i}"} for i in ids]


def test_partial_batch_failures() -> None:
    # rule S8: a failed record is not deleted, so it comes back
    recs = _records("a", "b", "c")
    assert to_delete(recs, {"batchItemFailures": [{"itemIdentifier": "b"}]}, True) == [recs[0], recs[2]]
    assert to_delete(recs, {"batchItemFailures": []}, True) == recs
    assert to_delete(recs, None, True) == recs
    assert (
        to_delete(recs, {"batchItemFailures": [{"itemIdentifier": "zzz"}]}, True) == []
    )  # unknown id: all fail
    # without ReportBatchItemFailures, the answer is not read: success deletes all
    assert to_delete(recs, {"batchItemFailures": [{"itemIdentifier": "b"}]}, False) == recs


def test_sqs_record_shape() -> None:
    msg = {
        "MessageId": "m1",
        "ReceiptHandle": "rh",
        "Body": "{}",
        "MD5OfBody": "x",
        "Attributes": {"MessageGroupId": "cal-1", "ApproximateReceiveCount": "1"},
        "MessageAttributes": {"kind": {"StringValue": "sync", "DataType": "String"}},
    }
    rec = sqs_record(msg, "arn:aws:sqs:eu-west-1:123456789012:q.fifo", "eu-west-1")
    assert rec["eventSource"] == "aws:sqs" and rec["eventSourceARN"].endswith("q.fifo")
    assert rec["attributes"]["MessageGroupId"] == "cal-1"
    assert rec["messageAttributes"]["kind"] == {
        "stringValue": "sync",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }


def test_schedule_expressions() -> None:
    assert rate_seconds("rate(15 minutes)") == 900
    assert rate_seconds("rate(1 hour)") == 3600
    assert rate_seconds("cron(0 12 * * ? *)") is None
    after = datetime(2026, 11, 20, 12, 30, tzinfo=UTC)  # a Friday
    assert cron_next("cron(0 12 * * ? *)", after) == datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    assert cron_next("cron(*/15 * * * ? *)", after) == datetime(2026, 11, 20, 12, 45, tzinfo=UTC)
    assert cron_next("cron(0 8 ? * MON *)", after) == datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    assert cron_next("cron(0 8 L * ? *)", after) is None  # not supported: reported, not guessed


def test_scheduler_fires_at_rate_over_speedup() -> None:
    # rule S9 runs on a schedule; CALSYNC_SCHEDULE_SPEEDUP divides the rate
    clock = [0.0]
    wall = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    calls: list[tuple[str, Any]] = []
    sched = Scheduler(
        [
            ("CleanupFunction", ScheduleSource("Every15", "rate(15 minutes)")),
            ("Off", ScheduleSource("Off", "rate(1 minute)", enabled=False)),
        ],
        speedup=60,
        region="eu-west-1",
        invoke=lambda f, e: calls.append((f, e)),
        stop=threading.Event(),
        log=lambda _l: None,
        clock=lambda: clock[0],
        wall=lambda: wall,
    )
    sched.fire_due()
    assert calls == []
    clock[0] = 14.9
    sched.fire_due()
    assert calls == []
    clock[0] = 15.0  # 900 s / 60
    sched.fire_due()
    assert [c[0] for c in calls] == ["CleanupFunction"]
    event = calls[0][1]
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    assert event["time"] == "2026-11-20T12:00:00Z"
    clock[0] = 29.0
    sched.fire_due()
    assert len(calls) == 1
    assert scheduled_event("r", wall, "eu-west-1")["resources"] == [
        "arn:aws:events:eu-west-1:123456789012:rule/r"
    ]


def test_speedup_zero_means_schedules_run_only_when_invoked() -> None:
    # CALSYNC_SCHEDULE_SPEEDUP=0: tests (and people) decide when a schedule runs, so nothing runs in
    # between by itself; expressions the stack cannot run are still reported
    clock = [0.0]
    calls: list[str] = []
    sched = Scheduler(
        [
            ("CleanupFunction", ScheduleSource("Every15", "rate(15 minutes)")),
            ("Daily", ScheduleSource("Daily", "cron(0 12 * * ? *)")),
            ("Odd", ScheduleSource("Odd", "cron(0 8 L * ? *)")),
        ],
        speedup=0,
        region="eu-west-1",
        invoke=lambda f, e: calls.append(f),
        stop=threading.Event(),
        log=lambda _l: None,
        clock=lambda: clock[0],
        wall=lambda: datetime(2026, 11, 20, 12, 0, tzinfo=UTC),
    )
    assert sched.manual and [j.function for j in sched.jobs] == ["CleanupFunction", "Daily"]
    assert sched.skipped and "Odd" in sched.skipped[0]
    for t in (0.0, 900.0, 86_400.0, 10**9):
        clock[0] = t
        sched.fire_due()
    assert calls == []


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def test_poller_deletes_successes_and_failed_records_come_back(moto_endpoint: str) -> None:
    # rule S8: nothing is lost; a record reported as failed is received again
    from local.resources import client

    sqs = client("sqs", moto_endpoint, "eu-west-1")
    url = sqs.create_queue(QueueName="jobs", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
    for body in ("ok-1", "fail", "ok-2"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    seen: list[list[str]] = []

    def handler(_fn: str, event: dict[str, Any]) -> dict[str, Any]:
        seen.append([r["body"] for r in event["Records"]])
        return {
            "batchItemFailures": [
                {"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "fail"
            ]
        }

    poller = SqsPoller(
        "SyncFunction",
        SqsSource("Jobs", "Q", 10, True),
        sqs=sqs,
        queue_url=url,
        queue_arn="arn:aws:sqs:eu-west-1:123456789012:jobs",
        region="eu-west-1",
        invoke=handler,
        stop=threading.Event(),
        log=lambda _l: None,
    )
    total = 0
    while total < 3:
        total += poller.poll_once()
    assert sorted(b for batch in seen for b in batch) == ["fail", "ok-1", "ok-2"]
    assert poller.poll_once() == 1 and seen[-1] == ["fail"]  # came back, the others were deleted
