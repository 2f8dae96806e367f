"""calsync scheduling API: availability, appointments on the primary calendar, meeting links
(API.md; rules C6, C7, C8, C11, C12, U10).

A function of its own: it writes to providers (KMS decrypt of the account's credentials), which the
read-only API routes never do. Routes only: Powertools routes and validates, ``calsync.api.scheduling``
does the work, ``calsync.wiring.scheduling`` builds what it works with (docs/adr/0023), errors leave
as RFC 9457 problems. ``POST …/appointments`` with an ``Idempotency-Key`` header is idempotent
(``calsync.api.idempotency``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from calsync.api import idempotency, problems
from calsync.api.http import Body, Caller, Depends, Header, HttpApi, Query, Response, created, creates
from calsync.api.params import LocationId, MeetingId, UserId
from calsync.api.scheduling_schemas import AppointmentIn, AppointmentOut, Availability, Meeting
from calsync.wiring import Wiring
from calsync.wiring.scheduling import SchedulingFunctionDeps, scheduling_deps

app = HttpApi()
wiring: Wiring[SchedulingFunctionDeps] = Wiring(scheduling_deps)  # tests: ``with wiring.use(deps):``
IDEMPOTENCY_KEY_PATTERN = r"^[A-Za-z0-9._:-]{8,128}$"
BOOKED = "Written to the primary calendar"
DESCRIBED = {
    422: "Idempotency-Key reused with another body",
    502: "The calendar provider could not be reached",
}


Deps = Annotated[SchedulingFunctionDeps, Depends(wiring)]


@app.get(
    "/v1/locations/<locationId>/users/<userId>/availability",
    tags=["scheduling"],
    responses=problems.answers(400, 401, 403, 503),
)
def availability(
    *,
    locationId: LocationId,
    userId: UserId,
    start: Annotated[datetime, Query(description="RFC 3339 with offset")],
    end: Annotated[datetime, Query(description="RFC 3339 with offset; at most 62 days after start")],
    me: Caller,
    deps: Deps,
) -> Availability:
    """Merged busy intervals of the person's primary and conflict calendars in the location (C11),
    from the store (no provider call). The person, or an admin of the location for a member (C8)."""
    return deps.service.availability(me, locationId, userId, start, end)


@app.post(
    "/v1/locations/<locationId>/users/<userId>/appointments",
    tags=["scheduling"],
    responses=creates(AppointmentOut, BOOKED, 400, 401, 403, 409, 422, 502, 503, described=DESCRIBED),
)
def book(
    *,
    locationId: LocationId,
    userId: UserId,
    body: Annotated[AppointmentIn, Body()],
    me: Caller,
    deps: Deps,
    idempotency_key: Annotated[
        str | None,
        Header(alias="idempotency-key", pattern=IDEMPOTENCY_KEY_PATTERN, description="retry safely"),
    ] = None,
) -> Response[dict[str, Any]]:
    """Write an appointment to the person's primary calendar (C7). 409 when no primary calendar is
    set, or when it overlaps busy time (unless ``allowConflict``)."""

    def run(request: dict[str, Any]) -> dict[str, Any]:
        out = deps.service.book(me, locationId, userId, body, deps.clock())
        return out.model_dump(mode="json", by_alias=True)

    request = {
        "caller": me.user_id,
        "userId": userId,
        "locationId": locationId,
        "key": idempotency_key,
        "body": body.model_dump(mode="json"),
    }
    if idempotency_key is None:
        result = run(request)
    else:
        result = idempotency.once(run, request, deps.persistence(), app.lambda_context)
    return created(result)


@app.post(
    "/v1/me/meetings/<meetingId>/meeting-link",
    tags=["meetings"],
    responses=problems.answers(400, 401, 404, 409, 502, 503, described=DESCRIBED),
)
def add_meeting_link(meetingId: MeetingId, me: Caller, deps: Deps) -> Meeting:
    """Add a meeting link to one of your listed, non-recurring meetings without one (C12, U10);
    written to the provider, then listed with it. 409 otherwise."""
    return deps.service.add_meeting_link(me, meetingId, deps.clock())


lambda_handler = app.lambda_handler()
