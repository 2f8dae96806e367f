"""The Microsoft schedules fanned out (S4, S5; issue 16, docs/adr/0020), on moto.

A schedule dispatches one task per shard of the mailbox registry to the MicrosoftRenewQueue; each
invocation reads at most a page of one shard and queues the jobs of the mailboxes due, handing the
rest back. The page is 7 here (1,000 deployed: the same code path). Every due mailbox gets exactly
one job, also when every task is delivered twice (the jobs' deduplication ids are per run).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from calsync.store import keys
from calsync_microsoft.registry import MicrosoftRegistry, SubscriptionRecord
from calsync_microsoft.settings import MicrosoftSettings
from calsync_microsoft.wiring import renew_deps
from functions.microsoft_renew import app
from tests.support.apigw import LambdaContext
from tests.support.poll import CountingSqs
from tests.support.tasks import TaskQueue

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
LIFETIME = timedelta(minutes=4230)


@dataclass
class World:
    registry: MicrosoftRegistry
    sqs: Any
    counting: CountingSqs  # what the function sends through it to the sync queue
    sync_url: str
    tasks: TaskQueue

    def jobs(self) -> Counter[str]:
        """The mailbox jobs on the sync queue, by account (read to the end)."""
        got: Counter[str] = Counter()
        while msgs := self.sqs.receive_message(QueueUrl=self.sync_url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            for m in msgs:
                got[json.loads(m["Body"])["accountId"]] += 1
                self.sqs.delete_message(QueueUrl=self.sync_url, ReceiptHandle=m["ReceiptHandle"])
        return got

    def schedule(self, task: str = "renew") -> None:
        got = app.lambda_handler({"task": task}, LambdaContext(function_name="ms-renew"))
        assert got == {"task": task, "dispatched": keys.MS_SUB_SHARDS, "failed": 0}


@pytest.fixture
def world(moto_table: Any) -> Any:
    sqs = boto3.client("sqs", region_name="eu-west-1")
    sync_url = sqs.create_queue(
        QueueName="ms-sync.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "false"}
    )["QueueUrl"]
    tasks = TaskQueue(sqs, app, "ms-renew")
    counting = CountingSqs(sqs)
    counting.skip = tasks.url
    settings = MicrosoftSettings(
        client_id="c",
        authority="https://login.example",
        graph_endpoint="https://graph.example",
        webhook_url="https://hooks.example/ms",
        subscription_minutes=4230,
        sync_queue_url=sync_url,
    )
    o = {"table": moto_table, "sqs": counting, "queue_url": sync_url, "settings": settings}
    deps = renew_deps(o, task_queue_url=tasks.url, clock=lambda: NOW, limit=7)
    with app.wiring.use(deps):
        yield World(MicrosoftRegistry(moto_table), sqs, counting, sync_url, tasks)


def mailboxes(world: World, prefix: str, n: int, expires: datetime) -> list[str]:
    accounts = [f"{prefix}-{i:04d}" for i in range(n)]
    for a in accounts:
        world.registry.put_subscription(SubscriptionRecord(f"sub-{a}", f"u-{a}", a, "h", expires))
    return accounts


@dataclass
class Draining(LambdaContext):
    """A context whose remaining time drops by ``tick`` ms at each read (no wall clock)."""

    left: int = 120_000
    tick: int = 0

    def get_remaining_time_in_millis(self) -> int:
        self.left -= self.tick
        return self.left


def test_a_renewal_is_shared_by_invocations_of_a_bounded_page(world: World) -> None:
    # issue 16: no invocation queues more than its page (7 here; MAILBOX_PAGE = 1,000 deployed)
    due = mailboxes(world, "due", 60, NOW + timedelta(hours=1))  # expires within half the lifetime
    mailboxes(world, "fresh", 20, NOW + timedelta(days=2))  # not due (S4)
    world.schedule()
    per = world.tasks.run(measure=lambda: len(world.counting.bodies))
    assert max(per) <= 7
    assert world.jobs() == Counter(dict.fromkeys(due, 1))  # each due mailbox once, no other
    assert len(per) > keys.MS_SUB_SHARDS  # shards needed several invocations: the rest came back


def test_a_task_delivered_twice_queues_each_job_once(world: World) -> None:
    # issue 16: at-least-once delivery; the jobs' deduplication ids are ms-<job>-<account>-<run>
    due = mailboxes(world, "due", 30, NOW + timedelta(hours=1))
    world.schedule("reconcile")
    world.tasks.run(redeliver=True)
    assert world.jobs() == Counter(dict.fromkeys(due, 1))
    # (a schedule firing twice in its slot is one run too in SQS, whose deduplication window holds
    # after a message is consumed; moto's checks only the messages it still holds)


def test_an_invocation_short_of_time_hands_the_rest_back(world: World) -> None:
    # issue 16: 30 s a read of the remaining time (90 s at the start, 22.5 s kept back): the
    # budget lets an invocation send one batch of 10 jobs of its page of 25, the rest comes back
    due = mailboxes(world, "due", 60, NOW + timedelta(hours=1))
    with app.wiring.use(replace(app.wiring(), limit=25)):
        world.schedule()
        per = world.tasks.run(lambda: Draining(tick=30_000), measure=lambda: len(world.counting.bodies))
    assert world.jobs() == Counter(dict.fromkeys(due, 1))
    assert max(per) <= 10  # one batch before the budget is spent, whatever the page
    assert sum(1 for b in world.tasks.bodies if '"after"' in b) >= 60 // 10 - keys.MS_SUB_SHARDS
