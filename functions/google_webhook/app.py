"""Google push webhook: ``POST /v1/webhooks/google`` (no JWT; Google's channel token, X2).

Routes only, SDK-free (no Google client is imported): Powertools routes, ``calsync.api.google_webhook``
decides from the headers and one GetItem, drops replays and coalesces bursts (two conditional
writes), and a sync job goes on the Google sync queue. It answers at once; the sync runs in the
sync function.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from calsync.api.google_webhook import handle
from calsync.api.http import APIGatewayHttpResolver, Response
from calsync.store.channels import ChannelStore
from calsync.sync.jobs import enqueue_sync
from calsync.wiring import Wiring
from calsync.wiring.webhook import WebhookDeps, webhook_deps

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service="calsync")
metrics = Metrics(namespace="calsync", service="google-webhook")
app = APIGatewayHttpResolver()
build = functools.partial(webhook_deps, queue_env="GOOGLE_SYNC_QUEUE_URL")
wiring: Wiring[WebhookDeps] = Wiring(build)  # tests: ``with wiring.use(deps):`` (docs/adr/0023)


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
    deps = wiring()
    headers = {str(k).lower(): v for k, v in (app.current_event.headers or {}).items()}
    decision = handle(
        headers,
        ChannelStore(deps.table),
        lambda job, dedup_id: enqueue_sync(deps.sqs, deps.queue_url, job, dedup_id=dedup_id),
        deps.clock(),
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
