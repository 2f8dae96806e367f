"""Microsoft sign-in with msal (C1, S7, X3).

- ``MicrosoftIdentity.start``: ``initiate_auth_code_flow`` (state, PKCE S256, nonce) with the scopes
  ``Calendars.ReadWrite Calendars.ReadWrite.Shared User.Read offline_access`` (the ``.Shared`` scope
  reads the calendars other people shared with the mailbox: docs/providers/microsoft.md M9); the
  flow (it holds the PKCE verifier) is kept sealed in the table for 10 minutes under its state
  (``calsync_microsoft.registry``).
- ``MicrosoftIdentity.finish``: ``acquire_token_by_auth_code_flow`` (msal checks the state and sends
  the verifier); the result's cache is the account's ``SerializableTokenCache``.
- ``TokenCacheBox``: one cache per account, sealed with ``CredentialBox`` (KMS; context = user and
  account), written back only when ``cache.has_state_changed``.
- ``access_token``: ``acquire_token_silent`` (msal refreshes). Only a revoked grant raises
  ``SourceAuthError`` (the account becomes ``reauth_required``; nothing else is affected): the
  ``error`` ``invalid_grant`` (AADSTS700082 expired, AADSTS50173 revoked, AADSTS65001 consent
  withdrawn…) or ``interaction_required`` / ``consent_required`` / ``login_required``. Everything
  else is transient and raises ``SourceUnavailable`` (the job is retried later): the token
  endpoint's 5xx (msal raises ``MsalServiceError``), timeouts and network errors (``requests``),
  ``temporarily_unavailable``, a body that is not JSON, and the errors of calsync's own app
  registration (``invalid_client``: an expired client secret must not disconnect every person).
  The identity platform's documentation says to react to ``error``, never to the AADSTS numbers
  (docs/providers/microsoft.md M1, M2).

The authority is ``https://login.microsoftonline.com/common`` (work/school and personal accounts),
configurable by MICROSOFT_AUTHORITY; msal reads the authority's OpenID configuration when the app
is created, through the ``http_client`` given (tests point it at a loopback fake). The client secret
comes from Secrets Manager (Powertools parameters, cached), never from the environment.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import msal  # type: ignore[import-untyped]
import requests
from aws_lambda_powertools.utilities import parameters

from calsync.crypto import CredentialBox
from calsync.sync.source import SourceAuthError, SourceUnavailable

DEFAULT_AUTHORITY: Final = "https://login.microsoftonline.com/common"
# msal adds openid profile offline_access itself
SCOPES: Final = ("Calendars.ReadWrite", "Calendars.ReadWrite.Shared", "User.Read")
# what a refresh asks for: a subset of the consented scopes (a refresh that asks for a scope the
# person never consented to is refused, which would disconnect every account connected before the
# ``.Shared`` scope was added); the token Entra returns carries the scopes the person consented to
REFRESH_SCOPES: Final = ("Calendars.ReadWrite", "User.Read")
# the token endpoint's ``error`` values that mean the person must sign in again (M1); any other
# answer is transient or calsync's own configuration, never a reason to disconnect the person (M2)
REVOKED: Final = frozenset({"invalid_grant", "interaction_required", "consent_required", "login_required"})
# what msal lets through from the token endpoint when it is down: its 5xx (MsalServiceError), the
# transport's errors, a body that is not JSON (ValueError)
_OUTAGE: Final = (msal.exceptions.MsalServiceError, requests.RequestException, ValueError)


def token_error(result: Mapping[str, Any] | None) -> SourceAuthError | SourceUnavailable:
    """The failure of a token request that gave no token: revoked (``SourceAuthError``) or
    transient (``SourceUnavailable``)."""
    if not result:  # msal found no refresh token in the cache: nothing to retry with
        return SourceAuthError("no Microsoft refresh token: the account must be connected again")
    error = str(result.get("error") or "")
    codes = result.get("error_codes") or []
    if error in REVOKED:
        return SourceAuthError(f"the Microsoft grant was refused ({error} {codes})")
    return SourceUnavailable(f"the Microsoft identity platform failed ({error} {codes}): retry later")


@dataclass(frozen=True, slots=True)
class MicrosoftAppConfig:
    client_id: str
    # the secret, or how to read it at each use (``client_secret_from``: Secrets Manager, cached
    # 5 min), so a rotated secret is used without waiting for a new container
    client_secret: str | Callable[[], str]
    authority: str = DEFAULT_AUTHORITY
    http_client: Any = None  # requests.Session-like; None: msal's own
    scopes: tuple[str, ...] = SCOPES  # what a sign-in asks for (an older app asked for fewer: M11)

    def secret(self) -> str:
        """The client secret now."""
        return self.client_secret if isinstance(self.client_secret, str) else self.client_secret()


def _app_secret(secret_name: str) -> str:
    value = parameters.get_secret(secret_name, max_age=300)
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def client_secret_from(secret_name: str) -> str:
    """The app's client secret (X3): Secrets Manager through Powertools parameters (cached 5 min);
    the secret is the bare value or JSON ``{"client_id", "client_secret"}`` (MicrosoftOAuthSecret)."""
    text = _app_secret(secret_name)
    if text.startswith("{"):
        data = json.loads(text)
        text = str(data.get("clientSecret") or data.get("client_secret") or "")
    return text


def client_id_from(secret_name: str) -> str:
    """The app's (client) id from the same JSON secret; "" when the secret is a bare value."""
    text = _app_secret(secret_name)
    if not text.startswith("{"):
        return ""
    data = json.loads(text)
    return str(data.get("clientId") or data.get("client_id") or "")


class MicrosoftIdentity:
    def __init__(self, config: MicrosoftAppConfig) -> None:
        self.config = config

    def app(self, cache: msal.SerializableTokenCache | None = None) -> msal.ConfidentialClientApplication:
        kwargs: dict[str, Any] = {
            "client_credential": self.config.secret(),
            "authority": self.config.authority,
            "token_cache": cache,
        }
        if self.config.http_client is not None:
            kwargs["http_client"] = self.config.http_client
        if not self.config.authority.startswith("https://login.microsoftonline.com/"):
            kwargs["instance_discovery"] = False
        return msal.ConfidentialClientApplication(self.config.client_id, **kwargs)

    def start(self, redirect_uri: str) -> dict[str, Any]:
        """The auth-code flow: ``flow["auth_uri"]`` to send the person to, ``flow["state"]``;
        ``SourceUnavailable`` when the identity platform cannot be reached (msal reads the
        authority's OpenID configuration when the application is built)."""
        try:
            flow = self.app().initiate_auth_code_flow(list(self.config.scopes), redirect_uri=redirect_uri)
        except (msal.exceptions.MsalServiceError, requests.RequestException) as exc:
            raise SourceUnavailable(f"the Microsoft identity platform failed: {type(exc).__name__}") from exc
        if "error" in flow:
            raise SourceAuthError(f"cannot start the Microsoft sign-in: {flow['error']}")
        return dict(flow)

    def finish(
        self, flow: Mapping[str, Any], params: Mapping[str, str]
    ) -> tuple[msal.SerializableTokenCache, dict[str, Any]]:
        """The token cache and the id token claims; ``SourceAuthError`` when Microsoft refused."""
        cache = msal.SerializableTokenCache()
        try:
            result = self.app(cache).acquire_token_by_auth_code_flow(dict(flow), dict(params))
        except (msal.exceptions.MsalServiceError, requests.RequestException) as exc:
            raise SourceUnavailable(f"the Microsoft identity platform failed: {type(exc).__name__}") from exc
        except (ValueError, RuntimeError) as exc:  # msal: state or nonce mismatch, a flow not ours
            raise SourceAuthError("the sign-in does not match the one started (state)") from exc
        if "error" in result:
            failure = token_error(result)
            if isinstance(failure, SourceUnavailable):
                raise failure
            raise SourceAuthError(f"Microsoft refused the sign-in: {result.get('error')}")
        return cache, dict(result.get("id_token_claims") or {})

    def access_token(self, cache: msal.SerializableTokenCache) -> str:
        app = self.app(cache)
        accounts = app.get_accounts()
        if not accounts:
            raise SourceAuthError("no Microsoft account in the token cache")
        try:
            result = app.acquire_token_silent_with_error(list(REFRESH_SCOPES), account=accounts[0])
        except _OUTAGE as exc:
            raise SourceUnavailable(f"the Microsoft identity platform failed: {type(exc).__name__}") from exc
        if not result or "access_token" not in result:
            raise token_error(result)
        return str(result["access_token"])


class TokenCacheBox:
    """One account's msal cache, sealed at rest; ``dirty`` after msal changed it (refresh, rotate)."""

    def __init__(self, box: CredentialBox, context: Mapping[str, str]) -> None:
        self.box = box
        self.context = dict(context)

    def open(self, sealed: Mapping[str, str]) -> msal.SerializableTokenCache:
        cache = msal.SerializableTokenCache()
        if sealed:
            cache.deserialize(self.box.open(sealed, self.context).decode("utf-8"))
        return cache

    def seal(self, cache: msal.SerializableTokenCache) -> dict[str, str]:
        return self.box.seal(cache.serialize().encode("utf-8"), self.context)


def external_id_of(claims: Mapping[str, Any]) -> tuple[str, str]:
    """(external id, email) of a signed-in mailbox: the tenant and object id (stable across renames)
    and the preferred user name."""
    oid = str(claims.get("oid") or claims.get("sub") or "")
    tid = str(claims.get("tid") or "")
    if not oid:
        raise SourceAuthError("the id token names no account")
    email = str(claims.get("preferred_username") or claims.get("email") or "")
    return (f"{tid}.{oid}" if tid else oid).lower(), email
