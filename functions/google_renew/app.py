"""Google schedule (S4, S5, R8): renews push channels well before they expire, refreshes each
account's calendar list (a calendar created at Google later becomes selectable), then enqueues every
registered Google calendar (an incremental sync: one ``events.list`` and no write when nothing
changed; the engine makes it a full pass every 12 h — the reconcile that catches what push missed).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3

from calsync.observability import logger, metrics
from calsync.store.sync_state import SyncStateStore
from calsync.sync.poll import poll
from calsync_google.settings import get_google_settings
from calsync_google.worker import from_environment

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


def utc_now() -> datetime:
    return datetime.now(UTC)


clock: Callable[[], datetime] = utc_now


_overrides: dict[str, Any] = {}


def set_dependencies(**overrides: Any) -> None:
    """Tests: the worker's overrides (``table``, ``kms``, ``key_id``, ``services``, ``webhook_url``…)
    and ``sqs``, ``queue_url``."""
    _overrides.clear()
    _overrides.update(overrides)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    now = clock()
    worker = from_environment(**{k: v for k, v in _overrides.items() if k not in ("sqs", "queue_url")})
    renewed = worker.renew(now)
    listed = worker.refresh_listings(now, context.get_remaining_time_in_millis)
    sqs = _overrides.get("sqs") or boto3.client("sqs")
    queue_url = _overrides.get("queue_url") or get_google_settings().sync_queue_url
    summary = poll(SyncStateStore(worker.table), sqs, queue_url, "google", now)
    logger.info("google schedule", extra={**renewed, **listed, "enqueued": summary.enqueued})
    return {**renewed, **listed, "enqueued": summary.enqueued, "failed": len(summary.failed)}
