"""The live schedule's shard work (issue 15, docs/adr/0018): the people of one shard of the DUE
buckets whose answers change by time alone, handled at most ``TASK_PEOPLE`` per invocation.

For each person due the answers just before the instant are compared with now's
(``PresenceService.time_driven``): what changed is published (one version bump; the presence event
carries the answer), and the next instant is written down. Each person is taken out of their bucket
before being handled (``DueStore.claim``: the one caller that removed the item handles them), so a
task delivered twice, or two tasks of one shard reading one bucket, publish nothing twice.

A schedule run first handles the shards itself (``run_schedule``), in turn, up to ``INLINE_PEOPLE``
people: in most minutes of most deployments few people or none are due, and 16 queue tasks a minute
(16 invocations and their SQS requests, all month) cost more than the work (docs/adr/0026,
amended). Past the bound, or when a shard fails, what is left goes to the queue as tasks, handled in
parallel as before. functions/live_due wires it to its schedule and its queue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import Field

from calsync.api.presence_service import PresenceService
from calsync.domain.errors import CalsyncError
from calsync.observability import logger
from calsync.store import due as dues
from calsync.store import keys
from calsync.sync.tasks import ShardTask, run_number

PAGE = 100
# The most people one invocation handles: ~20 ms each (two Queries, about three writes) is ~20 s,
# well inside the 50 s timeout; the time budget (a quarter of it kept) stops it earlier if slower.
TASK_PEOPLE = 1_000
FIRST_LOOKBACK = timedelta(minutes=5)  # a shard's first run (no cursor yet) reads this far back
# The most people a schedule run handles itself (~20 ms each: about a second) before it hands the
# rest of the minute to the queue; a minute with more people due fans out as before.
INLINE_PEOPLE = 50


class DueTask(ShardTask):
    """Handle ``shard`` of the DUE buckets; ``after``: the minute (``keys.iso``) to continue at
    (None: the shard's "look again" bucket, then its minutes from its cursor)."""

    kind: Literal["due"] = "due"
    shard: int = Field(ge=0, lt=keys.DUE_SHARDS)


@dataclass
class Run:
    people: int = 0  # people handled (taken out of a bucket)
    presence: int = 0  # presence events published (one per changed person, on each of their locations)
    meetings: int = 0
    failed: int = 0
    rest: DueTask | None = None  # what is left of the task (hand it back to the queue)
    tasks: int = 0  # tasks handed to the queue (each its own invocation)

    def add(self, other: Run) -> None:
        """Count ``other``'s people and events in this run's."""
        self.people += other.people
        self.presence += other.presence
        self.meetings += other.meetings
        self.failed += other.failed
        self.tasks += other.tasks


def run_shard(  # noqa: PLR0917 - the task's inputs, as clean_shard takes them
    store: dues.DueStore,
    service: PresenceService,
    task: DueTask,
    now: datetime,
    in_time: Callable[[], bool] = lambda: True,
    limit: int = TASK_PEOPLE,
) -> Run:
    """One invocation's share: the people of ``task.shard`` due by ``now``, at most ``limit``.
    ``rest``: the task that continues (None: the shard is done up to now's minute, and its cursor
    moved past it)."""
    out = Run()
    last = dues.floor_minute(now)
    if task.after is None:
        for pk in dues.soon_pks(task.shard):
            if not _bucket(store, service, pk, now, in_time, limit, out):
                out.rest = task
                return out
        minute = store.cursor(task.shard) or last - FIRST_LOOKBACK
    else:
        minute = keys.parse_iso(task.after)
    while minute <= last:
        for pk in dues.bucket_pks(minute, task.shard):
            if not _bucket(store, service, pk, now, in_time, limit, out):
                store.set_cursor(minute, task.shard)  # every minute before it is done
                out.rest = task.continued(keys.iso(minute))
                return out
        minute += dues.MINUTE
    store.set_cursor(minute, task.shard)
    return out


def _bucket(  # noqa: PLR0917 - private, one call site per kind of bucket
    store: dues.DueStore,
    service: PresenceService,
    pk: str,
    now: datetime,
    in_time: Callable[[], bool],
    limit: int,
    out: Run,
) -> bool:
    """Handle one bucket to its end; ``False`` when the bound or the budget ran out first."""
    while True:
        room = min(PAGE, limit - out.people)
        if room <= 0:
            return False
        page = store.page(pk, room)
        for item in page:
            if not in_time():
                return False
            if not store.claim(pk, item.user_id):
                continue  # another task of the shard took them meanwhile
            out.people += 1
            try:
                found = service.publish_time_driven(item.user_id, item.at, now)
            except CalsyncError as exc:  # visible, then dropped: the next write re-arms the person
                logger.warning(
                    "time-driven change not handled",
                    extra={"user_id": item.user_id, "bucket": pk, "error": type(exc).__name__},
                )
                out.failed += 1
            else:
                out.presence += found.presence_changed
                out.meetings += found.meetings_changed
        if len(page) < room:
            return True


def run_schedule(
    store: dues.DueStore,
    service: PresenceService,
    now: datetime,
    in_time: Callable[[], bool] = lambda: True,
    limit: int = INLINE_PEOPLE,
) -> tuple[Run, list[DueTask]]:
    """A schedule run's own share of ``now``'s minute: each shard in turn, in this invocation, until
    ``limit`` people are handled or the budget is spent. Returns what it did and the tasks for the
    queue: the rest of the shard it stopped in and every shard after it, and a shard whose handling
    failed (logged; its task starts again from the shard's cursor, its claimed people done)."""
    out = Run()
    left: list[DueTask] = []
    stopped = False  # the bound or the budget reached: the shards after are the queue's
    slot = run_number(now, dues.MINUTE)
    for shard in range(keys.DUE_SHARDS):
        task = DueTask(shard=shard, run=slot)
        stopped = stopped or out.people >= limit or not in_time()
        if stopped:
            left.append(task)
            continue
        try:
            done = run_shard(store, service, task, now, in_time, limit - out.people)
        except Exception as exc:  # one shard's failure is the queue's to retry (its own redrive)
            logger.warning(
                "time-driven changes of a shard failed in the schedule's run: handed to the queue",
                extra={"shard": shard, "error": type(exc).__name__},
            )
            out.failed += 1
            left.append(task)
            continue
        out.add(done)
        if done.rest is not None:
            left.append(done.rest)
            stopped = True
    out.tasks = len(left)
    return out, left


def run(store: dues.DueStore, service: PresenceService, now: datetime) -> Run:
    """One schedule run's work in this process, as deployed: the schedule's own share, then every
    task it hands to the queue and what each hands back, run to its end (bench/cost.py)."""
    out, pending = run_schedule(store, service, now)
    while pending:
        done = run_shard(store, service, pending.pop(), now)
        out.add(done)
        if done.rest is not None:
            pending.append(done.rest)
            out.tasks += 1
    return out
