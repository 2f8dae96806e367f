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

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from calsync.api.time_driven import DueTask, run_shard
from calsync.observability import logger, metrics
from calsync.store import keys
from calsync.store.due import MINUTE
from calsync.sync.budget import LambdaBudget
from calsync.sync.tasks import dispatch_shards, dispatched, run_number
from calsync.wiring import Wiring
from calsync.wiring.live import LiveDueDeps, live_due_deps
from calsync.wiring.tasks import TaskConsumer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# tests: ``with wiring.use(live_due_deps(table, sqs=..., task_queue_url=..., clock=...)):``
wiring: Wiring[LiveDueDeps] = Wiring(live_due_deps)


def _run(task: DueTask, budget: LambdaBudget | None) -> DueTask | None:
    deps = wiring()
    done = run_shard(
        deps.due,
        deps.service,
        task,
        deps.clock(),
        in_time=lambda: budget is None or not budget.exhausted(),
        **deps.limits,
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


tasks = TaskConsumer(DueTask, _run, wiring)  # the task queue's records
record_handler = tasks.record_handler


def _dispatch(scheduled_time: Any) -> dict[str, Any]:
    deps = wiring()
    run = run_number(deps.clock(), MINUTE)
    failed = dispatch_shards(deps.sqs, deps.task_queue_url, DueTask, keys.DUE_SHARDS, run)
    return dispatched(
        "due",
        "DueTasksNotSent",
        "time-driven changes dispatched",
        keys.DUE_SHARDS,
        failed,
        scheduled_time=scheduled_time,
    )


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "Records" not in (event or {}):  # the schedule (an EventBridge scheduled event)
        return _dispatch((event or {}).get("time"))
    return tasks.handle(event, context)
