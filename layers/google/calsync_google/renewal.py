"""Google channel renewal (S4), fanned out like the poll and the cleanup (``calsync.sync.tasks``;
docs/adr/0020): the hourly schedule dispatches one ``GoogleChannelsTask`` (kind
``google-channels``) per shard of the channel-expiry index (``GCHANEXP#<shard>``) to the
GoogleRenewQueue; each invocation of its consumer (GoogleRenewFunction too) renews at most
``RENEW_PAGE`` channels of one shard, under its time budget, and hands the rest back as the same
task continuing after the last index entry it read.

``RENEW_PAGE`` = 50: each renewal is two Google calls (``events.watch`` for the new channel, then
``channels.stop`` for the old one; about 0.5 s together, plus a token refresh now and then), so a
page is ~25-30 s of the function's 300 s — far inside it, with the budget as the backstop when
Google is slow.

Redelivery: a channel renewed by a first delivery is gone from the index (its replacement expires
7 days later, past the horizon), and an active channel is renewed only under its claim
(``ChannelStore.claim_renewal``, a conditional write on the channel still being the one read):
a task delivered twice, or run while a sync renews the same channel, opens no second channel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field

from calsync.config import get_settings
from calsync.store import keys
from calsync.sync.budget import LambdaBudget
from calsync.sync.tasks import ShardTask, dispatch_shards, run_number
from calsync.wiring import Clock, utc_now
from calsync.wiring.tasks import TaskDeps, task_deps
from calsync_google.channels import RENEW_BEFORE
from calsync_google.worker import GoogleSyncWorker, from_environment

RENEW_PAGE = 50  # channels per invocation (module docstring)
RENEW_EVERY = timedelta(hours=1)  # the schedule's rate (template.yaml)


class GoogleChannelsTask(ShardTask):
    """Renew the channels of ``shard`` of the expiry index; ``after``: the index sort key to
    continue after."""

    kind: Literal["google-channels"] = "google-channels"
    shard: int = Field(ge=0, lt=keys.CHANNEL_SHARDS)


@dataclass(slots=True)
class RenewSummary:
    counts: dict[str, int] = field(
        default_factory=lambda: {"renewed": 0, "stopped": 0, "dropped": 0, "skipped": 0, "failed": 0}
    )
    read: int = 0  # index entries read
    rest: GoogleChannelsTask | None = None  # what is left of the task (hand it back to the queue)


def dispatch(sqs_client: Any, queue_url: str, now: datetime) -> list[int]:
    """The schedule's part: one task per shard; returns the shards whose task was not sent."""
    run = run_number(now, RENEW_EVERY)
    return dispatch_shards(sqs_client, queue_url, GoogleChannelsTask, keys.CHANNEL_SHARDS, run)


@dataclass(frozen=True, kw_only=True)
class RenewDeps(TaskDeps):
    """GoogleRenewFunction's dependencies (docs/adr/0023): a fanned-out schedule's (SQS, the
    GoogleRenewQueue as its task queue, the clock, a test's page bound), the PollQueue its poll tasks
    go to, and the sync worker that renews the channels and refreshes the calendar listings."""

    worker: GoogleSyncWorker
    poll_queue_url: str


def renew_deps(
    *,
    sqs: Any = None,
    renew_queue_url: str | None = None,
    poll_queue_url: str | None = None,
    clock: Clock = utc_now,
    limit: int | None = None,
    **worker: Any,
) -> RenewDeps:
    """From the settings (GOOGLE_RENEW_QUEUE_URL, POLL_QUEUE_URL, the worker's); a test passes its SQS
    client, queue URLs, clock, ``limit`` (channels per task) and the worker's overrides
    (``from_environment``: ``table``, ``kms``, ``key_id``, ``client``, ``webhook_url``…)."""
    built = from_environment(**worker)
    tasks = task_deps(
        renew_queue_url or get_settings().google_renew_queue_url,
        built.table,
        sqs=sqs,
        clock=clock,
        limit=limit,
    )
    return RenewDeps(
        **vars(tasks), worker=built, poll_queue_url=str(poll_queue_url or get_settings().poll_queue_url)
    )


def renew_shard(
    worker: GoogleSyncWorker,
    task: GoogleChannelsTask,
    now: datetime,
    *,
    budget: LambdaBudget | None = None,
    limit: int = RENEW_PAGE,
) -> RenewSummary:
    """One invocation's share: at most ``limit`` channels of the task's shard that expire within
    ``RENEW_BEFORE``, the budget checked before each. ``rest``: the task that continues (None: the
    shard is done)."""
    summary = RenewSummary()
    page, last = worker.channels.expiring_page(task.shard, now + RENEW_BEFORE, after=task.after, limit=limit)
    after = task.after
    for channel_id, expiry in page:
        if budget is not None and budget.exhausted():
            summary.rest = task.model_copy(update={"after": after})
            return summary
        worker.renew_one(channel_id, expiry, now, summary.counts)
        summary.read += 1
        after = keys.channel_expiry_sk(expiry, channel_id)
    if last is not None:
        summary.rest = task.model_copy(update={"after": last})
    return summary
