"""Queues in tests: a queue and the function that consumes it, run on what it holds as Lambda's
event source mapping (and the local stack's SQS poller) does — shard tasks (``calsync.sync.tasks``,
BatchSize 1, a standard queue shaped as template.yaml's task queues) and the providers' sync queues
(BatchSize 10); and the cleanup's tasks run in-process (for the tests that run on DynamoDB Local,
where moto's SQS is not there)."""

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
from calsync.sync.cleanup import CLEANUP_EVERY, CLEANUP_PAGE, CleanupTask, clean_shard
from calsync.sync.tasks import run_number
from local.sources import sqs_record, to_delete
from tests.support.apigw import LambdaContext

REGION = "eu-west-1"


class TaskQueue:
    """A queue consumed by ``module.lambda_handler`` (a function's app module), ``batch`` messages an
    invocation: a new standard queue named after ``name``, or the queue at ``url``."""

    def __init__(
        self,
        sqs: Any,
        module: Any,
        name: str = "tasks",
        *,
        url: str | None = None,
        batch: int = 1,
    ) -> None:
        self.sqs = sqs
        self.module = module
        self.name = name
        self.batch = batch
        self.url = url or sqs.create_queue(QueueName=f"{name}-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        self.arn = sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.bodies: list[str] = []  # every message the function consumed, in order
        self.answers: list[dict[str, Any]] = []  # every invocation's answer, in order

    def drain(self, max_invocations: int = 20) -> list[dict[str, Any]]:
        """Run the function until the queue is empty, or holds only messages not yet visible (a
        delay, a retry's visibility timeout), at most ``max_invocations`` times (what is left stays
        queued); returns each invocation's answer."""
        start = len(self.answers)
        self.run(max_invocations=max_invocations, until_empty=False)
        return self.answers[start:]

    def run(
        self,
        context: Callable[[], Any] | None = None,
        *,
        measure: Callable[[], int] = lambda: 0,
        max_invocations: int = 10_000,
        redeliver: bool = False,
        until_empty: bool = True,
    ) -> list[int]:
        """Run the function on the queue until it is empty; returns what ``measure`` grew by in
        each invocation. ``redeliver``: each message is handled twice (at-least-once delivery).
        ``until_empty``: a queue still holding messages after ``max_invocations`` fails the test."""
        per_invocation: list[int] = []
        while len(per_invocation) < max_invocations:
            msgs = self.sqs.receive_message(
                QueueUrl=self.url, MaxNumberOfMessages=self.batch, AttributeNames=["All"]
            ).get("Messages", [])
            if not msgs:
                return per_invocation
            records = [sqs_record(m, self.arn, REGION) for m in msgs]
            self.bodies += [r["body"] for r in records]
            for _ in range(2 if redeliver else 1):
                before = measure()
                ctx = context() if context else LambdaContext(function_name=self.name)
                answer = self.module.lambda_handler({"Records": records}, ctx)
                self.answers.append(answer)
                per_invocation.append(measure() - before)
            for rec in to_delete(records, answer, report_failures=True):
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=rec["receiptHandle"])
        if until_empty:
            raise AssertionError(f"the task queue is not empty after {max_invocations} invocations")
        return per_invocation


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
    run = run_number(now, CLEANUP_EVERY)
    queue = deque(CleanupTask(shard=s, run=run).body() for s in range(keys.CLEANUP_SHARDS))
    while queue:
        task = CleanupTask.model_validate_json(queue.popleft())
        out.tasks += 1
        summary = clean_shard(repo, task, now, limit=limit, budget=budget())
        out.deleted.append(summary.deleted)
        if summary.rest is not None:
            queue.append(summary.rest.body())
    return out
