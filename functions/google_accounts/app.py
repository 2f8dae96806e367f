"""Google accounts: ``POST /v1/me/accounts/google/authorize`` and ``GET /v1/oauth/google/callback``
(API.md "Accounts"; C1, C3, C4, S7, X3). A function of its own: it needs the GoogleLayer.

Thin: Powertools routes and validates, ``calsync_google.connect`` does the work; errors leave as
RFC 9457 problems. The callback is called by the app with its JWT after Google redirected to it:
the state is bound to the person who started the flow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from calsync.api import problem_handlers, problems
from calsync.api.account_schemas import AccountOut
from calsync.api.auth import Principal, principal_from_event
from calsync.api.http import APIGatewayHttpResolver, Body, Depends, Query, Response
from calsync.wiring import Wiring
from calsync.wiring.connect import ConnectFunctionDeps
from calsync_google.connect import AuthorizeIn, AuthorizeOut, GoogleConnect
from calsync_google.provider import connect_deps

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


logger = Logger(service="calsync")
app = APIGatewayHttpResolver(enable_validation=True, response_validation_error_http_code=500)
JSON = "application/json"
wiring: Wiring[ConnectFunctionDeps[GoogleConnect]] = Wiring(connect_deps)  # tests: ``wiring.use``
Deps = Annotated[ConnectFunctionDeps[GoogleConnect], Depends(wiring)]


def caller() -> Principal:
    return principal_from_event(app.current_event.raw_event)


Caller = Annotated[Principal, Depends(caller)]


@app.post(
    "/v1/me/accounts/google/authorize",
    tags=["accounts"],
    responses={200: {"description": "OK"}, **problems.responses(400, 401, 403, 503)},
)
def authorize(body: Annotated[AuthorizeIn, Body()], me: Caller, deps: Deps) -> AuthorizeOut:
    """Start connecting a Google account: open ``authorizationUrl``; Google redirects to
    ``redirectUri`` with ``code`` and ``state``, which the app passes to the callback."""
    return deps.connect.authorize(me, body, deps.clock())


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
    deps: Deps,
) -> Response[AccountOut]:
    """Finish the flow (state and PKCE checked): 201 with the account; 409 for C3 and C4."""
    return Response(
        status_code=201, content_type=JSON, body=deps.connect.callback(me, code, state, deps.clock())
    )


problem_handlers.install(app, logger, caller)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
