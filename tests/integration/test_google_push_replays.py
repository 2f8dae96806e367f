"""Google push replays and bursts (issue 13 point 5; S1, S6, X2) on Amazon DynamoDB Local, whose
conditional writes are atomic across threads (moto's are not): ``calsync.api.google_webhook.handle``
takes a message number once per channel and coalesces notifications while a push job of the
calendar is queued, and loses no change (a notification after the job started queues again; a
failed enqueue gives the number back so that Google's retry passes).
"""

from __future__ import annotations

import functools
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import boto3
import pytest

from calsync.api.google_webhook import Decision, handle
from calsync.domain.models import UTC
from calsync.store.channels import QUEUED_FOR, Channel, ChannelStore, new_channel_id, token_digest
from calsync.sync.jobs import SyncJob
from tests.conftest import REGION, _create

NOW = datetime(2026, 11, 20, 8, tzinfo=UTC)
CAL = "d" * 32
CHANNEL = new_channel_id(CAL)
TOKEN = "tok-" + "z" * 40
RESOURCE = "res-replay-1"


def headers(number: int | str, state: str = "exists") -> dict[str, str]:
    return {
        "x-goog-channel-id": CHANNEL,
        "x-goog-channel-token": TOKEN,
        "x-goog-resource-id": RESOURCE,
        "x-goog-resource-state": state,
        "x-goog-message-number": str(number),
    }


class Queue:
    def __init__(self) -> None:
        self.sent: list[tuple[SyncJob, str]] = []
        self._lock = threading.Lock()

    def __call__(self, job: SyncJob, dedup_id: str) -> None:
        with self._lock:
            self.sent.append((job, dedup_id))


@pytest.fixture
def stores(ddb_local_endpoint: str, _aws_env: None) -> Iterator[Callable[[], ChannelStore]]:
    """A fresh table on DynamoDB Local with one active channel; a factory of stores, each on its own
    boto3 resource (made in the calling thread before the threads start)."""
    name = f"calsync-push-{uuid.uuid4().hex[:8]}"
    table = _create(boto3.resource("dynamodb", region_name=REGION, endpoint_url=ddb_local_endpoint), name)

    def store() -> ChannelStore:
        resource = boto3.resource("dynamodb", region_name=REGION, endpoint_url=ddb_local_endpoint)
        return ChannelStore(resource.Table(name))

    ChannelStore(table).put(
        Channel(
            channel_id=CHANNEL,
            calendar_id=CAL,
            user_id="u1",
            account_id="a" * 32,
            resource_id=RESOURCE,
            token_sha256=token_digest(TOKEN),
            expires_at=NOW + timedelta(days=7),
        )
    )
    try:
        yield store
    finally:
        table.delete()


def at_once(calls: list[Callable[[], Decision]]) -> list[Decision]:
    """Run every call in its own thread, released together."""
    start = threading.Barrier(len(calls))
    out: list[Decision] = []
    errors: list[BaseException] = []

    def run(call: Callable[[], Decision]) -> None:
        start.wait()
        try:
            out.append(call())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return out


def test_twenty_concurrent_copies_of_one_notification_queue_one_job(
    stores: Callable[[], ChannelStore],
) -> None:
    queue = Queue()
    calls = [functools.partial(handle, headers(7), stores(), queue, NOW) for _ in range(20)]
    decisions = at_once(calls)
    assert sorted(d.outcome for d in decisions) == ["enqueue"] + ["replay"] * 19
    assert all(d.status == 200 for d in decisions)  # Google must not retry a replay
    [(job, dedup)] = queue.sent
    assert job.calendar_id == CAL and job.reason == "push" and dedup.startswith("push-")
    # replayed later, also after the job started: still dropped
    stores().clear_queued(CAL)
    assert handle(headers(7), stores(), queue, NOW).outcome == "replay"
    assert handle(headers(3), stores(), queue, NOW).outcome == "replay"  # older than the last taken
    assert len(queue.sent) == 1


def test_a_burst_while_queued_is_one_job_and_one_after_the_start_queues_again(
    stores: Callable[[], ChannelStore],
) -> None:
    queue = Queue()
    calls = [functools.partial(handle, headers(n), stores(), queue, NOW) for n in range(2, 22)]
    decisions = at_once(calls)
    outcomes = [d.outcome for d in decisions]
    # one job; every other notification coalesced into it, or (a lower number arriving after a
    # higher one) dropped as covered by it
    assert outcomes.count("enqueue") == 1 and len(queue.sent) == 1
    assert set(outcomes) <= {"enqueue", "coalesced", "replay"}
    # the sync worker starts the job (clears the marker before it reads): the next one queues
    stores().clear_queued(CAL)
    assert handle(headers(40), stores(), queue, NOW).outcome == "enqueue"
    assert handle(headers(41), stores(), queue, NOW).outcome == "coalesced"
    assert len(queue.sent) == 2
    assert queue.sent[0][1] != queue.sent[1][1]  # a fresh deduplication id per job


def test_a_failed_enqueue_gives_the_number_back_so_googles_retry_passes(
    stores: Callable[[], ChannelStore],
) -> None:
    def broken(job: SyncJob, dedup_id: str) -> None:
        raise RuntimeError("SQS is down")

    store = stores()
    assert handle(headers(5), store, Queue(), NOW).outcome == "enqueue"  # 5 taken, job queued
    store.clear_queued(CAL)  # that job started
    with pytest.raises(RuntimeError, match="SQS is down"):
        handle(headers(9), store, broken, NOW)  # the webhook answers 503
    queue = Queue()
    assert handle(headers(9), store, queue, NOW).outcome == "enqueue"  # Google's retry
    assert len(queue.sent) == 1
    assert handle(headers(5), store, queue, NOW).outcome == "replay"  # 5 stays taken


def test_a_stale_queued_marker_coalesces_nothing(stores: Callable[[], ChannelStore]) -> None:
    # a job that never starts (lost, or stuck behind a long retry of its group) cannot silence the
    # calendar: after QUEUED_FOR a notification queues a job again
    queue = Queue()
    store = stores()
    assert handle(headers(2), store, queue, NOW).outcome == "enqueue"
    assert handle(headers(3), store, queue, NOW + QUEUED_FOR - timedelta(seconds=1)).outcome == "coalesced"
    assert handle(headers(4), store, queue, NOW + QUEUED_FOR + timedelta(seconds=1)).outcome == "enqueue"
    assert len(queue.sent) == 2


def test_sync_messages_and_malformed_numbers_take_nothing(stores: Callable[[], ChannelStore]) -> None:
    queue = Queue()
    store = stores()
    assert handle(headers(1, "sync"), store, queue, NOW).outcome == "sync"
    for bad in ("", "0", "-2", "1.5", "x", "9" * 20):
        decision = handle(headers(bad), store, queue, NOW)
        assert (decision.status, decision.outcome) == (400, "malformed"), bad
    assert handle(headers(2), store, queue, NOW).outcome == "enqueue"
    assert len(queue.sent) == 1
