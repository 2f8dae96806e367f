"""Google accounts: ``POST /v1/me/accounts/google/authorize`` and ``GET /v1/oauth/google/callback``
(API.md "Accounts"; C1, C3, C4, S7, X3). A function of its own: it needs the GoogleLayer.

Thin: Powertools routes and validates, ``calsync_google.connect`` does the work; errors leave as
RFC 9457 problems. The callback is called by the app with its JWT after Google redirected to it:
the state is bound to the person who started the flow.
"""

from __future__ import annotations

from typing import Annotated

from calsync.api import problems
from calsync.api.account_schemas import AccountOut, AuthorizeOut
from calsync.api.http import Body, Caller, Depends, HttpApi, Query, Response, created, creates
from calsync.wiring import Wiring
from calsync.wiring.connect import ConnectFunctionDeps
from calsync_google.connect import AuthorizeIn, GoogleConnect
from calsync_google.provider import connect_deps

app = HttpApi()
wiring: Wiring[ConnectFunctionDeps[GoogleConnect]] = Wiring(connect_deps)  # tests: ``wiring.use``
Deps = Annotated[ConnectFunctionDeps[GoogleConnect], Depends(wiring)]


@app.post(
    "/v1/me/accounts/google/authorize", tags=["accounts"], responses=problems.answers(400, 401, 403, 503)
)
def authorize(body: Annotated[AuthorizeIn, Body()], me: Caller, deps: Deps) -> AuthorizeOut:
    """Start connecting a Google account: open ``authorizationUrl``; Google redirects to
    ``redirectUri`` with ``code`` and ``state``, which the app passes to the callback."""
    return deps.connect.authorize(me, body, deps.clock())


@app.get(
    "/v1/oauth/google/callback",
    tags=["accounts"],
    responses=creates(AccountOut, "Connected", 400, 401, 403, 409, 503),
)
def callback(
    code: Annotated[str, Query(min_length=1, max_length=2048)],
    state: Annotated[str, Query(min_length=16, max_length=256)],
    me: Caller,
    deps: Deps,
) -> Response[AccountOut]:
    """Finish the flow (state and PKCE checked): 201 with the account; 409 for C3 and C4."""
    return created(deps.connect.callback(me, code, state, deps.clock()))


lambda_handler = app.lambda_handler()
