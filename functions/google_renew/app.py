"""Google schedule (S4, S5, R8): renews push channels well before they expire, refreshes each
account's calendar list (a calendar created at Google later becomes selectable), and enqueues every
registered Google calendar (an incremental sync: one ``events.list`` and no write when nothing
changed; the engine makes it a full pass every 12 h — the reconcile that catches what push missed).
The enqueueing is fanned out: one task per shard of the poll registry goes to the PollQueue and
PollShardFunction sends the jobs (``calsync.sync.poll``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit

from calsync.config import get_settings
from calsync.observability import logger, metrics
from calsync.sync.poll import dispatch
from calsync_google.worker import from_environment

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


def utc_now() -> datetime:
    return datetime.now(UTC)


clock: Callable[[], datetime] = utc_now


_overrides: dict[str, Any] = {}


def set_dependencies(**overrides: Any) -> None:
    """Tests: the worker's overrides (``table``, ``kms``, ``key_id``, ``services``, ``webhook_url``…)
    and ``sqs``, ``poll_queue_url``."""
    _overrides.clear()
    _overrides.update(overrides)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    now = clock()
    worker = from_environment(**{k: v for k, v in _overrides.items() if k not in ("sqs", "poll_queue_url")})
    # renewal before the poll: the sync jobs the poll queues would otherwise find a channel that is
    # about to expire and open one of their own at the same time (two watches for one calendar).
    # Then the poll (two SendMessageBatch calls), before the listings that may use the time left.
    renewed = worker.renew(now)
    sqs = _overrides.get("sqs") or boto3.client("sqs")
    queue_url = _overrides.get("poll_queue_url") or get_settings().poll_queue_url
    failed = dispatch(sqs, queue_url, "google", now, adaptive=False)
    if failed:
        logger.error("poll tasks not sent; their shards wait for the next run", extra={"shards": failed})
        metrics.add_metric(name="PollTasksNotSent", unit=MetricUnit.Count, value=len(failed))
    listed = worker.refresh_listings(now, context.get_remaining_time_in_millis)
    logger.info("google schedule", extra={**renewed, **listed, "pollTasksFailed": len(failed)})
    return {**renewed, **listed, "pollTasksFailed": len(failed)}
