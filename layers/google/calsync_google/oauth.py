"""OAuth 2.0 authorization-code flow with PKCE (S256) and ``state``, offline access (C1, S7, X3).

``authorization_url`` makes a random state and code verifier; the state's SHA-256 keys a pending
item (``OAUTH#…/STATE``: who asked, the location, the redirect URI, the verifier; 15-minute TTL).
``exchange`` trades the code (with the verifier) for tokens at the token endpoint through
google-auth's transport; the state item is consumed exactly once (a conditional delete), and only
by the person it was made for.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import google.auth.transport.requests
from botocore.exceptions import ClientError

from calsync.domain.errors import InvalidInput
from calsync.store import keys
from calsync_google.client import SCOPES, ClientSecret, GoogleEndpoints

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_dynamodb.service_resource import Table

STATE_TTL = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Pending:
    user_id: str
    location_id: str
    redirect_uri: str
    verifier: str


@dataclass(frozen=True, slots=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_in: int = 0  # seconds the access token lives (Google: 3599)

    def __repr__(self) -> str:
        return "Tokens(***)"


def challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class OAuthFlow:
    def __init__(self, table: Table, client: Callable[[], ClientSecret], endpoints: GoogleEndpoints) -> None:
        """``client``: the OAuth client, read at each use (``settings.client_secret``: Secrets
        Manager, cached 5 min), so a rotated secret is used without waiting for a new container."""
        self._table = table
        self._client = client
        self._endpoints = endpoints

    def authorization_url(
        self, user_id: str, location_id: str, redirect_uri: str, now: datetime
    ) -> tuple[str, str]:
        state, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(64)
        self._table.put_item(
            Item={
                "pk": keys.oauth_state_pk(state),
                "sk": keys.OAUTH_STATE,
                "type": "oauthState",
                "userId": user_id,
                "locationId": location_id,
                "redirectUri": redirect_uri,
                "verifier": verifier,
                "expiresAt": int((now + STATE_TTL).timestamp()),
            }
        )
        query = {
            "client_id": self._client().client_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": " ".join(SCOPES),
            "access_type": "offline",
            "prompt": "consent",
            "include_granted_scopes": "true",
            "state": state,
            "code_challenge": challenge(verifier),
            "code_challenge_method": "S256",
        }
        return f"{self._endpoints.auth_uri}?{urlencode(query)}", state

    def consume_state(self, state: str, user_id: str, now: datetime) -> Pending:
        """The pending authorization of ``state``, deleted in the same call (single use)."""
        try:
            item = self._table.delete_item(
                Key={"pk": keys.oauth_state_pk(state), "sk": keys.OAUTH_STATE},
                ConditionExpression="attribute_exists(pk) AND userId = :u AND expiresAt > :now",
                ExpressionAttributeValues={":u": user_id, ":now": int(now.timestamp())},
                ReturnValues="ALL_OLD",
            ).get("Attributes")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise InvalidInput(
                    "unknown, expired or already used state: start the connection again"
                ) from exc
            raise
        assert item is not None
        return Pending(
            user_id=str(item["userId"]),
            location_id=str(item["locationId"]),
            redirect_uri=str(item["redirectUri"]),
            verifier=str(item["verifier"]),
        )

    def exchange(self, code: str, pending: Pending) -> Tokens:
        """Code + verifier -> tokens (google-auth's HTTP transport); 400 when Google refuses."""
        request = google.auth.transport.requests.Request()
        client = self._client()
        body = urlencode(
            {
                "grant_type": "authorization_code",
                "code": code,
                "code_verifier": pending.verifier,
                "redirect_uri": pending.redirect_uri,
                "client_id": client.client_id,
                "client_secret": client.client_secret,
            }
        )
        started = time.monotonic()
        response = request(
            url=self._endpoints.token_uri,
            method="POST",
            body=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            timeout=15,
        )
        del started
        try:
            data: Any = json.loads(response.data)
        except ValueError:
            data = {}
        if response.status != 200 or not isinstance(data, dict) or "access_token" not in data:
            error = data.get("error", "refused") if isinstance(data, dict) else "refused"
            raise InvalidInput(f"Google refused the authorization ({error}): start the connection again")
        if not data.get("refresh_token"):
            raise InvalidInput("Google granted no offline access: start the connection again")
        granted = data.get("scope")
        if isinstance(granted, str) and not set(SCOPES) <= set(granted.split()):
            # granular consent: the person may uncheck the calendar permission
            raise InvalidInput("Google granted no calendar access: allow it and start the connection again")
        try:
            expires_in = max(0, int(data.get("expires_in") or 0))
        except (TypeError, ValueError):
            expires_in = 0
        return Tokens(str(data["access_token"]), str(data["refresh_token"]), expires_in)
