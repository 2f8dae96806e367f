"""What calsync asks of Google (registered in ``calsync.wiring.PROVIDER_MODULES``): the scheduling
function's writer (the account's opened refresh token, the listed Google calendar id) and the
accounts function's channel stopper (C9)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from calsync_google.settings import client_secret, get_google_settings
from calsync_google.source import GoogleContext
from calsync_google.worker import ServiceFactory, channel_stopper, open_refresh_token, service_factory
from calsync_google.writer import GoogleWriter

if TYPE_CHECKING:
    from calsync.api.accounts import StopPush
    from calsync.crypto import CredentialBox
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
            GoogleContext(
                account_id=account.account_id,
                calendar_id=calendar.calendar_id,
                access_role=calendar.access_role or listing.access_role,
                links=ctx.links,
            ),
        )

    return make
