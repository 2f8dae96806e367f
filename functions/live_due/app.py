"""The live channel's time-driven changes (issue 15, docs/adr/0018), fanned out over the DUE shards.

A person's presence changes by itself when a meeting starts or ends ("in a meeting until") or their
last session expires (offline); their meetings answer when a meeting leaves it or at midnight. The
instants are written down ahead in per-minute buckets, sharded by user id (``calsync.store.due``);
for each person due the answers just before the instant are compared with now's
(``PresenceService.time_driven``): what changed is published (one version bump; the presence event
carries the answer), and the next instant is written down.

Two event sources, one function (as CleanupFunction, ``calsync.sync.tasks``):
- the EventBridge schedule (every minute) handles the shards itself, in turn, up to
  ``INLINE_PEOPLE`` = 50 people (``run_schedule``: in most minutes nobody or a few are due), and
  sends what is left as ``DueTask``s to the LiveDueQueue: the rest of the shard it stopped in and
  every shard after it (SendMessageBatch, 10 a call); nothing when it did it all;
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

from calsync.api.time_driven import INLINE_PEOPLE, DueTask, Run, run_schedule, run_shard
from calsync.observability import logger, metrics
from calsync.sync.budget import LambdaBudget
from calsync.sync.tasks import report_unsent, send_tasks
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
    _report(
        done,
        "time-driven changes published" if done.rest is None else "time-driven: the rest is handed back",
        shard=task.shard,
        run=task.run,
        after=task.after,
    )
    return done.rest


def _report(done: Run, message: str, **extra: Any) -> None:
    """One INFO line (what was handled) and the metrics of an invocation's time-driven work."""
    summary = {k: v for k, v in done.__dict__.items() if k != "rest"}
    logger.info(message, extra={**extra, **summary})
    metrics.add_metric(name="TimeDrivenPresence", unit=MetricUnit.Count, value=done.presence)
    metrics.add_metric(name="TimeDrivenMeetings", unit=MetricUnit.Count, value=done.meetings)
    if done.failed:
        metrics.add_metric(name="TimeDrivenFailed", unit=MetricUnit.Count, value=done.failed)
    if done.rest is not None:
        metrics.add_metric(name="TimeDrivenBehind", unit=MetricUnit.Count, value=1)
    if done.tasks:
        metrics.add_metric(name="TimeDrivenTasks", unit=MetricUnit.Count, value=done.tasks)


tasks = TaskConsumer(DueTask, _run, wiring)  # the task queue's records
record_handler = tasks.record_handler


def _schedule(scheduled_time: Any, context: LambdaContext) -> dict[str, Any]:
    """The minute's run: the schedule's own share, then the tasks for what is left."""
    deps = wiring()
    budget = LambdaBudget.of(context)
    done, left = run_schedule(
        deps.due,
        deps.service,
        deps.clock(),
        in_time=lambda: not budget.exhausted(),
        limit=INLINE_PEOPLE if deps.limit is None else deps.limit,
    )
    # a task not sent waits for the next run: its shard's cursor is where the shard stopped
    failed = [task.shard for task in send_tasks(deps.sqs, deps.task_queue_url, left)]  # none: no call
    report_unsent("due", "DueTasksNotSent", failed)
    _report(done, "time-driven changes: the schedule's share handled", scheduled_time=scheduled_time)
    return {"handled": done.people, "dispatched": len(left) - len(failed), "failed": len(failed)}


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "Records" not in (event or {}):  # the schedule (an EventBridge scheduled event)
        return _schedule((event or {}).get("time"), context)
    return tasks.handle(event, context)
