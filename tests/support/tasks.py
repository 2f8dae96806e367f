"""Shard tasks in tests (``calsync.sync.tasks``): a standard queue shaped as template.yaml's task
queues, and the consuming function run on what it holds, one record per invocation (BatchSize 1),
as the local stack's SQS poller does; and the cleanup's tasks run in-process (for the tests that
run on DynamoDB Local, where moto's SQS is not there)."""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from calsync.store import keys
from calsync.store.repository import Repository
from calsync.sync.budget import LambdaBudget
from calsync.sync.cleanup import CLEANUP_PAGE, CleanupTask, clean_shard, run_number
from local.sources import sqs_record, to_delete
from tests.support.apigw import LambdaContext

REGION = "eu-west-1"


class TaskQueue:
    """A queue of shard tasks consumed by ``module.lambda_handler`` (a function's app module)."""

    def __init__(self, sqs: Any, module: Any, name: str = "tasks") -> None:
        self.sqs = sqs
        self.module = module
        self.url = sqs.create_queue(QueueName=f"{name}-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        self.arn = sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.bodies: list[str] = []  # every task the function consumed, in order

    def run(
        self,
        context: Callable[[], Any] | None = None,
        *,
        measure: Callable[[], int] = lambda: 0,
        max_invocations: int = 10_000,
        redeliver: bool = False,
    ) -> list[int]:
        """Run the function on the queue until it is empty; returns what ``measure`` grew by in
        each invocation. ``redeliver``: each message is handled twice (at-least-once delivery)."""
        per_invocation: list[int] = []
        while len(per_invocation) < max_invocations:
            msgs = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=1).get("Messages", [])
            if not msgs:
                return per_invocation
            records = [sqs_record(m, self.arn, REGION) for m in msgs]
            self.bodies += [r["body"] for r in records]
            for _ in range(2 if redeliver else 1):
                before = measure()
                ctx = context() if context else LambdaContext(function_name="tasks")
                answer = self.module.lambda_handler({"Records": records}, ctx)
                per_invocation.append(measure() - before)
            for rec in to_delete(records, answer, report_failures=True):
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=rec["receiptHandle"])
        raise AssertionError(f"the task queue is not empty after {max_invocations} invocations")


@dataclass
class CleanupRun:
    deleted: list[int] = field(default_factory=list)  # keys deleted by each invocation
    tasks: int = 0

    @property
    def total(self) -> int:
        return sum(self.deleted)


def run_cleanup(
    repo: Repository,
    now: datetime,
    *,
    limit: int = CLEANUP_PAGE,
    budget: Callable[[], LambdaBudget | None] = lambda: None,
) -> CleanupRun:
    """The cleanup's fan-out in-process: one task per shard, each run as its invocation would (a
    JSON body in, ``clean_shard``, the rest queued again) until none is left."""
    out = CleanupRun()
    queue = deque(CleanupTask(shard=s, run=run_number(now)).body() for s in range(keys.CLEANUP_SHARDS))
    while queue:
        task = CleanupTask.model_validate_json(queue.popleft())
        out.tasks += 1
        summary = clean_shard(repo, task, now, limit=limit, budget=budget())
        out.deleted.append(summary.deleted)
        if summary.rest is not None:
            queue.append(summary.rest.body())
    return out
