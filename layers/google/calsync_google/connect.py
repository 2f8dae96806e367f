"""Connect a Google account (C1, C3, C4, C6, S7): authorize (state + PKCE), then the callback
exchanges the code, reads the calendar list (with ``accessRole``), seals the refresh token with
KMS, stores the account with the C3/C4 transaction (``AccountRepository.connect``) and hands the
calendars to ``AccountsService.attach_calendars`` (primary, subscriptions, first syncs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import Field

from calsync.api.account_schemas import AccountOut, AuthorizeOut
from calsync.api.accounts import AccountsService, Enqueue
from calsync.api.auth import Principal
from calsync.api.schemas import Id, _Request
from calsync.crypto import CredentialBox
from calsync.domain.errors import Forbidden, InvalidInput
from calsync.domain.models import Provider
from calsync.store.accounts import Account, AccountRepository, account_id_for
from calsync.sync.source import SourceError
from calsync_google.calendars import FoundCalendar, list_calendars
from calsync_google.client import Caller
from calsync_google.oauth import OAuthFlow
from calsync_google.worker import GoogleGrant, seal_grant


class AuthorizeIn(_Request):
    location_id: Id = Field(description="the location to use the account in (you must be a member)")
    redirect_uri: str = Field(
        min_length=8, max_length=2048, pattern=r"^(https://|http://127\.0\.0\.1[:/]|[a-z][a-z0-9+.-]*:/)"
    )


@dataclass(eq=False)
class GoogleConnect:
    flow: OAuthFlow
    _: KW_ONLY
    accounts: AccountRepository
    service: AccountsService
    box: CredentialBox
    services: Callable[[Any], Any]  # refresh token or GoogleGrant -> calendar service
    enqueue: Enqueue

    def authorize(self, principal: Principal, body: AuthorizeIn, now: datetime) -> AuthorizeOut:
        if not principal.is_member_of(body.location_id):
            raise Forbidden("you can connect accounts only in the locations you are a member of")
        url, state = self.flow.authorization_url(principal.user_id, body.location_id, body.redirect_uri, now)
        return AuthorizeOut(authorization_url=url, state=state)

    def callback(self, principal: Principal, code: str, state: str, now: datetime) -> AccountOut:
        pending = self.flow.consume_state(state, principal.user_id, now)
        if not principal.is_member_of(pending.location_id):
            raise Forbidden("you can connect accounts only in the locations you are a member of")
        tokens = self.flow.exchange(code, pending)
        # the access token of the exchange is used and kept (sealed): no refresh until it nearly
        # expires, neither for the calendar list nor for the first syncs
        grant = GoogleGrant(
            tokens.refresh_token,
            tokens.access_token if tokens.expires_in else None,
            # the token's own clock (google-auth compares it with the wall clock), not the request's
            datetime.now(UTC) + timedelta(seconds=tokens.expires_in) if tokens.expires_in else None,
        )
        calendars, email = self._calendars(grant)
        user_id = principal.user_id
        account_id = account_id_for(user_id, Provider.GOOGLE, email)
        sealed = seal_grant(self.box, grant, {"userId": user_id, "accountId": account_id})
        account = self.accounts.connect(
            Account(
                account_id=account_id,
                user_id=user_id,
                provider=Provider.GOOGLE,
                external_id=email,
                email=email,
                status="syncing",
                own_addresses=[email],
                credentials=sealed,
            ),
            pending.location_id,
        )
        self.service.attach_calendars(
            principal, account, pending.location_id, calendars, enqueue=self.enqueue
        )
        return AccountOut(
            id=account.account_id,
            provider=account.provider.value,
            email=account.email,
            status=account.status,
            locations=list(account.locations),
            last_synced_at=account.last_synced_at,
        )

    def _calendars(self, grant: GoogleGrant) -> tuple[list[FoundCalendar], str]:
        try:
            listed = list_calendars(self.services(grant), Caller(retries=2))
        except SourceError as exc:
            raise InvalidInput(f"Google's calendar list could not be read: {exc}") from exc
        if not listed.email:
            raise InvalidInput("the Google account has no primary calendar")
        return listed.calendars, listed.email
