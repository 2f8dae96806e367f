"""Connecting a Microsoft account (C1-C4, C6, S2, S7): the two routes of API.md.

``authorize``: the caller (a member of the location, C2/C8) gets msal's authorization URL and its
state; the flow (PKCE verifier inside) is sealed and kept under the state for 10 minutes.

``callback``: the same person (the JWT's subject must be the one who started: a callback replayed by
someone else is refused) finishes the flow; msal checks the state and sends the verifier. The mailbox
is then connected through ``AccountRepository.connect`` (C3/C4 in one conditional transaction: a
mailbox connected by another person is the 409 that explains sharing instead), its calendars are
stored by ``AccountsService.attach_calendars`` (C6's primary, subscriptions, first syncs), and the
mailbox's Graph subscription is created (S2).

- ``me/calendars`` is read page by page, following ``@odata.nextLink`` (docs/providers/microsoft.md
  M6), before anything is stored: a Graph outage or throttling at that moment is a 503 and nothing
  is connected (the person signs in again), never a mailbox stored without its calendars.
- A calendar someone else shared with the mailbox (its ``owner`` is another address, or the mailbox
  may not share it) gets no change notification from Graph (M10): it is recorded as polled, and
  the poll schedule syncs it (``functions/microsoft_renew``, task ``poll``).
- A subscription that cannot be created now (Graph throttled, the webhook's handshake failed) is
  queued as a ``recreate`` job: the sync worker creates it with the queue's retries (S8).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from calsync.api.accounts import AccountsService, Enqueue
from calsync.api.auth import Principal
from calsync.crypto import CredentialBox, SealedSecretError
from calsync.domain.errors import CalsyncError, Forbidden, InvalidInput
from calsync.domain.models import Provider
from calsync.observability import logger
from calsync.store.accounts import Account, AccountRepository, account_id_for
from calsync.sync.source import SourceAuthError, SourceThrottled, SourceUnavailable
from calsync_microsoft.auth import MicrosoftIdentity, TokenCacheBox, external_id_of
from calsync_microsoft.calendars import list_calendars
from calsync_microsoft.graph import GraphError
from calsync_microsoft.jobs import MailboxJob
from calsync_microsoft.registry import MicrosoftRegistry, PendingFlow
from calsync_microsoft.worker import MicrosoftSyncWorker


class ProviderUnavailable(CalsyncError):
    """Microsoft could not be reached or throttled the sign-in: try again (nothing was stored)."""

    status = 503
    type_slug = "provider-unavailable"
    title = "Provider unavailable"


@dataclass(eq=False)
class MicrosoftConnect:
    """Wired in one place (``calsync_microsoft.provider``)."""

    service: AccountsService
    accounts: AccountRepository
    registry: MicrosoftRegistry
    identity: MicrosoftIdentity
    box: CredentialBox
    worker: MicrosoftSyncWorker
    enqueue: Enqueue
    enqueue_mailbox: Callable[[MailboxJob], None] | None = None

    def authorize(
        self, principal: Principal, location_id: str, redirect_uri: str, now: datetime
    ) -> tuple[str, str]:
        if not principal.is_member_of(location_id):  # C2, C8
            raise Forbidden("you can connect accounts only in the locations you are a member of")
        try:
            flow = self.identity.start(redirect_uri)
        except SourceUnavailable as exc:  # X5: an outage at Microsoft is a 503 to retry, never a 500
            logger.warning(
                "Microsoft sign-in could not be started", extra={"error": str(exc.__cause__ or exc)[:500]}
            )
            raise ProviderUnavailable(f"Microsoft sign-in cannot be started now: {exc}") from exc
        state = str(flow["state"])
        sealed = self.box.seal(json.dumps(flow).encode("utf-8"), {"oauthState": state})
        self.registry.put_flow(state, PendingFlow(principal.user_id, location_id, sealed), now)
        return str(flow["auth_uri"]), state

    def callback(self, principal: Principal, params: dict[str, str], now: datetime) -> Account:
        state = params.get("state", "")
        pending = self.registry.take_flow(state, now) if state else None
        if pending is None or pending.user_id != principal.user_id:
            raise InvalidInput("this sign-in is unknown or expired: start again from the authorize step")
        try:
            flow = json.loads(self.box.open(pending.sealed_flow, {"oauthState": state}))
        except (SealedSecretError, ValueError) as exc:
            raise InvalidInput("this sign-in is unknown or expired: start again") from exc
        try:
            cache, claims = self.identity.finish(flow, params)
            external_id, email = external_id_of(claims)
        except SourceUnavailable as exc:
            raise ProviderUnavailable(f"Microsoft could not complete the sign-in now: {exc}") from exc
        except SourceAuthError as exc:
            raise InvalidInput(f"Microsoft did not complete the sign-in: {exc}") from exc
        user_id = principal.user_id
        account_id = account_id_for(user_id, Provider.MICROSOFT, external_id)
        sealed = TokenCacheBox(self.box, {"userId": user_id, "accountId": account_id}).seal(cache)
        candidate = Account(
            account_id=account_id,
            user_id=user_id,
            provider=Provider.MICROSOFT,
            external_id=external_id,
            email=email or None,
            status="active",
            own_addresses=[email.lower()] if email else [],
            credentials=sealed,
        )
        # the cache it holds, not the sealed copy: this function's role opens sign-in flows only
        client, write_back = self.worker.graph_for(candidate, cache)  # written back once it is stored
        try:
            found = list_calendars(client, email)
        except (SourceThrottled, SourceUnavailable, GraphError) as exc:
            logger.warning(
                "Microsoft calendars not listed", extra={"account_id": account_id, "error": str(exc)}
            )
            raise ProviderUnavailable("Microsoft could not list the calendars now: sign in again") from exc
        account = self.accounts.connect(candidate, pending.location_id)  # C3, C4: 409 explained
        listings = self.service.attach_calendars(
            principal, account, pending.location_id, found, enqueue=self.enqueue
        )
        shared = {c.href for c in found if c.shared}
        self.registry.put_polled(user_id, account_id, [x.calendar_id for x in listings if x.href in shared])
        try:
            self.worker.subscriptions.ensure(client, user_id, account_id, now)
        except Exception as exc:  # any failure: the sync worker creates it, with the queue's retries
            logger.warning(
                "Graph subscription not created: queued", extra={"account_id": account_id, "error": str(exc)}
            )
            if self.enqueue_mailbox is not None:
                self.enqueue_mailbox(
                    MailboxJob(user_id=user_id, account_id=account_id, action="recreate", reason="connect")
                )
        write_back()
        logger.info("microsoft account connected", extra={"account_id": account_id})
        return account
