"""The fanned-out schedules' dependencies (docs/adr/0023; ``calsync.sync.tasks``): CaldavPollFunction,
PollShardFunction, CleanupFunction and MicrosoftRenewFunction dispatch shard tasks to their task
queue and run them. One kind: the table (None for a function that reads nothing), SQS, the task
queue, the sync queues the tasks feed ({provider value: url}), the clock and a test's page bound."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import boto3
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from calsync.sync import budget as budgets
from calsync.sync.budget import LambdaBudget
from calsync.sync.tasks import ShardTask, handle_record
from calsync.wiring import Clock, table_from_settings, utc_now

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

T = TypeVar("T", bound=ShardTask)


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


@dataclass(frozen=True)
class TaskConsumer(Generic[T]):
    """A task queue's consumer (``BatchSize: 1``): each record's task run under the invocation's
    time budget, the rest handed back to the task queue (``calsync.sync.tasks.handle_record``);
    ``deps`` is read at each record (the function's ``Wiring``)."""

    model: type[T]
    run: Callable[[T, LambdaBudget | None], T | None]
    deps: Callable[[], TaskDeps]
    processor: BatchProcessor = field(default_factory=lambda: BatchProcessor(event_type=EventType.SQS))

    def record_handler(self, record: SQSRecord) -> None:
        handle_record(record.body, self.model, self.run, lambda rest: self.deps().hand_back(rest.body()))

    def handle(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        with budgets.running(LambdaBudget.of(context)):
            answer = process_partial_response(
                event=event, record_handler=self.record_handler, processor=self.processor, context=context
            )
        return dict(answer)
