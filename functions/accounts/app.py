"""calsync accounts API: connect a CalDAV account, accounts and calendars, calendar configuration,
disconnect (API.md "Accounts", "Calendars and configuration"; rules C2-C9, S7, X6).

A function of its own because it needs the CalDAV layer (caldav + requests), which the other API
routes do not. Routes only: Powertools routes and validates, ``calsync.api.accounts`` does the work,
``calsync.wiring.accounts`` builds what it works with on the first request (docs/adr/0023; a
provider's SDK with the first disconnect that needs it), errors leave as RFC 9457 problems.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from calsync.api import problem_handlers, problems
from calsync.api.account_schemas import (
    AccountOut,
    AccountsOut,
    CaldavConnectIn,
    CalendarConfigIn,
    CalendarConfigOut,
    CalendarsOut,
)
from calsync.api.accounts import AccountsService
from calsync.api.auth import Principal, principal_from_event
from calsync.api.http import APIGatewayHttpResolver, Body, Depends, Response
from calsync.api.params import AccountId, LocationId, UserId
from calsync.wiring import Wiring
from calsync.wiring.accounts import AccountsFunctionDeps, accounts_deps

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


logger = Logger(service="calsync")
app = APIGatewayHttpResolver(enable_validation=True, response_validation_error_http_code=500)
JSON = "application/json"


wiring: Wiring[AccountsFunctionDeps] = Wiring(accounts_deps)  # tests: ``with wiring.use(deps):``


def service(deps: Annotated[AccountsFunctionDeps, Depends(wiring)]) -> AccountsService:
    return deps.service


def caller() -> Principal:
    return principal_from_event(app.current_event.raw_event)


Caller = Annotated[Principal, Depends(caller)]
Service = Annotated[AccountsService, Depends(service)]


# ---- routes ------------------------------------------------------------------------------------
@app.get("/v1/me/accounts", tags=["accounts"], responses=problems.answers(401, 503))
def my_accounts(me: Caller, svc: Service) -> AccountsOut:
    """The caller's connected accounts (status ``reauth_required`` when a grant was revoked, S7)."""
    return svc.list_accounts(me)


@app.post(
    "/v1/me/accounts/caldav",
    tags=["accounts"],
    responses={
        201: {"description": "Connected", "content": {JSON: {"model": AccountOut}}},
        **problems.responses(400, 401, 403, 409, 503),
    },
)
def connect_caldav(
    body: Annotated[CaldavConnectIn, Body()], me: Caller, svc: Service
) -> Response[AccountOut]:
    """Connect an iCloud or other CalDAV account (app-specific password; https servers only, X6).
    400 when the server refuses the credentials; 409 for C3 and C4."""
    return Response(status_code=201, content_type=JSON, body=svc.connect_caldav(me, body))


@app.delete(
    "/v1/me/accounts/<accountId>",
    tags=["accounts"],
    status_code=204,
    responses={204: {"description": "Disconnected"}, **problems.responses(400, 401, 404, 503)},
)
def disconnect(accountId: AccountId, me: Caller, svc: Service) -> Response[None]:
    """Disconnect one of your accounts (C9): its calendars leave every configuration; its events
    and credentials are deleted."""
    svc.disconnect(me, accountId)
    return Response(status_code=204, content_type=None, body=None)


@app.get("/v1/me/calendars", tags=["calendars"], responses=problems.answers(401, 503))
def my_calendars(me: Caller, svc: Service) -> CalendarsOut:
    """The calendars of the caller's accounts, with calsync's access role to each."""
    return svc.list_calendars(me)


@app.get(
    "/v1/locations/<locationId>/users/<userId>/calendar-config",
    tags=["calendars"],
    responses=problems.answers(400, 401, 403, 503),
)
def get_calendar_config(
    locationId: LocationId, userId: UserId, me: Caller, svc: Service
) -> CalendarConfigOut:
    """Primary and conflict calendars of a person in a location (the person, or an admin of it)."""
    return svc.get_config(me, locationId, userId)


@app.put(
    "/v1/locations/<locationId>/users/<userId>/calendar-config",
    tags=["calendars"],
    responses=problems.answers(400, 401, 403, 503),
)
def put_calendar_config(
    locationId: LocationId,
    userId: UserId,
    config: Annotated[CalendarConfigIn, Body()],
    me: Caller,
    svc: Service,
) -> CalendarConfigOut:
    """Set them (C6; C8: the person, or an admin of the location for a member)."""
    return svc.put_config(me, locationId, userId, config)


problem_handlers.install(app, logger, caller)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
