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
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
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
# 403 reasons that mean "slow down / come back later", never "forbidden" (docs/providers/google.md,
# "Errors"): the per-user and per-project rate limits, the daily project quota and the Calendar
# usage limits. Every other 403 (requiredAccessLevel, forbiddenForNonOrganizer…) is permanent.
QUOTA_REASONS = frozenset(
    {"rateLimitExceeded", "userRateLimitExceeded", "dailyLimitExceeded", "quotaExceeded"}
)
RETRIES = 3  # in-call retries of 429/403-quota/5xx (exponential backoff with jitter, by the client)
THROTTLE_RETRY_AFTER = 60  # then the job comes back after about a minute (S8)
DAILY_LIMIT_RETRY_AFTER = 3600  # the daily quota does not come back within minutes
MAX_RETRY_AFTER = 12 * 3600  # SQS's longest visibility timeout
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


def credentials(
    refresh_token: str,
    client: ClientSecret,
    endpoints: GoogleEndpoints,
    *,
    access_token: str | None = None,
    expiry: datetime | None = None,
) -> Credentials:
    """google-auth credentials; with a kept ``access_token`` and its ``expiry`` google-auth uses it
    until shortly before it expires (``REFRESH_THRESHOLD``) and refreshes only then (or on a 401)."""
    return Credentials(  # type: ignore[no-untyped-call]
        token=access_token,
        expiry=expiry.astimezone(UTC).replace(tzinfo=None) if expiry and access_token else None,
        refresh_token=refresh_token,
        token_uri=endpoints.token_uri,
        client_id=client.client_id,
        client_secret=client.client_secret,
        scopes=list(SCOPES),
    )


def credentials_of(service: Any) -> Credentials | None:
    """The google-auth credentials a calendar service was built with (after its requests: the
    refreshed access token)."""
    creds = getattr(getattr(service, "_http", None), "credentials", None)
    return creds if isinstance(creds, Credentials) else None


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
            raise map_refresh_error(exc) from exc
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
    if status == 403 and reason in ("insufficientPermissions", "ACCESS_TOKEN_SCOPE_INSUFFICIENT"):
        # the calendar permission was taken back (granular consent): only the person can grant it
        return SourceAuthError(f"Google refused the calendar scope (403 {reason})")
    retry_after = _retry_after(exc.resp.get("retry-after"))
    if status == 429 or (status == 403 and reason in QUOTA_REASONS):
        default = DAILY_LIMIT_RETRY_AFTER if reason == "dailyLimitExceeded" else THROTTLE_RETRY_AFTER
        delay = min(MAX_RETRY_AFTER, retry_after if retry_after is not None else default)
        return SourceThrottled(f"Google throttled us ({status} {reason})", delay + random.randint(0, 30))  # noqa: S311
    if status == 404:
        return CalendarGone(f"not found ({reason})")
    if status >= 500:
        if retry_after is not None:  # 503 with Retry-After: come back when Google says
            return SourceThrottled(f"Google answered {status} {reason}", min(MAX_RETRY_AFTER, retry_after))
        return SourceUnavailable(f"Google answered {status} {reason}".rstrip())
    return SourceProtocolError(f"Google answered {status} {reason}")


def _retry_after(value: object) -> int | None:
    """RFC 9110 Retry-After: delay-seconds or an HTTP-date; None when absent or unreadable."""
    if value is None:
        return None
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0, int((when - datetime.now(UTC)).total_seconds()))


def refresh_error_code(exc: RefreshError) -> str:
    """The OAuth ``error`` of a refused token refresh ("" when the answer was not OAuth JSON, e.g.
    an HTML 502 page)."""
    for arg in exc.args[1:]:
        if isinstance(arg, dict) and isinstance(arg.get("error"), str):
            return str(arg["error"])
    return "invalid_grant" if "invalid_grant" in str(exc.args[0] if exc.args else "") else ""


def map_refresh_error(exc: RefreshError) -> Exception:
    """Only a refused grant (``invalid_grant``: revoked, consent withdrawn, expired, password
    change) needs the person (S7). Everything else — what google-auth marks ``retryable`` (5xx,
    408, 429, ``temporarily_unavailable``/``server_error``/``internal_failure``) and any other
    answer of the token endpoint (an HTML 502 page, ``invalid_client`` while the client secret is
    rotated) — is Google's or our own trouble, never the person's: retried later (S8)."""
    code = refresh_error_code(exc)
    if code == "invalid_grant" and not getattr(exc, "retryable", False):
        return SourceAuthError("the grant was refused: invalid_grant")
    kind = "transient" if getattr(exc, "retryable", False) else "refused"
    return SourceUnavailable(f"Google's token endpoint failed ({kind}: {code or 'no OAuth error'})")
