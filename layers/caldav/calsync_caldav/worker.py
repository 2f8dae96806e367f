"""One CalDAV sync job, start to end: what ``functions/caldav_sync`` runs for each SQS record.

calendar -> account -> credentials (KMS) -> CalDAV source -> the sync engine, with the outcomes a
queue worker needs:

- ``RetryLater`` (raised): the server throttled us (429/503 + Retry-After, S8), could not be
  reached, or the store was busy. The record fails and comes back after ``delay`` seconds; after
  the queue's maxReceiveCount it lands in the dead-letter queue. Nothing was lost: the cursor did
  not move.
- ``reauth_required`` (S7): the server refused the credentials. The account is marked, later jobs
  of its calendars are skipped without a request, other accounts are untouched.
- ``gone``: the calendar, its account or its last subscriber is gone: its sync state and poll
  entry are deleted (C9 leaves nothing to poll).
- ``failed``: the server answered something unreadable, or rule X6 refused to connect to it (it
  now resolves to a private, loopback or metadata address): logged as an ERROR, counted, not
  retried (the next poll tries).

Every request goes to the calendar's absolute collection URL found by discovery
(``collection_url``): iCloud serves calendars from a partition host, not the host the person typed.
Listings stored before that URL was kept resolve their path against the account's server URL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import boto3
from aws_lambda_powertools.metrics import MetricUnit

from calsync.config import get_settings
from calsync.crypto import CredentialBox, SealedSecretError, open_login
from calsync.domain.errors import StoreUnavailable
from calsync.domain.links import LinkSettings
from calsync.domain.models import Provider
from calsync.observability import logger, metrics
from calsync.store.accounts import Account, AccountRepository, CalendarListing
from calsync.store.hosts import (
    DEFAULT_BACKOFF,
    DEFAULT_JOBS_PER_MINUTE,
    MAX_BACKOFF,
    HostBudgets,
    configured_rate,
)
from calsync.store.items import Calendar
from calsync.store.repository import Repository
from calsync.store.sync_state import PollEntry, SyncStateStore
from calsync.sync.engine import SyncEngine, SyncOutcome
from calsync.sync.jobs import SyncJob
from calsync.sync.queue_worker import RetryLater as RetryLater  # one for every provider
from calsync.sync.source import (
    CalendarGone,
    SourceAuthError,
    SourceForbidden,
    SourceProtocolError,
    SourceThrottled,
    SourceUnavailable,
)
from calsync.wiring import Clock, table_from_settings, utc_now
from calsync.wiring.sync import SyncWorkerDeps
from calsync_caldav.client import CalDAVClient, ServerRefused
from calsync_caldav.connect import Resolver
from calsync_caldav.ical import ParseContext
from calsync_caldav.source import CalDAVSource

PROVIDER = Provider.CALDAV.value
ClientFactory = Callable[[str, str, str], CalDAVClient]  # (username, password, base url)
Status = Literal["synced", "unchanged", "busy", "reauth_required", "gone", "failed", "skipped"]


@dataclass(frozen=True, slots=True)
class JobResult:
    status: Status
    outcome: SyncOutcome | None = None
    detail: str = ""


def guarded_client_factory(*, allow_local: bool = False, resolve: Resolver | None = None) -> ClientFactory:
    """CalDAV clients whose every connection is checked by rule X6 (``allow_local``: the local stack)."""

    def make(username: str, password: str, base_url: str) -> CalDAVClient:
        return CalDAVClient(username, password, base_url=base_url, allow_local=allow_local, resolve=resolve)

    return make


default_client: Final = guarded_client_factory()


def parse_context(
    account: Account, calendar: Calendar, listing: CalendarListing, links: LinkSettings
) -> ParseContext:
    """How the calendar's events are read (the sync) and written back (the scheduling function)."""
    return ParseContext(
        account_id=account.account_id,
        calendar_id=calendar.calendar_id,
        own_addresses=frozenset(a.lower() for a in account.own_addresses),
        calendar_writable=calendar.access_role in ("owner", "writer"),
        calendar_time_zone=_zone(calendar.time_zone or listing.time_zone),
        links=links,
    )


def collection_url(account: Account, listing: CalendarListing) -> str:
    """The absolute URL of the calendar's collection: the one discovery found (on whatever host
    serves it), or, for a listing stored before calsync kept it, its path on the account's server."""
    if listing.url:
        return listing.url
    return urljoin(account.server_url or "", listing.href)


class CalDAVSyncWorker:
    def __init__(
        self,
        table: Any,
        box: CredentialBox,
        *,
        links: LinkSettings | None = None,
        client_factory: ClientFactory = default_client,
        engine: SyncEngine | None = None,
        host_jobs_per_minute: int = DEFAULT_JOBS_PER_MINUTE,
    ) -> None:
        self.repository = Repository(table)
        self.hosts = HostBudgets(table, host_jobs_per_minute)
        self.accounts = AccountRepository(table)
        self.state = SyncStateStore(table)
        self.engine = engine or SyncEngine(self.repository, self.state)
        self.box = box
        self.links = links or LinkSettings()
        self.client_factory = client_factory

    def run(self, job: SyncJob, now: datetime) -> JobResult:
        try:
            return self._run(job, now)
        except StoreUnavailable as exc:
            raise RetryLater(f"the store is busy: {exc.detail}") from exc

    def _throttled(self, host: str, exc: SourceThrottled, now: datetime, extra: dict[str, Any]) -> None:
        """429/503 (S8): the whole host waits for its Retry-After (or a minute), not only this job:
        the poll defers its other calendars and other workers retry later without a request."""
        wait = timedelta(seconds=exc.retry_after) if exc.retry_after else DEFAULT_BACKOFF
        until = now + min(wait, MAX_BACKOFF)
        if host:
            self.hosts.back_off(host, until)
        logger.warning(
            "the CalDAV server throttles calsync: its host backs off",
            extra={**extra, "host": host, "retry_after": exc.retry_after, "until": until.isoformat()},
        )
        metrics.add_metric(name="CaldavHostThrottled", unit=MetricUnit.Count, value=1)

    def _gone(self, job: SyncJob, why: str) -> JobResult:
        logger.info("calendar not synced any more", extra={"calendar_id": job.calendar_id, "why": why})
        self.state.forget_calendar(PROVIDER, job.calendar_id)
        return JobResult("gone", detail=why)

    def _run(self, job: SyncJob, now: datetime) -> JobResult:
        calendar = self.repository.get_calendar(job.calendar_id)
        if calendar is None:
            return self._gone(job, "the calendar is not known")
        if calendar.provider is not Provider.CALDAV:
            logger.warning("not a CalDAV calendar: job dropped", extra={"calendar_id": job.calendar_id})
            return JobResult("skipped", detail="not a CalDAV calendar")
        if not calendar.subscribers:
            return self._gone(job, "no person or room uses the calendar")
        account = self.accounts.get_account(calendar.owner_user_id, calendar.account_id)
        if account is None or not account.credentials:
            return self._gone(job, "the account is disconnected")
        if account.status == "reauth_required":
            return JobResult("reauth_required", detail="the account must be connected again")
        listing = next(
            (
                c
                for c in self.accounts.list_calendars_of_account(account.account_id)
                if c.calendar_id == calendar.calendar_id
            ),
            None,
        )
        if listing is None or not listing.href:
            return self._gone(job, "the account no longer lists the calendar")
        url = collection_url(account, listing)
        host = (urlsplit(url).hostname or "").lower()
        if job.reason not in ("poll", "reconcile"):  # poll jobs come from the registry already
            # a calendar just configured counts as active: polled every run until a day passes quietly
            self.state.register_poll(
                PROVIDER,
                PollEntry(
                    calendar_id=calendar.calendar_id,
                    user_id=account.user_id,
                    account_id=account.account_id,
                    changed_at=now,
                    host=host or None,
                ),
            )
        # a host that asked us to wait (429/503 + Retry-After, docs/adr/0020) is not contacted:
        # the job comes back when it may (one GetItem; the poll already kept to the host's budget)
        wait = self.hosts.state(host).backoff_for(now) if host else 0
        if wait:
            raise RetryLater(f"the CalDAV server {host} asked calsync to wait", wait)
        context = {"userId": account.user_id, "accountId": account.account_id}
        try:
            username, password = open_login(self.box, account.credentials, context)
        except SealedSecretError as exc:
            logger.error("credentials cannot be opened", extra={"account_id": account.account_id})
            self.accounts.set_status(account.user_id, account.account_id, "reauth_required")
            return JobResult("reauth_required", detail=exc.detail)

        client = self.client_factory(username, password, url)
        source = CalDAVSource(
            client,
            url,
            parse_context(account, calendar, listing, self.links),
        )
        extra = {"calendar_id": calendar.calendar_id, "account_id": account.account_id, "reason": job.reason}
        try:
            outcome = self.engine.sync(
                calendar, source, now=now, full=job.full or job.reason in ("reconcile", "resync")
            )
        except SourceAuthError as exc:
            logger.warning(
                "credentials refused: account needs reconnecting", extra={**extra, "error": str(exc)}
            )
            self.accounts.set_status(account.user_id, account.account_id, "reauth_required")
            return JobResult("reauth_required", detail=str(exc))
        except SourceForbidden as exc:  # one calendar, not the account (S13)
            logger.warning("the CalDAV server refuses access to the calendar", extra=extra)
            return JobResult("failed", detail=str(exc))
        except SourceThrottled as exc:
            self._throttled(host, exc, now, extra)
            raise RetryLater(str(exc), exc.retry_after) from exc
        except SourceUnavailable as exc:
            raise RetryLater(str(exc)) from exc
        except ServerRefused as exc:
            logger.error(
                "the CalDAV server is refused by rule X6: nothing fetched",
                extra={**extra, "error": str(exc)},
            )
            metrics.add_metric(name="CaldavServerRefused", unit=MetricUnit.Count, value=1)
            return JobResult("failed", detail=str(exc))
        except SourceProtocolError as exc:
            logger.error(
                "the CalDAV server answered something unreadable", extra={**extra, "error": str(exc)}
            )
            return JobResult("failed", detail=str(exc))
        except CalendarGone as exc:
            logger.warning("the calendar is gone from the server", extra={**extra, "error": str(exc)})
            return JobResult("failed", detail=str(exc))
        finally:
            client.close()
        if outcome.status == "synced":
            if (outcome.stored or outcome.deleted) and job.reason in ("poll", "reconcile"):
                self.state.mark_poll_changed(PROVIDER, calendar.calendar_id, now)  # adaptive intervals
            self.accounts.set_last_synced(account.user_id, account.account_id, now)
            if account.status == "syncing":
                self.accounts.set_status(account.user_id, account.account_id, "active")
            logger.info(
                "calendar synced",
                extra={
                    **extra,
                    "full": outcome.full,
                    "stored": outcome.stored,
                    "deleted": outcome.deleted,
                    "skipped": outcome.skipped,
                    "errors": len(outcome.errors),
                },
            )
        return JobResult(outcome.status, outcome)


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def sync_deps(
    table: Any = None,
    *,
    kms: Any = None,
    key_id: str | None = None,
    sqs: Any = None,
    queue_url: str | None = None,
    clock: Clock = utc_now,
    links: LinkSettings | None = None,
    client_factory: ClientFactory | None = None,
    allow_local: bool | None = None,
    resolve: Resolver | None = None,
    host_jobs_per_minute: int | None = None,
) -> SyncWorkerDeps:
    """CaldavSyncFunction's dependencies (docs/adr/0023): the worker (rule X6 on every connection
    of a poll or sync, as at connect; the local stack allows loopback), the CaldavSyncQueue, the
    clock. A test passes its table, KMS, SQS, queue URL, clock, ``client_factory`` or the X6
    guard's ``allow_local`` / ``resolve``."""
    table = table if table is not None else table_from_settings()
    box = CredentialBox(kms or boto3.client("kms"), key_id or get_settings().credentials_key_id)
    clients = client_factory or guarded_client_factory(
        allow_local=get_settings().local if allow_local is None else allow_local, resolve=resolve
    )
    worker = CalDAVSyncWorker(
        table,
        box,
        links=links or get_settings().links,
        client_factory=clients,
        host_jobs_per_minute=int(host_jobs_per_minute or configured_rate()),
    )
    return SyncWorkerDeps(
        worker=worker,
        sqs=sqs if sqs is not None else boto3.client("sqs"),
        queue_url=queue_url or get_settings().caldav_sync_queue_url,
        clock=clock,
    )
