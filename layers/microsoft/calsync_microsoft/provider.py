"""What calsync asks of Microsoft (registered in ``calsync.wiring.PROVIDER_MODULES``): the scheduling
function's writer (the account's opened msal cache, written back after the write; the listed Graph
calendar id) and the accounts function's subscription stopper (C9). ``overrides``: those of
``calsync_microsoft.wiring`` (tests: ``http_client``, ``client_secret``, ``settings``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from calsync_microsoft.wiring import subscription_stopper, writer_factory

if TYPE_CHECKING:
    from calsync.api.accounts import StopPush
    from calsync.crypto import CredentialBox
    from calsync.store.accounts import Account, CalendarListing
    from calsync.store.items import Calendar
    from calsync.sync.writer import CalendarWriter
    from calsync.wiring.scheduling import ListedWriterFactory, WriterContext


def push_stopper(table: Any, box: CredentialBox, **overrides: Any) -> StopPush:
    """C9: deletes the mailbox's Graph subscription."""
    return subscription_stopper({"table": table, "box": box, **overrides})


def writers(ctx: WriterContext, **overrides: Any) -> ListedWriterFactory:
    make_writer = writer_factory({"table": ctx.table, "box": ctx.box, "links": ctx.links, **overrides})

    def make(account: Account, calendar: Calendar, listing: CalendarListing) -> CalendarWriter:
        return make_writer(account, calendar, listing.href)

    return make
