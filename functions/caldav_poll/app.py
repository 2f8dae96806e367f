"""CalDAV poll schedule (rate 5 minutes): enqueue every registered CalDAV calendar (S3), a full
ETag comparison for the calendars in their reconcile slot (S5). See ``calsync.sync.poll``.

Thin, and free of the CalDAV layer: it only reads the poll registry and sends SQS messages.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source

from calsync.config import get_settings
from calsync.observability import logger, metrics
from calsync.store.sync_state import SyncStateStore
from calsync.sync.poll import poll

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

PROVIDER = "caldav"


def utc_now() -> datetime:
    return datetime.now(UTC)


clock: Callable[[], datetime] = utc_now  # tests freeze it
_overrides: dict[str, Any] = {}


def set_dependencies(**overrides: Any) -> None:
    """Tests: ``table``, ``sqs``, ``queue_url``; no arguments restores the defaults."""
    _overrides.clear()
    _overrides.update(overrides)
    _state.cache_clear()


@functools.cache
def _state() -> SyncStateStore:
    table = _overrides.get("table")
    return SyncStateStore(table or boto3.resource("dynamodb").Table(get_settings().table_name))


def _sqs() -> Any:
    if "sqs" in _overrides:
        return _overrides["sqs"]

    return boto3.client("sqs")


@logger.inject_lambda_context
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    queue_url = str(_overrides.get("queue_url") or get_settings().caldav_sync_queue_url)
    summary = poll(_state(), _sqs(), queue_url, PROVIDER, clock())
    if summary.failed:
        logger.warning("jobs not sent; the next poll sends them", extra={"calendars": summary.failed})
    logger.info("poll done", extra={"enqueued": summary.enqueued, "reconciles": summary.reconciles})
    metrics.add_metric(name="CaldavPollEnqueued", unit=MetricUnit.Count, value=summary.enqueued)
    metrics.add_metric(name="CaldavPollReconciles", unit=MetricUnit.Count, value=summary.reconciles)
    return {"enqueued": summary.enqueued, "reconciles": summary.reconciles, "failed": len(summary.failed)}
