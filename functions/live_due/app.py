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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from pydantic import Field

from calsync.api.presence_service import PresenceService
from calsync.config import get_presence_settings, get_settings
from calsync.domain.errors import CalsyncError
from calsync.observability import logger, metrics
from calsync.store import due as dues
from calsync.store import keys
from calsync.store.presence import PresenceRepository
from calsync.store.repository import Repository
from calsync.sync import budget as budgets
from calsync.sync.tasks import ShardTask, handle_record, send_tasks

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

PAGE = 100
# The most people one invocation handles: ~20 ms each (two Queries, about three writes) is ~20 s,
# well inside the 50 s timeout; the time budget (a quarter of it kept) stops it earlier if slower.
TASK_PEOPLE = 1_000
FIRST_LOOKBACK = timedelta(minutes=5)  # a shard's first run (no cursor yet) reads this far back


class DueTask(ShardTask):
    """Handle ``shard`` of the DUE buckets; ``after``: the minute (``keys.iso``) to continue at
    (None: the shard's "look again" bucket, then its minutes from its cursor)."""

    kind: Literal["due"] = "due"
    shard: int = Field(ge=0, lt=keys.DUE_SHARDS)


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


@dataclass
class Run:
    people: int = 0  # people handled (taken out of a bucket)
    presence: int = 0  # presence events published (one per changed person, on each of their locations)
    meetings: int = 0
    failed: int = 0
    rest: DueTask | None = None  # what is left of the task (hand it back to the queue)


def run_shard(  # noqa: PLR0917 - the task's inputs, as clean_shard takes them
    store: dues.DueStore,
    service: PresenceService,
    task: DueTask,
    now: datetime,
    in_time: Callable[[], bool] = lambda: True,
    limit: int = TASK_PEOPLE,
) -> Run:
    """One invocation's share: the people of ``task.shard`` due by ``now``, at most ``limit``.
    ``rest``: the task that continues (None: the shard is done up to now's minute, and its cursor
    moved past it)."""
    out = Run()
    last = dues.floor_minute(now)
    if task.after is None:
        for pk in dues.soon_pks(task.shard):
            if not _bucket(store, service, pk, now, in_time, limit, out):
                out.rest = task
                return out
        minute = store.cursor(task.shard) or last - FIRST_LOOKBACK
    else:
        minute = keys.parse_iso(task.after)
    while minute <= last:
        for pk in dues.bucket_pks(minute, task.shard):
            if not _bucket(store, service, pk, now, in_time, limit, out):
                store.set_cursor(minute, task.shard)  # every minute before it is done
                out.rest = task.continued(keys.iso(minute))
                return out
        minute += dues.MINUTE
    store.set_cursor(minute, task.shard)
    return out


def _bucket(  # noqa: PLR0917 - private, one call site per kind of bucket
    store: dues.DueStore,
    service: PresenceService,
    pk: str,
    now: datetime,
    in_time: Callable[[], bool],
    limit: int,
    out: Run,
) -> bool:
    """Handle one bucket to its end; ``False`` when the bound or the budget ran out first."""
    while True:
        room = min(PAGE, limit - out.people)
        if room <= 0:
            return False
        page = store.page(pk, room)
        for item in page:
            if not in_time():
                return False
            if not store.claim(pk, item.user_id):
                continue  # another task of the shard took them meanwhile
            out.people += 1
            try:
                found = service.publish_time_driven(item.user_id, item.at, now)
            except CalsyncError as exc:  # visible, then dropped: the next write re-arms the person
                logger.warning(
                    "time-driven change not handled",
                    extra={"user_id": item.user_id, "bucket": pk, "error": type(exc).__name__},
                )
                out.failed += 1
            else:
                out.presence += found.presence_changed
                out.meetings += found.meetings_changed
        if len(page) < room:
            return True


def run(store: dues.DueStore, service: PresenceService, now: datetime) -> Run:
    """One schedule run's work in this process: every shard's task, and what each hands back, run
    to its end (bench/cost.py; the deployed function runs them as queue tasks)."""
    out = Run()
    pending = [DueTask(shard=s, run=run_number(now)) for s in range(keys.DUE_SHARDS)]
    while pending:
        done = run_shard(store, service, pending.pop(), now)
        out.people += done.people
        out.presence += done.presence
        out.meetings += done.meetings
        out.failed += done.failed
        if done.rest is not None:
            pending.append(done.rest)
    return out


def run_number(now: datetime) -> int:
    return int(now.timestamp()) // 60


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
