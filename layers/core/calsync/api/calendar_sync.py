"""R8: what follows when a calendar gains or loses a subscriber (a room registered or deleted, a
calendar added to or removed from a person's configuration).

- Gained: the store's copies of the calendar are copied into the new subscriber's partition at
  once (``Repository.backfill``, R4 applied as on write); where the store holds no usable copy (a
  person joining a calendar only rooms used, whose private titles were never written), every
  resource's etag is forgotten so that the next full pass fetches it again. Then a sync job goes
  on the provider's queue: the worker registers the calendar for polling (CalDAV, Google) and opens
  its push channel (Google) as for a person's calendar, and the sync brings later changes.
- Lost the last one: a job goes on the provider's queue; the worker finds nobody uses the
  calendar and stops it: sync state, resource index and poll entry are forgotten (and Google's
  push channel stopped). The subscriber's own copies were deleted by ``Repository.unsubscribe``.

The queues are injected per provider (``Enqueue``): the API function and the accounts function
each wire their own (functions/*/app.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from aws_lambda_powertools.metrics import MetricUnit

from calsync.domain.errors import StoreUnavailable
from calsync.domain.models import Provider
from calsync.observability import logger, metrics
from calsync.store.items import Calendar, SubscriberRole
from calsync.store.repository import Backfill
from calsync.store.sync_state import SyncStateStore
from calsync.sync.jobs import Reason, SyncJob

if TYPE_CHECKING:
    from calsync.store.repository import Repository

Enqueue = Callable[[SyncJob], None]


class CalendarSync:
    def __init__(
        self,
        repository: Repository,
        enqueue_for: Mapping[Provider, Enqueue],
        *,
        in_time: Callable[[], bool] = lambda: True,
    ) -> None:
        self._repo = repository
        self._enqueue_for = enqueue_for
        # the caller's time budget (the API function: its Lambda context); a copy that runs out of
        # time leaves the rest to the full sync it queues anyway
        self._in_time = in_time

    def fill(
        self, calendar_id: str, owner_pk: str, role: SubscriberRole, *, restamp: bool = False
    ) -> Backfill:
        """Copy what the store holds of the calendar to ``owner_pk`` (already a subscriber); make
        the next full pass fetch everything again where that is not enough."""
        widened = self._repo.widen(calendar_id, in_time=self._in_time)  # past the threshold: 0021
        calendar = self._repo.get_calendar(calendar_id)
        if calendar is None:
            return Backfill()
        done = self._repo.backfill(calendar, owner_pk, role, restamp=restamp, in_time=self._in_time)
        if widened is not None and widened.missing:
            done.missing += widened.missing
        if not done.complete:
            SyncStateStore(self._repo.table).forget_etags(calendar_id)
        logger.info(
            "new subscriber filled from the store",
            extra={
                "calendar_id": calendar_id,
                "owner": owner_pk,
                "copied": done.copied,
                "missing": done.missing,
                "incomplete": done.incomplete,
            },
        )
        return done

    def subscribed(self, calendar_id: str, owner_pk: str, role: SubscriberRole, reason: Reason) -> Backfill:
        """``owner_pk`` was just subscribed: fill it, and start (or keep) the calendar's sync."""
        done = self.fill(calendar_id, owner_pk, role)
        calendar = self._repo.get_calendar(calendar_id)
        if calendar is not None:
            self.enqueue(calendar, reason)
        return done

    def unsubscribed(self, calendar_id: str) -> bool:
        """A subscriber was removed: when nobody is left, ask the provider's worker to stop the
        calendar's sync. True when it was asked."""
        calendar = self._repo.get_calendar(calendar_id)
        if calendar is None or calendar.subscribers:
            return False
        self.enqueue(calendar, "config")
        return True

    def enqueue(self, calendar: Calendar, reason: Reason) -> None:
        """A full sync job for the calendar on its provider's queue (full: the calendar may be
        unchanged at the provider, ctag, but new to a subscriber)."""
        enqueue = self._enqueue_for.get(calendar.provider)
        extra = {"calendar_id": calendar.calendar_id, "provider": calendar.provider.value, "reason": reason}
        if enqueue is None:
            logger.error("no sync queue for this provider: the calendar is not synced", extra=extra)
            _count_not_started()
            return
        job = SyncJob(
            calendar_id=calendar.calendar_id,
            user_id=calendar.owner_user_id,
            account_id=calendar.account_id,
            reason=reason,
            full=True,
        )
        try:
            enqueue(job)
        except Exception as exc:
            logger.exception("sync job not sent", extra={**extra, "error_type": type(exc).__name__})
            _count_not_started()
            raise StoreUnavailable("the calendar's sync could not be started: try again") from exc


def _count_not_started() -> None:
    """One metric, sent now (the HTTP functions do not flush metrics at the end of a request)."""
    metrics.add_metric(name="SyncNotStarted", unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()
