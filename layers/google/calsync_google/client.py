"""The Google Calendar client: ``google-api-python-client`` with its static discovery document
(only ``calendar.v3.json`` ships in the layer), google-auth credentials, and one ``execute`` that
maps Google's errors to the source errors of ``calsync.sync.source`` (S7, S8).

Endpoints come from the environment so that tests and the local stack point at fakes:
``GOOGLE_AUTH_URI``, ``GOOGLE_TOKEN_URI``, ``GOOGLE_API_ENDPOINT`` (empty: Google's own).
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import google_auth_httplib2  # type: ignore[import-untyped]
import httplib2  # type: ignore[import-untyped]
from google.auth.exceptions import RefreshError, TransportError
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build  # type: ignore[import-untyped]
from googleapiclient.errors import HttpError  # type: ignore[import-untyped]

from calsync.sync.source import (
    CalendarGone,
    SourceAuthError,
    SourceProtocolError,
    SourceThrottled,
    SourceUnavailable,
)

SCOPES = ("https://www.googleapis.com/auth/calendar",)
QUOTA_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"})
RETRIES = 3  # in-call retries of 429/403-quota/5xx (exponential backoff with jitter, by the client)
THROTTLE_RETRY_AFTER = 60  # then the job comes back after about a minute (S8)
TIMEOUT = 20


GOOGLE_AUTH_URI = "https://accounts.google.com/o/oauth2/v2/auth"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL, not a secret


@dataclass(frozen=True, slots=True)
class GoogleEndpoints:
    auth_uri: str = GOOGLE_AUTH_URI
    token_uri: str = GOOGLE_TOKEN_URI
    api_endpoint: str | None = None  # None: the discovery document's own

    @classmethod
    def from_env(cls) -> GoogleEndpoints:
        env = os.environ
        return cls(
            auth_uri=env.get("GOOGLE_AUTH_URI") or GOOGLE_AUTH_URI,
            token_uri=env.get("GOOGLE_TOKEN_URI") or GOOGLE_TOKEN_URI,
            api_endpoint=env.get("GOOGLE_API_ENDPOINT") or None,
        )


@dataclass(frozen=True, slots=True)
class ClientSecret:
    """The OAuth client (X3: read from Secrets Manager, never logged)."""

    client_id: str
    client_secret: str = ""

    def __repr__(self) -> str:
        return f"ClientSecret(client_id={self.client_id!r}, client_secret=***)"


def credentials(refresh_token: str, client: ClientSecret, endpoints: GoogleEndpoints) -> Credentials:
    return Credentials(  # type: ignore[no-untyped-call]
        token=None,
        refresh_token=refresh_token,
        token_uri=endpoints.token_uri,
        client_id=client.client_id,
        client_secret=client.client_secret,
        scopes=list(SCOPES),
    )


def calendar_service(creds: Credentials, endpoints: GoogleEndpoints) -> Any:
    """The ``calendar`` v3 resource, from the static discovery document (no network fetch)."""
    http = google_auth_httplib2.AuthorizedHttp(creds, http=httplib2.Http(timeout=TIMEOUT))
    options = {"api_endpoint": endpoints.api_endpoint} if endpoints.api_endpoint else None
    return build(
        "calendar",
        "v3",
        http=http,
        static_discovery=True,
        cache_discovery=False,
        client_options=options,
    )


@dataclass(slots=True)
class Caller:
    """Runs requests: retries within the call, counts them, maps errors."""

    retries: int = RETRIES
    sleep: Callable[[float], None] = time.sleep
    rand: Callable[[], float] = random.random
    calls: int = 0

    def __call__(self, request: Any, headers: dict[str, str] | None = None) -> Any:
        request._sleep = self.sleep  # the client's own backoff: rand() * 2**attempt seconds
        request._rand = self.rand
        if headers:
            request.headers.update(headers)
        self.calls += 1
        try:
            return request.execute(num_retries=self.retries)
        except HttpError as exc:
            raise map_http_error(exc) from exc
        except RefreshError as exc:
            raise SourceAuthError(f"the grant was refused: {_refresh_reason(exc)}") from exc
        except (TransportError, httplib2.HttpLib2Error, OSError, TimeoutError) as exc:
            raise SourceUnavailable(f"Google cannot be reached: {type(exc).__name__}") from exc


class GoneError(Exception):
    """410 Gone (the sync token is no longer valid)."""


class PreconditionFailed(Exception):
    """412 (If-Match did not match)."""


def error_reason(exc: HttpError) -> str:
    try:
        data = json.loads(exc.content)
        errors = data.get("error", {}).get("errors") or [{}]
        return str(errors[0].get("reason") or "")
    except (ValueError, AttributeError, TypeError):
        return ""


def map_http_error(exc: HttpError) -> Exception:
    status, reason = int(exc.resp.status), error_reason(exc)
    if status == 410:
        return GoneError(reason or "gone")
    if status == 412:
        return PreconditionFailed(reason)
    if status == 401:
        return SourceAuthError("Google refused the access token (401)")
    if status == 429 or (status == 403 and reason in QUOTA_REASONS):
        retry = exc.resp.get("retry-after")
        delay = int(retry) if retry and str(retry).isdigit() else THROTTLE_RETRY_AFTER
        return SourceThrottled(f"Google throttled us ({status} {reason})", delay + random.randint(0, 30))  # noqa: S311
    if status == 404:
        return CalendarGone(f"not found ({reason})")
    if status >= 500:
        return SourceUnavailable(f"Google answered {status}")
    return SourceProtocolError(f"Google answered {status} {reason}")


def _refresh_reason(exc: RefreshError) -> str:
    text = str(exc)
    return "invalid_grant" if "invalid_grant" in text else "refused"
