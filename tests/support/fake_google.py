"""A stateful fake of the Google Calendar API v3 and of Google's OAuth token endpoint, on 127.0.0.1.

The REAL ``google-api-python-client`` talks to it through
``client_options={"api_endpoint": fake.api_endpoint}`` and google-auth refreshes its tokens at
``fake.token_uri``. What it does as Google does:

- ``GET  /calendar/v3/users/me/calendarList``: the account's calendars with their ``accessRole``.
- ``GET  /calendar/v3/calendars/{cal}/events``: a full listing (``timeMin``/``timeMax``, cancelled
  items left out) or an incremental one (``syncToken``: every item changed since, cancelled ones
  included), in pages of ``page_size`` (``nextPageToken``), ``nextSyncToken`` on the last page only.
  A sync token older than :meth:`expire_sync_tokens` allows: 410 ``fullSyncRequired``.
- ``POST /calendar/v3/calendars/{cal}/events`` (insert), ``GET``/``PATCH …/events/{id}`` (patch
  honours ``If-Match``: 412 when the etag moved).
- ``POST …/events/watch`` and ``POST /calendar/v3/channels/stop``: push channels. A new channel is
  sent a ``sync`` message first (message number 1); every change of the calendar then sends
  ``exists`` to every live channel, with Google's headers (``X-Goog-Channel-ID``,
  ``X-Goog-Channel-Token``, ``X-Goog-Resource-ID``, ``X-Goog-Resource-State``,
  ``X-Goog-Message-Number``…) and an empty body. Messages wait in an outbox until :meth:`deliver`.
- ``throttle(n, status, reason)``: the next ``n`` API requests get 429 / 403 ``rateLimitExceeded``.
- ``POST /token``: ``authorization_code`` (PKCE S256 checked against the authorization request)
  and ``refresh_token`` grants; a revoked grant answers 400 ``invalid_grant``.
- Every API request needs ``Authorization: Bearer <an access token it issued>`` (else 401).

``requests`` logs "METHOD path" of every API call (for the bench and call-count assertions).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import requests

Deliver = Callable[[str, dict[str, str]], int]  # (address, headers) -> HTTP status


@dataclass
class _Calendar:
    cal_id: str
    summary: str
    access_role: str
    time_zone: str = "UTC"
    primary: bool = False
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    log: list[tuple[int, str]] = field(default_factory=list)  # (seq, event id) of every change
    oldest_token: int = 0


@dataclass
class _Channel:
    channel_id: str
    resource_id: str
    cal_id: str
    address: str
    token: str
    expiration: int  # ms since the epoch
    number: int = 0
    stopped: bool = False


@dataclass
class _Grant:
    email: str
    refresh_token: str
    revoked: bool = False


def _parse_time(value: dict[str, Any]) -> datetime:
    if "dateTime" in value:
        return datetime.fromisoformat(value["dateTime"]).astimezone(UTC)
    return datetime.fromisoformat(value["date"]).replace(tzinfo=UTC)


class FakeGoogle:
    def __init__(self, *, page_size: int = 2, deliver: Deliver | None = None) -> None:
        self.page_size = page_size
        self.requests: list[str] = []
        self.calendars: dict[str, dict[str, _Calendar]] = {}  # email -> calendars
        self.channels: dict[str, _Channel] = {}
        self.outbox: list[tuple[str, dict[str, str]]] = []
        self.client_id = "fake-client-id.apps.googleusercontent.com"
        self.client_secret = "fake-client-secret-" + secrets.token_hex(4)
        self._deliver = deliver or _post
        self._seq = itertools.count(1)
        self._last_seq = 0
        self._throttles: list[tuple[int, str]] = []
        self._codes: dict[str, tuple[str, str, str]] = {}  # code -> (email, challenge, redirect)
        self._grants: dict[str, _Grant] = {}  # refresh token -> grant
        self._access: dict[str, str] = {}  # access token -> email
        self._snapshots: dict[str, tuple[list[dict[str, Any]], str]] = {}
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self.base_url = ""

    # ---- the server ---------------------------------------------------------------------------
    def start(self) -> FakeGoogle:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def _answer(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    status, body = fake.handle(method, self.path, dict(self.headers.items()), raw)
                except Exception as exc:  # a bug in the fake: say so loudly
                    status, body = 500, {"error": {"code": 500, "message": repr(exc)}}
                self._answer(status, body)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PATCH(self) -> None:
                self._handle("PATCH")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def api_endpoint(self) -> str:
        return f"{self.base_url}/calendar/v3/"

    @property
    def token_uri(self) -> str:
        return f"{self.base_url}/token"

    @property
    def auth_uri(self) -> str:
        return f"{self.base_url}/o/oauth2/auth"

    # ---- what tests do to the "account" -------------------------------------------------------
    def add_calendar(
        self, email: str, cal_id: str, summary: str = "", access_role: str = "owner", primary: bool = False
    ) -> None:
        with self._lock:
            self.calendars.setdefault(email, {})[cal_id] = _Calendar(
                cal_id, summary or cal_id, access_role, primary=primary
            )

    def _cal(self, cal_id: str) -> _Calendar | None:
        for cals in self.calendars.values():
            if cal_id in cals:
                return cals[cal_id]
        return None

    def _touch(self, cal: _Calendar, event: dict[str, Any]) -> dict[str, Any]:
        seq = next(self._seq)
        self._last_seq = seq
        event["etag"] = f'"{seq}"'
        event["updated"] = datetime.now(UTC).isoformat()
        cal.events[event["id"]] = event
        cal.log.append((seq, event["id"]))
        for ch in self.channels.values():
            if ch.cal_id == cal.cal_id and not ch.stopped:
                self._queue(ch, "exists")
        return event

    def put_event(self, cal_id: str, event: dict[str, Any], *, deliver: bool = True) -> dict[str, Any]:
        """Create or replace an event (Google's JSON shape, ``id`` required); push is sent."""
        with self._lock:
            cal = self._cal(cal_id)
            assert cal is not None, cal_id
            event = {"kind": "calendar#event", "status": "confirmed", **event}
            event.setdefault("organizer", {"email": cal_id, "self": True})
            stored = self._touch(cal, event)
        if deliver:
            self.deliver()
        return stored

    def delete_event(self, cal_id: str, event_id: str, *, deliver: bool = True) -> None:
        """Cancel an event (an incremental listing reports it ``status: cancelled``)."""
        with self._lock:
            cal = self._cal(cal_id)
            assert cal is not None
            old = cal.events[event_id]
            tomb = {k: old[k] for k in ("id", "recurringEventId", "originalStartTime") if k in old}
            self._touch(cal, {"kind": "calendar#event", **tomb, "status": "cancelled"})
        if deliver:
            self.deliver()

    def expire_sync_tokens(self, cal_id: str) -> None:
        """Every sync token handed out so far for ``cal_id`` answers 410 from now on."""
        with self._lock:
            cal = self._cal(cal_id)
            assert cal is not None
            cal.oldest_token = self._last_seq + 1

    def throttle(self, n: int, status: int = 429, reason: str = "rateLimitExceeded") -> None:
        with self._lock:
            self._throttles.extend([(status, reason)] * n)

    def revoke(self, email: str) -> None:
        with self._lock:
            for grant in self._grants.values():
                if grant.email == email:
                    grant.revoked = True
            for token in [t for t, e in self._access.items() if e == email]:
                del self._access[token]

    def grant(self, email: str) -> str:
        """A refresh token for ``email`` as if the person had consented (tests that skip OAuth)."""
        with self._lock:
            refresh = "rt-" + secrets.token_urlsafe(16)
            self._grants[refresh] = _Grant(email, refresh)
            return refresh

    def live_channels(self, cal_id: str | None = None) -> list[_Channel]:
        return [c for c in self.channels.values() if not c.stopped and (cal_id is None or c.cal_id == cal_id)]

    # ---- OAuth --------------------------------------------------------------------------------
    def authorize(self, authorization_url: str, email: str) -> tuple[str, str]:
        """The person signs in as ``email`` and consents: (code, state) sent to the redirect URI."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorization_url).query).items()}
        assert query["client_id"] == self.client_id
        assert query["response_type"] == "code"
        assert query["code_challenge_method"] == "S256"
        assert query["access_type"] == "offline"
        code = "code-" + secrets.token_urlsafe(12)
        self._codes[code] = (email, query["code_challenge"], query["redirect_uri"])
        return code, query["state"]

    def _token(self, form: dict[str, str]) -> tuple[int, Any]:
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return 401, {"error": "invalid_client"}
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            found = self._codes.pop(form.get("code", ""), None)
            if found is None:
                return 400, {"error": "invalid_grant", "error_description": "Bad code"}
            email, challenge, redirect = found
            verifier = form.get("code_verifier", "")
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
            if digest.decode() != challenge or form.get("redirect_uri") != redirect:
                return 400, {"error": "invalid_grant", "error_description": "PKCE or redirect mismatch"}
            refresh = "rt-" + secrets.token_urlsafe(16)
            self._grants[refresh] = _Grant(email, refresh)
        elif grant_type == "refresh_token":
            grant = self._grants.get(form.get("refresh_token", ""))
            if grant is None or grant.revoked:
                return 400, {"error": "invalid_grant", "error_description": "Token has been revoked."}
            email, refresh = grant.email, ""
        else:
            return 400, {"error": "unsupported_grant_type"}
        access = "at-" + secrets.token_urlsafe(16)
        self._access[access] = email
        body: dict[str, Any] = {
            "access_token": access,
            "expires_in": 3599,
            "token_type": "Bearer",
            "scope": "https://www.googleapis.com/auth/calendar",
        }
        if refresh:
            body["refresh_token"] = refresh
        return 200, body

    # ---- the API ------------------------------------------------------------------------------
    def handle(self, method: str, raw_path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        parts = urlsplit(raw_path)
        path = parts.path
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        with self._lock:
            if path == "/token" and method == "POST":
                form = {k: v[-1] for k, v in parse_qs(raw.decode()).items()}
                return self._token(form)
            self.requests.append(f"{method} {path}")
            lower = {k.lower(): v for k, v in headers.items()}
            email = self._access.get(lower.get("authorization", "").removeprefix("Bearer "))
            if email is None:
                return 401, _error(401, "authError", "Invalid Credentials")
            if self._throttles:
                status, reason = self._throttles.pop(0)
                return status, _error(status, reason, "Rate Limit Exceeded")
            body = json.loads(raw) if raw else {}
            segs = [unquote(s) for s in path.removeprefix("/calendar/v3/").split("/")]
            if segs == ["users", "me", "calendarList"]:
                return 200, self._calendar_list(email)
            if segs == ["channels", "stop"] and method == "POST":
                ch = self.channels.get(body.get("id", ""))
                if ch is None or ch.resource_id != body.get("resourceId"):
                    return 404, _error(404, "notFound", "Channel not found")
                ch.stopped = True
                return 204, None
            if len(segs) >= 3 and segs[0] == "calendars" and segs[2] == "events":
                cal = self.calendars.get(email, {}).get(segs[1])
                if cal is None:
                    return 404, _error(404, "notFound", "Not Found")
                rest = segs[3:]
                if not rest and method == "GET":
                    return self._list(cal, query)
                if not rest and method == "POST":
                    if cal.access_role not in ("owner", "writer"):
                        return 403, _error(403, "requiredAccessLevel", "You need writer access")
                    if body.get("id") in cal.events:
                        return 409, _error(409, "duplicate", "The requested identifier already exists.")
                    event = {**body, "id": body.get("id") or secrets.token_hex(10)}
                    event.setdefault("organizer", {"email": cal.cal_id, "self": True})
                    return 200, self._touch(cal, {"kind": "calendar#event", "status": "confirmed", **event})
                if rest == ["watch"] and method == "POST":
                    return 200, self._watch(cal, body)
                if len(rest) == 1:
                    event = cal.events.get(rest[0])
                    if event is None or event.get("status") == "cancelled":
                        return 404, _error(404, "notFound", "Not Found")
                    if method == "GET":
                        return 200, event
                    if method == "PATCH":
                        if_match = lower.get("if-match")
                        if if_match and if_match != event["etag"]:
                            return 412, _error(412, "conditionNotMet", "Precondition Failed")
                        return 200, self._touch(cal, {**event, **body})
            return 404, _error(404, "notFound", f"no such path {path}")

    def _calendar_list(self, email: str) -> dict[str, Any]:
        items = [
            {
                "kind": "calendar#calendarListEntry",
                "id": c.cal_id,
                "summary": c.summary,
                "accessRole": c.access_role,
                "timeZone": c.time_zone,
                **({"primary": True} if c.primary else {}),
            }
            for c in self.calendars.get(email, {}).values()
        ]
        return {"kind": "calendar#calendarList", "items": items}

    def _list(self, cal: _Calendar, query: dict[str, str]) -> tuple[int, Any]:
        page_token = query.get("pageToken")
        if page_token:
            snap = self._snapshots.get(page_token.split(":")[0])
            if snap is None:
                return 400, _error(400, "invalid", "Invalid pageToken")
            items, next_sync = snap
            offset = int(page_token.split(":")[1])
        else:
            if "syncToken" in query:
                if any(k in query for k in ("timeMin", "timeMax")):
                    return 400, _error(400, "invalid", "syncToken with timeMin/timeMax")
                token = query["syncToken"]
                if not token.startswith(f"st:{cal.cal_id}:"):
                    return 410, _error(410, "fullSyncRequired", "Sync token is no longer valid")
                since = int(token.rsplit(":", 1)[1])
                if since < cal.oldest_token:
                    return 410, _error(410, "fullSyncRequired", "Sync token is no longer valid")
                ids = list(dict.fromkeys(eid for seq, eid in cal.log if seq > since))
                items = [cal.events[i] for i in ids]
            else:
                low = datetime.fromisoformat(query["timeMin"]) if "timeMin" in query else None
                high = datetime.fromisoformat(query["timeMax"]) if "timeMax" in query else None
                items = [
                    e
                    for e in cal.events.values()
                    if e.get("status") != "cancelled"
                    and (low is None or _parse_time(e["end"]) > low)
                    and (high is None or _parse_time(e["start"]) < high)
                ]
            assert query.get("singleEvents") == "true", "calsync lists single events"
            snap_id = secrets.token_hex(6)
            next_sync = f"st:{cal.cal_id}:{self._last_seq}"
            self._snapshots[snap_id] = ([dict(i) for i in items], next_sync)
            page_token, offset = snap_id, 0
        size = min(int(query.get("maxResults", self.page_size)), self.page_size)
        page = items[offset : offset + size]
        body: dict[str, Any] = {"kind": "calendar#events", "items": page, "timeZone": cal.time_zone}
        if offset + size < len(items):
            body["nextPageToken"] = f"{page_token.split(':')[0]}:{offset + size}"
        else:
            body["nextSyncToken"] = next_sync
        return 200, body

    def _watch(self, cal: _Calendar, body: dict[str, Any]) -> dict[str, Any]:
        expiration = int(body.get("expiration") or (datetime.now(UTC).timestamp() + 7 * 86400) * 1000)
        ch = _Channel(
            channel_id=body["id"],
            resource_id="res-" + secrets.token_hex(6),
            cal_id=cal.cal_id,
            address=body["address"],
            token=body.get("token", ""),
            expiration=expiration,
        )
        self.channels[ch.channel_id] = ch
        self._queue(ch, "sync")
        return {
            "kind": "api#channel",
            "id": ch.channel_id,
            "resourceId": ch.resource_id,
            "resourceUri": f"{self.api_endpoint}calendars/{cal.cal_id}/events?alt=json",
            "token": ch.token,
            "expiration": str(expiration),
        }

    # ---- push ---------------------------------------------------------------------------------
    def _queue(self, ch: _Channel, state: str) -> None:
        ch.number += 1
        headers = {
            "X-Goog-Channel-ID": ch.channel_id,
            "X-Goog-Channel-Token": ch.token,
            "X-Goog-Channel-Expiration": datetime.fromtimestamp(ch.expiration / 1000, UTC).strftime(
                "%a, %d %b %Y %H:%M:%S GMT"
            ),
            "X-Goog-Resource-ID": ch.resource_id,
            "X-Goog-Resource-URI": f"{self.api_endpoint}calendars/{ch.cal_id}/events?alt=json",
            "X-Goog-Resource-State": state,
            "X-Goog-Message-Number": str(ch.number),
        }
        self.outbox.append((ch.address, headers))

    def deliver(self) -> list[int]:
        """POST every waiting notification to its channel's address; the HTTP statuses."""
        with self._lock:
            out, self.outbox = self.outbox, []
        return [self._deliver(address, headers) for address, headers in out]


def _post(address: str, headers: dict[str, str]) -> int:
    return requests.post(address, headers=headers, data=b"", timeout=5).status_code


def _error(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "errors": [{"domain": "usageLimits" if code in (403, 429) else "global", "reason": reason}],
        }
    }


@contextmanager
def fake_google(**kwargs: Any) -> Iterator[FakeGoogle]:
    fake = FakeGoogle(**kwargs).start()
    try:
        yield fake
    finally:
        fake.stop()
