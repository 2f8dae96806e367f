"""The poll schedule's work (S3, S5): enqueue a sync job for every registered calendar.

The registry (``POLL#<provider>#<shard> / CAL#<calendarId>``, written by the sync worker when a
calendar is first synced for a configuration, deleted when the calendar is gone) is read with one
Query per shard, never a Scan. A polled calendar costs the worker one ctag request and no write
when nothing changed, so every registered calendar is simply enqueued on every run.

Reconcile (S5): each calendar has a slot among the ``RECONCILE_EVERY / POLL_EVERY`` runs of a
period (a hash of its id); in its slot its job is a full one (an ETag comparison of every
resource). The load of full passes is thus spread evenly over the period, and the state needs no
"last reconciled" timestamp to be written (the engine keeps one anyway, as a backstop).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from calsync.store import keys
from calsync.store.sync_state import SyncStateStore
from calsync.sync.jobs import SyncJob, enqueue_many

POLL_EVERY = timedelta(minutes=5)
RECONCILE_EVERY = timedelta(hours=6)
RECONCILE_SLOTS = int(RECONCILE_EVERY / POLL_EVERY)


@dataclass(frozen=True, slots=True)
class PollSummary:
    enqueued: int
    reconciles: int
    failed: list[str]


def run_number(now: datetime) -> int:
    """The number of the poll slot ``now`` falls in (a schedule firing twice in it is one run)."""
    return int(now.timestamp()) // int(POLL_EVERY.total_seconds())


def reconcile_slot(calendar_id: str) -> int:
    digest = hashlib.blake2b(calendar_id.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % RECONCILE_SLOTS


def poll(state: SyncStateStore, sqs_client: Any, queue_url: str, provider: str, now: datetime) -> PollSummary:
    run = run_number(now)
    jobs: list[tuple[SyncJob, str | None]] = []
    reconciles = 0
    for shard in range(keys.POLL_SHARDS):
        for entry in state.list_poll(provider, shard):
            reconcile = reconcile_slot(entry.calendar_id) == run % RECONCILE_SLOTS
            reconciles += reconcile
            job = SyncJob(
                calendar_id=entry.calendar_id,
                user_id=entry.user_id,
                account_id=entry.account_id,
                reason="reconcile" if reconcile else "poll",
                full=reconcile,
            )
            # the same run never enqueues a calendar twice; any other job is never collapsed (S6)
            jobs.append((job, f"poll-{entry.calendar_id}-{run}"))
    failed = enqueue_many(sqs_client, queue_url, jobs)
    return PollSummary(enqueued=len(jobs) - len(failed), reconciles=reconciles, failed=failed)
