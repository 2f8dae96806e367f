"""The poll schedules' work (S3, S5), fanned out: no invocation reads more than a bounded page.

The registry (``POLL#<provider>#<shard> / CAL#<calendarId>``, written by the sync worker when a
calendar is first synced for a configuration, deleted when the calendar is gone) is split into
``keys.POLL_SHARDS`` shards. A schedule only *dispatches*: it sends one ``PollTask`` per shard to
the poll queue (``dispatch``, two SendMessageBatch calls). Each task is then run by its own
invocation of the poll-shard function (``poll_shard``), in parallel: one Query of at most
``SHARD_BATCH`` entries of its shard, their sync jobs sent 10 per call, and — when the shard holds
more, or the invocation's time budget (``calsync.sync.budget``) runs short — the rest handed back
to the poll queue as a new task starting after the last entry sent. So no invocation handles more
than ``SHARD_BATCH`` entries, whatever the registry's size (docs/adr/0016, docs/scaling.md).

Adaptive intervals (``adaptive`` tasks: CalDAV, polled every 5 minutes): a calendar that a sync
changed within a day is enqueued on every run; within a week, every third run (15 minutes); a
quiet one every sixth run (30 minutes: its maximum staleness, plus queue time). A calendar's phase
is a hash of its id, so each run gets an even share of the quiet ones.

Reconcile (S5): each calendar has a slot among the ``RECONCILE_EVERY / POLL_EVERY`` runs of a
period (a hash of its id); in its slot its job is a full one (an ETag comparison of every
resource), whatever its interval. The load of full passes is thus spread evenly over the period,
and the state needs no "last reconciled" timestamp to be written (the engine keeps one anyway).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field

from calsync.store import keys
from calsync.store.hosts import HostBudgets
from calsync.store.sync_state import PollEntry, SyncStateStore
from calsync.sync.budget import LambdaBudget
from calsync.sync.jobs import SyncJob, enqueue_many
from calsync.sync.tasks import ShardTask, dispatch_shards, run_number

POLL_EVERY = timedelta(minutes=5)
RECONCILE_EVERY = timedelta(hours=6)
RECONCILE_SLOTS = int(RECONCILE_EVERY / POLL_EVERY)

# The most poll entries one invocation reads and enqueues: one Query (~150 bytes an entry, far
# below its 1 MB) and 100 SendMessageBatch calls — a few seconds of a 60 s timeout, and 1 % of a
# 100,000-calendar poll.
SHARD_BATCH = 1_000

# adaptive intervals: (changed within, poll every n-th run); anything older (or never changed)
# is polled every QUIET_EVERY-th run
ACTIVE_TIERS: tuple[tuple[timedelta, int], ...] = ((timedelta(days=1), 1), (timedelta(days=7), 3))
QUIET_EVERY = 6
MAX_STALENESS = POLL_EVERY * QUIET_EVERY  # 30 minutes between two polls of any calendar

Provider = Literal["caldav", "google"]


class PollTask(ShardTask):
    """One message on the poll queue (a ``calsync.sync.tasks.ShardTask`` of kind ``poll``): poll
    ``shard`` of ``provider``'s registry for ``run``, starting after the sort key ``after``."""

    kind: Literal["poll"] = "poll"
    shard: int = Field(ge=0, lt=keys.POLL_SHARDS)
    provider: Provider
    adaptive: bool = False


@dataclass(slots=True)
class ShardSummary:
    read: int = 0
    enqueued: int = 0
    reconciles: int = 0
    resting: int = 0  # not due in this run (adaptive intervals)
    deferred: int = 0  # due, but their server host is backing off or over budget: the next run
    throttled_hosts: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    rest: PollTask | None = None  # what is left of the task (hand it back to the poll queue)


def _hash(calendar_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(calendar_id.encode(), digest_size=4).digest(), "big")


def reconcile_slot(calendar_id: str) -> int:
    return _hash(calendar_id) % RECONCILE_SLOTS


def poll_every(changed_at: datetime | None, now: datetime, online_until: datetime | None = None) -> int:
    """Every how many runs a calendar last changed at ``changed_at`` is polled; every run while
    someone who reads it is online (``online_until``: their session's end)."""
    if online_until is not None and now < online_until:
        return 1
    if changed_at is not None:
        for within, every in ACTIVE_TIERS:
            if now - changed_at <= within:
                return every
    return QUIET_EVERY


def is_due(entry: PollEntry, run: int, now: datetime) -> bool:
    """Adaptive intervals: is the calendar polled in this run?"""
    every = poll_every(entry.changed_at, now, entry.online_until)
    return (run - _hash(entry.calendar_id)) % every == 0


def dispatch(
    sqs_client: Any, poll_queue_url: str, provider: Provider, now: datetime, *, adaptive: bool
) -> list[int]:
    """The schedule's part: one task per shard on the poll queue; returns the shards not sent."""
    run = run_number(now, POLL_EVERY)
    return dispatch_shards(
        sqs_client, poll_queue_url, PollTask, keys.POLL_SHARDS, run, provider=provider, adaptive=adaptive
    )


def _job(entry: PollEntry, run: int) -> tuple[SyncJob, str]:
    reconcile = reconcile_slot(entry.calendar_id) == run % RECONCILE_SLOTS
    job = SyncJob(
        calendar_id=entry.calendar_id,
        user_id=entry.user_id,
        account_id=entry.account_id,
        reason="reconcile" if reconcile else "poll",
        full=reconcile,
    )
    # the same run never enqueues a calendar twice; any other job is never collapsed (S6)
    return job, f"poll-{entry.calendar_id}-{run}"


def _within_budget(
    hosts: HostBudgets,
    entries: list[PollEntry],
    due: list[tuple[str, SyncJob, str]],
    by_host: dict[str, int],
    *,
    now: datetime,
    summary: ShardSummary,
) -> list[tuple[str, SyncJob, str]]:
    """The per-server budget (docs/adr/0020): one take of tokens per host for the page's jobs; the
    calendars of a host backing off or beyond the tokens granted are deferred to the next run
    (their entries stay: nothing is dropped)."""
    granted = {host: hosts.take(host, now, wanted) for host, wanted in sorted(by_host.items())}
    summary.throttled_hosts = sorted(h for h, n in granted.items() if n < by_host[h])
    host_of = {keys.poll_sk(e.calendar_id): (e.host or "").lower() for e in entries}
    kept: list[tuple[str, SyncJob, str]] = []
    for sk, job, dedup in due:
        host = host_of.get(sk, "")
        if host in granted:
            if granted[host] <= 0:
                summary.deferred += 1
                continue
            granted[host] -= 1
        kept.append((sk, job, dedup))
    return kept


def poll_shard(
    state: SyncStateStore,
    sqs_client: Any,
    sync_queue_url: str,
    task: PollTask,
    now: datetime,
    *,
    budget: LambdaBudget | None = None,
    limit: int = SHARD_BATCH,
    hosts: HostBudgets | None = None,
) -> ShardSummary:
    """One invocation's share of a poll: at most ``limit`` entries of one shard (one Query). Jobs
    go out 10 per call; the budget is checked before each call. ``rest``: the task that continues
    after the last entry whose job was sent (None: the shard is done)."""
    summary = ShardSummary()
    entries, after = state.poll_page(task.provider, task.shard, after=task.after, limit=limit)
    summary.read = len(entries)
    due: list[tuple[str, SyncJob, str]] = []  # (sort key, job, dedup id) of the entries due now
    by_host: dict[str, int] = {}  # the jobs due per server host (CalDAV)
    for entry in entries:
        job, dedup = _job(entry, task.run)
        if not job.full and task.adaptive and not is_due(entry, task.run, now):
            summary.resting += 1
            continue
        if hosts is not None and entry.host:
            by_host[entry.host.lower()] = by_host.get(entry.host.lower(), 0) + 1
        due.append((keys.poll_sk(entry.calendar_id), job, dedup))
    if by_host and hosts is not None:
        due = _within_budget(hosts, entries, due, by_host, now=now, summary=summary)
    for start in range(0, len(due), 10):
        if budget is not None and budget.exhausted():
            # the entries not due in this run are not due in its rest either: skip past them
            summary.rest = task.model_copy(update={"after": due[start - 1][0] if start else task.after})
            return summary
        chunk = due[start : start + 10]
        failed = enqueue_many(sqs_client, sync_queue_url, [(job, dedup) for _, job, dedup in chunk])
        summary.failed += failed
        summary.enqueued += len(chunk) - len(failed)
        summary.reconciles += sum(job.full for _, job, _ in chunk)
    if after is not None:
        summary.rest = task.model_copy(update={"after": after})
    return summary
