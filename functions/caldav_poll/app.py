"""CalDAV poll schedule (rate 5 minutes): dispatch the poll (S3, S5), one task per shard of the poll
registry to the PollQueue; PollShardFunction runs them in parallel (``calsync.sync.poll``).

Thin: it reads nothing and sends two SendMessageBatch calls.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source

from calsync.config import get_settings
from calsync.observability import logger, metrics
from calsync.store.keys import POLL_SHARDS
from calsync.sync.poll import dispatch

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

PROVIDER = "caldav"


def utc_now() -> datetime:
    return datetime.now(UTC)


clock: Callable[[], datetime] = utc_now  # tests freeze it
_overrides: dict[str, Any] = {}


def set_dependencies(**overrides: Any) -> None:
    """Tests: ``sqs``, ``poll_queue_url``; no arguments restores the defaults."""
    _overrides.clear()
    _overrides.update(overrides)


def _sqs() -> Any:
    if "sqs" in _overrides:
        return _overrides["sqs"]
    return boto3.client("sqs")


@logger.inject_lambda_context
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    queue_url = str(_overrides.get("poll_queue_url") or get_settings().poll_queue_url)
    failed = dispatch(_sqs(), queue_url, PROVIDER, clock(), adaptive=True)
    if failed:
        logger.error("poll tasks not sent; their shards wait for the next run", extra={"shards": failed})
        metrics.add_metric(name="PollTasksNotSent", unit=MetricUnit.Count, value=len(failed))
    logger.info("poll dispatched", extra={"shards": POLL_SHARDS - len(failed)})
    return {"dispatched": POLL_SHARDS - len(failed), "failed": len(failed)}
