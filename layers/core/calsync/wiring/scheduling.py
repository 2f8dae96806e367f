"""SchedulingFunction's dependencies (docs/adr/0023): the service with every provider's writer,
the idempotency store of appointments, the clock.

The providers' writers are registered once (``calsync.wiring.PROVIDER_MODULES``): each provider
layer's ``provider.writers`` turns an account, a calendar and the account's listing of it into a
``CalendarWriter``. A layer is imported when a write to its provider first needs it: reads
(availability) never load a provider SDK.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import boto3

from calsync.api.scheduling import ProviderWriteRejected, SchedulingDeps, SchedulingService, WriterFactory
from calsync.config import get_settings
from calsync.crypto import CredentialBox
from calsync.domain.link_generator import LinkGenerator, from_environment
from calsync.domain.links import LinkSettings
from calsync.domain.models import Provider
from calsync.store import keys
from calsync.store.accounts import AccountRepository
from calsync.store.repository import Repository
from calsync.store.sync_state import SyncStateStore
from calsync.wiring import PROVIDER_MODULES, Clock, provider_module, table_from_settings, utc_now

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from calsync.store.accounts import Account, CalendarListing
    from calsync.store.items import Calendar
    from calsync.sync.writer import CalendarWriter


class ListedWriterFactory(Protocol):
    def __call__(self, account: Account, calendar: Calendar, listing: CalendarListing) -> CalendarWriter: ...


@dataclass(frozen=True)
class WriterContext:
    """What every provider's writer is made of: the table, the credentials' box, the link rules."""

    table: Any
    box: CredentialBox
    links: LinkSettings
    allow_local: bool = False  # X6: loopback CalDAV servers (the local stack, tests)
    resolve: Callable[[str, int], Any] | None = None  # X6's DNS (tests)
    clock: Clock = utc_now


def writer_context(
    table: Any,
    *,
    kms: Any = None,
    key_id: str | None = None,
    links: LinkSettings | None = None,
    allow_local: bool | None = None,
    resolve: Callable[[str, int], Any] | None = None,
    clock: Clock = utc_now,
) -> WriterContext:
    settings = get_settings()
    return WriterContext(
        table=table,
        box=CredentialBox(kms or boto3.client("kms"), key_id or settings.credentials_key_id),
        links=links or settings.links,
        allow_local=settings.local if allow_local is None else allow_local,
        resolve=resolve,
        clock=clock,
    )


def listing_of(accounts: AccountRepository, account: Account, calendar: Calendar) -> CalendarListing:
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


def provider_writers(
    context: Callable[[], WriterContext],
    options: Mapping[Provider, Mapping[str, Any]] | None = None,
) -> dict[Provider, WriterFactory]:
    """Every registered provider's writer factory, built when a write first needs it.
    ``options``: keyword arguments of a provider's ``writers`` (tests: its fake's clients)."""

    def factory(provider: Provider) -> WriterFactory:
        built: list[tuple[AccountRepository, ListedWriterFactory]] = []

        def make(account: Account, calendar: Calendar) -> CalendarWriter:
            if not built:
                ctx = context()
                module = provider_module(provider)
                if module is None:
                    raise ProviderWriteRejected(f"this function cannot write to {provider.value} calendars")
                built.append(
                    (AccountRepository(ctx.table), module.writers(ctx, **(options or {}).get(provider, {})))
                )
            accounts, make_writer = built[0]
            return make_writer(account, calendar, listing_of(accounts, account, calendar))

        return make

    return {provider: factory(provider) for provider in PROVIDER_MODULES}


@dataclass(frozen=True)
class SchedulingFunctionDeps:
    service: SchedulingService
    table: Any
    clock: Clock = utc_now
    _persistence: list[DynamoDBPersistenceLayer] = field(default_factory=list, repr=False)

    def persistence(self) -> DynamoDBPersistenceLayer:
        """Powertools' idempotency store on the calsync table (pk ``IDEM#scheduling``): made on the
        first appointment with an Idempotency-Key."""
        if not self._persistence:
            from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer  # noqa: PLC0415

            meta = self.table.meta.client.meta
            # a plain client (the resource's own client would serialize the typed values a second time)
            client = boto3.client("dynamodb", region_name=meta.region_name, endpoint_url=meta.endpoint_url)
            self._persistence.append(
                DynamoDBPersistenceLayer(
                    table_name=self.table.name,
                    key_attr="pk",
                    sort_key_attr="sk",
                    static_pk_value=keys.IDEMPOTENCY_PK,
                    expiry_attr="expiresAt",  # the table's TTL attribute: records expire on their own
                    boto3_client=client,
                )
            )
        return self._persistence[0]


def scheduling_deps(
    table: Any = None,
    *,
    writers: Mapping[Provider, WriterFactory] | None = None,
    link_generator: LinkGenerator | None = None,
    clock: Clock = utc_now,
    kms: Any = None,
    key_id: str | None = None,
    links: LinkSettings | None = None,
    allow_local: bool | None = None,
    resolve: Callable[[str, int], Any] | None = None,
    providers: Mapping[Provider, Mapping[str, Any]] | None = None,
) -> SchedulingFunctionDeps:
    """From the settings; a test passes its table, clock and fakes: ``writers`` in place of the
    registered ones, or the ``writer_context`` arguments and ``providers`` ({Provider: options of
    its layer's ``writers``})."""
    table = table if table is not None else table_from_settings()
    shared_context = functools.cache(
        functools.partial(
            writer_context,
            table,
            kms=kms,
            key_id=key_id,
            links=links,
            allow_local=allow_local,
            resolve=resolve,
            clock=clock,
        )
    )

    deps = SchedulingDeps(
        writers=dict(writers) if writers is not None else provider_writers(shared_context, providers),
        link_generator=link_generator or from_environment(),
    )
    service = SchedulingService(Repository(table), AccountRepository(table), SyncStateStore(table), deps)
    return SchedulingFunctionDeps(service=service, table=table, clock=clock)
