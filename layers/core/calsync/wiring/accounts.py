"""AccountsFunction's dependencies (docs/adr/0023): the accounts service with CalDAV discovery
(X6-guarded), the credentials' box, each provider's sync queue and push stopper (C9)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3

from calsync.api.accounts import AccountsDeps, AccountsService, Discover, Discovery, Enqueue, StopPush
from calsync.config import get_settings
from calsync.crypto import CredentialBox
from calsync.domain.models import Provider
from calsync.store.accounts import AccountRepository
from calsync.store.repository import Repository
from calsync.wiring import provider_module, table_from_settings
from calsync.wiring.queues import enqueue_via, queue_urls_from_environment, sync_queues

if TYPE_CHECKING:
    from calsync.store.accounts import Account


@dataclass(frozen=True)
class AccountsFunctionDeps:
    service: AccountsService


def push_stoppers(
    table: Any, box: CredentialBox, options: Mapping[Provider, Mapping[str, Any]] | None = None
) -> dict[Provider, StopPush]:
    """C9: each registered provider's push stopper (``calsync.wiring.PROVIDER_MODULES``), built
    (its layer imported) on the first disconnect that needs it. Without a provider's layer nothing
    is stopped there: Google channels expire (<= 7 days), Graph subscriptions (<= 3 days), and
    their notifications are dropped (unknown channel or subscription)."""

    def stopper(provider: Provider) -> StopPush:
        @functools.cache
        def built() -> StopPush | None:
            module = provider_module(provider)
            make = getattr(module, "push_stopper", None)
            return None if make is None else make(table, box, **(options or {}).get(provider, {}))

        def stop(account: Account) -> int:
            stop_push = built()
            return 0 if stop_push is None else stop_push(account)

        return stop

    return {p: stopper(p) for p in (Provider.GOOGLE, Provider.MICROSOFT)}


def accounts_deps(
    table: Any = None,
    *,
    kms: Any = None,
    key_id: str | None = None,
    sqs: Any = None,
    queue_url: str | None = None,
    queue_urls: Mapping[str, str] | None = None,
    enqueue: Enqueue | None = None,
    allow_local: bool | None = None,
    resolve: Callable[[str, int], Any] | None = None,
    stop_push: Mapping[Provider, StopPush] | None = None,
    microsoft: Mapping[str, Any] | None = None,
    discover: Discover | None = None,
) -> AccountsFunctionDeps:
    """From the settings; a test passes its table, moto clients and fakes: ``queue_url`` (CalDAV's
    sync queue) and ``queue_urls`` ({provider value: url}) in place of *_SYNC_QUEUE_URL,
    ``enqueue`` for CalDAV's jobs, ``stop_push`` in place of the providers' stoppers, or
    ``microsoft`` (the options of ``calsync_microsoft.provider``), ``discover`` in place of CalDAV
    discovery."""
    settings = get_settings()
    table = table if table is not None else table_from_settings()
    local = settings.local if allow_local is None else allow_local

    def caldav(server_url: str, username: str, password: str) -> Discovery:
        from calsync_caldav.connect import discover as caldav_discover  # noqa: PLC0415 - CaldavLayer

        return caldav_discover(server_url, username, password, allow_local=local, resolve=resolve)

    box = CredentialBox(kms or boto3.client("kms"), key_id or settings.credentials_key_id)
    client = sqs or boto3.client("sqs")
    urls = queue_urls_from_environment()
    urls.update({Provider(p): url for p, url in (queue_urls or {}).items()})
    urls[Provider.CALDAV] = queue_url or settings.caldav_sync_queue_url
    queues = sync_queues(urls, lambda: client)
    caldav_jobs = enqueue or queues.get(Provider.CALDAV) or enqueue_via(lambda: client, urls[Provider.CALDAV])
    queues[Provider.CALDAV] = caldav_jobs
    stoppers = (
        dict(stop_push)
        if stop_push is not None
        else push_stoppers(table, box, {Provider.MICROSOFT: microsoft or {}})
    )
    deps = AccountsDeps(discover or caldav, box, caldav_jobs, stop_push=stoppers, enqueue_for=queues)
    return AccountsFunctionDeps(AccountsService(Repository(table), AccountRepository(table), deps))
