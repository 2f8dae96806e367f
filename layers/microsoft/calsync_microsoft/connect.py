"""Connecting a Microsoft account (C1-C4, C6, S2, S7): the two routes of API.md.

``authorize``: the caller (a member of the location, C2/C8) gets msal's authorization URL and its
state; the flow (PKCE verifier inside) is sealed and kept under the state for 10 minutes.

``callback``: the same person (the JWT's subject must be the one who started: a callback replayed by
someone else is refused) finishes the flow; msal checks the state and sends the verifier. The mailbox
is then connected through ``AccountRepository.connect`` (C3/C4 in one conditional transaction: a
mailbox connected by another person is the 409 that explains sharing instead), its calendars are
stored by ``AccountsService.attach_calendars`` (C6's primary, subscriptions, first syncs), and the
mailbox's Graph subscription is created (S2).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from calsync.api.accounts import AccountsService, Enqueue
from calsync.api.auth import Principal
from calsync.crypto import CredentialBox, SealedSecretError
from calsync.domain.errors import Forbidden, InvalidInput
from calsync.domain.models import Provider
from calsync.observability import logger
from calsync.store.accounts import Account, AccountRepository, account_id_for
from calsync.store.items import AccessRole
from calsync.sync.source import SourceAuthError
from calsync_microsoft.auth import MicrosoftIdentity, TokenCacheBox, external_id_of
from calsync_microsoft.registry import MicrosoftRegistry, PendingFlow
from calsync_microsoft.worker import MicrosoftSyncWorker


@dataclass(frozen=True, slots=True)
class GraphCalendar:
    href: str  # the Graph calendar id
    name: str
    access_role: AccessRole
    time_zone: str | None = None


def _calendars(body: Any) -> list[GraphCalendar]:
    out: list[GraphCalendar] = []
    for item in (body or {}).get("value", []) if isinstance(body, dict) else []:
        if isinstance(item, dict) and item.get("id"):
            out.append(
                GraphCalendar(
                    href=str(item["id"]),
                    name=str(item.get("name") or ""),
                    access_role="owner" if item.get("canEdit") else "reader",
                )
            )
    # the default calendar first: C6 makes the first writable calendar primary
    default = [c for c, i in zip(out, body.get("value", []), strict=False) if i.get("isDefaultCalendar")]
    return default + [c for c in out if c not in default]


class MicrosoftConnect:
    def __init__(  # noqa: PLR0917 - wired in one place (functions/microsoft_accounts)
        self,
        accounts_service: AccountsService,
        accounts: AccountRepository,
        registry: MicrosoftRegistry,
        identity: MicrosoftIdentity,
        box: CredentialBox,
        worker: MicrosoftSyncWorker,
        enqueue: Enqueue,
    ) -> None:
        self.service = accounts_service
        self.accounts = accounts
        self.registry = registry
        self.identity = identity
        self.box = box
        self.worker = worker
        self.enqueue = enqueue

    def authorize(
        self, principal: Principal, location_id: str, redirect_uri: str, now: datetime
    ) -> tuple[str, str]:
        if not principal.is_member_of(location_id):  # C2, C8
            raise Forbidden("you can connect accounts only in the locations you are a member of")
        flow = self.identity.start(redirect_uri)
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
        except SourceAuthError as exc:
            raise InvalidInput(f"Microsoft did not complete the sign-in: {exc}") from exc
        user_id = principal.user_id
        account_id = account_id_for(user_id, Provider.MICROSOFT, external_id)
        sealed = TokenCacheBox(self.box, {"userId": user_id, "accountId": account_id}).seal(cache)
        account = self.accounts.connect(  # C3, C4: 409 with the explaining detail
            Account(
                account_id=account_id,
                user_id=user_id,
                provider=Provider.MICROSOFT,
                external_id=external_id,
                email=email or None,
                status="active",
                own_addresses=[email.lower()] if email else [],
                credentials=sealed,
            ),
            pending.location_id,
        )
        client, write_back = self.worker.graph_for(account)
        found = _calendars(client.get("me/calendars").body)
        self.service.attach_calendars(principal, account, pending.location_id, found, enqueue=self.enqueue)
        try:
            self.worker.subscriptions.ensure(client, user_id, account_id, now)
        except Exception:  # the renewal schedule creates it; polling-free reconcile covers the gap (S5)
            logger.exception("Graph subscription not created", extra={"account_id": account_id})
        write_back()
        logger.info("microsoft account connected", extra={"account_id": account_id})
        return account
