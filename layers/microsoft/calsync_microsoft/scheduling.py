"""The scheduling function's Microsoft writer (registered in ``calsync.wiring.scheduling``): the
account's opened msal cache (written back after the write), the listed Graph calendar id."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from calsync_microsoft.wiring import writer_factory

if TYPE_CHECKING:
    from calsync.store.accounts import Account, CalendarListing
    from calsync.store.items import Calendar
    from calsync.sync.writer import CalendarWriter
    from calsync.wiring.scheduling import ListedWriterFactory, WriterContext


def writers(ctx: WriterContext, **overrides: Any) -> ListedWriterFactory:
    """``overrides``: those of ``calsync_microsoft.wiring`` (tests: ``http_client``,
    ``client_secret``, ``settings``)."""
    make_writer = writer_factory({"table": ctx.table, "box": ctx.box, "links": ctx.links, **overrides})

    def make(account: Account, calendar: Calendar, listing: CalendarListing) -> CalendarWriter:
        return make_writer(account, calendar, listing.href)

    return make
