"""Google push webhook: ``POST /v1/webhooks/google`` (no JWT; Google's channel token, X2).

Thin and SDK-free (no Google client is imported): Powertools routes, ``calsync.api.google_webhook``
decides from the headers and one GetItem, and a sync job goes on the Google sync queue. It answers
at once; the sync runs in the sync function.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.metrics import MetricUnit

from calsync.api.google_webhook import decide
from calsync.config import get_settings
from calsync.store.channels import ChannelStore
from calsync.sync.jobs import enqueue_sync

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service="calsync")
metrics = Metrics(namespace="calsync", service="google-webhook")
app = APIGatewayHttpResolver()
_overrides: dict[str, Any] = {}


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


@app.post("/v1/webhooks/google")
def google_push() -> Response[None]:
    headers = {str(k).lower(): v for k, v in (app.current_event.headers or {}).items()}
    decision = decide(headers, _channels())
    metrics.add_metric(name=f"GooglePush_{decision.outcome}", unit=MetricUnit.Count, value=1)
    if decision.job is not None:
        enqueue_sync(_sqs(), _queue_url(), decision.job)
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
