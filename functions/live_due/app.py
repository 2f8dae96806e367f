"""The live channel's time-driven changes (issue 15, docs/adr/0018), fanned out over the DUE shards.

A person's presence changes by itself when a meeting starts or ends ("in a meeting until") or their
last session expires (offline); their meetings answer when a meeting leaves it or at midnight. The
instants are written down ahead in per-minute buckets, sharded by user id (``calsync.store.due``);
for each person due the answers just before the instant are compared with now's
(``PresenceService.time_driven``): what changed is published (one version bump; the presence event
carries the answer), and the next instant is written down.

Two event sources, one function (as CleanupFunction, ``calsync.sync.tasks``):
- the EventBridge schedule (every minute) *dispatches*: one ``DueTask`` per shard to the
  LiveDueQueue (two SendMessageBatch calls, nothing read);
- the LiveDueQueue (``BatchSize: 1``, up to 16 at once) runs one task per invocation: the shard's
  "look again" bucket, then its minute buckets from its cursor up to now's, at most ``TASK_PEOPLE``
  = 1,000 people and no new person once the time budget is spent; the rest goes back to the queue
  as the same task continuing at the minute it stopped in (``after``).

Each person is taken out of their bucket before being handled (``DueStore.claim``: one DeleteItem,
the one caller that removed the item handles them), so a task delivered twice, or two tasks of one
shard reading one bucket, publish nothing twice. Nothing due: one Query per bucket, nothing
published.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from calsync.api.presence_service import PresenceService
from calsync.api.time_driven import TASK_PEOPLE, DueTask, Run, run, run_number, run_shard
from calsync.config import get_presence_settings, get_settings
from calsync.observability import logger, metrics
from calsync.store import due as dues
from calsync.store import keys
from calsync.store.presence import PresenceRepository
from calsync.store.repository import Repository
from calsync.sync import budget as budgets
from calsync.sync.tasks import handle_record, send_tasks

__all__ = ["TASK_PEOPLE", "DueTask", "Run", "lambda_handler", "run", "run_number", "run_shard"]

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext


def utc_now() -> datetime:
    return datetime.now(UTC)


clock: Callable[[], datetime] = utc_now  # tests freeze it
_overrides: dict[str, Any] = {}
processor = BatchProcessor(event_type=EventType.SQS)


def set_dependencies(**overrides: Any) -> None:
    """Tests: ``table``, ``sqs``, ``task_queue_url``, ``limit`` (people per task); no arguments
    restores the defaults."""
    _overrides.clear()
    _overrides.update(overrides)
    _parts.cache_clear()


@functools.cache
def _parts() -> tuple[dues.DueStore, PresenceService]:
    table = _overrides.get("table") or boto3.resource("dynamodb").Table(get_settings().table_name)
    store = dues.DueStore(table)
    lifetime = timedelta(seconds=get_presence_settings().session_ttl_seconds)
    service = PresenceService(
        Repository(table), PresenceRepository(table), session_lifetime=lifetime, due=store
    )
    return store, service


def _sqs() -> Any:
    return _overrides.get("sqs") or boto3.client("sqs")


def _queue_url() -> str:
    return str(_overrides.get("task_queue_url") or get_settings().live_due_queue_url)


def dispatch(now: datetime) -> list[int]:
    """The schedule's part: one task per shard; returns the shards whose task was not sent."""
    tasks = [DueTask(shard=s, run=run_number(now)) for s in range(keys.DUE_SHARDS)]
    return [t.shard for t in send_tasks(_sqs(), _queue_url(), tasks)]


def _run(task: DueTask, budget: budgets.LambdaBudget | None) -> DueTask | None:
    store, service = _parts()
    done = run_shard(
        store,
        service,
        task,
        clock(),
        in_time=lambda: budget is None or not budget.exhausted(),
        limit=_overrides.get("limit", TASK_PEOPLE),
    )
    summary = {k: v for k, v in done.__dict__.items() if k != "rest"}
    logger.info(
        "time-driven changes published" if done.rest is None else "time-driven: the rest is handed back",
        extra={"shard": task.shard, "run": task.run, "after": task.after, **summary},
    )
    metrics.add_metric(name="TimeDrivenPresence", unit=MetricUnit.Count, value=done.presence)
    metrics.add_metric(name="TimeDrivenMeetings", unit=MetricUnit.Count, value=done.meetings)
    if done.failed:
        metrics.add_metric(name="TimeDrivenFailed", unit=MetricUnit.Count, value=done.failed)
    if done.rest is not None:
        metrics.add_metric(name="TimeDrivenBehind", unit=MetricUnit.Count, value=1)
    return done.rest


def _hand_back(rest: DueTask) -> None:
    _sqs().send_message(QueueUrl=_queue_url(), MessageBody=rest.body())


def record_handler(record: SQSRecord) -> None:
    handle_record(record.body, DueTask, _run, _hand_back)


def _dispatch(scheduled_time: Any) -> dict[str, Any]:
    failed = dispatch(clock())
    if failed:
        logger.error("due tasks not sent; their shards wait for the next run", extra={"shards": failed})
        metrics.add_metric(name="DueTasksNotSent", unit=MetricUnit.Count, value=len(failed))
    logger.info(
        "time-driven changes dispatched",
        extra={"scheduled_time": scheduled_time, "shards": keys.DUE_SHARDS - len(failed)},
    )
    return {"dispatched": keys.DUE_SHARDS - len(failed), "failed": len(failed)}


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "Records" not in (event or {}):  # the schedule (an EventBridge scheduled event)
        return _dispatch((event or {}).get("time"))
    with budgets.running(budgets.LambdaBudget.of(context)):
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
