"""The provider-independent sync of one calendar (rules S3, S5, S6, S10; C10 through the source).

One call of :meth:`SyncEngine.sync`:

1. Read the sync state. Unless a full resync is wanted or pending, or a job marked the calendar
   dirty, ask the source whether anything may have changed since the stored cursor (CalDAV: one
   ctag request). Nothing changed: done, nothing written.
2. Take the calendar's lease (a conditional write). Taken by a running sync: add 1 to its ``dirty``
   counter and stop; that sync sees the counter moved when it commits and syncs again (S6).
3. Incremental pass: the changes since the cursor, page by page; each changed resource replaces
   exactly its own occurrences (idempotent upserts; the per-resource index lists what it stored),
   each deleted resource removes them. ``CursorRejected`` turns the pass into a full one.
   Full pass: a new generation is recorded first (so that a pass that dies half-way is finished by
   the next sync, also a full one); the source lists every resource, skipping those whose etag we
   have; after the last page, resources of older generations that were not listed are swept.
4. Commit: the cursor moves only now, after every page is stored, and the lease is let go — unless
   ``dirty`` moved meanwhile: then the cursor is kept, and another pass runs.

A sync that fails (an exception from the source or the store) lets go of the lease and leaves the
cursor where it was: the next sync lists the same changes again and stores them again, which is
harmless (upserts are idempotent, and the index lists every occurrence that may have been stored).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Literal

from calsync.domain.models import UTC, Occurrence
from calsync.observability import logger
from calsync.store.items import Calendar
from calsync.store.repository import Repository
from calsync.store.sync_state import ResourceEntry, SyncState, SyncStateStore
from calsync.sync.source import CalendarSource, CursorRejected, Horizon, Page, ResourceChange

LEASE_TTL = timedelta(minutes=3)  # > the sync function's timeout; a crashed worker's lease expires
RECONCILE_AFTER = timedelta(hours=12)  # backstop: the poll schedule asks for a full pass every 6 h
REEXPAND_AFTER = timedelta(days=1)  # a recurring resource is expanded again when the horizon moved
MAX_PASSES = 3  # passes per call while jobs keep marking the calendar dirty
HORIZON_DAYS_AHEAD = 60


def default_horizon(now: datetime) -> Horizon:
    """S10: from yesterday 00:00 UTC to 00:00 UTC after the 60th day ahead."""
    today = now.astimezone(UTC).date()
    start = datetime.combine(today - timedelta(days=1), time(), tzinfo=UTC)
    end = datetime.combine(today + timedelta(days=HORIZON_DAYS_AHEAD + 1), time(), tzinfo=UTC)
    return Horizon(start, end)


@dataclass(slots=True)
class SyncOutcome:
    status: Literal["unchanged", "synced", "busy"]
    full: bool = False
    passes: int = 0
    pages: int = 0
    stored: int = 0  # resources whose occurrences were (re)written
    deleted: int = 0  # resources removed (reported deleted, or swept after a full listing)
    skipped: int = 0  # resources listed unchanged by a full listing
    occurrences: int = 0  # occurrences written
    errors: list[str] = field(default_factory=list)  # VEVENTs that could not be read


@dataclass(slots=True)
class _Pass:
    calendar: Calendar
    generation: int
    horizon: Horizon
    full: bool
    entries: dict[str, ResourceEntry] = field(default_factory=dict)  # full passes: the index
    seen: set[str] = field(default_factory=set)


class SyncEngine:
    def __init__(
        self,
        repository: Repository,
        state: SyncStateStore,
        *,
        lease_ttl: timedelta = LEASE_TTL,
        reconcile_after: timedelta = RECONCILE_AFTER,
        reexpand_after: timedelta = REEXPAND_AFTER,
    ) -> None:
        self.repository = repository
        self.state = state
        self.lease_ttl = lease_ttl
        self.reconcile_after = reconcile_after
        self.reexpand_after = reexpand_after

    # ---- one sync ------------------------------------------------------------------------------
    def sync(
        self,
        calendar: Calendar,
        source: CalendarSource,
        *,
        now: datetime,
        full: bool = False,
        horizon: Horizon | None = None,
    ) -> SyncOutcome:
        cal_id = calendar.calendar_id
        horizon = horizon or default_horizon(now)
        state = self.state.get(cal_id)
        if state.leased(now):
            self.state.mark_dirty(cal_id)
            return SyncOutcome("busy")
        if (
            not self._must_run(state, full, now)
            and state.cursor is not None
            and not source.may_have_changed(state.cursor)
        ):
            return SyncOutcome("unchanged")

        owner = uuid.uuid4().hex
        leased = self.state.acquire(cal_id, owner, now, self.lease_ttl)
        if leased is None:  # another worker took it since we looked
            self.state.mark_dirty(cal_id)
            return SyncOutcome("busy")
        outcome = SyncOutcome("synced")
        try:
            state = leased
            for _ in range(MAX_PASSES):
                outcome.passes += 1
                want_full = (
                    full or state.full_pending or state.cursor is None or self._reconcile_due(state, now)
                )
                seen_dirty = state.dirty
                generation = self._run_pass(
                    calendar=calendar,
                    source=source,
                    state=state,
                    full=want_full,
                    owner=owner,
                    horizon=horizon,
                    outcome=outcome,
                )
                if self.state.commit(
                    cal_id,
                    owner,
                    cursor=source.next_cursor,
                    generation=generation,
                    now=now,
                    full=outcome.full,
                    seen_dirty=seen_dirty,
                ):
                    return outcome
                # a job arrived during the pass (S6): the cursor is stored, sync once more
                logger.info("calendar changed during its sync: syncing again", extra={"calendar_id": cal_id})
                state, full = self.state.get(cal_id), False
            self.state.release(cal_id, owner)  # still dirty: the next job syncs again
            return outcome
        except BaseException:
            with contextlib.suppress(Exception):
                self.state.release(cal_id, owner)
            raise

    def _reconcile_due(self, state: SyncState, now: datetime) -> bool:
        return state.last_full_at is None or now - state.last_full_at >= self.reconcile_after

    def _must_run(self, state: SyncState, full: bool, now: datetime) -> bool:
        """Whether the cheap "may have changed" check may NOT be used to skip the sync."""
        return (
            full
            or state.full_pending
            or state.cursor is None
            or state.dirty > 0
            or self._reconcile_due(state, now)
        )

    def _run_pass(
        self,
        *,
        calendar: Calendar,
        source: CalendarSource,
        state: SyncState,
        full: bool,
        owner: str,
        horizon: Horizon,
        outcome: SyncOutcome,
    ) -> int:
        """Store every page of one pass; the generation the commit records."""
        if not full:
            run = _Pass(calendar, state.generation, horizon, full=False)
            try:
                self._apply_all(run, source.changes(state.cursor, {}, horizon), outcome)
                return run.generation
            except CursorRejected:
                logger.info("cursor rejected: full resync", extra={"calendar_id": calendar.calendar_id})
        generation = state.generation + 1
        self.state.begin_full(calendar.calendar_id, owner, generation)
        outcome.full = True
        run = _Pass(calendar, generation, horizon, full=True)
        run.entries = {e.key: e for e in self.state.list_resources(calendar.calendar_id)}
        known = {k: e.etag for k, e in run.entries.items() if e.etag and not self._stale(e, horizon)}
        self._apply_all(run, source.changes(None, known, horizon), outcome)
        self._sweep(run, outcome)
        return generation

    def _stale(self, entry: ResourceEntry, horizon: Horizon) -> bool:
        """A recurring resource expanded for a horizon that has since moved on by a day or more."""
        if not entry.recurring:
            return False
        return entry.horizon_end is None or entry.horizon_end <= horizon.end - self.reexpand_after

    def _apply_all(self, run: _Pass, pages: Iterable[Page], outcome: SyncOutcome) -> None:
        for page in pages:
            outcome.pages += 1
            for change in page:
                self._apply(run, change, outcome)

    def _apply(self, run: _Pass, change: ResourceChange, outcome: SyncOutcome) -> None:
        cal_id = run.calendar.calendar_id
        for error in change.errors:
            logger.warning(
                "a VEVENT could not be read; the rest is synced",
                extra={"calendar_id": cal_id, "resource": change.key, "error": error},
            )
            outcome.errors.append(f"{change.key}: {error}")
        if change.unchanged:
            run.seen.add(change.key)
            outcome.skipped += 1
            return
        old = run.entries.get(change.key) if run.full else self.state.get_resource(cal_id, change.key)
        if change.deleted:
            if old is not None:
                self._delete_resource(cal_id, old)
                outcome.deleted += 1
            run.entries.pop(change.key, None)
            return
        run.seen.add(change.key)
        outcome.occurrences += self._store_resource(run, change, old)
        outcome.stored += 1

    def _store_resource(self, run: _Pass, change: ResourceChange, old: ResourceEntry | None) -> int:
        cal_id = run.calendar.calendar_id
        by_id: dict[str, Occurrence] = {occ.id: occ for occ in change.occurrences}
        new_ids = sorted(by_id)
        old_ids = set(old.occ_ids) if old else set()
        recurring = any(occ.recurring for occ in by_id.values())
        if not set(new_ids) <= old_ids:
            # first list what may be stored (etag unknown: a full pass fetches it again), so that a
            # worker dying now leaves no occurrence that no index entry knows of
            self.state.put_resource(
                cal_id,
                ResourceEntry(
                    key=change.key,
                    etag="",
                    generation=old.generation if old else 0,
                    occ_ids=sorted(old_ids | set(new_ids)),
                    recurring=recurring or bool(old and old.recurring),
                    horizon_end=old.horizon_end if old else None,
                ),
            )
        written = self.repository.store_occurrences(run.calendar, list(by_id.values()))
        for occ_id in sorted(old_ids - set(new_ids)):
            self.repository.delete_occurrence(cal_id, occ_id)
        self.state.put_resource(
            cal_id,
            ResourceEntry(
                key=change.key,
                etag=change.etag,
                generation=run.generation,
                occ_ids=new_ids,
                recurring=recurring,
                horizon_end=run.horizon.end,
            ),
        )
        return written

    def _delete_resource(self, calendar_id: str, entry: ResourceEntry) -> None:
        for occ_id in entry.occ_ids:
            self.repository.delete_occurrence(calendar_id, occ_id)
        self.state.delete_resource(calendar_id, entry.key)

    def _sweep(self, run: _Pass, outcome: SyncOutcome) -> None:
        """After a full listing: what is of an older generation and was not listed is gone."""
        cal_id = run.calendar.calendar_id
        for entry in list(self.state.list_resources(cal_id)):
            if entry.generation < run.generation and entry.key not in run.seen:
                self._delete_resource(cal_id, entry)
                outcome.deleted += 1
