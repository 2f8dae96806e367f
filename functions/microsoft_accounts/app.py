"""Connect a Microsoft 365 / Outlook account (API.md "Accounts"; C1-C4, C6, S2, S7):
``POST /v1/me/accounts/microsoft/authorize`` and ``GET /v1/oauth/microsoft/callback``.

A function of its own because it needs the Microsoft layer (msal). Both routes need the caller's
JWT: the redirect URI (the app) receives ``code`` and ``state`` and hands them to the callback with
the person's token; the flow stored under the state must have been started by the same person.
Thin: ``calsync_microsoft.connect`` does the work; errors leave as RFC 9457 problems.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from calsync.api import problem_handlers, problems
from calsync.api.account_schemas import AccountOut
from calsync.api.accounts import _account_out
from calsync.api.auth import Principal, principal_from_event
from calsync.api.http import APIGatewayHttpResolver, Body, Depends, Query, Response
from calsync.api.schemas import Field, Id, _Request, _Wire  # pydantic's, after calsync (docs/adr/0022)
from calsync.wiring import Wiring
from calsync.wiring.connect import ConnectFunctionDeps
from calsync_microsoft.connect import MicrosoftConnect
from calsync_microsoft.provider import connect_deps

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service="calsync")
app = APIGatewayHttpResolver(enable_validation=True, response_validation_error_http_code=500)
JSON = "application/json"


class MicrosoftAuthorizeIn(_Request):
    location_id: Id = Field(description="the location to use the account in (you must be a member)")
    redirect_uri: str = Field(
        min_length=8, max_length=2048, pattern=r"^https://[^\s]+$|^http://(localhost|127\.0\.0\.1)[:/][^\s]*$"
    )


class MicrosoftAuthorizeOut(_Wire):
    authorization_url: str
    state: str


wiring: Wiring[ConnectFunctionDeps[MicrosoftConnect]] = Wiring(connect_deps)  # tests: ``wiring.use``
Deps = Annotated[ConnectFunctionDeps[MicrosoftConnect], Depends(wiring)]


def caller() -> Principal:
    return principal_from_event(app.current_event.raw_event)


Caller = Annotated[Principal, Depends(caller)]


@app.post(
    "/v1/me/accounts/microsoft/authorize",
    tags=["accounts"],
    responses={200: {"description": "OK"}, **problems.responses(400, 401, 403, 503)},
)
def authorize(body: Annotated[MicrosoftAuthorizeIn, Body()], me: Caller, deps: Deps) -> MicrosoftAuthorizeOut:
    """Start the Microsoft sign-in (authority common: work/school and personal accounts): send the
    person to ``authorizationUrl``; the redirect URI gets ``code`` and ``state`` for the callback."""
    url, state = deps.connect.authorize(me, body.location_id, body.redirect_uri, deps.clock())
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
    deps: Deps,
) -> Response[AccountOut]:
    """Finish the sign-in (state and PKCE checked): 201 with the account; 409 for C3 and C4; 503
    when Microsoft could not be reached or throttled (nothing stored: sign in again)."""
    account = deps.connect.callback(me, {"code": code, "state": state}, deps.clock())
    return Response(status_code=201, content_type=JSON, body=_account_out(account))


problem_handlers.install(app, logger, caller)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
