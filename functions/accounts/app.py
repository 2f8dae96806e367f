"""calsync accounts API: connect a CalDAV account, accounts and calendars, calendar configuration,
disconnect (API.md "Accounts", "Calendars and configuration"; rules C2-C9, S7, X6).

A function of its own because it needs the CalDAV layer (caldav + requests), which the other API
routes do not. Thin: Powertools routes and validates, ``calsync.api.accounts`` does the work,
errors leave as RFC 9457 problems. Its import loads what every route uses; the settings, clients
and table come with the first request; a provider's SDK with the first disconnect that needs it.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import boto3
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
from calsync.api.accounts import AccountsDeps, AccountsService, Discovery, Enqueue, StopPush
from calsync.api.auth import ID_PATTERN, Principal, principal_from_event
from calsync.api.http import APIGatewayHttpResolver, Body, Depends, Path, Response
from calsync.config import get_settings
from calsync.crypto import CredentialBox
from calsync.domain.models import Provider
from calsync.store.accounts import AccountRepository
from calsync.store.repository import Repository
from calsync.sync.jobs import enqueue_sync

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from calsync.store.accounts import Account
    from calsync.sync.jobs import SyncJob

logger = Logger(service="calsync")
app = APIGatewayHttpResolver(enable_validation=True, response_validation_error_http_code=500)
JSON = "application/json"
ACCOUNT_ID_PATTERN = r"^[a-f0-9]{32}$"


# ---- dependencies (tests override them with set_dependencies) -----------------------------------
_overrides: dict[str, Any] = {}


def set_dependencies(**overrides: Any) -> None:
    """Tests: ``table``, ``kms``, ``sqs``, ``queue_url``, ``key_id``, ``allow_local``, ``resolve``,
    ``enqueue``, ``queue_urls``, ``stop_push``; no arguments restores the defaults."""
    _overrides.clear()
    _overrides.update(overrides)
    _service.cache_clear()


def _client(name: str) -> Any:
    return boto3.client(name)


def _enqueue_via(sqs: Any, queue_url: str) -> Enqueue:
    """Sync jobs on the CalDAV sync queue (FIFO, group = calendar, fresh dedup id: S6)."""

    def enqueue(job: SyncJob) -> None:
        enqueue_sync(sqs, queue_url, job)

    return enqueue


@functools.cache
def _service() -> AccountsService:
    settings = get_settings()
    table = _overrides.get("table")
    if table is None:
        table = boto3.resource("dynamodb").Table(settings.table_name)
    allow_local = bool(_overrides.get("allow_local", settings.local))
    resolve = _overrides.get("resolve")

    def discover(server_url: str, username: str, password: str) -> Discovery:
        from calsync_caldav.connect import discover as caldav_discover  # noqa: PLC0415 - CaldavLayer

        return caldav_discover(server_url, username, password, allow_local=allow_local, resolve=resolve)

    box = CredentialBox(
        _overrides.get("kms") or _client("kms"), _overrides.get("key_id") or settings.credentials_key_id
    )
    sqs = _overrides.get("sqs") or _client("sqs")
    enqueue = _overrides.get("enqueue") or _enqueue_via(
        sqs, _overrides.get("queue_url") or settings.caldav_sync_queue_url
    )
    deps = AccountsDeps(
        discover, box, enqueue, stop_push=_stop_push(table, box), enqueue_for=_enqueue_for(sqs, enqueue)
    )
    return AccountsService(Repository(table), AccountRepository(table), deps)


def _enqueue_for(sqs: Any, caldav: Enqueue) -> dict[Any, Enqueue]:
    """Each provider's calendars on its own sync queue (CALDAV_SYNC_QUEUE_URL, GOOGLE_SYNC_QUEUE_URL,
    MICROSOFT_SYNC_QUEUE_URL; tests: ``queue_urls`` {provider value: url}). Google takes calendar
    jobs like CalDAV; Microsoft takes mailbox jobs (calsync_microsoft.jobs, MicrosoftLayer: group =
    the mailbox). A provider without a queue URL (or without its layer) is not routed."""
    urls = dict(_overrides.get("queue_urls") or {})
    out: dict[Any, Enqueue] = {Provider.CALDAV: caldav}
    google = urls.get("google", os.environ.get("GOOGLE_SYNC_QUEUE_URL", ""))
    if google:
        out[Provider.GOOGLE] = _enqueue_via(sqs, google)
    microsoft = urls.get("microsoft", os.environ.get("MICROSOFT_SYNC_QUEUE_URL", ""))
    if microsoft:
        try:
            from calsync_microsoft import jobs as ms_jobs  # noqa: PLC0415 - MicrosoftLayer
        except ImportError:  # no MicrosoftLayer: its calendars sync on connect and on notifications
            return out

        def enqueue_mailbox(job: SyncJob) -> None:
            ms_jobs.enqueue(sqs, microsoft, ms_jobs.from_sync_job(job))

        out[Provider.MICROSOFT] = enqueue_mailbox
    return out


def _stop_push(table: Any, box: Any) -> dict[Any, Any]:
    """C9: disconnect stops the account's push channels (Google: calsync_google, GoogleLayer;
    Microsoft: the mailbox's Graph subscription, MicrosoftLayer; docs/adr/0005); tests:
    ``stop_push``, or ``microsoft`` (overrides of calsync_microsoft.wiring). Without a provider's
    layer nothing is stopped there: Google channels expire (<= 7 days), Graph subscriptions (<= 3
    days), and their notifications are dropped (unknown channel or subscription). Only a disconnect
    needs a provider's SDK: each stopper is built (its layer imported) on its first use."""
    if "stop_push" in _overrides:
        return dict(_overrides["stop_push"])

    def google() -> StopPush | None:
        try:
            from calsync_google.settings import client_secret, get_google_settings  # noqa: PLC0415
            from calsync_google.worker import channel_stopper, service_factory  # noqa: PLC0415
        except ImportError:  # no GoogleLayer in this function
            return None
        services = service_factory(client_secret, get_google_settings().endpoints)
        return channel_stopper(table, box, services)

    def microsoft() -> StopPush | None:
        try:
            from calsync_microsoft.wiring import subscription_stopper  # noqa: PLC0415
        except ImportError:  # no MicrosoftLayer in this function
            return None
        return subscription_stopper({"table": table, "box": box, **(_overrides.get("microsoft") or {})})

    return {Provider.GOOGLE: _on_first_use(google), Provider.MICROSOFT: _on_first_use(microsoft)}


def _on_first_use(build: Callable[[], StopPush | None]) -> StopPush:
    """A stopper built when a disconnect first needs it (``None``: nothing to stop with)."""

    @functools.cache
    def built() -> StopPush | None:
        return build()

    def stop(account: Account) -> int:
        stopper = built()
        return 0 if stopper is None else stopper(account)

    return stop


def service() -> AccountsService:
    return _service()


def caller() -> Principal:
    return principal_from_event(app.current_event.raw_event)


Caller = Annotated[Principal, Depends(caller)]
Service = Annotated[AccountsService, Depends(service)]
UserId = Annotated[str, Path(pattern=ID_PATTERN, description="the person's id (JWT sub)")]
LocationId = Annotated[str, Path(pattern=ID_PATTERN)]
AccountId = Annotated[str, Path(pattern=ACCOUNT_ID_PATTERN)]


def _answers(*statuses: int) -> dict[int, OpenAPIResponse]:
    return {200: {"description": "OK"}, **problems.responses(*statuses)}


# ---- routes ------------------------------------------------------------------------------------
@app.get("/v1/me/accounts", tags=["accounts"], responses=_answers(401, 503))
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


@app.get("/v1/me/calendars", tags=["calendars"], responses=_answers(401, 503))
def my_calendars(me: Caller, svc: Service) -> CalendarsOut:
    """The calendars of the caller's accounts, with calsync's access role to each."""
    return svc.list_calendars(me)


@app.get(
    "/v1/locations/<locationId>/users/<userId>/calendar-config",
    tags=["calendars"],
    responses=_answers(400, 401, 403, 503),
)
def get_calendar_config(
    locationId: LocationId, userId: UserId, me: Caller, svc: Service
) -> CalendarConfigOut:
    """Primary and conflict calendars of a person in a location (the person, or an admin of it)."""
    return svc.get_config(me, locationId, userId)


@app.put(
    "/v1/locations/<locationId>/users/<userId>/calendar-config",
    tags=["calendars"],
    responses=_answers(400, 401, 403, 503),
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
