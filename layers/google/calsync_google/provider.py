"""What calsync asks of Google (registered in ``calsync.wiring.PROVIDER_MODULES``): the scheduling
function's writer (the account's opened refresh token, the listed Google calendar id), the
accounts function's channel stopper (C9), and GoogleAccountsFunction's dependencies."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import boto3

from calsync.config import get_settings
from calsync.crypto import CredentialBox
from calsync.store.accounts import AccountRepository
from calsync.sync.jobs import SyncJob, enqueue_sync
from calsync.wiring import Clock, table_from_settings, utc_now
from calsync.wiring.connect import ConnectFunctionDeps, accounts_service
from calsync_google.client import ClientSecret, GoogleEndpoints
from calsync_google.connect import GoogleConnect
from calsync_google.oauth import OAuthFlow
from calsync_google.settings import client_secret, get_google_settings
from calsync_google.worker import (
    ServiceFactory,
    channel_stopper,
    google_context,
    open_refresh_token,
    service_factory,
)
from calsync_google.writer import GoogleWriter

if TYPE_CHECKING:
    from calsync.api.accounts import StopPush
    from calsync.store.accounts import Account, CalendarListing
    from calsync.store.items import Calendar
    from calsync.sync.writer import CalendarWriter
    from calsync.wiring.scheduling import ListedWriterFactory, WriterContext


def _services(services: ServiceFactory | None) -> ServiceFactory:
    """``services``: a refresh token -> a calendar service (tests: the fake's); else Google's."""
    return services or service_factory(client_secret, get_google_settings().endpoints)


def push_stopper(table: Any, box: CredentialBox, *, services: ServiceFactory | None = None) -> StopPush:
    """C9: stops the account's watch channels at Google."""
    return channel_stopper(table, box, _services(services))


def writers(ctx: WriterContext, *, services: ServiceFactory | None = None) -> ListedWriterFactory:
    calendar_services = _services(services)

    def make(account: Account, calendar: Calendar, listing: CalendarListing) -> CalendarWriter:
        context = {"userId": account.user_id, "accountId": account.account_id}
        return GoogleWriter(
            calendar_services(open_refresh_token(ctx.box, account.credentials, context)),
            listing.href,
            google_context(account, calendar, listing, ctx.links),
        )

    return make


def connect_deps(
    table: Any = None,
    *,
    kms: Any = None,
    key_id: str | None = None,
    sqs: Any = None,
    queue_url: str | None = None,
    client: Callable[[], ClientSecret] | None = None,
    endpoints: GoogleEndpoints | None = None,
    clock: Clock = utc_now,
) -> ConnectFunctionDeps[GoogleConnect]:
    """GoogleAccountsFunction's (docs/adr/0023): from the settings; a test passes its table, moto
    clients, the fake's ``client`` secret and ``endpoints``, its clock."""
    settings, google = get_settings(), get_google_settings()
    table = table if table is not None else table_from_settings()
    box = CredentialBox(kms or boto3.client("kms"), key_id or settings.credentials_key_id)
    queue, url = sqs or boto3.client("sqs"), queue_url or google.sync_queue_url
    endpoints = endpoints or google.endpoints
    secret = client or client_secret

    def enqueue(job: SyncJob) -> None:
        enqueue_sync(queue, url, job)

    connect = GoogleConnect(
        OAuthFlow(table, secret, endpoints),
        accounts=AccountRepository(table),
        service=accounts_service(table, box, enqueue),
        box=box,
        services=service_factory(secret, endpoints),
        enqueue=enqueue,
    )
    return ConnectFunctionDeps(connect, clock)
