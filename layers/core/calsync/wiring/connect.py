"""The OAuth account functions' dependencies (docs/adr/0023): the provider's connect service (its
sign-in flow, the accounts service, the first sync's queue) and the clock. Built by the provider
layer (``calsync_google.provider.connect_deps``, ``calsync_microsoft.provider.connect_deps``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, NoReturn, TypeVar

from calsync.api.accounts import AccountsDeps, AccountsService, Enqueue
from calsync.crypto import CredentialBox
from calsync.store.accounts import AccountRepository
from calsync.store.repository import Repository
from calsync.wiring import Clock, utc_now

C = TypeVar("C")


@dataclass(frozen=True)
class ConnectFunctionDeps(Generic[C]):
    connect: C
    clock: Clock = utc_now


def _no_discovery(*_: Any) -> NoReturn:
    raise NotImplementedError("CalDAV is connected by the accounts function")


def accounts_service(table: Any, box: CredentialBox, enqueue: Enqueue) -> AccountsService:
    """The accounts service an OAuth connect needs (no CalDAV discovery)."""
    return AccountsService(
        Repository(table), AccountRepository(table), AccountsDeps(_no_discovery, box, enqueue)
    )
