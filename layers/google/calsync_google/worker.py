"""One Google sync job, start to end (what ``functions/google_sync`` runs per SQS record), and the
renewal schedule's work. Same outcomes as the CalDAV worker (``RetryLater`` for S8 and outages,
``reauth_required`` for S7, ``gone`` when nothing uses the calendar any more), plus: after a
successful sync the calendar has a live push channel (S1), opened when missing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import boto3
from aws_lambda_powertools.metrics import MetricUnit

from calsync.config import get_settings
from calsync.crypto import CredentialBox, SealedSecretError
from calsync.domain.errors import StoreUnavailable
from calsync.domain.links import LinkSettings
from calsync.domain.models import Provider
from calsync.observability import logger, metrics
from calsync.store import keys
from calsync.store.accounts import Account, AccountRepository, CalendarListing
from calsync.store.channels import ChannelStore
from calsync.store.items import Calendar
from calsync.store.repository import Repository
from calsync.store.sync_state import PollEntry, SyncStateStore
from calsync.sync.engine import SyncEngine, SyncOutcome
from calsync.sync.jobs import SyncJob
from calsync.sync.queue_worker import RetryLater as RetryLater  # one for every provider
from calsync.sync.source import (
    CalendarGone,
    SourceAuthError,
    SourceError,
    SourceProtocolError,
    SourceThrottled,
    SourceUnavailable,
)
from calsync.wiring import Clock, utc_now
from calsync.wiring.sync import SyncWorkerDeps
from calsync_google import channels
from calsync_google.calendars import list_calendars
from calsync_google.client import (
    Caller,
    ClientSecret,
    GoogleEndpoints,
    calendar_service,
    credentials,
    credentials_of,
)
from calsync_google.settings import client_secret, get_google_settings
from calsync_google.source import GoogleContext, GoogleSource

PROVIDER = Provider.GOOGLE.value
Status = Literal["synced", "unchanged", "busy", "reauth_required", "gone", "failed", "skipped"]
ServiceFactory = Callable[[Any], Any]  # refresh token or GoogleGrant -> calendar service
LISTING_MARGIN_MS = 5_000  # the renewal schedule starts no calendar-list refresh with less left (ms)


@dataclass(frozen=True, slots=True)
class JobResult:
    status: Status
    outcome: SyncOutcome | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class GoogleGrant:
    """What the account's sealed credentials hold: the refresh token and, once a job has refreshed
    it, the access token with its expiry (X3: sealed together, never stored in the clear)."""

    refresh_token: str
    access_token: str | None = None
    expiry: datetime | None = None

    def __repr__(self) -> str:
        return f"GoogleGrant(***, expiry={self.expiry})"


def seal_grant(box: CredentialBox, grant: GoogleGrant, context: dict[str, str]) -> dict[str, str]:
    data: dict[str, str] = {"refresh_token": grant.refresh_token}
    if grant.access_token and grant.expiry:
        data["access_token"] = grant.access_token
        data["expiry"] = grant.expiry.astimezone(UTC).isoformat()
    return box.seal(json.dumps(data).encode(), context)


def open_grant(box: CredentialBox, sealed: dict[str, str], context: dict[str, str]) -> GoogleGrant:
    try:
        data = json.loads(box.open(sealed, context))
        expiry = data.get("expiry")
        return GoogleGrant(
            str(data["refresh_token"]),
            data.get("access_token") or None,
            datetime.fromisoformat(expiry) if expiry else None,
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SealedSecretError("the stored credentials are damaged") from exc


def seal_refresh_token(box: CredentialBox, refresh_token: str, context: dict[str, str]) -> dict[str, str]:
    return seal_grant(box, GoogleGrant(refresh_token), context)


def google_context(
    account: Account, calendar: Calendar, listing: CalendarListing, links: LinkSettings
) -> GoogleContext:
    """How the calendar's events are read (the sync) and written back (the scheduling function)."""
    return GoogleContext(
        account_id=account.account_id,
        calendar_id=calendar.calendar_id,
        access_role=calendar.access_role or listing.access_role,
        links=links,
    )


def open_refresh_token(box: CredentialBox, sealed: dict[str, str], context: dict[str, str]) -> str:
    return open_grant(box, sealed, context).refresh_token


def service_factory(client: Callable[[], ClientSecret], endpoints: GoogleEndpoints) -> ServiceFactory:
    """A calendar service of a refresh token, or of a whole ``GoogleGrant`` (its kept access token
    is used until shortly before it expires)."""

    def make(grant: str | GoogleGrant) -> Any:
        g = grant if isinstance(grant, GoogleGrant) else GoogleGrant(grant)
        creds = credentials(
            g.refresh_token, client(), endpoints, access_token=g.access_token, expiry=g.expiry
        )
        return calendar_service(creds, endpoints)

    return make


def channel_stopper(table: Any, box: CredentialBox, services: ServiceFactory) -> Callable[[Account], int]:
    """C9: what disconnect calls before the credentials go — every push channel of the account's
    calendars is stopped at Google (``channels.stop``) and forgotten; the number stopped."""
    store, accounts = ChannelStore(table), AccountRepository(table)

    def stop(account: Account) -> int:
        context = {"userId": account.user_id, "accountId": account.account_id}
        service, caller, stopped = None, Caller(retries=1), 0
        for listing in accounts.list_calendars_of_account(account.account_id):
            for channel in store.of_calendar(listing.calendar_id):
                if service is None:
                    service = services(open_refresh_token(box, account.credentials, context))
                channels.stop(service, caller, store, channel)
                stopped += 1
        return stopped

    return stop


@dataclass
class GoogleSyncWorker:
    table: Any
    box: CredentialBox
    services: ServiceFactory
    webhook_url: str = ""  # empty: no push channels (polling by the reconcile schedule only)
    links: LinkSettings = field(default_factory=LinkSettings)
    caller: Callable[[], Caller] = Caller

    def __post_init__(self) -> None:
        self.repository = Repository(self.table)
        self.accounts = AccountRepository(self.table)
        self.state = SyncStateStore(self.table)
        self.channels = ChannelStore(self.table)
        self.engine = SyncEngine(self.repository, self.state)

    def run(self, job: SyncJob, now: datetime) -> JobResult:
        try:
            if job.reason == "push":
                # before anything is read from Google: a notification from now on queues a new job
                # (S6); one before was coalesced into this job, which has yet to read its change
                self.channels.clear_queued(job.calendar_id)
            return self._run(job, now)
        except StoreUnavailable as exc:
            raise RetryLater(f"the store is busy: {exc.detail}") from exc

    def _gone(self, job: SyncJob, why: str) -> JobResult:
        logger.info("calendar not synced any more", extra={"calendar_id": job.calendar_id, "why": why})
        self.state.forget_calendar(PROVIDER, job.calendar_id)
        return JobResult("gone", detail=why)

    def _listing(self, account: Account, calendar_id: str) -> CalendarListing | None:
        return next(
            (
                c
                for c in self.accounts.list_calendars_of_account(account.account_id)
                if c.calendar_id == calendar_id
            ),
            None,
        )

    def service_of(self, account: Account) -> tuple[Any, GoogleGrant]:
        """The account's calendar service (its kept access token, when it has one) and the grant
        it was built from (for ``keep_token``)."""
        context = {"userId": account.user_id, "accountId": account.account_id}
        grant = open_grant(self.box, account.credentials, context)
        return self.services(grant), grant

    def keep_token(self, account: Account, grant: GoogleGrant, service: Any) -> None:
        """After a job: when google-auth refreshed the access token, keep the new one (sealed with
        the refresh token) so that the next jobs use it until it nearly expires — one refresh per
        token lifetime, not one per job. Best effort: failing here costs one more refresh."""
        creds = credentials_of(service)
        if creds is None or not creds.token or creds.token == grant.access_token or creds.expiry is None:
            return
        new = GoogleGrant(
            str(creds.refresh_token or grant.refresh_token),
            str(creds.token),
            creds.expiry.replace(tzinfo=UTC),
        )
        context = {"userId": account.user_id, "accountId": account.account_id}
        try:
            self.accounts.replace_credentials(
                account.user_id, account.account_id, seal_grant(self.box, new, context)
            )
        except (SealedSecretError, StoreUnavailable) as exc:
            logger.warning("the refreshed access token could not be kept", extra={"error": str(exc)})

    def _run(self, job: SyncJob, now: datetime) -> JobResult:
        calendar = self.repository.get_calendar(job.calendar_id)
        if calendar is None:
            return self._gone(job, "the calendar is not known")
        if calendar.provider is not Provider.GOOGLE:
            return JobResult("skipped", detail="not a Google calendar")
        if not calendar.subscribers:
            self._stop_channels(calendar)
            return self._gone(job, "no person or room uses the calendar")
        account = self.accounts.get_account(calendar.owner_user_id, calendar.account_id)
        if account is None or not account.credentials:
            return self._gone(job, "the account is disconnected")
        if account.status == "reauth_required":
            return JobResult("reauth_required", detail="the account must be connected again")
        listing = self._listing(account, calendar.calendar_id)
        if listing is None or not listing.href:
            return self._gone(job, "the account no longer lists the calendar")
        if job.reason not in ("poll", "reconcile"):
            self.state.register_poll(
                PROVIDER,
                PollEntry(
                    calendar_id=calendar.calendar_id, user_id=account.user_id, account_id=account.account_id
                ),
            )
        try:
            service, grant = self.service_of(account)
        except SealedSecretError as exc:
            self.accounts.set_status(account.user_id, account.account_id, "reauth_required")
            return JobResult("reauth_required", detail=exc.detail)
        try:
            return self._sync(job, now, calendar=calendar, account=account, listing=listing, service=service)
        finally:
            self.keep_token(account, grant, service)

    def _sync(
        self,
        job: SyncJob,
        now: datetime,
        *,
        calendar: Calendar,
        account: Account,
        listing: CalendarListing,
        service: Any,
    ) -> JobResult:
        caller = self.caller()
        source = GoogleSource(
            service,
            listing.href,
            google_context(account, calendar, listing, self.links),
            caller=caller,
        )
        extra = {"calendar_id": calendar.calendar_id, "account_id": account.account_id, "reason": job.reason}
        try:
            outcome = self.engine.sync(
                calendar, source, now=now, full=job.full or job.reason in ("reconcile", "resync")
            )
            if self.webhook_url and outcome.status != "busy":
                try:
                    self._ensure_channel(service, caller, account, listing, now)
                except (SourceProtocolError, CalendarGone) as exc:
                    # the calendar is synced; Google refuses it a channel (400
                    # pushNotSupportedForRequestedResource: holidays, birthdays…): the schedule
                    # polls it instead. Throttling and outages still retry the job (they raise).
                    logger.warning(
                        "no push channel for the calendar: it is polled by the schedule",
                        extra={**extra, "error": str(exc)},
                    )
                    metrics.add_metric(name="GooglePushRefused", unit=MetricUnit.Count, value=1)
        except SourceAuthError as exc:
            logger.warning("grant refused: account needs reconnecting", extra={**extra, "error": str(exc)})
            self.accounts.set_status(account.user_id, account.account_id, "reauth_required")
            return JobResult("reauth_required", detail=str(exc))
        except SourceThrottled as exc:
            raise RetryLater(str(exc), exc.retry_after) from exc
        except SourceUnavailable as exc:
            raise RetryLater(str(exc)) from exc
        except (SourceProtocolError, CalendarGone) as exc:
            logger.error("Google answered something unusable", extra={**extra, "error": str(exc)})
            return JobResult("failed", detail=str(exc))
        if outcome.status == "synced":
            self.accounts.set_last_synced(account.user_id, account.account_id, now)
            if account.status == "syncing":
                self.accounts.set_status(account.user_id, account.account_id, "active")
            logger.info(
                "calendar synced",
                extra={**extra, "full": outcome.full, "stored": outcome.stored, "deleted": outcome.deleted},
            )
        return JobResult(outcome.status, outcome)

    def _stop_channels(self, calendar: Calendar) -> None:
        """R8: nobody uses the calendar any more (its last room was deleted): its push channels are
        stopped at Google and forgotten. Best effort: a channel left open expires (<= 7 days) and its
        notifications find no subscriber."""
        open_channels = self.channels.of_calendar(calendar.calendar_id)
        if not open_channels:
            return
        account = self.accounts.get_account(calendar.owner_user_id, calendar.account_id)
        if account is None or not account.credentials:
            return
        try:
            service, grant = self.service_of(account)
            try:
                caller = self.caller()
                for channel in open_channels:
                    channels.stop(service, caller, self.channels, channel)
            finally:
                self.keep_token(account, grant, service)
        except Exception as exc:  # never fails the job: the channel expires anyway
            logger.warning(
                "push channel of an unused calendar not stopped",
                extra={"calendar_id": calendar.calendar_id, "error_type": type(exc).__name__},
            )

    def _ensure_channel(
        self, service: Any, caller: Caller, account: Account, listing: CalendarListing, now: datetime
    ) -> tuple[bool, int]:
        """S1: the calendar has one live channel that lives past the renewal margin — opened when
        missing, and then every other channel of the calendar is stopped (at most one live).
        Whether a channel was opened, and how many were stopped."""
        current = self.channels.of_calendar(listing.calendar_id)
        opened = channels.needs_channel(current, now)
        if opened:
            current.append(
                channels.watch(
                    service,
                    caller,
                    self.channels,
                    google_calendar_id=listing.href,
                    calendar_id=listing.calendar_id,
                    user_id=account.user_id,
                    account_id=account.account_id,
                    address=self.webhook_url,
                    now=now,
                )
            )
        stopped = channels.keep_one(service, caller, self.channels, current) if len(current) > 1 else 0
        return opened, stopped

    # ---- renewal (S4; paged by calsync_google.renewal) ------------------------------------------
    def renew_one(self, channel_id: str, expiry: datetime, now: datetime, counts: dict[str, int]) -> None:
        """One channel of the expiry index (``calsync_google.renewal`` pages them): an active one
        gets a new channel first (unless the calendar already has a newer one that lives on), then
        the old one is stopped at Google; a retiring one left by earlier versions is stopped; the
        index entry of a channel whose calendar is gone is dropped. An active channel is renewed
        only under its claim (``ChannelStore.claim_renewal``): a task delivered twice, or run
        while a sync renews the same channel, opens no second channel. Adds to ``counts``."""
        channel = self.channels.get(channel_id)
        if channel is None:
            self.channels.forget_expiry(channel_id, expiry)
            counts["dropped"] += 1
            return
        account = self.accounts.get_account(channel.user_id, channel.account_id)
        listing = self._listing(account, channel.calendar_id) if account and account.credentials else None
        if account is None or listing is None:
            self.channels.delete(channel)
            counts["dropped"] += 1
            return
        claim: str | None = None
        if channel.state == "active":
            claim = self.channels.claim_renewal(channel, now)
            if claim is None:
                counts["skipped"] += 1
                return
        elif not (channel.stop_after is None or channel.stop_after <= now or channel.expires_at <= now):
            return
        try:
            (service, grant), caller = self.service_of(account), self.caller()
            try:
                if claim is not None:
                    opened, stopped = self._ensure_channel(service, caller, account, listing, now)
                    counts["renewed"] += opened
                    counts["stopped"] += stopped
                else:
                    channels.stop(service, caller, self.channels, channel)
                    counts["stopped"] += 1
            finally:
                self.keep_token(account, grant, service)
        except (SourceError, SealedSecretError) as exc:
            logger.warning("channel renewal failed", extra={"channel_id": channel_id, "error": str(exc)})
            metrics.add_metric(name="GoogleChannelRenewalFailed", unit=MetricUnit.Count, value=1)
            counts["failed"] += 1
            if claim is not None:
                self.channels.release_renewal(channel, claim)

    # ---- calendar listings (R8) ----------------------------------------------------------------
    def refresh_listings(
        self, now: datetime, time_left_ms: Callable[[], int] | None = None
    ) -> dict[str, int]:
        """R8: a calendar created at Google (or shared with the person) after the connect becomes
        selectable. Each account with a synced calendar (the poll registry, read by Query, never a
        Scan) has its calendar list read once (every page of ``calendarList.list``): new calendars
        are added to its listing, names, roles and time zones of known ones follow Google. Nothing
        is removed here: a calendar gone at Google is the sync's (``CalendarGone``), a reconnect's.
        A failing account keeps its listing, logs one WARNING and counts a metric; the others go
        on. ``time_left_ms`` (the Lambda context's): no account is started with less than
        ``LISTING_MARGIN_MS`` left; the shards are visited from a different one each hour so that
        every account has its turn."""
        counts = {"listed": 0, "calendarsAdded": 0, "calendarsUpdated": 0, "listFailed": 0, "listDeferred": 0}
        seen: set[str] = set()
        first = int(now.timestamp()) // 3600
        for n in range(keys.POLL_SHARDS):
            for entry in self.state.list_poll(PROVIDER, (first + n) % keys.POLL_SHARDS):
                if entry.account_id in seen:
                    continue
                seen.add(entry.account_id)
                if time_left_ms is not None and time_left_ms() < LISTING_MARGIN_MS:
                    counts["listDeferred"] += 1
                    continue
                account = self.accounts.get_account(entry.user_id, entry.account_id)
                if account is None or not account.credentials or account.status == "reauth_required":
                    continue
                try:
                    added, updated = self._refresh_listing(account)
                except (SourceError, SealedSecretError, StoreUnavailable) as exc:
                    logger.warning(
                        "calendar list not refreshed",
                        extra={
                            "account_id": account.account_id,
                            "provider": PROVIDER,
                            "error_type": type(exc).__name__,
                            "error": str(exc),
                        },
                    )
                    metrics.add_metric(name="GoogleCalendarListFailed", unit=MetricUnit.Count, value=1)
                    counts["listFailed"] += 1
                    continue
                counts["listed"] += 1
                counts["calendarsAdded"] += added
                counts["calendarsUpdated"] += updated
                if added:
                    logger.info(
                        "new calendars listed", extra={"account_id": account.account_id, "calendars": added}
                    )
        return counts

    def _refresh_listing(self, account: Account) -> tuple[int, int]:
        service, grant = self.service_of(account)
        try:
            listed = list_calendars(service, self.caller())
        finally:
            self.keep_token(account, grant, service)
        known = {c.calendar_id: c for c in self.accounts.list_calendars_of_account(account.account_id)}
        added = updated = 0
        for found in listed.calendars:
            listing = CalendarListing.of(account.account_id, Provider.GOOGLE, found)
            old = known.get(listing.calendar_id)
            if old == listing:
                continue
            # the calendar item first (its subscribers are kept), then the listing that shows it
            self.repository.put_calendar(listing.calendar(account.user_id))
            self.accounts.put_calendar_listing(listing)
            if old is None:
                added += 1
            else:
                updated += 1
        return added, updated


def from_environment(**o: Any) -> GoogleSyncWorker:
    """The worker of the sync and renewal functions; tests override ``table``, ``kms``,
    ``key_id``, ``services``, ``client``, ``webhook_url``, ``links``, ``caller``."""
    google = get_google_settings()
    table = o.get("table") or boto3.resource("dynamodb").Table(get_settings().table_name)
    box = CredentialBox(
        o.get("kms") or boto3.client("kms"), o.get("key_id") or get_settings().credentials_key_id
    )
    services = o.get("services") or service_factory(o.get("client") or client_secret, google.endpoints)
    return GoogleSyncWorker(
        table,
        box,
        services,
        webhook_url=o.get("webhook_url", google.webhook_url),
        links=o.get("links") or get_settings().links,
        **({"caller": o["caller"]} if "caller" in o else {}),
    )


def sync_deps(
    *, sqs: Any = None, queue_url: str | None = None, clock: Clock = utc_now, **worker: Any
) -> SyncWorkerDeps:
    """GoogleSyncFunction's dependencies (docs/adr/0023): the worker of ``from_environment(**worker)``,
    the GoogleSyncQueue, the clock."""
    return SyncWorkerDeps(
        worker=from_environment(**worker),
        sqs=sqs if sqs is not None else boto3.client("sqs"),
        queue_url=queue_url or get_google_settings().sync_queue_url,
        clock=clock,
    )
