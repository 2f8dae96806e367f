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

A page is stored in batches (S12): its index entries read with BatchGetItem, its occurrences and
index entries written with BatchWriteItem. Every stored field is bounded (``calsync.domain.limits``);
an event that still cannot be stored, or cannot be read, is skipped, counted and reported, and the
rest syncs (S11). Before each page the time budget is checked (``calsync.sync.budget``): out of
time, the sync stops with its progress in the index and raises ``OutOfTime`` (ADR 0009). A failed
sync records a short reason on the sync state; a successful one clears it (S13).

A sync that fails (an exception from the source or the store) lets go of the lease and leaves the
cursor where it was: the next sync lists the same changes again and stores them again, which is
harmless (upserts are idempotent, and the index lists every occurrence that may have been stored).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime, time, timedelta
from typing import Literal

from aws_lambda_powertools.metrics import MetricUnit

from calsync.domain.limits import MAX_OCCURRENCES_PER_RESOURCE, Unstorable, check_resource_key
from calsync.domain.models import UTC, Occurrence, widest_instants
from calsync.observability import logger, metrics
from calsync.store.items import Calendar
from calsync.store.repository import Repository
from calsync.store.sync_state import ResourceEntry, SyncState, SyncStateStore
from calsync.store.wide import should_widen
from calsync.sync import budget as budgets
from calsync.sync.budget import LambdaBudget, OutOfTime
from calsync.sync.failures import describe
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
    unstorable: list[str] = field(default_factory=list)  # events skipped: why (S11)

    @property
    def skipped_events(self) -> int:
        """S11: events of this sync that could not be read or stored (reported on the calendar)."""
        return len(self.errors) + len(self.unstorable)


@dataclass(slots=True)
class _Pass:
    calendar: Calendar
    generation: int
    horizon: Horizon
    full: bool
    entries: dict[str, ResourceEntry] = field(default_factory=dict)  # full passes: the index
    seen: set[str] = field(default_factory=set)
    budget: LambdaBudget | None = None


@dataclass(frozen=True, slots=True)
class _Plan:
    """What storing one changed resource writes."""

    change: ResourceChange
    occurrences: list[Occurrence]
    listing: ResourceEntry | None  # the index entry written before the occurrences, if new ones
    entry: ResourceEntry  # the index entry written after them
    obsolete: list[str]  # occurrence ids the resource no longer has


@dataclass(eq=False)
class SyncEngine:
    repository: Repository
    state: SyncStateStore
    _: KW_ONLY
    lease_ttl: timedelta = LEASE_TTL
    reconcile_after: timedelta = RECONCILE_AFTER
    reexpand_after: timedelta = REEXPAND_AFTER
    max_occurrences: int = MAX_OCCURRENCES_PER_RESOURCE  # S11's bound per resource

    # ---- one sync ------------------------------------------------------------------------------
    def sync(
        self,
        calendar: Calendar,
        source: CalendarSource,
        *,
        now: datetime,
        full: bool = False,
        horizon: Horizon | None = None,
        budget: LambdaBudget | None = None,
    ) -> SyncOutcome:
        """One sync (see the module docstring). ``budget`` (default: the queue worker's current
        one): ``OutOfTime`` when it runs out, between two pages, with the progress stored (S12).
        A failure is recorded on the calendar's sync state (S13) before it goes up."""
        try:
            return self._sync(calendar, source, now=now, full=full, horizon=horizon, budget=budget)
        except OutOfTime:
            raise
        except Exception as exc:  # S13: shown on the calendar and its account until a sync succeeds
            with contextlib.suppress(Exception):
                self.state.record_failure(calendar.calendar_id, now, *describe(exc))
            raise

    def _sync(
        self,
        calendar: Calendar,
        source: CalendarSource,
        *,
        now: datetime,
        full: bool,
        horizon: Horizon | None,
        budget: LambdaBudget | None,
    ) -> SyncOutcome:
        cal_id = calendar.calendar_id
        horizon = horizon or default_horizon(now)
        budget = budget or budgets.current()
        if budget is not None and budget.exhausted():
            raise OutOfTime("no time left to start")
        state = self.state.get(cal_id)
        if state.leased(now):
            self.state.mark_dirty(cal_id)
            return SyncOutcome("busy")
        if (
            not self._must_run(state, full, now)
            and state.cursor is not None
            and not source.may_have_changed(state.cursor)
        ):
            if state.last_error:  # the provider answered: the last failure is over (S13)
                self.state.clear_failure(cal_id)
            return SyncOutcome("unchanged")

        owner = uuid.uuid4().hex
        leased = self.state.acquire(cal_id, owner, now, self.lease_ttl)
        if leased is None:  # another worker took it since we looked
            self.state.mark_dirty(cal_id)
            return SyncOutcome("busy")
        outcome = SyncOutcome("synced")
        try:
            state = leased
            # under the lease: a widening cut short goes on (0021)
            if should_widen(calendar, self.repository.wide_threshold):
                widened = self.repository.widen(
                    cal_id, in_time=lambda: budget is None or not budget.exhausted()
                )
                if widened is not None and widened.missing:  # no copy to widen from: fetch it all
                    self.state.forget_etags(cal_id)
                    full = True
                calendar = self.repository.get_calendar(cal_id) or calendar
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
                    budget=budget,
                )
                if self.state.commit(
                    cal_id,
                    owner,
                    cursor=source.next_cursor,
                    generation=generation,
                    now=now,
                    full=outcome.full,
                    seen_dirty=seen_dirty,
                    skipped=outcome.skipped_events,
                ):
                    if outcome.skipped_events:
                        metrics.add_metric(
                            name="SyncEventsSkipped", unit=MetricUnit.Count, value=outcome.skipped_events
                        )
                    self._fill_newcomers(calendar, budget)
                    return outcome
                # a job arrived during the pass (S6): the cursor is stored, sync once more
                logger.info("calendar changed during its sync: syncing again", extra={"calendar_id": cal_id})
                state, full = self.state.get(cal_id), False
            self.state.release(cal_id, owner)  # still dirty: the next job syncs again
            return outcome
        except BaseException as exc:
            with contextlib.suppress(Exception):
                self.state.release(cal_id, owner)
            if isinstance(exc, OutOfTime):
                exc.outcome = outcome
            raise

    def _fill_newcomers(self, calendar: Calendar, budget: LambdaBudget | None) -> None:
        """R8: a subscriber added while this sync ran (a room registered during the calendar's
        first sync) was filled from the store as it was then, and the pages stored since went to
        the subscribers this sync started with. Fill the newcomers from the store now; what they
        already have is left alone. Where the store cannot fill them, the next full pass fetches
        everything again (as ``CalendarSync.fill`` does)."""
        current = self.repository.get_calendar(calendar.calendar_id)
        if current is None:
            return
        for pk, role in current.subscribers.items():
            if pk in calendar.subscribers:
                continue
            done = self.repository.backfill(
                current, pk, role, in_time=lambda: budget is None or not budget.exhausted()
            )
            if not done.complete:
                self.state.forget_etags(calendar.calendar_id)
            logger.info(
                "subscriber added during the sync filled from the store",
                extra={"calendar_id": calendar.calendar_id, "owner": pk, "copied": done.copied},
            )

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
        budget: LambdaBudget | None,
    ) -> int:
        """Store every page of one pass; the generation the commit records."""
        if not full:
            run = _Pass(calendar, state.generation, horizon, full=False, budget=budget)
            try:
                self._apply_all(run, source.changes(state.cursor, {}, horizon), outcome)
                return run.generation
            except CursorRejected:
                logger.info("cursor rejected: full resync", extra={"calendar_id": calendar.calendar_id})
        generation = state.generation + 1
        self.state.begin_full(calendar.calendar_id, owner, generation)
        outcome.full = True
        run = _Pass(calendar, generation, horizon, full=True, budget=budget)
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
        iterator = iter(pages)
        while True:
            if run.budget is not None and run.budget.exhausted():
                # S12: stop between two pages; every stored resource's index entry has its etag, so
                # the next invocation's listing skips them (and a full pass's generation is recorded)
                logger.info(
                    "time budget spent: the sync continues in the next invocation",
                    extra={"calendar_id": run.calendar.calendar_id, "pages": outcome.pages},
                )
                raise OutOfTime(f"stopped after {outcome.pages} page(s)")
            page = next(iterator, None)
            if page is None:
                return
            outcome.pages += 1
            self._apply_page(run, page, outcome)

    def _apply_page(self, run: _Pass, page: Page, outcome: SyncOutcome) -> None:
        """One page: the index entries read in one batch, the occurrences written in batches, the
        index entries written in one batch (the pre-listing first, so that a worker dying half-way
        leaves no occurrence that no index entry knows of)."""
        cal_id = run.calendar.calendar_id
        todo: list[ResourceChange] = []
        for change in page:
            for raw in change.errors:
                error = raw if len(raw) <= 300 else raw[:297] + "..."  # a provider's text
                logger.warning(
                    "a VEVENT could not be read; the rest is synced",
                    extra={"calendar_id": cal_id, "resource": _short(change.key), "error": error},
                )
                outcome.errors.append(f"{_short(change.key)}: {error}")
            if change.unchanged:
                run.seen.add(change.key)
                outcome.skipped += 1
                continue
            try:
                check_resource_key(change.key)
            except Unstorable as exc:
                self._skip(run, change, exc, outcome)
                continue
            todo.append(change)
        if not todo:
            return
        olds = (
            {c.key: run.entries[c.key] for c in todo if c.key in run.entries}
            if run.full
            else self.state.get_resources(cal_id, [c.key for c in todo])
        )
        gone: list[ResourceEntry] = []
        plans: list[_Plan] = []
        for change in todo:
            old = olds.get(change.key)
            if change.deleted:
                if old is not None:
                    gone.append(old)
                run.entries.pop(change.key, None)
                continue
            run.seen.add(change.key)
            if (
                not run.full
                and old is not None
                and old.etag
                and old.etag == change.etag
                and not self._stale(old, run.horizon)
            ):
                outcome.skipped += 1  # already stored (a pass that ran out of time lists it again)
                continue
            plans.append(self._plan(run, change, old))
        # first list what may be stored (etag unknown: a full pass fetches it again)
        self.state.write_resources(cal_id, [p.listing for p in plans if p.listing is not None])
        stored = self._store_plans(run, plans, outcome)
        # an occurrence can move from one resource to another (the same UID under a new href): what
        # another resource of the page stored is not obsolete
        kept = {i for p in stored for i in p.entry.occ_ids}
        obsolete = [i for p in stored for i in p.obsolete] + [i for e in gone for i in e.occ_ids]
        self.repository.delete_occurrences(cal_id, [i for i in obsolete if i not in kept])
        self.state.write_resources(cal_id, [p.entry for p in stored], delete=[e.key for e in gone])
        outcome.deleted += len(gone)
        outcome.stored += len(stored)

    def _plan(self, run: _Pass, change: ResourceChange, old: ResourceEntry | None) -> _Plan:
        by_id: dict[str, Occurrence] = {occ.id: occ for occ in change.occurrences}
        occurrences = sorted(by_id.values(), key=lambda o: (widest_instants(o)[0], o.id))
        if len(occurrences) > self.max_occurrences:
            logger.warning(
                "an event has too many occurrences in the horizon: the first ones are stored",
                extra={
                    "calendar_id": run.calendar.calendar_id,
                    "resource": _short(change.key),
                    "occurrences": len(occurrences),
                    "stored": self.max_occurrences,
                },
            )
            occurrences = occurrences[: self.max_occurrences]
        new_ids = sorted(o.id for o in occurrences)
        old_ids = set(old.occ_ids) if old else set()
        # re-read once the horizon moved: a series, or a resource whose occurrences lie after it
        recurring = change.later or any(occ.recurring for occ in occurrences)
        listing = None
        if not set(new_ids) <= old_ids:
            listing = ResourceEntry(
                key=change.key,
                etag="",
                generation=old.generation if old else 0,
                occ_ids=sorted(old_ids | set(new_ids)),
                recurring=recurring or bool(old and old.recurring),
                horizon_end=old.horizon_end if old else None,
            )
        entry = ResourceEntry(
            key=change.key,
            etag=change.etag,
            generation=run.generation,
            occ_ids=new_ids,
            recurring=recurring,
            horizon_end=run.horizon.end,
        )
        return _Plan(change, occurrences, listing, entry, sorted(old_ids - set(new_ids)))

    def _store_plans(self, run: _Pass, plans: list[_Plan], outcome: SyncOutcome) -> list[_Plan]:
        """Store the occurrences of a page in one batch; when one of them cannot be stored, each
        resource on its own, skipping (and reporting) those that cannot (S11). The plans stored."""
        span = (run.horizon.start, run.horizon.end)
        try:
            outcome.occurrences += self.repository.store_occurrences(
                run.calendar, [o for p in plans for o in p.occurrences], span=span
            )
            return plans
        except Unstorable:
            pass
        stored: list[_Plan] = []
        for plan in plans:
            try:
                outcome.occurrences += self.repository.store_occurrences(
                    run.calendar, plan.occurrences, span=span
                )
                stored.append(plan)
            except Unstorable as exc:
                self._skip(run, plan.change, exc, outcome)
        return stored

    def _skip(self, run: _Pass, change: ResourceChange, exc: Unstorable, outcome: SyncOutcome) -> None:
        """S11: an event that cannot be stored is skipped, counted and reported; the rest syncs.
        It counts as listed (a full pass does not sweep what it stored before)."""
        run.seen.add(change.key)
        outcome.unstorable.append(exc.reason)
        logger.warning(
            "an event cannot be stored: skipped, the rest of the calendar syncs",
            extra={
                "calendar_id": run.calendar.calendar_id,
                "resource": _short(change.key),
                "why": exc.reason,
            },
        )

    def _sweep(self, run: _Pass, outcome: SyncOutcome) -> None:
        """After a full listing: what is of an older generation and was not listed is gone."""
        cal_id = run.calendar.calendar_id
        gone = [
            e
            for e in self.state.list_resources(cal_id)
            if e.generation < run.generation and e.key not in run.seen
        ]
        self.repository.delete_occurrences(cal_id, [i for e in gone for i in e.occ_ids])
        self.state.write_resources(cal_id, [], delete=[e.key for e in gone])
        outcome.deleted += len(gone)


def _short(key: str) -> str:
    """A resource key for logs and reports (a hostile server may send a 450 KB href)."""
    return key if len(key) <= 120 else key[:117] + "..."
