"""Microsoft schedules (S4, S5, D2), fanned out like the poll (``calsync.sync.tasks``; docs/adr/0020).

A schedule (renew hourly, reconcile daily, poll every 5 minutes) dispatches one ``MicrosoftTask`` per
shard of the mailbox registry (``MSSUBS#<shard>``, or ``MSPOLL#<shard>`` for the poll) to the
MicrosoftRenewQueue; each task, one invocation, reads at most ``MAILBOX_PAGE`` mailboxes of its
shard (one Query), sends the jobs of those that are due (10 per SendMessageBatch, the time budget
checked before each) and hands the rest back after the last mailbox whose job was sent.

Idempotent on redelivery: a job's deduplication id is ``ms-<job>-<account>-<run>``, so a task
delivered twice (or a schedule firing twice in one slot) sends each mailbox's job once within the
sync queue's 5-minute deduplication window; a renew job itself is idempotent (it PATCHes the
expiry, or creates the subscription that is missing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field

from calsync.store import keys
from calsync.sync.budget import LambdaBudget
from calsync.sync.tasks import ShardTask, dispatch_shards, run_number
from calsync_microsoft.jobs import MailboxJob, enqueue_many
from calsync_microsoft.registry import MicrosoftRegistry

Job = Literal["renew", "reconcile", "poll"]
# a run is the schedule's slot (what a job is deduplicated by): template.yaml's rates
EVERY: dict[str, timedelta] = {
    "renew": timedelta(hours=1),
    "reconcile": timedelta(days=1),
    "poll": timedelta(minutes=5),
}
# The most mailboxes one invocation reads and enqueues: one Query (~200 bytes a mailbox) and 100
# SendMessageBatch calls, a few seconds; 1 % of a 100,000-mailbox registry.
MAILBOX_PAGE = 1_000


class MicrosoftTask(ShardTask):
    kind: Literal["microsoft"] = "microsoft"
    shard: int = Field(ge=0, lt=keys.MS_SUB_SHARDS)
    job: Job = "renew"


@dataclass(slots=True)
class MailboxSummary:
    read: int = 0
    queued: int = 0
    failed: int = 0
    rest: MicrosoftTask | None = None
    jobs: list[str] = field(default_factory=list)  # the accounts whose job was sent


def dispatch(sqs_client: Any, queue_url: str, job: Job, now: datetime) -> list[int]:
    """The schedule's part: one task per shard; returns the shards whose task was not sent."""
    run = run_number(now, EVERY[job])
    return dispatch_shards(sqs_client, queue_url, MicrosoftTask, keys.MS_SUB_SHARDS, run, job=job)


def _job(task: MicrosoftTask, item: dict[str, Any], renew_before: datetime) -> MailboxJob | None:
    user_id, account_id = str(item["userId"]), str(item["accountId"])
    if task.job == "poll":
        cals = [str(c) for c in item.get("calendarIds", [])]
        return MailboxJob(user_id=user_id, account_id=account_id, calendar_ids=cals, reason="poll")
    if task.job == "reconcile":
        return MailboxJob(
            user_id=user_id,
            account_id=account_id,
            action="renew",
            full=True,
            list_calendars=True,
            reason="reconcile",
        )
    if str(item["subExpiresAt"]) >= keys.iso(renew_before):
        return None  # not due (S4: half the lifetime)
    return MailboxJob(
        user_id=user_id, account_id=account_id, action="renew", list_calendars=True, reason="renew"
    )


def run_task(
    registry: MicrosoftRegistry,
    sqs_client: Any,
    sync_queue_url: str,
    task: MicrosoftTask,
    renew_before: datetime,
    *,
    budget: LambdaBudget | None = None,
    limit: int = MAILBOX_PAGE,
) -> MailboxSummary:
    """One invocation's share: at most ``limit`` mailboxes of one shard. ``rest``: the task that
    continues after the last mailbox whose job was sent (None: the shard is done)."""
    summary = MailboxSummary()
    items, after = registry.mailbox_page(task.job == "poll", task.shard, after=task.after, limit=limit)
    summary.read = len(items)
    due = [(str(item["sk"]), job) for item in items if (job := _job(task, item, renew_before)) is not None]
    for start in range(0, len(due), 10):
        if budget is not None and budget.exhausted():
            summary.rest = task.model_copy(update={"after": due[start - 1][0] if start else task.after})
            return summary
        chunk = due[start : start + 10]
        dedup = [f"ms-{task.job}-{job.account_id}-{task.run}" for _, job in chunk]
        failed = enqueue_many(sqs_client, sync_queue_url, [job for _, job in chunk], dedup)
        summary.failed += failed
        summary.queued += len(chunk) - failed
        summary.jobs += [job.account_id for _, job in chunk]
    if after is not None:
        summary.rest = task.model_copy(update={"after": after})
    return summary
