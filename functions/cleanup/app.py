"""Cleanup of ended events (rule S9), run by an EventBridge schedule.

Deletes every stored occurrence copy (and occurrence index entry) that ended more than 61 minutes
ago, through the hour buckets of the KEYS_ONLY index gsi1 (never a Scan): see
docs/cleanup-scaling.md. A cursor remembers the first hour that still has to be read; it is set to
the start of the hour of ``now - 61 min``, so the partial hour is read again on the next run.
DynamoDB's TTL (expiresAt) is only a backstop; reads never rely on either having run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from calsync.config import get_settings
from calsync.domain.models import UTC
from calsync.observability import logger, metrics
from calsync.store.repository import ENDED_GRACE, Repository

DEFAULT_LOOKBACK = timedelta(hours=48)  # how far back the first run (no cursor yet) looks


def utc_now() -> datetime:
    return datetime.now(UTC)


# The clock and the repository are looked up at call time, so tests can replace them.
clock: Callable[[], datetime] = utc_now


@lru_cache(maxsize=1)
def repository() -> Repository:
    return Repository(boto3.resource("dynamodb").Table(get_settings().table_name))


def next_cursor(now: datetime) -> datetime:
    """The start of the hour of ``now - 61 min``: that hour may still receive ended events."""
    return (now.astimezone(UTC) - ENDED_GRACE).replace(minute=0, second=0, microsecond=0)


def clean(repo: Repository, now: datetime) -> int:
    """Delete what ended in [cursor, now - 61 min); move the cursor. Returns the items deleted."""
    since = repo.get_cleanup_cursor() or now.astimezone(UTC) - DEFAULT_LOOKBACK
    deleted = repo.delete_ended(now, since)
    repo.set_cleanup_cursor(next_cursor(now))
    logger.info("cleanup done", extra={"since": since.isoformat(), "deleted": deleted})
    return deleted


@logger.inject_lambda_context
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    logger.debug("scheduled run", extra={"scheduled_time": event.get("time")})
    deleted = clean(repository(), clock())
    metrics.add_metric(name="EndedItemsDeleted", unit=MetricUnit.Count, value=deleted)
    return {"deleted": deleted}
