"""calsync accounts API: connect a CalDAV account, accounts and calendars, calendar configuration,
disconnect (API.md "Accounts", "Calendars and configuration"; rules C2-C9, S7, X6).

A function of its own because it needs the CalDAV layer (caldav + requests), which the other API
routes do not. Routes only: Powertools routes and validates, ``calsync.api.accounts`` does the work,
``calsync.wiring.accounts`` builds what it works with on the first request (docs/adr/0023; a
provider's SDK with the first disconnect that needs it), errors leave as RFC 9457 problems.
"""

from __future__ import annotations

from typing import Annotated

from calsync.api import problems
from calsync.api.account_schemas import (
    AccountOut,
    AccountsOut,
    CaldavConnectIn,
    CalendarConfigIn,
    CalendarConfigOut,
    CalendarsOut,
)
from calsync.api.accounts import AccountsService
from calsync.api.http import (
    Body,
    Caller,
    Depends,
    HttpApi,
    Response,
    created,
    creates,
    no_content,
    no_content_route,
)
from calsync.api.params import AccountId, LocationId, UserId
from calsync.wiring import Wiring
from calsync.wiring.accounts import AccountsFunctionDeps, accounts_deps

app = HttpApi()
wiring: Wiring[AccountsFunctionDeps] = Wiring(accounts_deps)  # tests: ``with wiring.use(deps):``


def service(deps: Annotated[AccountsFunctionDeps, Depends(wiring)]) -> AccountsService:
    return deps.service


Service = Annotated[AccountsService, Depends(service)]


# ---- routes ------------------------------------------------------------------------------------
@app.get("/v1/me/accounts", tags=["accounts"], responses=problems.answers(401, 503))
def my_accounts(me: Caller, svc: Service) -> AccountsOut:
    """The caller's connected accounts (status ``reauth_required`` when a grant was revoked, S7)."""
    return svc.list_accounts(me)


@app.post(
    "/v1/me/accounts/caldav",
    tags=["accounts"],
    responses=creates(AccountOut, "Connected", 400, 401, 403, 409, 503),
)
def connect_caldav(
    body: Annotated[CaldavConnectIn, Body()], me: Caller, svc: Service
) -> Response[AccountOut]:
    """Connect an iCloud or other CalDAV account (app-specific password; https servers only, X6).
    400 when the server refuses the credentials; 409 for C3 and C4."""
    return created(svc.connect_caldav(me, body))


@app.delete(
    "/v1/me/accounts/<accountId>",
    tags=["accounts"],
    **no_content_route("Disconnected", 400, 401, 404, 503),
)
def disconnect(accountId: AccountId, me: Caller, svc: Service) -> Response[None]:
    """Disconnect one of your accounts (C9): its calendars leave every configuration; its events
    and credentials are deleted."""
    svc.disconnect(me, accountId)
    return no_content()


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


lambda_handler = app.lambda_handler()
