"""calsync scheduling API: availability, appointments on the primary calendar, meeting links
(API.md; rules C6, C7, C8, C11, C12, U10).

A function of its own: it writes to providers (CalDAV layer; KMS decrypt of the account's
credentials), which the read-only API routes never do. Thin: Powertools routes and validates,
``calsync.api.scheduling`` does the work, errors leave as RFC 9457 problems.

``POST …/appointments`` with an ``Idempotency-Key`` header is idempotent (Powertools idempotency,
``DynamoDBPersistenceLayer`` on the calsync table: pk ``IDEM#scheduling``, sk the hashed key):
a retried request answers the first answer and writes nothing again; the same key with another
body is refused (422); a retry while the first is still running gets 409.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from calsync.api import problem_handlers, problems
from calsync.api.auth import ID_PATTERN, Principal, principal_from_event
from calsync.api.http import APIGatewayHttpResolver, Body, Depends, Header, Path, Query, Response
from calsync.api.scheduling import ProviderWriteRejected, SchedulingDeps, SchedulingService
from calsync.api.scheduling_schemas import AppointmentIn, AppointmentOut, Availability, Meeting
from calsync.config import get_settings
from calsync.crypto import CredentialBox, open_login
from calsync.domain.errors import CalsyncError, Conflict
from calsync.domain.link_generator import from_environment
from calsync.domain.models import Provider
from calsync.store import keys
from calsync.store.accounts import AccountRepository
from calsync.store.repository import Repository
from calsync.store.sync_state import SyncStateStore

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from calsync.api.scheduling import WriterFactory
    from calsync.store.accounts import Account, CalendarListing
    from calsync.store.items import Calendar
    from calsync.sync.writer import CalendarWriter

logger = Logger(service="calsync")
app = APIGatewayHttpResolver(enable_validation=True, response_validation_error_http_code=500)
JSON = "application/json"
MEETING_ID_PATTERN = r"^[a-f0-9]{32}$"
IDEMPOTENCY_KEY_PATTERN = r"^[A-Za-z0-9._:-]{8,128}$"
IDEMPOTENCY_TTL = 24 * 3600


def utc_now() -> datetime:
    return datetime.now(UTC)


clock: Callable[[], datetime] = utc_now  # tests freeze it
_overrides: dict[str, Any] = {}


def set_dependencies(**overrides: Any) -> None:
    """Tests: ``table``, ``kms``, ``key_id``, ``allow_local``, ``resolve``, ``links``,
    ``link_generator``, ``writers`` ({Provider: WriterFactory}), ``google_services``, ``microsoft``;
    no arguments restores the defaults."""
    _overrides.clear()
    _overrides.update(overrides)
    _service.cache_clear()
    _persistence.cache_clear()


def _table() -> Any:
    table = _overrides.get("table")
    if table is None:
        table = boto3.resource("dynamodb").Table(get_settings().table_name)
    return table


def _listing(accounts: AccountRepository, account: Account, calendar: Calendar) -> CalendarListing:
    """The account's listing of ``calendar`` (its provider id / URL); refused once it is gone."""
    listing = next(
        (
            c
            for c in accounts.list_calendars_of_account(account.account_id)
            if c.calendar_id == calendar.calendar_id
        ),
        None,
    )
    if listing is None or not listing.href:
        raise ProviderWriteRejected("the account no longer lists this calendar")
    return listing


def _on_first_write(build: Callable[[], WriterFactory]) -> WriterFactory:
    """A provider's writer factory, built when a write first needs it: reads (availability) never
    import a provider SDK nor create its clients."""
    built: list[WriterFactory] = []

    def make(account: Account, calendar: Calendar) -> CalendarWriter:
        if not built:
            built.append(build())
        return built[0](account, calendar)

    return make


def _caldav_writer_factory() -> WriterFactory:
    """CalDAV: the account's opened login, the listed collection URL, the X6-guarded session."""
    from calsync_caldav.connect import guarded_session  # noqa: PLC0415 - CaldavLayer
    from calsync_caldav.ical import ParseContext  # noqa: PLC0415
    from calsync_caldav.worker import _zone, collection_url  # noqa: PLC0415
    from calsync_caldav.writer import CalDAVWriter  # noqa: PLC0415

    o, settings = _overrides, get_settings()
    box = CredentialBox(o.get("kms") or boto3.client("kms"), o.get("key_id") or settings.credentials_key_id)
    allow_local = bool(o.get("allow_local", settings.local))
    links = o.get("links") or settings.links
    accounts = AccountRepository(_table())

    def make(account: Account, calendar: Calendar) -> CalendarWriter:
        listing = _listing(accounts, account, calendar)
        username, password = open_login(
            box, account.credentials, {"userId": account.user_id, "accountId": account.account_id}
        )
        return CalDAVWriter(
            guarded_session(allow_local=allow_local, resolve=o.get("resolve")),
            (username, password),
            collection_url(account, listing),  # discovery's URL (iCloud: the partition host)
            ParseContext(
                account_id=account.account_id,
                calendar_id=calendar.calendar_id,
                own_addresses=frozenset(a.lower() for a in account.own_addresses),
                calendar_writable=calendar.access_role in ("owner", "writer"),
                calendar_time_zone=_zone(calendar.time_zone or listing.time_zone),
                links=links,
            ),
            organizer=(account.own_addresses or [account.email or ""])[0] or None,
            clock=clock,
        )

    return make


def _google_writer_factory() -> WriterFactory:
    """Google: the account's opened refresh token, the listed Google calendar id (GoogleLayer).
    Tests: ``google_services`` (refresh token -> calendar service)."""
    from calsync_google.settings import client_secret, get_google_settings  # noqa: PLC0415
    from calsync_google.source import GoogleContext  # noqa: PLC0415
    from calsync_google.worker import open_refresh_token, service_factory  # noqa: PLC0415
    from calsync_google.writer import GoogleWriter  # noqa: PLC0415

    o, settings = _overrides, get_settings()
    box = CredentialBox(o.get("kms") or boto3.client("kms"), o.get("key_id") or settings.credentials_key_id)
    services = o.get("google_services") or service_factory(client_secret, get_google_settings().endpoints)
    links = o.get("links") or settings.links
    accounts = AccountRepository(_table())

    def make(account: Account, calendar: Calendar) -> CalendarWriter:
        listing = _listing(accounts, account, calendar)
        context = {"userId": account.user_id, "accountId": account.account_id}
        return GoogleWriter(
            services(open_refresh_token(box, account.credentials, context)),
            listing.href,
            GoogleContext(
                account_id=account.account_id,
                calendar_id=calendar.calendar_id,
                access_role=calendar.access_role or listing.access_role,
                links=links,
            ),
        )

    return make


def _microsoft_writer_factory() -> WriterFactory:
    """Microsoft: the account's opened msal cache (written back after the write), the listed Graph
    calendar id (MicrosoftLayer). Tests: ``microsoft`` (overrides of ``calsync_microsoft.wiring``:
    ``http_client``, ``client_secret``, ``settings``…), on top of ``table``, ``kms``, ``key_id``."""
    from calsync_microsoft.wiring import writer_factory  # noqa: PLC0415 - MicrosoftLayer

    make_writer = writer_factory({**_overrides, "table": _table(), **(_overrides.get("microsoft") or {})})
    accounts = AccountRepository(_table())

    def make(account: Account, calendar: Calendar) -> CalendarWriter:
        listing = _listing(accounts, account, calendar)
        return make_writer(account, calendar, listing.href)

    return make


def _writers() -> dict[Provider, WriterFactory]:
    if "writers" in _overrides:
        return dict(_overrides["writers"])
    return {
        Provider.CALDAV: _on_first_write(_caldav_writer_factory),
        Provider.GOOGLE: _on_first_write(_google_writer_factory),
        Provider.MICROSOFT: _on_first_write(_microsoft_writer_factory),
    }


@functools.cache
def _service() -> SchedulingService:
    table = _table()
    deps = SchedulingDeps(
        writers=_writers(), link_generator=_overrides.get("link_generator") or from_environment()
    )
    return SchedulingService(Repository(table), AccountRepository(table), SyncStateStore(table), deps)


@functools.cache
def _persistence() -> DynamoDBPersistenceLayer:
    # only an appointment with an Idempotency-Key needs Powertools' idempotency
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer  # noqa: PLC0415

    table = _table()
    meta = table.meta.client.meta
    # a plain client (the resource's own client would serialize the typed values a second time)
    client = boto3.client("dynamodb", region_name=meta.region_name, endpoint_url=meta.endpoint_url)
    return DynamoDBPersistenceLayer(
        table_name=table.name,
        key_attr="pk",
        sort_key_attr="sk",
        static_pk_value=keys.IDEMPOTENCY_PK,
        expiry_attr="expiresAt",  # the table's TTL attribute: records expire on their own
        boto3_client=client,
    )


def service() -> SchedulingService:
    return _service()


def caller() -> Principal:
    return principal_from_event(app.current_event.raw_event)


Caller = Annotated[Principal, Depends(caller)]
Service = Annotated[SchedulingService, Depends(service)]
UserId = Annotated[str, Path(pattern=ID_PATTERN, description="the person's id (JWT sub)")]
LocationId = Annotated[str, Path(pattern=ID_PATTERN)]
MeetingId = Annotated[str, Path(pattern=MEETING_ID_PATTERN)]


class IdempotencyKeyReused(CalsyncError):
    status = 422
    type_slug = "idempotency-key-reused"
    title = "Idempotency-Key reused with another request"


class IdempotencyInProgress(Conflict):
    type_slug = "idempotency-in-progress"
    title = "The same request is still being processed"


_MORE = {422: "Idempotency-Key reused with another body", 502: "The calendar provider could not be reached"}


def _problems(*statuses: int) -> dict[int, OpenAPIResponse]:
    out = problems.responses(*(s for s in statuses if s not in _MORE))
    for s in statuses:
        if s in _MORE:
            out[s] = {
                "description": _MORE[s],
                "content": {problems.PROBLEM_JSON: {"model": problems.Problem}},
            }
    return out


def _answers(*statuses: int) -> dict[int, OpenAPIResponse]:
    return {200: {"description": "OK"}, **_problems(*statuses)}


# ---- routes ------------------------------------------------------------------------------------
@app.get(
    "/v1/locations/<locationId>/users/<userId>/availability",
    tags=["scheduling"],
    responses=_answers(400, 401, 403, 503),
)
def availability(
    *,
    locationId: LocationId,
    userId: UserId,
    start: Annotated[datetime, Query(description="RFC 3339 with offset")],
    end: Annotated[datetime, Query(description="RFC 3339 with offset; at most 62 days after start")],
    me: Caller,
    svc: Service,
) -> Availability:
    """Merged busy intervals of the person's primary and conflict calendars in the location (C11),
    from the store (no provider call). The person, or an admin of the location for a member (C8)."""
    return svc.availability(me, locationId, userId, start, end)


@app.post(
    "/v1/locations/<locationId>/users/<userId>/appointments",
    tags=["scheduling"],
    responses={
        201: {"description": "Written to the primary calendar", "content": {JSON: {"model": AppointmentOut}}},
        **_problems(400, 401, 403, 409, 422, 502, 503),
    },
)
def book(
    *,
    locationId: LocationId,
    userId: UserId,
    body: Annotated[AppointmentIn, Body()],
    me: Caller,
    svc: Service,
    idempotency_key: Annotated[
        str | None,
        Header(alias="idempotency-key", pattern=IDEMPOTENCY_KEY_PATTERN, description="retry safely"),
    ] = None,
) -> Response[dict[str, Any]]:
    """Write an appointment to the person's primary calendar (C7). 409 when no primary calendar is
    set, or when it overlaps busy time (unless ``allowConflict``)."""

    def run(request: dict[str, Any]) -> dict[str, Any]:
        out = svc.book(me, locationId, userId, body, clock())
        return out.model_dump(mode="json", by_alias=True)

    request = {
        "caller": me.user_id,
        "userId": userId,
        "locationId": locationId,
        "key": idempotency_key,
        "body": body.model_dump(mode="json"),
    }
    result = run(request) if idempotency_key is None else _idempotent(run, request)
    return Response(status_code=201, content_type=JSON, body=result)


def _idempotent(run: Callable[[dict[str, Any]], dict[str, Any]], request: dict[str, Any]) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.idempotency import (  # noqa: PLC0415
        IdempotencyConfig,
        idempotent_function,
    )
    from aws_lambda_powertools.utilities.idempotency.exceptions import (  # noqa: PLC0415
        IdempotencyAlreadyInProgressError,
        IdempotencyValidationError,
    )

    config = IdempotencyConfig(
        event_key_jmespath="[caller, userId, locationId, key]",
        payload_validation_jmespath="body",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=IDEMPOTENCY_TTL,
    )
    if app.lambda_context is not None:  # an in-progress record expires with the invocation
        config.register_lambda_context(app.lambda_context)
    wrapped = idempotent_function(
        data_keyword_argument="request", persistence_store=_persistence(), config=config
    )(run)
    try:
        result: dict[str, Any] = wrapped(request=request)
    except IdempotencyValidationError as exc:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used with another request body: use a new key for a new appointment"
        ) from exc
    except IdempotencyAlreadyInProgressError as exc:
        raise IdempotencyInProgress("the first request with this Idempotency-Key is still running") from exc
    return result


@app.post(
    "/v1/me/meetings/<meetingId>/meeting-link",
    tags=["meetings"],
    responses=_answers(400, 401, 404, 409, 502, 503),
)
def add_meeting_link(meetingId: MeetingId, me: Caller, svc: Service) -> Meeting:
    """Add a meeting link to one of your listed, non-recurring meetings without one (C12, U10);
    written to the provider, then listed with it. 409 otherwise."""
    return svc.add_meeting_link(me, meetingId, clock())


problem_handlers.install(app, logger, caller)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
