"""Cleanup of ended events (rule S9), fanned out (``calsync.sync.cleanup``; docs/adr/0020).

Two event sources, one function:
- the EventBridge schedule (every 15 minutes) *dispatches*: one ``CleanupTask`` per shard of the
  hour buckets to the CleanupQueue (two SendMessageBatch calls, nothing read);
- the CleanupQueue (``BatchSize: 1``, up to 16 at once) runs one task per invocation: at most
  ``CLEANUP_PAGE`` = 1,000 keys of one shard deleted under the time budget, the rest handed back.

DynamoDB's TTL (expiresAt) is only a backstop; reads never rely on either having run
(docs/cleanup-scaling.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from calsync.config import get_settings
from calsync.observability import logger, metrics, observed
from calsync.store.keys import CLEANUP_SHARDS
from calsync.store.repository import Repository
from calsync.sync.budget import LambdaBudget
from calsync.sync.cleanup import CleanupTask, clean_shard, dispatch
from calsync.sync.tasks import dispatched
from calsync.wiring import Wiring
from calsync.wiring.tasks import TaskConsumer, TaskDeps, task_deps

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# tests: ``with wiring.use(task_deps(queue_url, table, sqs=..., clock=..., limit=...)):``
wiring: Wiring[TaskDeps] = Wiring(lambda: task_deps(get_settings().cleanup_queue_url))


def _run(task: CleanupTask, budget: LambdaBudget | None) -> CleanupTask | None:
    deps = wiring()
    summary = clean_shard(Repository(deps.table), task, deps.clock(), budget=budget, **deps.limits)
    logger.info(
        "cleanup shard done" if summary.rest is None else "cleanup shard: the rest is handed back",
        extra={"shard": task.shard, "run": task.run, "deleted": summary.deleted, "queries": summary.queries},
    )
    metrics.add_metric(name="EndedItemsDeleted", unit=MetricUnit.Count, value=summary.deleted)
    return summary.rest


tasks = TaskConsumer(CleanupTask, _run, wiring)  # the task queue's records


def _dispatch() -> dict[str, Any]:
    deps = wiring()
    failed = dispatch(deps.sqs, deps.task_queue_url, deps.clock())
    return dispatched("cleanup", "CleanupTasksNotSent", "cleanup dispatched", CLEANUP_SHARDS, failed)


@observed
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "Records" not in (event or {}):  # the schedule (an EventBridge scheduled event)
        return _dispatch()
    return tasks.handle(event, context)
