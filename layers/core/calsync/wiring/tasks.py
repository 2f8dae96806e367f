"""The fanned-out schedules' dependencies (docs/adr/0023; ``calsync.sync.tasks``): CaldavPollFunction,
PollShardFunction, CleanupFunction and MicrosoftRenewFunction dispatch shard tasks to their task
queue and run them. One kind: the table (None for a function that reads nothing), SQS, the task
queue, the sync queues the tasks feed ({provider value: url}), the clock and a test's page bound."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3

from calsync.wiring import Clock, table_from_settings, utc_now


@dataclass(frozen=True)
class TaskDeps:
    sqs: Any
    task_queue_url: str
    table: Any = None
    sync_queue_urls: Mapping[str, str] = field(default_factory=dict)
    clock: Clock = utc_now
    limit: int | None = None  # entries per task (tests); None: the kind's own bound

    @property
    def limits(self) -> dict[str, int]:
        """The page bound to pass on: ``limit=`` only where one was given."""
        return {} if self.limit is None else {"limit": self.limit}

    def hand_back(self, body: str) -> None:
        """The rest of a task, back on the task queue."""
        self.sqs.send_message(QueueUrl=self.task_queue_url, MessageBody=body)


def task_deps(
    task_queue_url: str | None,
    table: Any = None,
    *,
    sqs: Any = None,
    sync_queue_urls: Mapping[str, str] | None = None,
    clock: Clock = utc_now,
    limit: int | None = None,
    reads_table: bool = True,
) -> TaskDeps:
    """From the settings; a test passes its table, SQS client, queue URLs, clock and ``limit``.
    ``reads_table=False``: a dispatch-only function (no table)."""
    return TaskDeps(
        sqs=sqs if sqs is not None else boto3.client("sqs"),
        task_queue_url=str(task_queue_url or ""),
        table=table if table is not None or not reads_table else table_from_settings(),
        sync_queue_urls=dict(sync_queue_urls or {}),
        clock=clock,
        limit=limit,
    )
