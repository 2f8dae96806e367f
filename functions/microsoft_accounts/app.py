"""Connect a Microsoft 365 / Outlook account (API.md "Accounts"; C1-C4, C6, S2, S7):
``POST /v1/me/accounts/microsoft/authorize`` and ``GET /v1/oauth/microsoft/callback``.

A function of its own because it needs the Microsoft layer (msal). Both routes need the caller's
JWT: the redirect URI (the app) receives ``code`` and ``state`` and hands them to the callback with
the person's token; the flow stored under the state must have been started by the same person.
Thin: ``calsync_microsoft.connect`` does the work; errors leave as RFC 9457 problems.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from pydantic import Field

from calsync.api import problem_handlers, problems
from calsync.api.account_schemas import AccountOut
from calsync.api.accounts import AccountsDeps, AccountsService, Discovery, _account_out
from calsync.api.auth import Principal, principal_from_event
from calsync.api.http import APIGatewayHttpResolver, Body, Depends, Query, Response
from calsync.api.schemas import Id, _Request, _Wire
from calsync.store.accounts import AccountRepository
from calsync.store.repository import Repository
from calsync_microsoft import wiring
from calsync_microsoft.connect import MicrosoftConnect
from calsync_microsoft.registry import MicrosoftRegistry

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service="calsync")
app = APIGatewayHttpResolver(enable_validation=True, response_validation_error_http_code=500)
JSON = "application/json"
_overrides: dict[str, Any] = {}


def utc_now() -> datetime:
    return datetime.now(UTC)


clock: Callable[[], datetime] = utc_now  # tests freeze it


class MicrosoftAuthorizeIn(_Request):
    location_id: Id = Field(description="the location to use the account in (you must be a member)")
    redirect_uri: str = Field(
        min_length=8, max_length=2048, pattern=r"^https://[^\s]+$|^http://(localhost|127\.0\.0\.1)[:/][^\s]*$"
    )


class MicrosoftAuthorizeOut(_Wire):
    authorization_url: str
    state: str


def set_dependencies(**overrides: Any) -> None:
    """Tests: see ``calsync_microsoft.wiring``; no arguments restores the defaults."""
    _overrides.clear()
    _overrides.update(overrides)
    _connect.cache_clear()


@functools.cache
def _connect() -> MicrosoftConnect:
    table = wiring.table_of(_overrides)
    box = wiring.box_of(_overrides)
    enqueue = wiring.enqueue_of(_overrides)

    def no_discovery(server_url: str, username: str, password: str) -> Discovery:
        raise NotImplementedError("CalDAV is connected by the accounts function")

    service = AccountsService(
        Repository(table), AccountRepository(table), AccountsDeps(no_discovery, box, enqueue)
    )
    return MicrosoftConnect(
        service,
        AccountRepository(table),
        MicrosoftRegistry(table),
        wiring.identity_of(_overrides),
        box,
        wiring.worker_of(_overrides),
        enqueue,
        wiring.mailbox_enqueue_of(_overrides),
    )


def connect() -> MicrosoftConnect:
    return _connect()


def caller() -> Principal:
    return principal_from_event(app.current_event.raw_event)


Caller = Annotated[Principal, Depends(caller)]
Connect = Annotated[MicrosoftConnect, Depends(connect)]


@app.post(
    "/v1/me/accounts/microsoft/authorize",
    tags=["accounts"],
    responses={200: {"description": "OK"}, **problems.responses(400, 401, 403, 503)},
)
def authorize(
    body: Annotated[MicrosoftAuthorizeIn, Body()], me: Caller, svc: Connect
) -> MicrosoftAuthorizeOut:
    """Start the Microsoft sign-in (authority common: work/school and personal accounts): send the
    person to ``authorizationUrl``; the redirect URI gets ``code`` and ``state`` for the callback."""
    url, state = svc.authorize(me, body.location_id, body.redirect_uri, clock())
    return MicrosoftAuthorizeOut(authorization_url=url, state=state)


@app.get(
    "/v1/oauth/microsoft/callback",
    tags=["accounts"],
    responses={
        201: {"description": "Connected", "content": {JSON: {"model": AccountOut}}},
        **problems.responses(400, 401, 403, 409, 503),
    },
)
def callback(
    code: Annotated[str, Query(min_length=1, max_length=4096)],
    state: Annotated[str, Query(min_length=1, max_length=256)],
    me: Caller,
    svc: Connect,
) -> Response[AccountOut]:
    """Finish the sign-in (state and PKCE checked): 201 with the account; 409 for C3 and C4; 503
    when Microsoft could not be reached or throttled (nothing stored: sign in again)."""
    account = svc.callback(me, {"code": code, "state": state}, clock())
    return Response(status_code=201, content_type=JSON, body=_account_out(account))


problem_handlers.install(app, logger, caller)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
