"""Microsoft Graph over plain HTTPS (requests), with the throttling rules of S8.

- At most ``MAX_CONCURRENT_PER_MAILBOX`` (4) requests per mailbox are in flight from one process: a
  bounded semaphore per mailbox, shared by every ``GraphClient`` of the process (sync worker, write
  back, subscription renewal). Across processes the sync queue's FIFO group is the mailbox, so one
  worker at a time syncs a mailbox (its requests are sequential): the per-mailbox total stays <= 4.
- 429, 503 and 504 raise ``SourceThrottled`` with the server's ``Retry-After`` (seconds) when it
  sent one, else None (the queue's exponential backoff); the worker makes the SQS record come back
  after that delay instead of sleeping in the Lambda (docs/providers/microsoft.md M3, M4).
- Other 5xx and network errors raise ``SourceUnavailable`` (retried with backoff).
- 401 raises ``SourceUnavailable`` too: an access token Graph refuses (expired during a long job,
  or not yet valid at a replica) is not a revoked grant; the next attempt gets a fresh token from
  msal, whose refresh is what tells a revoked grant (S7, M1).

The access token comes from a callable (msal's cache, ``calsync_microsoft.auth``); it is never logged.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final

import requests

from calsync.sync.source import SourceThrottled, SourceUnavailable

DEFAULT_GRAPH_ENDPOINT: Final = "https://graph.microsoft.com/v1.0"
MAX_CONCURRENT_PER_MAILBOX: Final = 4
TIMEOUT: Final = (5.0, 20.0)
THROTTLED: Final = (429, 503, 504)  # Graph's throttling answers, with or without Retry-After (M3, M4)
MAX_RETRY_AFTER: Final = 43200  # SQS's longest visibility timeout (12 h)

_semaphores: dict[str, threading.BoundedSemaphore] = {}
_semaphores_lock = threading.Lock()


def mailbox_semaphore(mailbox: str) -> threading.BoundedSemaphore:
    with _semaphores_lock:
        sem = _semaphores.get(mailbox)
        if sem is None:
            sem = _semaphores[mailbox] = threading.BoundedSemaphore(MAX_CONCURRENT_PER_MAILBOX)
        return sem


@dataclass(slots=True)
class GraphResponse:
    status: int
    headers: Mapping[str, str]
    body: Any  # parsed JSON (dict) or None

    def error_code(self) -> str:
        if isinstance(self.body, dict):
            err = self.body.get("error")
            if isinstance(err, dict):
                return str(err.get("code") or "")
        return ""


def retry_after(headers: Mapping[str, str], now: datetime | None = None) -> int | None:
    """Retry-After in seconds (RFC 9110: delay-seconds or an HTTP date; Microsoft's own Graph
    client reads both, M4), at most SQS's 12 h; None when absent or unreadable (the backoff)."""
    value = (headers.get("Retry-After") or headers.get("retry-after") or "").strip()
    if not value:
        return None
    if value.isdigit():
        return min(int(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0, min(int(seconds), MAX_RETRY_AFTER))


@dataclass(slots=True)
class GraphClient:
    """One mailbox's Graph client. ``token`` returns a fresh access token (msal refreshes it)."""

    token: Callable[[], str]
    mailbox: str
    base_url: str = DEFAULT_GRAPH_ENDPOINT
    session: requests.Session = field(default_factory=requests.Session)
    calls: int = 0

    def url(self, path: str) -> str:
        return (
            path
            if path.startswith(("https://", "http://"))
            else f"{self.base_url.rstrip('/')}/{path.lstrip('/')}"
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        ok: tuple[int, ...] = (200, 201, 202, 204),
    ) -> GraphResponse:
        """One request; answers whose status is in ``ok`` (and 404/410/412, for the caller to judge)
        come back; throttling, auth and outages raise."""
        hdrs = {"Authorization": f"Bearer {self.token()}", "Accept": "application/json"}
        hdrs.update(headers or {})
        with mailbox_semaphore(self.mailbox):
            self.calls += 1
            try:
                resp = self.session.request(
                    method, self.url(path), params=params, json=json, headers=hdrs, timeout=TIMEOUT
                )
            except requests.RequestException as exc:
                raise SourceUnavailable(f"Graph {method} failed: {type(exc).__name__}") from exc
        body: Any = None
        if resp.content:
            try:
                body = resp.json()
            except ValueError:
                body = None
        answer = GraphResponse(resp.status_code, dict(resp.headers), body)
        if resp.status_code in ok or resp.status_code in (404, 410, 412):
            return answer
        if resp.status_code in THROTTLED:
            raise SourceThrottled(f"Graph throttled ({resp.status_code})", retry_after(answer.headers))
        if resp.status_code == 401:
            raise SourceUnavailable(f"Graph refused the access token ({answer.error_code() or 401})")
        if resp.status_code >= 500:
            raise SourceUnavailable(f"Graph answered {resp.status_code}")
        raise GraphError(resp.status_code, answer.error_code())

    def get(self, path: str, **kwargs: Any) -> GraphResponse:
        return self.request("GET", path, **kwargs)


class GraphError(Exception):
    """A 4xx Graph answer that the caller did not expect."""

    def __init__(self, status: int, code: str) -> None:
        super().__init__(f"Graph answered {status} {code}".strip())
        self.status = status
        self.code = code
