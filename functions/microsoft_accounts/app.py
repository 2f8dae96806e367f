"""Connect a Microsoft 365 / Outlook account (API.md "Accounts"; C1-C4, C6, S2, S7):
``POST /v1/me/accounts/microsoft/authorize`` and ``GET /v1/oauth/microsoft/callback``.

A function of its own because it needs the Microsoft layer (msal). Both routes need the caller's
JWT: the redirect URI (the app) receives ``code`` and ``state`` and hands them to the callback with
the person's token; the flow stored under the state must have been started by the same person.
Thin: ``calsync_microsoft.connect`` does the work; errors leave as RFC 9457 problems.
"""

from __future__ import annotations

from typing import Annotated

from calsync.api import problems
from calsync.api.account_schemas import AccountOut, AuthorizeOut, MicrosoftAuthorizeIn
from calsync.api.accounts import _account_out
from calsync.api.http import Body, Caller, Depends, HttpApi, Query, Response, created, creates
from calsync.wiring import Wiring
from calsync.wiring.connect import ConnectFunctionDeps
from calsync_microsoft.connect import MicrosoftConnect
from calsync_microsoft.provider import connect_deps

app = HttpApi()
wiring: Wiring[ConnectFunctionDeps[MicrosoftConnect]] = Wiring(connect_deps)  # tests: ``wiring.use``
Deps = Annotated[ConnectFunctionDeps[MicrosoftConnect], Depends(wiring)]


@app.post(
    "/v1/me/accounts/microsoft/authorize", tags=["accounts"], responses=problems.answers(400, 401, 403, 503)
)
def authorize(body: Annotated[MicrosoftAuthorizeIn, Body()], me: Caller, deps: Deps) -> AuthorizeOut:
    """Start the Microsoft sign-in (authority common: work/school and personal accounts): send the
    person to ``authorizationUrl``; the redirect URI gets ``code`` and ``state`` for the callback."""
    url, state = deps.connect.authorize(me, body.location_id, body.redirect_uri, deps.clock())
    return AuthorizeOut(authorization_url=url, state=state)


@app.get(
    "/v1/oauth/microsoft/callback",
    tags=["accounts"],
    responses=creates(AccountOut, "Connected", 400, 401, 403, 409, 503),
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
    return created(_account_out(account))


lambda_handler = app.lambda_handler()
