"""calsync HTTP API: every HttpApi route of ApiFunction in template.yaml (API.md).

Thin: Powertools' event handler routes and validates (pydantic, OpenAPI), ``calsync.api.service``
does the work, and every error leaves as an RFC 9457 problem from the handlers at the bottom.
Its import loads what every route uses (boto3 included: docs/adr/0010); the settings are read and the
table reached on the first request.
"""

from __future__ import annotations

import functools
import os
import pathlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from calsync.api import problem_handlers, problems
from calsync.api.auth import ID_PATTERN, Principal, principal_from_event
from calsync.api.calendar_sync import CalendarSync
from calsync.api.http import APIGatewayHttpResolver, Body, Depends, Path, Query, Response
from calsync.api.schemas import (
    CALENDAR_ID_PATTERN,
    ExplainedMeetings,
    Meetings,
    ProfileOut,
    ProfilePatch,
    RoomIn,
    RoomOut,
)
from calsync.api.service import ApiService
from calsync.config import get_presence_settings, get_settings
from calsync.domain.models import Provider
from calsync.store.photos import PhotoStore
from calsync.store.repository import Repository
from calsync.sync.jobs import enqueue_sync

if TYPE_CHECKING:
    from collections.abc import Mapping

    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from calsync.api.calendar_sync import Enqueue
    from calsync.sync.jobs import SyncJob

logger = Logger(service="calsync")  # the same logger as calsync.observability's (same service)
app = APIGatewayHttpResolver(enable_validation=True, response_validation_error_http_code=500)

JSON = "application/json"


# ---- dependencies: clock, table, caller (tests override clock() and set_table()) ---------------
def clock() -> datetime:
    """Now. Tests monkeypatch this to freeze time."""
    return datetime.now(UTC)


_table: Any = None


_queues: Mapping[Provider, Enqueue] | None = None


def set_table(table: Any | None, sync_queues: Mapping[Provider, Enqueue] | None = None) -> None:
    """Use this DynamoDB ``Table`` resource (tests); ``None``: the one named by TABLE_NAME.
    ``sync_queues``: what receives the sync jobs of room calendars, per provider (tests); ``None``:
    the providers' SQS queues named by *_SYNC_QUEUE_URL."""
    global _table, _queues  # noqa: PLW0603 - the one injection point of the module
    _table = table
    _queues = sync_queues
    _repository.cache_clear()
    _photos.cache_clear()
    _sync_queues.cache_clear()


@functools.cache
def _repository() -> Repository:
    # the settings are read and the table reached on the first request (tests set their own first)
    table = _table
    if table is None:
        table = boto3.resource("dynamodb").Table(get_settings().table_name)
    return Repository(table)


@functools.cache
def _photos() -> PhotoStore | None:
    """Profile photos (P8, issue 8): the bucket named by PHOTO_BUCKET, if any (first request only)."""
    bucket = get_presence_settings().photo_bucket
    if bucket is None:
        return None
    return PhotoStore(None, bucket)  # the S3 client is made by the first photo route


@functools.cache
def _sync_queues() -> Mapping[Provider, Enqueue]:
    """R8: each provider's sync queue (CALDAV_SYNC_QUEUE_URL, GOOGLE_SYNC_QUEUE_URL,
    MICROSOFT_SYNC_QUEUE_URL), reached on a room's first PUT or DELETE only. Microsoft takes
    mailbox jobs (calsync_microsoft.jobs, MicrosoftLayer)."""
    if _queues is not None:
        return _queues

    @functools.cache
    def sqs() -> Any:
        return boto3.client("sqs")

    def calendar_queue(url: str) -> Enqueue:
        def enqueue(job: SyncJob) -> None:
            enqueue_sync(sqs(), url, job)

        return enqueue

    out: dict[Provider, Enqueue] = {}
    for provider in (Provider.CALDAV, Provider.GOOGLE):
        url = os.environ.get(f"{provider.value.upper()}_SYNC_QUEUE_URL", "")
        if url:
            out[provider] = calendar_queue(url)
    microsoft = os.environ.get("MICROSOFT_SYNC_QUEUE_URL", "")
    if microsoft:
        try:
            from calsync_microsoft import jobs as ms_jobs  # noqa: PLC0415 - MicrosoftLayer
        except ImportError:
            logger.warning("no MicrosoftLayer: rooms on Microsoft calendars are not synced")
        else:

            def mailbox(job: SyncJob) -> None:
                ms_jobs.enqueue(sqs(), microsoft, ms_jobs.from_sync_job(job))

            out[Provider.MICROSOFT] = mailbox
    return out


RESERVE_MS = 3_000  # R8: a room's copy from the store stops this long before the function's timeout


def _in_time() -> bool:
    """Whether the request still has time for another page of a room's copy (the rest is then left
    to the full sync that registering the room queues anyway)."""
    context = getattr(app, "lambda_context", None)
    return context is None or int(context.get_remaining_time_in_millis()) > RESERVE_MS


def service() -> ApiService:
    repository = _repository()
    return ApiService(repository, _photos(), CalendarSync(repository, _sync_queues(), in_time=_in_time))


def caller() -> Principal:
    """The verified JWT claims of the request (401 problem when there are none)."""
    return principal_from_event(app.current_event.raw_event)


Caller = Annotated[Principal, Depends(caller)]
Service = Annotated[ApiService, Depends(service)]
Explain = Annotated[
    bool, Query(description="also list the events left out in the window, with rule ids (U11)")
]
UserId = Annotated[str, Path(pattern=ID_PATTERN, description="the person's id (JWT sub)")]
RoomId = Annotated[str, Path(pattern=ID_PATTERN)]
LocationId = Annotated[str, Path(pattern=ID_PATTERN)]
RoomLocation = Annotated[
    str | None,
    Query(pattern=ID_PATTERN, description="the room's location, when several of yours have this room id"),
]
CalendarId = Annotated[
    str, Path(pattern=CALENDAR_ID_PATTERN, description="one of your calendars (GET /v1/me/calendars)")
]


def _answers(*problem_statuses: int, ok: str | None = "OK") -> dict[int, OpenAPIResponse]:
    """OpenAPI answers of a route: 200 (the return type's schema) and the problems it may give."""
    answers: dict[int, OpenAPIResponse] = {200: {"description": ok}} if ok else {}
    answers.update(problems.responses(*problem_statuses))
    return answers


def _conditional(*problem_statuses: int) -> dict[int, OpenAPIResponse]:
    """The answers of a GET with an ``ETag``: also 304 for a current ``If-None-Match``."""
    return {
        **_answers(*problem_statuses, ok="OK (the ETag header tags this answer)"),
        304: {"description": "Not Modified: the If-None-Match tag is current (no body)", "content": {}},
    }


# ---- routes ------------------------------------------------------------------------------------
def if_none_match() -> str | None:
    """The request's ``If-None-Match`` header (API Gateway passes header names in lower case)."""
    return app.current_event.headers.get("if-none-match")


def _tagged(answer: tuple[Meetings, str]) -> Response[Meetings | ExplainedMeetings]:
    meetings, etag = answer
    return Response(status_code=200, content_type=JSON, body=meetings, headers={"ETag": etag})


@app.get("/v1/me/meetings", tags=["meetings"], responses=_conditional(400, 401, 503))
def my_meetings(me: Caller, svc: Service, explain: Explain = False) -> Response[Meetings | ExplainedMeetings]:
    """The caller's meetings of the next three days (U1-U11). Carries an ETag; ``If-None-Match``
    with the current one answers 304."""
    return _tagged(svc.my_meetings(me, clock(), explain=explain, if_none_match=if_none_match()))


@app.get("/v1/users/<userId>/meetings", tags=["meetings"], responses=_conditional(400, 401, 403, 503))
def user_meetings(
    userId: UserId, me: Caller, svc: Service, explain: Explain = False
) -> Response[Meetings | ExplainedMeetings]:
    """The meetings of a member of a location the caller administers (X1). ETag as above."""
    return _tagged(svc.user_meetings(me, userId, clock(), explain=explain, if_none_match=if_none_match()))


@app.get("/v1/rooms/<roomId>/meetings", tags=["meetings"], responses=_conditional(400, 401, 404, 409, 503))
def room_meetings(
    roomId: RoomId,
    me: Caller,
    svc: Service,
    explain: Explain = False,
    locationId: RoomLocation = None,
) -> Response[Meetings | ExplainedMeetings]:
    """A room panel's meetings (R1-R7): at most three, links first, private titles hidden. Room ids
    are scoped by location: the room is looked for in the caller's locations (404 when none has it,
    409 when several do and ``locationId`` does not name one). ETag as above."""
    return _tagged(
        svc.room_meetings(
            me, roomId, clock(), explain=explain, location_id=locationId, if_none_match=if_none_match()
        )
    )


@app.get("/v1/me/profile", tags=["profile"], responses=_answers(401, 503))
def my_profile(me: Caller, svc: Service) -> ProfileOut:
    return svc.my_profile(me)


@app.patch("/v1/me/profile", tags=["profile"], responses=_answers(400, 401, 503))
def patch_my_profile(patch: Annotated[ProfilePatch, Body()], me: Caller, svc: Service) -> ProfileOut:
    """Change the time zone (IANA name) and/or display name."""
    return svc.update_my_profile(me, patch)


@app.put(
    "/v1/locations/<locationId>/rooms/<roomId>",
    tags=["rooms"],
    responses={
        200: {"description": "Changed", "content": {JSON: {"model": RoomOut}}},
        201: {"description": "Created", "content": {JSON: {"model": RoomOut}}},
        **problems.responses(400, 401, 403, 409, 503),
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
    status_code=204,
    responses={204: {"description": "Deleted"}, **problems.responses(400, 401, 403, 404, 503)},
)
def delete_room(locationId: LocationId, roomId: RoomId, me: Caller, svc: Service) -> Response[None]:
    svc.delete_room(me, locationId, roomId)
    return Response(status_code=204, content_type=None, body=None)


@app.put(
    "/v1/me/calendars/<calendarId>/room-consent",
    tags=["rooms"],
    status_code=204,
    responses={204: {"description": "Marked as a room calendar"}, **problems.responses(400, 401, 404, 503)},
)
def give_room_consent(calendarId: CalendarId, me: Caller, svc: Service) -> Response[None]:
    """R9: mark one of your calendars as a room calendar, so that an admin of one of your locations
    may make it a room there (an admin never does so without it)."""
    svc.give_room_consent(me, calendarId)
    return Response(status_code=204, content_type=None, body=None)


@app.delete(
    "/v1/me/calendars/<calendarId>/room-consent",
    tags=["rooms"],
    status_code=204,
    responses={204: {"description": "No longer a room calendar"}, **problems.responses(400, 401, 404, 503)},
)
def withdraw_room_consent(calendarId: CalendarId, me: Caller, svc: Service) -> Response[None]:
    """R9: take the mark back: the rooms that admins made of the calendar are deleted."""
    svc.withdraw_room_consent(me, calendarId)
    return Response(status_code=204, content_type=None, body=None)


@app.get("/v1/openapi.json", include_in_schema=False)
def openapi() -> Response[str]:
    """The OpenAPI document of the whole HTTP API, generated from the code (no token needed)."""
    return Response(status_code=200, content_type=JSON, body=_openapi_json())


@functools.cache
def _openapi_json() -> str:
    """The document of the whole HTTP API (every function's routes), generated from their resolvers
    by `make openapi` (local/openapi.py) and shipped beside this module."""
    return (pathlib.Path(__file__).parent / "openapi.json").read_text(encoding="utf-8")


# ---- errors: every failure becomes a problem answer (the mapping every HTTP function shares) ------
problem_handlers.install(app, logger, caller)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
