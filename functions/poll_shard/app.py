"""Poll fan-out (S3, S5): runs one shard task of the poll queue per record (``calsync.sync.poll``).

The schedules (CaldavPollFunction, GoogleRenewFunction) send one ``PollTask`` per shard of the poll
registry to the PollQueue; this function, many invocations in parallel, reads at most
``SHARD_BATCH`` entries of the task's shard (one Query) and sends their sync jobs to the
provider's sync queue. What is left of the shard — more entries, or the time budget ran short —
goes back to the PollQueue as a new task, so no invocation does more than a bounded share of a poll
(docs/adr/0016-poll-fan-out-and-shared-calendars.md).

Thin, and free of provider layers: it only reads the registry and sends SQS messages.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from calsync.config import get_settings
from calsync.observability import logger, metrics, observed
from calsync.store.hosts import HostBudgets, configured_rate
from calsync.store.sync_state import SyncStateStore
from calsync.sync.budget import LambdaBudget
from calsync.sync.poll import PollTask, poll_shard
from calsync.wiring import Wiring
from calsync.wiring.tasks import TaskConsumer, TaskDeps, task_deps


def _deps() -> TaskDeps:
    settings = get_settings()
    urls = {"caldav": settings.caldav_sync_queue_url, "google": settings.google_sync_queue_url}
    return task_deps(settings.poll_queue_url, sync_queue_urls={p: str(u) for p, u in urls.items()})


# tests: ``with wiring.use(task_deps(poll_queue_url, table, sqs=..., sync_queue_urls=..., clock=...)):``
wiring: Wiring[TaskDeps] = Wiring(_deps)


def _run(task: PollTask, budget: LambdaBudget | None) -> PollTask | None:
    extra: dict[str, Any] = {"provider": task.provider, "shard": task.shard, "run": task.run}
    deps = wiring()
    # the per-server budget (docs/adr/0020)
    hosts = HostBudgets(deps.table, configured_rate()) if task.provider == "caldav" else None
    summary = poll_shard(
        SyncStateStore(deps.table),
        deps.sqs,
        deps.sync_queue_urls[task.provider],
        task,
        deps.clock(),
        budget=budget,
        hosts=hosts,
        **deps.limits,
    )
    if summary.failed:
        logger.warning(
            "jobs not sent; the next poll sends them", extra={**extra, "calendars": summary.failed}
        )
        metrics.add_metric(name="PollJobsNotSent", unit=MetricUnit.Count, value=len(summary.failed))
    if summary.deferred:
        logger.info(
            "calendars deferred: their server is backing off or over budget",
            extra={**extra, "deferred": summary.deferred, "hosts": summary.throttled_hosts},
        )
        metrics.add_metric(name="PollDeferred", unit=MetricUnit.Count, value=summary.deferred)
    logger.info(
        "poll shard done" if summary.rest is None else "poll shard: the rest is handed back",
        extra={**extra, "read": summary.read, "enqueued": summary.enqueued, "resting": summary.resting},
    )
    metrics.add_metric(name="PollEnqueued", unit=MetricUnit.Count, value=summary.enqueued)
    metrics.add_metric(name="PollReconciles", unit=MetricUnit.Count, value=summary.reconciles)
    return summary.rest


lambda_handler = observed(TaskConsumer(PollTask, _run, wiring).handle)  # the task queue's records
