"""Google schedule (S4, S5, R8): renews push channels well before they expire, refreshes each
account's calendar list (a calendar created at Google later becomes selectable), and enqueues every
registered Google calendar (an incremental sync: one ``events.list`` and no write when nothing
changed; the engine makes it a full pass every 12 h — the reconcile that catches what push missed).

Two event sources, one function (docs/adr/0020):
- the hourly schedule *dispatches* the renewal: one ``GoogleChannelsTask`` per shard of the
  channel-expiry index to the GoogleRenewQueue (``calsync_google.renewal``); then the poll: one task
  per shard of the poll registry to the PollQueue (PollShardFunction sends the jobs,
  ``calsync.sync.poll``); then the listings, in the time left;
- the GoogleRenewQueue (``BatchSize: 1``) runs one task per invocation: at most ``RENEW_PAGE`` = 50
  channels of one shard renewed under the time budget, the rest handed back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from calsync.observability import logger, metrics
from calsync.store.keys import CHANNEL_SHARDS
from calsync.sync.budget import LambdaBudget
from calsync.sync.poll import dispatch
from calsync.sync.tasks import report_unsent
from calsync.wiring import Wiring
from calsync.wiring.tasks import TaskConsumer
from calsync_google import renewal
from calsync_google.renewal import GoogleChannelsTask, RenewDeps, renew_deps

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# tests: ``with wiring.use(renew_deps(sqs=..., renew_queue_url=..., clock=..., **worker)):``
wiring: Wiring[RenewDeps] = Wiring(renew_deps)


def _run(task: GoogleChannelsTask, budget: LambdaBudget | None) -> GoogleChannelsTask | None:
    deps = wiring()
    summary = renewal.renew_shard(deps.worker, task, deps.clock(), budget=budget, **deps.limits)
    logger.info(
        "google renewal shard done" if summary.rest is None else "google renewal: the rest is handed back",
        extra={"shard": task.shard, "run": task.run, "read": summary.read, **summary.counts},
    )
    metrics.add_metric(name="GoogleChannelsRenewed", unit=MetricUnit.Count, value=summary.counts["renewed"])
    return summary.rest


tasks = TaskConsumer(GoogleChannelsTask, _run, wiring)  # the task queue's records
record_handler = tasks.record_handler


def _schedule(context: LambdaContext) -> dict[str, Any]:
    deps = wiring()
    now = deps.clock()
    # renewal before the poll: the sync jobs the poll queues would otherwise find a channel that is
    # about to expire and open one of their own at the same time (the renewal's claim and the
    # sync's keep-one settle a race that is left). Then the poll (two SendMessageBatch calls),
    # before the listings that may use the time left.
    renew_failed = renewal.dispatch(deps.sqs, deps.task_queue_url, now)
    report_unsent("renewal", "RenewTasksNotSent", renew_failed)
    failed = dispatch(deps.sqs, deps.poll_queue_url, "google", now, adaptive=False)
    report_unsent("poll", "PollTasksNotSent", failed)
    listed = deps.worker.refresh_listings(now, context.get_remaining_time_in_millis)
    out = {
        "renewTasks": CHANNEL_SHARDS - len(renew_failed),
        "renewTasksFailed": len(renew_failed),
        **listed,
        "pollTasksFailed": len(failed),
    }
    logger.info("google schedule", extra=out)
    return out


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "Records" not in (event or {}):  # the schedule (an EventBridge scheduled event)
        return _schedule(context)
    return tasks.handle(event, context)
