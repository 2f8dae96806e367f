"""Microsoft schedules (S4, S5, S7): renew subscriptions at half-life at the latest, reconcile.

Fanned out like the poll (``calsync_microsoft.schedule``; docs/adr/0020): a schedule dispatches one
task per shard of the mailbox registry to the MicrosoftRenewQueue, and the queue's invocations (this
function too) each read at most 1,000 mailboxes of one shard and queue their mailbox jobs on the
MicrosoftSyncQueue under the time budget, handing the rest back; the sync worker does the Graph
calls:

- ``renew`` (every hour): mailboxes whose subscription expires within half the configured lifetime
  get a ``renew`` job (PATCH, or a new subscription when Graph removed it). Renewing uses the
  refresh token every ~35 h at the latest, which also keeps rarely used refresh tokens alive (they
  expire after 90 days unused).
- ``reconcile`` (daily, event ``{"task": "reconcile"}``): every mailbox gets a full resync: push is
  not fully reliable (S5), and the calendarView horizon moves forward (the delta link is re-based).
- ``poll`` (every 5 minutes, event ``{"task": "poll"}``): the calendars shared with a mailbox by
  someone else get no change notification from Graph (docs/providers/microsoft.md M10): each
  mailbox with such calendars gets a ``sync`` job for them (one delta request when nothing changed).
- ``renew`` and ``reconcile`` jobs also read the mailbox's ``me/calendars`` once (every page): Graph
  notifies no new calendar (docs/providers/microsoft.md M15), so a calendar created at Microsoft or
  shared with the mailbox after the connect becomes selectable within a day (R8;
  ``calsync_microsoft.calendars.refresh_listing``). ``poll`` jobs (every 5 minutes) do not list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from calsync.observability import logger, metrics, observed
from calsync.store.keys import MS_SUB_SHARDS
from calsync.sync.budget import LambdaBudget
from calsync.sync.tasks import dispatched
from calsync.wiring import Wiring
from calsync.wiring.tasks import TaskConsumer
from calsync_microsoft.registry import MicrosoftRegistry
from calsync_microsoft.schedule import Job, MicrosoftTask, dispatch, run_task
from calsync_microsoft.subscriptions import renew_before
from calsync_microsoft.wiring import RenewDeps, renew_deps

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

wiring: Wiring[RenewDeps] = Wiring(renew_deps)  # tests: ``with wiring.use(renew_deps(...)):``


def _run(task: MicrosoftTask, budget: LambdaBudget | None) -> MicrosoftTask | None:
    deps = wiring()
    before = renew_before(deps.clock(), deps.subscription_lifetime)
    registry = MicrosoftRegistry(deps.table)
    summary = run_task(registry, deps.sqs, deps.sync_queue_url, task, before, budget=budget, **deps.limits)
    extra = {"task": task.job, "shard": task.shard, "run": task.run, "read": summary.read}
    if summary.failed:
        logger.warning(
            "mailbox jobs not sent; the next run sends them", extra={**extra, "failed": summary.failed}
        )
        metrics.add_metric(name="MailboxJobsNotSent", unit=MetricUnit.Count, value=summary.failed)
    logger.info(
        "microsoft schedule shard done"
        if summary.rest is None
        else "microsoft schedule: the rest is handed back",
        extra={**extra, "queued": summary.queued},
    )
    metrics.add_metric(name="MailboxJobsQueued", unit=MetricUnit.Count, value=summary.queued)
    return summary.rest


tasks = TaskConsumer(MicrosoftTask, _run, wiring)  # the task queue's records


@observed
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "Records" in (event or {}):
        return tasks.handle(event, context)
    job: Job = {"reconcile": "reconcile", "poll": "poll"}.get(str((event or {}).get("task")), "renew")  # type: ignore[assignment]
    deps = wiring()
    failed = dispatch(deps.sqs, deps.task_queue_url, job, deps.clock())
    counts = dispatched(
        "microsoft schedule",
        "MailboxTasksNotSent",
        "microsoft schedule dispatched",
        MS_SUB_SHARDS,
        failed,
        task=job,
    )
    return {"task": job, **counts}
