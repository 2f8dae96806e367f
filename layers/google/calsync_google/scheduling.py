"""The scheduling function's Google writer (registered in ``calsync.wiring.scheduling``): the
account's opened refresh token, the listed Google calendar id."""

from __future__ import annotations

from typing import TYPE_CHECKING

from calsync_google.settings import client_secret, get_google_settings
from calsync_google.source import GoogleContext
from calsync_google.worker import ServiceFactory, open_refresh_token, service_factory
from calsync_google.writer import GoogleWriter

if TYPE_CHECKING:
    from calsync.store.accounts import Account, CalendarListing
    from calsync.store.items import Calendar
    from calsync.sync.writer import CalendarWriter
    from calsync.wiring.scheduling import ListedWriterFactory, WriterContext


def writers(ctx: WriterContext, *, services: ServiceFactory | None = None) -> ListedWriterFactory:
    """``services``: a refresh token -> a calendar service (tests: the fake's); else Google's."""
    calendar_services = services or service_factory(client_secret, get_google_settings().endpoints)

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
