"""The scheduling function's CalDAV writer (registered in ``calsync.wiring.PROVIDER_MODULES``): the
account's opened login, the listed collection URL, the X6-guarded session."""

from __future__ import annotations

from typing import TYPE_CHECKING

from calsync.crypto import open_login
from calsync_caldav.connect import guarded_session
from calsync_caldav.worker import collection_url, parse_context
from calsync_caldav.writer import CalDAVWriter

if TYPE_CHECKING:
    from calsync.store.accounts import Account, CalendarListing
    from calsync.store.items import Calendar
    from calsync.sync.writer import CalendarWriter
    from calsync.wiring.scheduling import ListedWriterFactory, WriterContext


def writers(ctx: WriterContext) -> ListedWriterFactory:
    def make(account: Account, calendar: Calendar, listing: CalendarListing) -> CalendarWriter:
        username, password = open_login(
            ctx.box, account.credentials, {"userId": account.user_id, "accountId": account.account_id}
        )
        return CalDAVWriter(
            guarded_session(allow_local=ctx.allow_local, resolve=ctx.resolve),
            (username, password),
            collection_url(account, listing),  # discovery's URL (iCloud: the partition host)
            parse_context(account, calendar, listing, ctx.links),
            organizer=(account.own_addresses or [account.email or ""])[0] or None,
            clock=ctx.clock,
        )

    return make
