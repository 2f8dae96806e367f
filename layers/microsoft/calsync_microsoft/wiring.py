"""Builds the Microsoft services from settings, with a test's ``Overrides`` (a name it does not know
is refused, not ignored). Used by the accounts, sync, renewal and scheduling functions (not by the
webhook); ``sync_deps`` and ``renew_deps`` are the sync and renewal functions' (docs/adr/0023)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import boto3

from calsync.config import get_settings
from calsync.crypto import CredentialBox
from calsync.domain.links import LinkSettings
from calsync.domain.models import Occurrence, Provider
from calsync.store.accounts import Account
from calsync.store.items import Calendar
from calsync.sync.jobs import SyncJob
from calsync.sync.writer import CalendarWriter, EventDraft, WrittenEvent
from calsync.wiring import Clock, utc_now
from calsync.wiring.sync import SyncWorkerDeps
from calsync.wiring.tasks import TaskDeps
from calsync_microsoft import jobs
from calsync_microsoft.auth import (
    SCOPES,
    MicrosoftAppConfig,
    MicrosoftIdentity,
    client_id_from,
    client_secret_from,
)
from calsync_microsoft.registry import MicrosoftRegistry
from calsync_microsoft.settings import MicrosoftSettings, get_microsoft_settings
from calsync_microsoft.subscriptions import Subscriptions, SubscriptionSettings
from calsync_microsoft.worker import MicrosoftSyncWorker
from calsync_microsoft.writer import MicrosoftWriter


@dataclass(frozen=True, kw_only=True)
class Overrides:
    """What a test gives instead of the settings and AWS; None: from the settings (and boto3)."""

    table: Any = None
    kms: Any = None
    key_id: str | None = None
    box: CredentialBox | None = None
    sqs: Any = None
    queue_url: str | None = None
    http_client: Any = None  # msal's (requests.Session-like)
    session_factory: Any = None  # Graph's
    client_secret: str | Callable[[], str] | None = None
    settings: MicrosoftSettings | None = None
    links: LinkSettings | None = None
    scopes: tuple[str, ...] | None = None

    @classmethod
    def of(cls, o: Mapping[str, Any] | Overrides | None) -> Overrides:
        """``o`` as ``Overrides``: a mapping's names must be fields (a typo raises TypeError)."""
        return o if isinstance(o, Overrides) else cls(**(o or {}))


Given = Mapping[str, Any] | Overrides | None


def _client(name: str) -> Any:
    return boto3.client(name)  # type: ignore[call-overload]


def settings_of(o: Overrides) -> MicrosoftSettings:
    return o.settings or get_microsoft_settings()


def table_of(o: Overrides) -> Any:
    if o.table is not None:
        return o.table

    return boto3.resource("dynamodb").Table(get_settings().table_name)


def box_of(o: Overrides) -> CredentialBox:
    if o.box is not None:
        return o.box
    return CredentialBox(o.kms or _client("kms"), o.key_id or get_settings().credentials_key_id)


def sqs_of(o: Overrides) -> tuple[Any, str]:
    return o.sqs or _client("sqs"), str(o.queue_url or settings_of(o).sync_queue_url)


def identity_of(given: Given) -> MicrosoftIdentity:
    o = Overrides.of(given)
    s = settings_of(o)
    # read at each use (cached 5 min): a rotated secret needs no new container
    secret = o.client_secret or (lambda: client_secret_from(s.client_secret_name))
    # the client id: MICROSOFT_CLIENT_ID, else the secret's client_id (MicrosoftOAuthSecret's JSON)
    client_id = s.client_id or client_id_from(s.client_secret_name)
    config = MicrosoftAppConfig(client_id, secret, s.authority, o.http_client, o.scopes or SCOPES)
    return MicrosoftIdentity(config)


def worker_of(o: Overrides) -> MicrosoftSyncWorker:
    s = settings_of(o)
    table = table_of(o)
    subs = Subscriptions(
        MicrosoftRegistry(table),
        SubscriptionSettings(s.webhook_url, s.lifecycle_url, s.subscription_lifetime),
    )
    return MicrosoftSyncWorker(
        table,
        box_of(o),
        identity_of(o),
        subs,
        graph_endpoint=s.graph_endpoint,
        links=o.links or get_settings().links,
        session_factory=o.session_factory,
    )


def enqueue_of(o: Overrides) -> Any:
    """The accounts service's ``Enqueue`` (one calendar) as mailbox jobs on the Microsoft queue."""
    sqs, url = sqs_of(o)

    def enqueue(job: SyncJob) -> None:
        jobs.enqueue(sqs, url, jobs.from_sync_job(job))

    return enqueue


def mailbox_enqueue_of(o: Overrides) -> Callable[[jobs.MailboxJob], None]:
    """Queue one mailbox job (a ``recreate`` after a connect whose subscription failed)."""
    sqs, url = sqs_of(o)
    return lambda job: jobs.enqueue(sqs, url, job)


class _SealingWriter:
    """A ``MicrosoftWriter`` whose msal cache is written back after each write (msal may have
    refreshed and rotated the refresh token while writing: S7), also when the write failed."""

    def __init__(self, writer: MicrosoftWriter, write_back: Callable[[], None]) -> None:
        self._writer = writer
        self._write_back = write_back

    def create_event(self, calendar: Calendar, draft: EventDraft) -> WrittenEvent:
        try:
            return self._writer.create_event(calendar, draft)
        finally:
            self._write_back()

    def add_meeting_link(self, calendar: Calendar, occurrence: Occurrence, link: str) -> WrittenEvent:
        try:
            return self._writer.add_meeting_link(calendar, occurrence, link)
        finally:
            self._write_back()


def writer_factory(o: Overrides) -> Callable[[Account, Calendar, str], CalendarWriter]:
    """The scheduling function's writer for a Microsoft calendar: (account, calendar, the Graph
    calendar id) -> a ``CalendarWriter``. The worker (secret, msal app) is built on first use."""
    built: list[MicrosoftSyncWorker] = []

    def make(account: Account, calendar: Calendar, remote_id: str) -> CalendarWriter:
        if not built:
            built.append(worker_of(o))
        client, write_back = built[0].graph_for(account)
        writer = MicrosoftWriter(client, {calendar.calendar_id: remote_id}, o.links or get_settings().links)
        return _SealingWriter(writer, write_back)

    return make


def subscription_stopper(o: Overrides) -> Callable[[Account], int]:
    """C9 (the accounts service's ``stop_push`` for Microsoft): DELETE the mailbox's Graph
    subscription with the account's own token (before its credentials go), and forget the stored
    subscription and the mailbox's pointer to it, whatever Graph answered (a subscription Graph
    still holds expires on its own; its notifications then name an unknown subscription and are
    dropped). Returns the number of subscriptions stopped at Graph."""
    built: list[MicrosoftSyncWorker] = []

    def stop(account: Account) -> int:
        registry = MicrosoftRegistry(table_of(o))
        registry.forget_polled(account.account_id)  # no more polls of its shared calendars
        subscription_id = registry.mailbox_subscription_id(account.account_id)
        if subscription_id is None:
            return 0
        if not subscription_id:  # a mailbox whose subscription Graph refused: nothing at Graph
            registry.forget_subscription(subscription_id, account.account_id)
            return 0
        try:
            if not built:
                built.append(worker_of(o))
            client, _ = built[0].graph_for(account)  # the cache is not written back: it is deleted next
            resp = client.request("DELETE", f"subscriptions/{subscription_id}")
            return 1 if resp.status in (200, 202, 204) else 0
        finally:
            registry.forget_subscription(subscription_id, account.account_id)

    return stop


def sync_deps(given: Given = None, *, clock: Clock = utc_now) -> SyncWorkerDeps:
    """MicrosoftSyncFunction's dependencies (docs/adr/0023): the worker of ``worker_of(o)``, the
    MicrosoftSyncQueue (``sqs``, ``queue_url`` of ``o``), the clock."""
    o = Overrides.of(given)
    return SyncWorkerDeps(
        worker=worker_of(o),
        sqs=o.sqs or _client("sqs"),
        queue_url=o.queue_url or settings_of(o).sync_queue_url,
        clock=clock,
    )


@dataclass(frozen=True)
class RenewDeps(TaskDeps):
    """MicrosoftRenewFunction's: a schedule's (the MicrosoftRenewQueue, the MicrosoftSyncQueue as
    ``sync_queue_urls["microsoft"]``) and the subscriptions' lifetime (S4: renewed at half-life)."""

    subscription_lifetime: timedelta = timedelta(minutes=4230)

    @property
    def sync_queue_url(self) -> str:
        return str(self.sync_queue_urls[Provider.MICROSOFT.value])


def renew_deps(
    given: Given = None,
    *,
    task_queue_url: str | None = None,
    clock: Clock = utc_now,
    limit: int | None = None,
) -> RenewDeps:
    """MicrosoftRenewFunction's dependencies (docs/adr/0023): the table, SQS and the sync queue of
    ``o`` (``table``, ``sqs``, ``queue_url``, ``settings``), the MicrosoftRenewQueue, the clock;
    ``limit``: mailboxes per task (tests)."""
    o = Overrides.of(given)
    sqs, url = sqs_of(o)
    return RenewDeps(
        sqs=sqs,
        task_queue_url=str(task_queue_url or get_settings().microsoft_renew_queue_url),
        table=table_of(o),
        sync_queue_urls={Provider.MICROSOFT.value: url},
        clock=clock,
        limit=limit,
        subscription_lifetime=settings_of(o).subscription_lifetime,
    )
