"""One Microsoft mailbox job, start to end: what ``functions/microsoft_sync`` runs per SQS record.

account -> sealed msal cache (KMS) -> access token (msal refreshes) -> [subscription renew/recreate]
-> per calendar: ``MicrosoftSource`` -> the sync engine; the cache is sealed and written back only
when msal changed it (``has_state_changed``).

- ``RetryLater``: Graph throttled (429/503/504, with or without Retry-After, S8), Graph or the
  identity platform could not be reached, or the store was busy; the record comes back after the
  Retry-After or the queue's backoff; the cursor did not move, nothing is lost.
- ``reauth_required`` (S7): only a revoked grant (the refresh answered invalid_grant or
  interaction_required: docs/providers/microsoft.md M1): the account is marked, its later jobs are
  skipped, other accounts are untouched.
- A subscription Graph refuses (4xx) does not stop the job: the calendars sync, and the mailbox
  is recorded as due for renewal now, so the hourly schedule tries again (it would otherwise be
  in no schedule at all: the renewal and reconcile lists are the subscription records).
- A calendar Graph refuses to read (403: a calendar shared with the mailbox, read without the
  ``.Shared`` consent of an older sign-in) is logged and skipped; the mailbox's other calendars
  sync.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from aws_lambda_powertools.metrics import MetricUnit

from calsync.crypto import CredentialBox, SealedSecretError
from calsync.domain.errors import StoreUnavailable
from calsync.domain.links import LinkSettings
from calsync.domain.models import Provider
from calsync.observability import logger, metrics
from calsync.store import keys
from calsync.store.accounts import Account, AccountRepository
from calsync.store.repository import Repository, _mapped_errors
from calsync.store.sync_state import SyncStateStore
from calsync.sync.budget import OutOfTime
from calsync.sync.engine import SyncEngine, SyncOutcome
from calsync.sync.queue_worker import RetryLater as RetryLater  # one for every provider
from calsync.sync.source import (
    CalendarGone,
    SourceAuthError,
    SourceProtocolError,
    SourceThrottled,
    SourceUnavailable,
)
from calsync_microsoft.auth import MicrosoftIdentity, TokenCacheBox
from calsync_microsoft.calendars import refresh_listing
from calsync_microsoft.graph import DEFAULT_GRAPH_ENDPOINT, GraphClient, GraphError
from calsync_microsoft.jobs import MailboxJob
from calsync_microsoft.source import MicrosoftSource
from calsync_microsoft.subscriptions import Subscriptions

if TYPE_CHECKING:
    import msal  # type: ignore[import-untyped]

Status = Literal["synced", "reauth_required", "gone", "skipped", "failed"]


@dataclass(slots=True)
class JobResult:
    status: Status
    outcomes: dict[str, SyncOutcome] = field(default_factory=dict)
    graph_calls: int = 0
    detail: str = ""


def store_credentials(table: Any, account: Account, sealed: dict[str, str]) -> None:
    """Write back a changed token cache (only if the account still exists: C9 wins)."""
    with _mapped_errors("update account"):
        table.update_item(
            Key={"pk": keys.user_pk(account.user_id), "sk": keys.account_sk(account.account_id)},
            UpdateExpression="SET #c = :c",
            ConditionExpression="attribute_exists(#c)",
            ExpressionAttributeNames={"#c": "credentials"},
            ExpressionAttributeValues={":c": sealed},
        )


class MicrosoftSyncWorker:
    def __init__(
        self,
        table: Any,
        box: CredentialBox,
        identity: MicrosoftIdentity,
        subscriptions: Subscriptions,
        *,
        graph_endpoint: str = DEFAULT_GRAPH_ENDPOINT,
        links: LinkSettings | None = None,
        session_factory: Callable[[], Any] | None = None,
        engine: SyncEngine | None = None,
    ) -> None:
        self.table = table
        self.repository = Repository(table)
        self.accounts = AccountRepository(table)
        self.state = SyncStateStore(table)
        self.engine = engine or SyncEngine(self.repository, self.state)
        self.box = box
        self.identity = identity
        self.subscriptions = subscriptions
        self.graph_endpoint = graph_endpoint
        self.links = links or LinkSettings()
        self.session_factory = session_factory

    def graph_for(
        self, account: Account, cache: msal.SerializableTokenCache | None = None
    ) -> tuple[GraphClient, Callable[[], None]]:
        """A Graph client of the account, and the function that writes the msal cache back (only
        when msal changed it). ``cache``: the account's msal cache when the caller holds it already
        (the connect callback, whose role may seal credentials but not open them)."""
        cache_box = TokenCacheBox(self.box, {"userId": account.user_id, "accountId": account.account_id})
        if cache is None:
            cache = cache_box.open(account.credentials)
        token: list[str] = []

        def access_token() -> str:
            if not token:
                token.append(self.identity.access_token(cache))
            return token[0]

        def write_back() -> None:
            if cache.has_state_changed:
                store_credentials(self.table, account, cache_box.seal(cache))
                cache.has_state_changed = False

        kwargs: dict[str, Any] = {
            "token": access_token,
            "mailbox": account.account_id,
            "base_url": self.graph_endpoint,
        }
        if self.session_factory is not None:
            kwargs["session"] = self.session_factory()
        return GraphClient(**kwargs), write_back

    def _refresh_listing(self, client: GraphClient, account: Account, extra: dict[str, Any]) -> None:
        """R8: new calendars become selectable. Best effort: Graph failing here keeps the stored
        listing (one WARNING) and the calendars still sync; a revoked grant is the job's (S7)."""
        try:
            refresh_listing(client, account, self.accounts, self.repository, self.subscriptions.registry)
        except (SourceThrottled, SourceUnavailable, SourceProtocolError, GraphError) as exc:
            logger.warning(
                "calendar listing not refreshed",
                extra={**extra, "provider": "microsoft", "error_type": type(exc).__name__, "error": str(exc)},
            )
            metrics.add_metric(name="MicrosoftCalendarListFailed", unit=MetricUnit.Count, value=1)

    def run(self, job: MailboxJob, now: datetime) -> JobResult:
        try:
            return self._run(job, now)
        except StoreUnavailable as exc:
            raise RetryLater(f"the store is busy: {exc.detail}") from exc

    def _run(self, job: MailboxJob, now: datetime) -> JobResult:
        account = self.accounts.get_account(job.user_id, job.account_id)
        if account is None or not account.credentials or account.provider is not Provider.MICROSOFT:
            if job.reason == "poll":  # a poll record outlived its account (C9)
                self.subscriptions.registry.forget_polled(job.account_id)
            return JobResult("gone", detail="the account is disconnected")
        if account.status == "reauth_required":
            return JobResult("reauth_required", detail="the account must be connected again")
        try:
            client, write_back = self.graph_for(account)
        except SealedSecretError as exc:
            self.accounts.set_status(account.user_id, account.account_id, "reauth_required")
            return JobResult("reauth_required", detail=exc.detail)
        result = JobResult("synced")
        extra = {"account_id": account.account_id, "reason": job.reason, "action": job.action}
        try:
            if job.action in ("renew", "recreate"):
                try:
                    self.subscriptions.ensure(
                        client, account.user_id, account.account_id, now, recreate=job.action == "recreate"
                    )
                except GraphError as exc:  # refused (the webhook's handshake failed…): sync anyway
                    logger.error("Graph subscription refused", extra={**extra, "error": str(exc)})
                    self.subscriptions.registry.mark_unsubscribed(account.user_id, account.account_id, now)
            if job.list_calendars:
                self._refresh_listing(client, account, extra)
            listings = self.accounts.list_calendars_of_account(account.account_id)
            wanted = set(job.calendar_ids) if job.calendar_ids is not None else None
            for listing in listings:
                if wanted is not None and listing.calendar_id not in wanted:
                    continue
                calendar = self.repository.get_calendar(listing.calendar_id)
                if calendar is None or not calendar.subscribers:
                    continue
                source = MicrosoftSource(
                    client,
                    listing.href,
                    account_id=account.account_id,
                    calendar_id=calendar.calendar_id,
                    can_edit=listing.writable,
                    links=self.links,
                )
                try:
                    result.outcomes[calendar.calendar_id] = self.engine.sync(
                        calendar, source, now=now, full=job.full
                    )
                except CalendarGone as exc:
                    logger.warning("calendar gone from the mailbox", extra={**extra, "error": str(exc)})
                except GraphError as exc:
                    if exc.status != 403:
                        raise
                    logger.warning(
                        "calendar not readable: skipped",
                        extra={**extra, "calendar_id": calendar.calendar_id, "error": str(exc)},
                    )
        except OutOfTime:  # S12 (calsync.sync.budget): the queue worker hands the job back
            write_back()
            raise
        except SourceAuthError as exc:
            logger.warning(
                "Microsoft grant refused: account needs reconnecting", extra={**extra, "error": str(exc)}
            )
            self.accounts.set_status(account.user_id, account.account_id, "reauth_required")
            return JobResult("reauth_required", detail=str(exc), graph_calls=client.calls)
        except SourceThrottled as exc:
            write_back()
            raise RetryLater(str(exc), exc.retry_after) from exc
        except SourceUnavailable as exc:
            write_back()
            raise RetryLater(str(exc)) from exc
        except (SourceProtocolError, GraphError) as exc:
            logger.error("Graph answered something unexpected", extra={**extra, "error": str(exc)})
            write_back()
            return JobResult("failed", detail=str(exc), graph_calls=client.calls)
        write_back()
        result.graph_calls = client.calls
        if any(o.status == "synced" for o in result.outcomes.values()):
            self.accounts.set_last_synced(account.user_id, account.account_id, now)
        return result
