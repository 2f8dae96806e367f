"""The poll fan-out in tests: a standard queue shaped as template.yaml's PollQueue, and
PollShardFunction run on what it holds (as the local stack's SQS poller does)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from typing import Any

from calsync.wiring.tasks import task_deps
from functions.poll_shard import app as shard_app
from local.sources import sqs_record, to_delete
from tests.support.apigw import LambdaContext

REGION = "eu-west-1"


def queue_depth(sqs: Any, url: str) -> int:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


class CountingSqs:
    """A real SQS client (moto's) that also keeps the bodies of the batches sent through it to any
    queue but ``skip`` (the sync jobs)."""

    def __init__(self, sqs: Any) -> None:
        self._sqs = sqs
        self.bodies: list[str] = []
        self.skip = ""

    def send_message_batch(self, **kwargs: Any) -> Any:
        if kwargs["QueueUrl"] != self.skip:
            self.bodies += [e["MessageBody"] for e in kwargs["Entries"]]
        return self._sqs.send_message_batch(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sqs, name)


class PollFanOut:
    """Creates the poll queue and wires PollShardFunction to it (``close`` puts back what it found)."""

    def __init__(
        self, table: Any, sqs: Any, sync_queue_urls: dict[str, str], *, limit: int | None = None
    ) -> None:
        self.sqs = sqs
        self.url = sqs.create_queue(QueueName=f"poll-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        self.arn = sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.counting = CountingSqs(sqs)
        self.counting.skip = self.url
        self.deps = task_deps(
            self.url, table, sqs=self.counting, sync_queue_urls=sync_queue_urls, limit=limit
        )
        self._wired = ExitStack()
        self._wired.enter_context(shard_app.wiring.use(self.deps))

    def run(
        self, now: Any, context: Callable[[], Any] | None = None, *, max_invocations: int = 10_000
    ) -> list[int]:
        """Run PollShardFunction, one record per invocation (BatchSize 1) with a fresh ``context()``
        each, until the poll queue is empty; returns the sync jobs each invocation sent."""
        with shard_app.wiring.use(replace(self.deps, clock=lambda: now)):
            return self._run(context, max_invocations)

    def _run(self, context: Callable[[], Any] | None, max_invocations: int) -> list[int]:
        per_invocation: list[int] = []
        while len(per_invocation) < max_invocations:
            msgs = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=1).get("Messages", [])
            if not msgs:
                return per_invocation
            records = [sqs_record(m, self.arn, REGION) for m in msgs]
            before = len(self.counting.bodies)
            ctx = context() if context else LambdaContext(function_name="poll-shard")
            answer = shard_app.lambda_handler({"Records": records}, ctx)
            per_invocation.append(len(self.counting.bodies) - before)
            for rec in to_delete(records, answer, report_failures=True):
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=rec["receiptHandle"])
        raise AssertionError(f"the poll queue is not empty after {max_invocations} invocations")

    def close(self) -> None:
        self._wired.close()
