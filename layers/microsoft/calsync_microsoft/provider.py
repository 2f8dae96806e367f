"""What calsync asks of Microsoft (registered in ``calsync.wiring.PROVIDER_MODULES``): the scheduling
function's writer (the account's opened msal cache, written back after the write; the listed Graph
calendar id), the accounts function's subscription stopper (C9), and MicrosoftAccountsFunction's
dependencies. ``overrides``: ``calsync_microsoft.wiring.Overrides`` (tests: ``http_client``,
``client_secret``, ``settings``…)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from calsync.store.accounts import AccountRepository
from calsync.wiring import Clock, utc_now
from calsync.wiring.connect import ConnectFunctionDeps, accounts_service
from calsync_microsoft import wiring
from calsync_microsoft.connect import MicrosoftConnect
from calsync_microsoft.registry import MicrosoftRegistry
from calsync_microsoft.wiring import Given, Overrides, subscription_stopper, writer_factory

if TYPE_CHECKING:
    from calsync.api.accounts import StopPush
    from calsync.crypto import CredentialBox
    from calsync.store.accounts import Account, CalendarListing
    from calsync.store.items import Calendar
    from calsync.sync.writer import CalendarWriter
    from calsync.wiring.scheduling import ListedWriterFactory, WriterContext


def push_stopper(table: Any, box: CredentialBox, **overrides: Any) -> StopPush:
    """C9: deletes the mailbox's Graph subscription."""
    return subscription_stopper(Overrides(table=table, box=box, **overrides))


def writers(ctx: WriterContext, **overrides: Any) -> ListedWriterFactory:
    make_writer = writer_factory(Overrides(table=ctx.table, box=ctx.box, links=ctx.links, **overrides))

    def make(account: Account, calendar: Calendar, listing: CalendarListing) -> CalendarWriter:
        return make_writer(account, calendar, listing.href)

    return make


def connect_deps(given: Given = None, *, clock: Clock = utc_now) -> ConnectFunctionDeps[MicrosoftConnect]:
    """MicrosoftAccountsFunction's (docs/adr/0023): from the settings; ``given``: a test's
    ``calsync_microsoft.wiring.Overrides`` (``table``, ``kms``, ``http_client``, ``settings``…)."""
    o = Overrides.of(given)
    table, box, enqueue = wiring.table_of(o), wiring.box_of(o), wiring.enqueue_of(o)
    connect = MicrosoftConnect(
        accounts_service(table, box, enqueue),
        AccountRepository(table),
        MicrosoftRegistry(table),
        wiring.identity_of(o),
        box,
        wiring.worker_of(o),
        enqueue,
        wiring.mailbox_enqueue_of(o),
    )
    return ConnectFunctionDeps(connect, clock)
