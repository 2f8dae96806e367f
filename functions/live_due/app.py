"""The live channel's time-driven changes (issue 15, docs/adr/0018), run every minute by a schedule.

A person's presence changes by itself when a meeting starts or ends ("in a meeting until") or their
last session expires (offline); their meetings answer when a meeting leaves it or at midnight. The
instants are written down ahead in per-minute buckets (``calsync.store.due``); each run reads the
"look again" bucket and the buckets of the minutes gone by since the last run (a cursor), and for
each person due compares their answers just before the instant with now (``PresenceService.
time_driven``): what changed is published (one version bump; the presence event carries the
answer), and the next instant is written down. Nothing due: one Query per bucket, nothing published.

Bounded: pages of ``PAGE`` people, and no new person once the invocation's time budget is spent
(``calsync.sync.budget``: a quarter of it kept); the rest stays in its bucket, where the next run
(reserved concurrency 1: never two at once) starts, the cursor not having moved past it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from calsync.api.presence_service import PresenceService
from calsync.config import get_presence_settings, get_settings
from calsync.domain.errors import CalsyncError
from calsync.observability import logger, metrics
from calsync.store import due as dues
from calsync.store.presence import PresenceRepository
from calsync.store.repository import Repository
from calsync.sync import budget as budgets

PAGE = 100
FIRST_LOOKBACK = timedelta(minutes=5)  # the first run (no cursor yet) reads this far back


def utc_now() -> datetime:
    return datetime.now(UTC)


clock: Callable[[], datetime] = utc_now  # tests freeze it
_overrides: dict[str, Any] = {}


def set_dependencies(**overrides: Any) -> None:
    """Tests: ``table``; no arguments restores the default (TABLE_NAME)."""
    _overrides.clear()
    _overrides.update(overrides)
    _parts.cache_clear()


@functools.cache
def _parts() -> tuple[dues.DueStore, PresenceService]:
    table = _overrides.get("table") or boto3.resource("dynamodb").Table(get_settings().table_name)
    store = dues.DueStore(table)
    lifetime = timedelta(seconds=get_presence_settings().session_ttl_seconds)
    service = PresenceService(
        Repository(table), PresenceRepository(table), session_lifetime=lifetime, due=store
    )
    return store, service


@dataclass
class Run:
    people: int = 0
    presence: int = 0  # presence events published (one per changed person, on each of their locations)
    meetings: int = 0
    failed: int = 0
    finished: bool = True  # False: the budget ran out; the rest waits in its bucket


def run(
    store: dues.DueStore,
    service: PresenceService,
    now: datetime,
    in_time: Callable[[], bool] = lambda: True,
) -> Run:
    """Handle the people due by ``now``: "look again" first, then each minute's bucket up to now's."""
    out = Run()
    last = dues.floor_minute(now)
    minute = store.cursor() or last - FIRST_LOOKBACK
    if not _bucket(store, service, dues.SOON, now, in_time, out):
        return out
    while minute <= last:
        if not _bucket(store, service, dues.bucket_pk(minute), now, in_time, out):
            break
        minute += dues.MINUTE
        store.set_cursor(minute)
    return out


def _bucket(  # noqa: PLR0917 - private, one call site per kind of bucket
    store: dues.DueStore,
    service: PresenceService,
    pk: str,
    now: datetime,
    in_time: Callable[[], bool],
    out: Run,
) -> bool:
    """Handle one bucket to its end; ``False`` when the budget ran out first."""
    while True:
        page = store.page(pk, PAGE)
        for item in page:
            if not in_time():
                out.finished = False
                return False
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
            store.done(pk, item.user_id)
        if len(page) < PAGE:
            return True


@logger.inject_lambda_context
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    budget = budgets.LambdaBudget.of(context)
    store, service = _parts()
    done = run(store, service, clock(), in_time=lambda: not budget.exhausted())
    logger.info(
        "time-driven changes published",
        extra={"scheduled_time": event.get("time"), **done.__dict__},
    )
    metrics.add_metric(name="TimeDrivenPresence", unit=MetricUnit.Count, value=done.presence)
    metrics.add_metric(name="TimeDrivenMeetings", unit=MetricUnit.Count, value=done.meetings)
    if done.failed:
        metrics.add_metric(name="TimeDrivenFailed", unit=MetricUnit.Count, value=done.failed)
    if not done.finished:
        logger.warning("time budget spent: the rest waits for the next run", extra={"people": done.people})
        metrics.add_metric(name="TimeDrivenBehind", unit=MetricUnit.Count, value=1)
    return {k: v for k, v in done.__dict__.items()}
