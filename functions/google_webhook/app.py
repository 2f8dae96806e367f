"""Google push webhook: ``POST /v1/webhooks/google`` (no JWT; Google's channel token, X2).

Thin and SDK-free (no Google client is imported): Powertools routes, ``calsync.api.google_webhook``
decides from the headers and one GetItem, drops replays and coalesces bursts (two conditional
writes), and a sync job goes on the Google sync queue. It answers at once; the sync runs in the
sync function.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from calsync.api.google_webhook import handle
from calsync.api.http import APIGatewayHttpResolver, Response
from calsync.config import get_settings
from calsync.store.channels import ChannelStore
from calsync.sync.jobs import enqueue_sync

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service="calsync")
metrics = Metrics(namespace="calsync", service="google-webhook")
app = APIGatewayHttpResolver()
_overrides: dict[str, Any] = {}


def utc_now() -> datetime:
    return datetime.now(UTC)


clock: Callable[[], datetime] = utc_now  # tests freeze it


def set_dependencies(**overrides: Any) -> None:
    """Tests: ``table``, ``sqs``, ``queue_url``; no arguments restores the defaults."""
    _overrides.clear()
    _overrides.update(overrides)
    _channels.cache_clear()
    _sqs.cache_clear()


@functools.cache
def _channels() -> ChannelStore:
    table = _overrides.get("table")
    if table is None:
        table = boto3.resource("dynamodb").Table(get_settings().table_name)
    return ChannelStore(table)


@functools.cache
def _sqs() -> Any:
    if "sqs" in _overrides:
        return _overrides["sqs"]

    return boto3.client("sqs")


def _queue_url() -> str:
    return str(_overrides.get("queue_url") or os.environ.get("GOOGLE_SYNC_QUEUE_URL", ""))


def _empty(status: int) -> Response[None]:
    return Response(status_code=status, content_type=None, body=None)


# API.md "Webhooks": no bearer token (Google's channel token, X2); answers carry no body
@app.post(
    "/v1/webhooks/google",
    summary="Google push notification (X-Goog-Channel-ID, X-Goog-Channel-Token, X-Goog-Resource-ID, ...)",
    responses={
        200: {
            "description": "Taken (a sync is queued), or an unknown or stopped channel: dropped",
            "content": {},
        },
        400: {
            "description": "X-Goog-Message-Number is missing or not a number: nothing queued",
            "content": {},
        },
        401: {
            "description": "The channel token or resource id is not the channel's: nothing queued",
            "content": {},
        },
        503: {
            "description": "The channel could not be read or the sync not queued: Google retries",
            "content": {},
        },
    },
)
def google_push() -> Response[None]:
    headers = {str(k).lower(): v for k, v in (app.current_event.headers or {}).items()}
    decision = handle(
        headers,
        _channels(),
        lambda job, dedup_id: enqueue_sync(_sqs(), _queue_url(), job, dedup_id=dedup_id),
        clock(),
    )
    metrics.add_metric(name=f"GooglePush_{decision.outcome}", unit=MetricUnit.Count, value=1)
    if decision.status != 200:
        logger.warning("google notification refused", extra={"outcome": decision.outcome})
    return _empty(decision.status)


@app.exception_handler(Exception)
def _failed(exc: Exception) -> Response[None]:
    # never a 5xx for bad input; a store/queue outage is a 503 so Google retries with backoff
    logger.exception("google webhook failed")
    return _empty(503)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
