"""Microsoft Graph webhooks (S2, X2): ``POST /v1/webhooks/microsoft`` (change notifications) and
``POST /v1/webhooks/microsoft/lifecycle`` (lifecycle notifications). Auth NONE at API Gateway: each
notification is authenticated by its subscription's ``clientState``.

- ``?validationToken=…``: the handshake Graph sends when a subscription is created: 200,
  ``text/plain``, the decoded token and nothing else (``nosniff``: a token with markup is never
  rendered as HTML).
- A notification collection: per item, the subscription is looked up (once per id) and its
  ``clientState`` compared in constant time (hashes, ``hmac.compare_digest``); a wrong or missing one
  drops the item and is counted. An item of a subscription calsync does not know (one left at Graph
  by a disconnect whose DELETE failed) is dropped and answered 2xx: Graph retries every non-2xx
  delivery for up to 4 hours (docs/providers/microsoft.md M13). One mailbox job per affected
  mailbox is queued (FIFO group = the mailbox) and 202 is answered at once; nothing is fetched from
  Graph here.
- Lifecycle: ``reauthorizationRequired`` → renew, ``subscriptionRemoved`` → recreate and a full
  resync, ``missed`` → a full resync.
- Malformed bodies: 400; a wrong clientState on a known subscription (nothing else authenticated
  in the collection): 403; only unknown subscriptions: 202; nothing queued in these cases.

Imports no msal (nor requests): only the core layer and ``calsync_microsoft.registry``/``jobs``.
"""

from __future__ import annotations

import functools
import json
import os
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.metrics import MetricUnit

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
_overrides: dict[str, Any] = {}


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
        table = boto3.resource("dynamodb").Table(get_settings().table_name)
    return MicrosoftRegistry(table)


@functools.cache
def _sqs() -> tuple[Any, str]:
    sqs = _overrides.get("sqs")
    if sqs is None:
        sqs = boto3.client("sqs")
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
    try:
        data = json.loads(event.decoded_body or "")
    except (ValueError, TypeError, RecursionError):  # not UTF-8, not JSON, nested beyond the stack
        return _problem(400, "the body is not JSON")
    items = data.get("value") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items or len(items) > MAX_ITEMS:
        return _problem(400, "the body is not a notification collection")
    registry = _registry()
    records: dict[str, SubscriptionRecord | None] = {}
    jobs: dict[tuple[str, str, bool], MailboxJob] = {}
    refused = unknown = 0
    for item in items:
        sub_id = item.get("subscriptionId") if isinstance(item, dict) else None
        if not isinstance(sub_id, str) or not sub_id:
            refused += 1
            continue
        if sub_id not in records:
            records[sub_id] = registry.get_subscription(sub_id)
        record = records[sub_id]
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


@app.post("/v1/webhooks/microsoft")
def notifications() -> Response[str]:
    return _handle(lifecycle=False)


@app.post("/v1/webhooks/microsoft/lifecycle")
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
