"""Google accounts: ``POST /v1/me/accounts/google/authorize`` and ``GET /v1/oauth/google/callback``
(API.md "Accounts"; C1, C3, C4, S7, X3). A function of its own: it needs the GoogleLayer.

Thin: Powertools routes and validates, ``calsync_google.connect`` does the work; errors leave as
RFC 9457 problems. The callback is called by the app with its JWT after Google redirected to it:
the state is bound to the person who started the flow.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from calsync.api import problem_handlers, problems
from calsync.api.account_schemas import AccountOut
from calsync.api.accounts import AccountsDeps, AccountsService
from calsync.api.auth import Principal, principal_from_event
from calsync.api.http import APIGatewayHttpResolver, Body, Depends, Query, Response
from calsync.config import get_settings
from calsync.crypto import CredentialBox
from calsync.store.accounts import AccountRepository
from calsync.store.repository import Repository
from calsync.sync.jobs import enqueue_sync
from calsync_google.connect import AuthorizeIn, AuthorizeOut, GoogleConnect
from calsync_google.oauth import OAuthFlow
from calsync_google.settings import client_secret, get_google_settings
from calsync_google.worker import service_factory

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from calsync.sync.jobs import SyncJob

logger = Logger(service="calsync")
app = APIGatewayHttpResolver(enable_validation=True, response_validation_error_http_code=500)
JSON = "application/json"
_overrides: dict[str, Any] = {}


def utc_now() -> datetime:
    return datetime.now(UTC)


clock: Callable[[], datetime] = utc_now


def set_dependencies(**overrides: Any) -> None:
    """Tests: ``table``, ``kms``, ``key_id``, ``sqs``, ``queue_url``, ``client``, ``endpoints``."""
    _overrides.clear()
    _overrides.update(overrides)
    _connect.cache_clear()


@functools.cache
def _connect() -> GoogleConnect:
    o, settings, google = _overrides, get_settings(), get_google_settings()
    table = o.get("table") or boto3.resource("dynamodb").Table(settings.table_name)
    box = CredentialBox(o.get("kms") or boto3.client("kms"), o.get("key_id") or settings.credentials_key_id)
    sqs = o.get("sqs") or boto3.client("sqs")
    queue_url = o.get("queue_url") or google.sync_queue_url
    endpoints = o.get("endpoints") or google.endpoints
    client = o.get("client") or client_secret

    def enqueue(job: SyncJob) -> None:
        enqueue_sync(sqs, queue_url, job)

    def no_discovery(*_: Any) -> Any:
        raise NotImplementedError("CalDAV discovery is not used here")

    repo, accounts = Repository(table), AccountRepository(table)
    service = AccountsService(repo, accounts, AccountsDeps(no_discovery, box, enqueue))
    return GoogleConnect(
        OAuthFlow(table, client(), endpoints),
        accounts=accounts,
        service=service,
        box=box,
        services=service_factory(client, endpoints),
        enqueue=enqueue,
    )


def connect() -> GoogleConnect:
    return _connect()


def caller() -> Principal:
    return principal_from_event(app.current_event.raw_event)


Caller = Annotated[Principal, Depends(caller)]
Connect = Annotated[GoogleConnect, Depends(connect)]


@app.post(
    "/v1/me/accounts/google/authorize",
    tags=["accounts"],
    responses={200: {"description": "OK"}, **problems.responses(400, 401, 403, 503)},
)
def authorize(body: Annotated[AuthorizeIn, Body()], me: Caller, svc: Connect) -> AuthorizeOut:
    """Start connecting a Google account: open ``authorizationUrl``; Google redirects to
    ``redirectUri`` with ``code`` and ``state``, which the app passes to the callback."""
    return svc.authorize(me, body, clock())


@app.get(
    "/v1/oauth/google/callback",
    tags=["accounts"],
    responses={
        201: {"description": "Connected", "content": {JSON: {"model": AccountOut}}},
        **problems.responses(400, 401, 403, 409, 503),
    },
)
def callback(
    code: Annotated[str, Query(min_length=1, max_length=2048)],
    state: Annotated[str, Query(min_length=16, max_length=256)],
    me: Caller,
    svc: Connect,
) -> Response[AccountOut]:
    """Finish the flow (state and PKCE checked): 201 with the account; 409 for C3 and C4."""
    return Response(status_code=201, content_type=JSON, body=svc.callback(me, code, state, clock()))


problem_handlers.install(app, logger, caller)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
