"""The cleanup of ended events (rule S9), fanned out: one task per shard, a bounded page each.

Every occurrence copy and index entry is found through the KEYS_ONLY index gsi1 by its hour bucket
``END#<hour>#<shard>`` (16 shards per hour; docs/cleanup-scaling.md). The schedule dispatches one
``CleanupTask`` per shard (``calsync.sync.tasks``); each task is run by its own invocation of the
cleanup function, the 16 shards in parallel. A task reads its shard's buckets from the shard's
cursor (``SYS#cleanup#<shard>``) to ``now - 61 min`` and deletes what it finds, at most
``CLEANUP_PAGE`` keys per invocation and only while the time budget lasts; the rest goes back to
the queue as the same task continuing at the hour it stopped in (``after``). An hour is always read
from its start again: what a previous page deleted is gone, so nothing is skipped, and deleting a
key twice (a task delivered twice) deletes nothing the second time. The cursor only moves forward
(a conditional write), so tasks of a shard finishing in any order never make it go back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import Field

from calsync.store import keys
from calsync.store.repository import ENDED_GRACE, Repository
from calsync.sync.budget import LambdaBudget
from calsync.sync.tasks import ShardTask, dispatch_shards, run_number

DEFAULT_LOOKBACK = timedelta(hours=48)  # how far back a shard without a cursor looks
CLEANUP_EVERY = timedelta(minutes=15)  # the schedule's rate (template.yaml)
# The most keys one invocation deletes: one Query of at most 1,000 keys of the KEYS_ONLY index
# (~100 KB, below its 1 MB page) and 40 BatchWriteItem calls of 25 — a few seconds of its timeout.
CLEANUP_PAGE = 1_000


class CleanupTask(ShardTask):
    """Clean ``shard`` of the hour buckets; ``after``: the hour (``keys.iso``) to continue at."""

    kind: Literal["cleanup"] = "cleanup"
    shard: int = Field(ge=0, lt=keys.CLEANUP_SHARDS)


@dataclass(slots=True)
class CleanupSummary:
    deleted: int = 0
    queries: int = 0
    rest: CleanupTask | None = None  # what is left of the task (hand it back to the queue)


def next_cursor(now: datetime) -> datetime:
    """The start of the hour of ``now - 61 min``: that hour may still receive ended events."""
    return _hour(now.astimezone(UTC) - ENDED_GRACE)


def _hour(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def dispatch(sqs_client: Any, queue_url: str, now: datetime) -> list[int]:
    """The schedule's part: one task per shard; returns the shards whose task was not sent."""
    run = run_number(now, CLEANUP_EVERY)
    return dispatch_shards(sqs_client, queue_url, CleanupTask, keys.CLEANUP_SHARDS, run)


def clean_shard(
    repo: Repository,
    task: CleanupTask,
    now: datetime,
    *,
    budget: LambdaBudget | None = None,
    limit: int = CLEANUP_PAGE,
) -> CleanupSummary:
    """One invocation's share of the cleanup: at most ``limit`` keys of one shard deleted, the
    budget checked before each Query. ``rest``: the task that continues (None: the shard is clean
    up to ``now - 61 min``, and its cursor moved to ``next_cursor(now)``)."""
    summary = CleanupSummary()
    cutoff = now.astimezone(UTC) - ENDED_GRACE
    if task.after is not None:
        hour = _hour(keys.parse_iso(task.after))
    else:
        hour = _hour(repo.get_cleanup_cursor(task.shard) or now - DEFAULT_LOOKBACK)
    page: dict[str, Any] | None = None
    while hour <= cutoff:
        if summary.deleted >= limit or (budget is not None and budget.exhausted()):
            repo.advance_cleanup_cursor(task.shard, hour)  # every hour before it is clean
            summary.rest = CleanupTask(shard=task.shard, run=task.run, after=keys.iso(hour))
            return summary
        deleted, page = repo.delete_ended_page(
            keys.end_bucket(hour, task.shard), cutoff, limit=limit - summary.deleted, after=page
        )
        summary.deleted += deleted
        summary.queries += 1
        if page is None:
            hour += timedelta(hours=1)
    repo.advance_cleanup_cursor(task.shard, next_cursor(now))
    return summary
