"""Schedules that fan out (docs/adr/0016, docs/adr/0020): shard tasks on a queue, a bounded page each.

A schedule only *dispatches* (``dispatch_shards``): one task per shard of the index it walks, for
the schedule's slot (``run_number``), sent to a standard SQS queue (``send_tasks``, 10 per
SendMessageBatch). A queue consumer runs one task per invocation
(``BatchSize: 1``), in parallel with the other shards: at most a stated bound of the shard's
entries (one page), under the invocation's time budget (``calsync.sync.budget``, read from
``context.get_remaining_time_in_millis()``). What is left — more entries, or the budget spent —
goes back to the same queue as the same task continuing ``after`` the last entry done
(``handle_record``). So no invocation handles more than the bound, whatever the index's size.

Every task has the same shape (``ShardTask``): ``kind`` (what walks: ``poll``, ``cleanup``,
``microsoft``…), ``shard``, ``run`` (the schedule's slot: what a repeated delivery is deduplicated
by) and ``after`` (the continuation; None: from the start). The poll's ``PollTask``
(``calsync.sync.poll``) is one; a kind adds its own fields. Delivery is at least once: each kind's
work is idempotent on redelivery (documented with each consumer).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Self, TypeVar

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from calsync.observability import logger, metrics
from calsync.sync import budget as budgets
from calsync.sync.budget import LambdaBudget

MAX_SHARDS = 256


class ShardTask(BaseModel):
    """One message on a task queue: walk ``shard`` of the ``kind``'s index for ``run``, starting
    after ``after`` (None: from the shard's first entry)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore", defer_build=True)

    kind: str = Field(default="poll", min_length=1, max_length=32)
    shard: int = Field(ge=0, lt=MAX_SHARDS)
    run: int = Field(ge=0)
    after: str | None = Field(default=None, min_length=1, max_length=1024)

    def body(self) -> str:
        return self.model_dump_json(exclude_none=True)

    def continued(self, after: str | None) -> Self:
        """The rest of this task: the same task, continuing after ``after``."""
        return self.model_copy(update={"after": after})


T = TypeVar("T", bound=ShardTask)


def send_tasks(sqs_client: Any, queue_url: str, tasks: Sequence[T]) -> list[T]:
    """Send ``tasks`` 10 per SendMessageBatch; returns those that could not be sent."""
    failed: list[T] = []
    for start in range(0, len(tasks), 10):
        chunk = tasks[start : start + 10]
        resp = sqs_client.send_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "MessageBody": t.body()} for i, t in enumerate(chunk)],
        )
        failed += [chunk[int(f["Id"])] for f in resp.get("Failed", [])]
    return failed


def run_number(now: datetime, period: timedelta) -> int:
    """The number of the schedule's slot ``now`` falls in, for a schedule firing every ``period``
    (template.yaml's rate): a schedule firing twice in one slot is one run."""
    return int(now.timestamp()) // int(period.total_seconds())


def dispatch_shards(
    sqs_client: Any, queue_url: str, model: type[T], shards: int, run: int, **fields: Any
) -> list[int]:
    """A schedule's part: one ``model`` task (with ``fields``) per shard ``0..shards-1`` of ``run``
    to the task queue; returns the shards whose task was not sent (they wait for the next run)."""
    tasks = [model(shard=shard, run=run, **fields) for shard in range(shards)]
    return [task.shard for task in send_tasks(sqs_client, queue_url, tasks)]


def report_unsent(what: str, metric: str, failed: Sequence[int]) -> None:
    """A schedule's ``what`` tasks that were not sent (their shards): one ERROR line and the
    ``metric`` (their count); the shards wait for the next run."""
    if failed:
        logger.error(f"{what} tasks not sent; their shards wait for the next run", extra={"shards": failed})
        metrics.add_metric(name=metric, unit=MetricUnit.Count, value=len(failed))


def dispatched(
    what: str, metric: str, message: str, shards: int, failed: Sequence[int], **extra: Any
) -> dict[str, int]:
    """A dispatch's epilogue: the unsent tasks reported (``report_unsent``), then one INFO line
    ``message`` (``extra`` and the shards sent); returns the counts sent and not sent."""
    report_unsent(what, metric, failed)
    logger.info(message, extra={**extra, "shards": shards - len(failed)})
    return {"dispatched": shards - len(failed), "failed": len(failed)}


def handle_record(
    body: str,
    model: type[T],
    work: Callable[[T, LambdaBudget | None], T | None],
    hand_back: Callable[[T], None],
) -> T | None:
    """Run one task of a queue: parse it (a malformed one is dropped: it would fail forever, and
    the next schedule sends good ones), run ``work`` unless the budget is already spent, and hand
    back what ``work`` left (``hand_back`` sends it to the queue; a failure there fails the record,
    which then comes back whole: each kind's work is idempotent). Returns the rest handed back."""
    try:
        task = model.model_validate_json(body)
    except ValidationError as exc:
        logger.warning("malformed shard task dropped", extra={"error": str(exc)[:500]})
        metrics.add_metric(name="ShardTaskMalformed", unit=MetricUnit.Count, value=1)
        return None
    budget = budgets.current()
    rest = task if budget is not None and budget.exhausted() else work(task, budget)
    if rest is not None:
        hand_back(rest)
    return rest
