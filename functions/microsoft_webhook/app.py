"""Microsoft Graph webhooks (S2, X2): ``POST /v1/webhooks/microsoft`` (change notifications) and
``POST /v1/webhooks/microsoft/lifecycle`` (lifecycle notifications). Auth NONE at API Gateway: each
notification is authenticated by its subscription's ``clientState``.

- ``?validationToken=…``: the handshake Graph sends when a subscription is created: 200,
  ``text/plain``, the decoded token and nothing else (``nosniff``: a token with markup is never
  rendered as HTML).
- A notification collection: the distinct subscription ids are read together (BatchGetItem, 100
  per request: at most 10 requests for the ``MAX_ITEMS`` a collection may hold, however many ids it
  names) and each item's ``clientState`` compared in constant time (hashes,
  ``hmac.compare_digest``); a wrong or missing one drops the item and is counted. An item of a
  subscription calsync does not know (one left at Graph by a disconnect whose DELETE failed) is
  dropped and answered 2xx: Graph retries every non-2xx delivery for up to 4 hours
  (docs/providers/microsoft.md M13). One mailbox job per affected mailbox is queued (FIFO group =
  the mailbox) and 202 is answered at once; nothing is fetched from Graph here.
- Lifecycle: ``reauthorizationRequired`` → renew, ``subscriptionRemoved`` → recreate and a full
  resync, ``missed`` → a full resync.
- Malformed bodies: 400; a body over ``MAX_BODY`` characters: 413 before it is parsed; a wrong
  clientState on a known subscription (nothing else authenticated in the collection): 403; only
  unknown subscriptions: 202; nothing queued in these cases.
- Graph's budget: an answer within 3 s (docs/providers/microsoft.md M13); the AWS clients give up
  after short timeouts rather than the SDK's 60 s.

Imports no msal (nor requests): only the core layer and ``calsync_microsoft.registry``/``jobs``.
"""

from __future__ import annotations

import functools
import json
import os
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.config import Config

from calsync.api.http import APIGatewayHttpResolver, Response
from calsync.config import get_settings
from calsync.domain.errors import StoreUnavailable
from calsync_microsoft.jobs import MailboxJob, enqueue_many
from calsync_microsoft.registry import MicrosoftRegistry

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from calsync_microsoft.registry import SubscriptionRecord

logger = Logger(service="calsync")
metrics = Metrics(namespace="calsync", service="microsoft-webhook")
app = APIGatewayHttpResolver()
MAX_TOKEN = 1024
MAX_ITEMS = 1000
# A Graph notification of an Outlook event is about 1 KB (its resource names a ~150-character event
# id twice), so MAX_ITEMS of them fit in 2 MiB; anything larger is refused before json.loads spends
# CPU and memory on it (API Gateway would pass up to Lambda's 6 MB).
MAX_BODY = 2 * 1024 * 1024
_overrides: dict[str, Any] = {}


def _fast_client_config() -> Any:
    """Short timeouts and one retry: Graph drops the connection after 3 s (M13)."""
    return Config(connect_timeout=1, read_timeout=1, retries={"mode": "standard", "total_max_attempts": 2})


def set_dependencies(**overrides: Any) -> None:
    """Tests: ``table``, ``sqs``, ``queue_url``; no arguments restores the defaults."""
    _overrides.clear()
    _overrides.update(overrides)
    _registry.cache_clear()
    _sqs.cache_clear()


@functools.cache
def _registry() -> MicrosoftRegistry:
    table = _overrides.get("table")
    if table is None:
        table = boto3.resource("dynamodb", config=_fast_client_config()).Table(get_settings().table_name)
    return MicrosoftRegistry(table)


@functools.cache
def _sqs() -> tuple[Any, str]:
    sqs = _overrides.get("sqs")
    if sqs is None:
        sqs = boto3.client("sqs", config=_fast_client_config())
    return sqs, str(_overrides.get("queue_url") or os.environ.get("MICROSOFT_SYNC_QUEUE_URL", ""))


def _plain(status: int, text: str) -> Response[str]:
    return Response(
        status_code=status,
        content_type="text/plain; charset=utf-8",
        body=text,
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"},
    )


def _problem(status: int, detail: str) -> Response[str]:
    body = json.dumps({"type": "about:blank", "title": "Rejected", "status": status, "detail": detail})
    return Response(status_code=status, content_type="application/problem+json", body=body)


def _job_for(item: dict[str, Any], record: SubscriptionRecord, lifecycle: bool) -> MailboxJob | None:
    base = {"user_id": record.user_id, "account_id": record.account_id}
    if not lifecycle:
        return MailboxJob(**base, action="sync", reason="notification")
    event = item.get("lifecycleEvent")
    if event == "reauthorizationRequired":
        return MailboxJob(**base, action="renew", reason="lifecycle")
    if event == "subscriptionRemoved":
        return MailboxJob(**base, action="recreate", full=True, reason="lifecycle")
    if event == "missed":
        return MailboxJob(**base, action="sync", full=True, reason="missed")
    return None


def _handle(lifecycle: bool) -> Response[str]:
    event = app.current_event
    token = event.get_query_string_value("validationToken")
    if token is not None:
        if not token or len(token) > MAX_TOKEN:
            return _problem(400, "the validation token is missing or too long")
        return _plain(200, token)  # X2: only as plain text, nothing else reflected
    if (size := len(event.body or "")) > MAX_BODY:
        logger.warning("oversized notification body refused", extra={"characters": size})
        metrics.add_metric(name="MicrosoftNotificationsOversized", unit=MetricUnit.Count, value=1)
        return _problem(413, f"the body is longer than {MAX_BODY} characters")
    try:
        data = json.loads(event.decoded_body or "")
    except (ValueError, TypeError, RecursionError):  # not UTF-8, not JSON, nested beyond the stack
        return _problem(400, "the body is not JSON")
    items = data.get("value") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items or len(items) > MAX_ITEMS:
        return _problem(400, "the body is not a notification collection")
    sub_ids = [item.get("subscriptionId") if isinstance(item, dict) else None for item in items]
    records = _registry().get_subscriptions(s for s in sub_ids if isinstance(s, str))
    jobs: dict[tuple[str, str, bool], MailboxJob] = {}
    refused = unknown = 0
    for item, sub_id in zip(items, sub_ids, strict=True):
        if not isinstance(sub_id, str) or not sub_id:
            refused += 1
            continue
        record = records.get(sub_id)
        if record is None:  # a subscription calsync no longer knows (a disconnect whose DELETE failed)
            unknown += 1
            continue
        if not record.accepts(item.get("clientState")):
            refused += 1
            continue
        job = _job_for(item, record, lifecycle)
        if job is not None:
            jobs.setdefault((job.account_id, job.action, job.full), job)
    if unknown:
        logger.info("notifications of unknown subscriptions dropped", extra={"unknown": unknown})
        metrics.add_metric(name="MicrosoftNotificationsUnknown", unit=MetricUnit.Count, value=unknown)
    if refused:
        logger.warning(
            "notifications refused: wrong clientState or no subscription", extra={"refused": refused}
        )
        metrics.add_metric(name="MicrosoftNotificationsDropped", unit=MetricUnit.Count, value=refused)
    if not jobs:
        # Graph retries every non-2xx delivery for up to 4 hours: a notification of an unknown
        # subscription is answered 2xx and dropped (nothing queued); a wrong clientState on a
        # subscription calsync knows stays refused (X2)
        return (
            _problem(403, "no notification of the collection could be authenticated")
            if refused
            else _plain(202, "")
        )

    sqs, url = _sqs()
    failed = enqueue_many(sqs, url, list(jobs.values()))
    if failed:  # Graph retries a failed delivery: answer so that it does
        return _problem(503, "the sync could not be queued; try again")
    metrics.add_metric(name="MicrosoftNotificationsQueued", unit=MetricUnit.Count, value=len(jobs))
    return _plain(202, "")


# API.md "Webhooks": no bearer token (each notification's clientState, X2); what it really answers
_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
_PLAIN = "text/plain; charset=utf-8"
_ANSWERS: dict[int, Any] = {
    200: {
        "description": "The validation handshake (?validationToken=...): the token echoed as plain text",
        "content": {_PLAIN: {"schema": {"type": "string", "maxLength": MAX_TOKEN}}},
    },
    202: {
        "description": "Taken: syncs queued; notifications of unknown subscriptions are dropped",
        "content": {_PLAIN: {"schema": {"type": "string", "maxLength": 0}}},
    },
    400: {
        "description": "Not a notification collection (or an empty or too long validation token)",
        "content": _PROBLEM,
    },
    403: {
        "description": "No notification of the collection could be authenticated (clientState)",
        "content": _PROBLEM,
    },
    413: {
        "description": f"The body is longer than {MAX_BODY} characters: refused before it is read",
        "content": _PROBLEM,
    },
    503: {
        "description": "The sync could not be queued or the store read: Graph retries",
        "content": _PROBLEM,
    },
}


@app.post(
    "/v1/webhooks/microsoft",
    summary="Graph change notifications, or the validation handshake",
    responses=_ANSWERS,
)
def notifications() -> Response[str]:
    return _handle(lifecycle=False)


@app.post(
    "/v1/webhooks/microsoft/lifecycle",
    summary="Graph lifecycle notifications, or the validation handshake",
    responses=_ANSWERS,
)
def lifecycle_notifications() -> Response[str]:
    return _handle(lifecycle=True)


@app.exception_handler(Exception)
def _unexpected(exc: Exception) -> Response[str]:
    if isinstance(exc, StoreUnavailable):
        return _problem(503, "busy; try again")
    logger.exception("webhook failed")
    return _problem(503, "the notification could not be handled; try again")


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
