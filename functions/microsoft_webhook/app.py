"""Microsoft Graph webhooks (S2, X2): ``POST /v1/webhooks/microsoft`` (change notifications) and
``POST /v1/webhooks/microsoft/lifecycle`` (lifecycle notifications). Auth NONE at API Gateway: each
notification is authenticated by its subscription's ``clientState``.

Routes only: ``calsync_microsoft.webhook`` decides and queues one mailbox job per affected mailbox,
``calsync.wiring.webhook`` builds what it works with (docs/adr/0023; AWS clients with short
timeouts: Graph's budget is 3 s). Imports no msal (nor requests).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics

from calsync.api.http import APIGatewayHttpResolver, Response
from calsync.domain.errors import StoreUnavailable
from calsync.wiring import Wiring
from calsync.wiring.webhook import WebhookDeps, webhook_deps
from calsync_microsoft import webhook

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service="calsync")
metrics = Metrics(namespace="calsync", service="microsoft-webhook")
app = APIGatewayHttpResolver()
build = functools.partial(
    webhook_deps, queue_env="MICROSOFT_SYNC_QUEUE_URL", client_config=webhook.FAST_CLIENT_CONFIG
)
wiring: Wiring[WebhookDeps] = Wiring(build)  # tests: ``with wiring.use(deps):``


@app.post(
    "/v1/webhooks/microsoft",
    summary="Graph change notifications, or the validation handshake",
    responses=webhook.ANSWERS,
)
def notifications() -> Response[str]:
    return webhook.handle(app.current_event, False, wiring(), metrics)


@app.post(
    "/v1/webhooks/microsoft/lifecycle",
    summary="Graph lifecycle notifications, or the validation handshake",
    responses=webhook.ANSWERS,
)
def lifecycle_notifications() -> Response[str]:
    return webhook.handle(app.current_event, True, wiring(), metrics)


@app.exception_handler(Exception)
def _unexpected(exc: Exception) -> Response[str]:
    if isinstance(exc, StoreUnavailable):
        return webhook.problem(503, "busy; try again")
    logger.exception("webhook failed")
    return webhook.problem(503, "the notification could not be handled; try again")


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
