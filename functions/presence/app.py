"""calsync presence and profile (issue 8; P1-P8, X1, X5): every HttpApi route of PresenceFunction.

Thin: Powertools' event handler routes and validates (pydantic), ``calsync.api.presence_service``
does the work, and every error leaves as an RFC 9457 problem. Nothing but definitions happens at
import time: ``calsync.wiring.presence`` builds the service (the table, S3, EventBridge) on the
first request (docs/adr/0023).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools.logging import correlation_paths

from calsync.api import presence_schemas as schemas
from calsync.api import problem_handlers, problems
from calsync.api.auth import ID_PATTERN, Principal, principal_from_event
from calsync.api.http import APIGatewayHttpResolver, Body, Depends, Path, Response
from calsync.api.presence_service import PresenceService
from calsync.observability import logger, metrics
from calsync.wiring import Wiring
from calsync.wiring.presence import PresenceDeps, presence_deps

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
    from aws_lambda_powertools.utilities.typing import LambdaContext

app = APIGatewayHttpResolver(enable_validation=True, response_validation_error_http_code=500)
JSON = "application/json"


# ---- dependencies (docs/adr/0023): tests ``with wiring.use(presence_deps(table, clock=...)):`` ------
wiring: Wiring[PresenceDeps] = Wiring(presence_deps)
Service = Annotated[PresenceService, Depends(lambda: wiring().service)]
Now = Annotated[datetime, Depends(lambda: wiring().clock())]


def caller() -> Principal:
    """The verified JWT claims of the request (401 problem when there are none)."""
    return principal_from_event(app.current_event.raw_event)


Caller = Annotated[Principal, Depends(caller)]
UserId = Annotated[str, Path(pattern=ID_PATTERN, description="the person's id (JWT sub)")]
LocationId = Annotated[str, Path(pattern=ID_PATTERN)]
SessionId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


def _answers(*problem_statuses: int, ok: str | None = "OK") -> dict[int, OpenAPIResponse]:
    answers: dict[int, OpenAPIResponse] = {200: {"description": ok}} if ok else {}
    answers.update(problems.responses(*problem_statuses))
    return answers


# ---- presence (P1-P7) ---------------------------------------------------------------------------
@app.put("/v1/me/presence", tags=["presence"], responses=_answers(400, 401, 503))
def put_my_presence(
    body: Annotated[schemas.PresenceIn, Body()], me: Caller, svc: Service, now: Now
) -> schemas.MyPresenceOut:
    """Choose a status and (optionally) a custom message; answers what you see of yourself."""
    return svc.set_presence(me, body, now)


@app.delete("/v1/me/presence", tags=["presence"], responses=_answers(401, 503))
def delete_my_presence(me: Caller, svc: Service, now: Now) -> schemas.MyPresenceOut:
    """Back to automatic: no chosen status, so meetings in progress show you busy again (P6)."""
    return svc.clear_presence(me, now)


@app.get(
    "/v1/users/<userId>/presence",
    tags=["presence"],
    responses={
        **_answers(400, 401, 403, 503, ok="OK (the ETag header tags this answer)"),
        304: {"description": "Not Modified: the If-None-Match tag is current (no body)", "content": {}},
    },
)
def get_presence(
    userId: UserId, me: Caller, svc: Service, now: Now
) -> Response[schemas.PresenceOut | schemas.MyPresenceOut]:
    """What others see of a person who shares a location with you (X1); yourself: also your choice.
    Carries an ETag; ``If-None-Match`` with the current one answers 304."""
    presence, etag = svc.get_presence(me, userId, now, app.current_event.headers.get("if-none-match"))
    return Response(status_code=200, content_type=JSON, body=presence, headers={"ETag": etag})


# ---- sessions (P5) ------------------------------------------------------------------------------
@app.post(
    "/v1/me/sessions",
    tags=["sessions"],
    responses={
        201: {"description": "Signed in", "content": {JSON: {"model": schemas.SessionOut}}},
        **problems.responses(401, 503),
    },
)
def create_session(me: Caller, svc: Service, now: Now) -> Response[schemas.SessionOut]:
    """Sign in on an app: you are online while a session lives (renew it before ``expiresAt``)."""
    return Response(status_code=201, content_type=JSON, body=svc.create_session(me, now))


@app.put("/v1/me/sessions/<sessionId>", tags=["sessions"], responses=_answers(400, 401, 404, 503))
def renew_session(sessionId: SessionId, me: Caller, svc: Service, now: Now) -> schemas.SessionOut:
    """Heartbeat: extend a live session; 404 once it was logged out or expired (sign in again)."""
    return svc.renew_session(me, sessionId, now)


@app.delete(
    "/v1/me/sessions/<sessionId>",
    tags=["sessions"],
    status_code=204,
    responses={204: {"description": "Logged out"}, **problems.responses(400, 401, 503)},
)
def delete_session(sessionId: SessionId, me: Caller, svc: Service, now: Now) -> Response[None]:
    """Log out of one session (idempotent)."""
    svc.end_session(me, sessionId, now)
    return Response(status_code=204, content_type=None, body=None)


# ---- profile (P8) -------------------------------------------------------------------------------
@app.post("/v1/me/profile/photo", tags=["profile"], responses=_answers(400, 401, 503))
def request_photo_upload(
    body: Annotated[schemas.PhotoUploadIn, Body()], me: Caller, svc: Service, now: Now
) -> schemas.PhotoUploadOut:
    """An upload URL for a JPEG or PNG of at most 5 MiB; S3 enforces both itself."""
    return svc.request_photo_upload(me, body, now)


@app.put(
    "/v1/locations/<locationId>/users/<userId>/directory-entry",
    tags=["profile"],
    responses=_answers(400, 401, 403, 503),
)
def put_directory_entry(
    locationId: LocationId,
    userId: UserId,
    body: Annotated[schemas.DirectoryEntryIn, Body()],
    me: Caller,
    svc: Service,
) -> schemas.DirectoryEntryOut:
    """An admin of the location sets a member's phone number and extension."""
    return svc.set_directory_entry(me, locationId, userId, body)


# ---- errors: every failure leaves as an RFC 9457 problem (the same mapping as ApiFunction's) -----
problem_handlers.install(app, logger, caller)


@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
