"""calsync HTTP API: every HttpApi route of ApiFunction in template.yaml (API.md).

Thin: Powertools' event handler routes and validates (pydantic, OpenAPI), ``calsync.api.service``
does the work, and every error leaves as an RFC 9457 problem from the handlers at the bottom.
Its import loads what every route uses (boto3 included: docs/adr/0010); ``calsync.wiring.api``
builds what the routes work with on the first request (docs/adr/0023).
"""

from __future__ import annotations

import functools
import pathlib
from datetime import datetime
from typing import Annotated

from calsync.api import problems
from calsync.api.http import (
    JSON,
    Body,
    Caller,
    Depends,
    HttpApi,
    Response,
    creates,
    no_content,
    no_content_route,
)
from calsync.api.params import CalendarId, Explain, LocationId, RoomId, RoomLocation, UserId
from calsync.api.schemas import (
    ExplainedMeetings,
    Meetings,
    ProfileOut,
    ProfilePatch,
    RoomIn,
    RoomOut,
)
from calsync.api.service import ApiService, tagged
from calsync.wiring import Wiring
from calsync.wiring.api import ApiFunctionDeps, api_deps

app = HttpApi()
wiring: Wiring[ApiFunctionDeps] = Wiring(api_deps)  # tests: ``with wiring.use(deps):`` (docs/adr/0023)
Deps = Annotated[ApiFunctionDeps, Depends(wiring)]


def service(deps: Deps) -> ApiService:
    return deps.service(getattr(app, "lambda_context", None))


def now(deps: Deps) -> datetime:
    return deps.clock()


Service = Annotated[ApiService, Depends(service)]
Now = Annotated[datetime, Depends(now)]


# ---- routes ------------------------------------------------------------------------------------
def if_none_match() -> str | None:
    """The request's ``If-None-Match`` header (API Gateway passes header names in lower case)."""
    return app.current_event.headers.get("if-none-match")


@app.get("/v1/me/meetings", tags=["meetings"], responses=problems.conditional(400, 401, 503))
def my_meetings(
    me: Caller, svc: Service, now: Now, explain: Explain = False
) -> Response[Meetings | ExplainedMeetings]:
    """The caller's meetings of the next three days (U1-U11). Carries an ETag; ``If-None-Match``
    with the current one answers 304."""
    return tagged(svc.my_meetings(me, now, explain=explain, if_none_match=if_none_match()))


@app.get("/v1/users/<userId>/meetings", tags=["meetings"], responses=problems.conditional(400, 401, 403, 503))
def user_meetings(
    userId: UserId, me: Caller, svc: Service, now: Now, explain: Explain = False
) -> Response[Meetings | ExplainedMeetings]:
    """The meetings of a member of a location the caller administers (X1). ETag as above."""
    return tagged(svc.user_meetings(me, userId, now, explain=explain, if_none_match=if_none_match()))


@app.get(
    "/v1/rooms/<roomId>/meetings", tags=["meetings"], responses=problems.conditional(400, 401, 404, 409, 503)
)
def room_meetings(
    *,
    roomId: RoomId,
    me: Caller,
    svc: Service,
    now: Now,
    explain: Explain = False,
    locationId: RoomLocation = None,
) -> Response[Meetings | ExplainedMeetings]:
    """A room panel's meetings (R1-R7): at most three, links first, private titles hidden. Room ids
    are scoped by location: the room is looked for in the caller's locations (404 when none has it,
    409 when several do and ``locationId`` does not name one). ETag as above."""
    return tagged(
        svc.room_meetings(
            me, roomId, now, explain=explain, location_id=locationId, if_none_match=if_none_match()
        )
    )


@app.get("/v1/me/profile", tags=["profile"], responses=problems.answers(401, 503))
def my_profile(me: Caller, svc: Service) -> ProfileOut:
    return svc.my_profile(me)


@app.patch("/v1/me/profile", tags=["profile"], responses=problems.answers(400, 401, 503))
def patch_my_profile(patch: Annotated[ProfilePatch, Body()], me: Caller, svc: Service) -> ProfileOut:
    """Change the time zone (IANA name) and/or display name."""
    return svc.update_my_profile(me, patch)


@app.put(
    "/v1/locations/<locationId>/rooms/<roomId>",
    tags=["rooms"],
    responses={
        200: {"description": "Changed", "content": {JSON: {"model": RoomOut}}},
        **creates(RoomOut, "Created", 400, 401, 403, 409, 503),
    },
)
def put_room(
    locationId: LocationId,
    roomId: RoomId,
    room: Annotated[RoomIn, Body()],
    me: Caller,
    svc: Service,
) -> Response[RoomOut]:
    """Register (201) or change (200) a room of a location you administer."""
    out, created = svc.put_room(me, locationId, roomId, room)
    return Response(status_code=201 if created else 200, content_type=JSON, body=out)


@app.delete(
    "/v1/locations/<locationId>/rooms/<roomId>",
    tags=["rooms"],
    **no_content_route("Deleted", 400, 401, 403, 404, 503),
)
def delete_room(locationId: LocationId, roomId: RoomId, me: Caller, svc: Service) -> Response[None]:
    svc.delete_room(me, locationId, roomId)
    return no_content()


@app.put(
    "/v1/me/calendars/<calendarId>/room-consent",
    tags=["rooms"],
    **no_content_route("Marked as a room calendar", 400, 401, 404, 503),
)
def give_room_consent(calendarId: CalendarId, me: Caller, svc: Service) -> Response[None]:
    """R9: mark one of your calendars as a room calendar, so that an admin of one of your locations
    may make it a room there (an admin never does so without it)."""
    svc.give_room_consent(me, calendarId)
    return no_content()


@app.delete(
    "/v1/me/calendars/<calendarId>/room-consent",
    tags=["rooms"],
    **no_content_route("No longer a room calendar", 400, 401, 404, 503),
)
def withdraw_room_consent(calendarId: CalendarId, me: Caller, svc: Service) -> Response[None]:
    """R9: take the mark back: the rooms that admins made of the calendar are deleted."""
    svc.withdraw_room_consent(me, calendarId)
    return no_content()


@app.get("/v1/openapi.json", include_in_schema=False)
def openapi() -> Response[str]:
    """The OpenAPI document of the whole HTTP API, generated from the code (no token needed)."""
    return Response(status_code=200, content_type=JSON, body=_openapi_json())


@functools.cache
def _openapi_json() -> str:
    """The document of the whole HTTP API (every function's routes), generated from their resolvers
    by `make openapi` (local/openapi.py) and shipped beside this module."""
    return (pathlib.Path(__file__).parent / "openapi.json").read_text(encoding="utf-8")


lambda_handler = app.lambda_handler()
