"""A stateful fake of the Google Calendar API v3 and of Google's OAuth token endpoint, on 127.0.0.1.

The REAL ``google-api-python-client`` talks to it through
``client_options={"api_endpoint": fake.api_endpoint}`` and google-auth refreshes its tokens at
``fake.token_uri``.

Every behaviour cites the fact it models in docs/providers/google.md ("§ <section>"); where the fake
and that document disagree, the fake is wrong.

- § calendarList.list — ``GET /calendar/v3/users/me/calendarList``: the account's calendars with
  their ``accessRole``, in pages (``nextPageToken``).
- § events.list — ``GET /calendar/v3/calendars/{cal}/events``: a full listing (``timeMin``/
  ``timeMax``, cancelled items left out) or an incremental one (``syncToken``: every item changed
  since, cancelled ones included), in pages of ``page_size`` (``nextPageToken``),
  ``nextSyncToken`` on the last page only. A sync token older than :meth:`expire_sync_tokens`
  allows: 410 ``fullSyncRequired`` (§ Errors). ``syncToken`` with ``timeMin``/``timeMax``/
  ``orderBy``/``q``/``iCalUID``/``updatedMin``/extended properties, or with
  ``showDeleted=false``, answers 400; so does ``orderBy=startTime`` without
  ``singleEvents=true``, and an empty time range.
- § Recurring events: an event with ``recurrence`` is a series; ``singleEvents=true`` listings
  expand it into instances (id ``<seriesId>_<start in UTC basic format>``, ``recurringEventId``,
  ``originalStartTime``); :meth:`put_instance` / :meth:`cancel_instance` make exceptions (a moved
  or cancelled instance). An incremental listing after a series is edited or deleted names every
  instance of it up to :attr:`recurrence_window` ahead (deleted: as cancelled instances).
- § calendarList.list and events.insert — ``POST …/events`` (insert: base32hex ids, 409 for a
  used one), ``GET``/``PATCH …/events/{id}`` (also of an instance; patch honours ``If-Match``:
  412 when the etag moved, § Errors).
- § Push notifications — ``POST …/events/watch`` and ``POST /calendar/v3/channels/stop``. A new
  channel is sent a ``sync`` message first (message number 1); every change of the calendar then
  sends ``exists`` to every live channel (message numbers increasing, not sequential), with
  Google's headers (``X-Goog-Channel-ID``, ``X-Goog-Channel-Token``, ``X-Goog-Resource-ID``,
  ``X-Goog-Resource-State``, ``X-Goog-Message-Number``…) and an empty body. Messages wait in an
  outbox until :meth:`deliver`.
  A channel expires at its ``expiration`` (on :attr:`clock`): after that it sends nothing and is
  not live. watch answers 400 for a calendar without push (holidays), a non-HTTPS address, a bad
  channel id/type or a too long token.
- § Errors — :meth:`throttle` answers any documented throttling error (403 ``usageLimits``
  reasons, 429, 5xx ``backendError``), with a ``Retry-After`` when asked.
- § OAuth token endpoint — ``POST /token``: ``authorization_code`` (PKCE S256 checked against the
  authorization request) and ``refresh_token`` grants; a revoked grant answers 400
  ``invalid_grant``; :meth:`fail_token` makes it fail (5xx, ``temporarily_unavailable``, an HTML
  502 page). Access tokens live 3599 s on the fake's clock; every API request needs
  ``Authorization: Bearer <a live access token it issued>`` (else 401 ``authError``).

``requests`` logs "METHOD path" of every API call (for the bench and call-count assertions);
``token_requests`` counts refresh grants.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo

import requests
from dateutil.rrule import rrulestr

Deliver = Callable[[str, dict[str, str]], int]  # (address, headers) -> HTTP status


@dataclass
class _Calendar:
    cal_id: str
    summary: str
    access_role: str
    time_zone: str = "UTC"
    primary: bool = False
    # § Push notifications: Google-generated calendars (holidays, birthdays…) refuse events.watch
    push: bool = True
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    # exceptions of series: instance id -> the instance as changed (moved, edited or cancelled)
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    log: list[tuple[int, str]] = field(default_factory=list)  # (seq, event or instance id)
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
    scope: str = "https://www.googleapis.com/auth/calendar"


def _parse_time(value: dict[str, Any]) -> datetime:
    if "dateTime" in value:
        return datetime.fromisoformat(value["dateTime"]).astimezone(UTC)
    return datetime.fromisoformat(value["date"]).replace(tzinfo=UTC)


# § events.list: parameters Google refuses together with syncToken ("cannot be specified together
# with nextSyncToken to ensure consistency of the client state")
SYNC_TOKEN_EXCLUSIVE = (
    "iCalUID",
    "orderBy",
    "privateExtendedProperty",
    "q",
    "sharedExtendedProperty",
    "timeMin",
    "timeMax",
    "updatedMin",
)
QUOTA_REASONS = ("rateLimitExceeded", "userRateLimitExceeded", "dailyLimitExceeded", "quotaExceeded")
CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar"
ACCESS_TOKEN_SECONDS = 3599  # § OAuth token endpoint: an access token lives about an hour
CALENDAR_LIST_PAGE = 100  # § calendarList.list: maxResults defaults to 100 (at most 250)
EVENT_ID = re.compile(r"^[a-v0-9]{5,1024}$")  # § events.insert: base32hex, 5 to 1024 characters
CHANNEL_ID = re.compile(r"^[A-Za-z0-9\-_+/=]{1,64}$")  # § Push notifications: at most 64 characters
MAX_INSTANCES = 1000  # a bound on one series' expansion (the fake's own safety net)
_PRIVATE = "_recurrence"  # a deleted series keeps its rule here, to list its instances cancelled


def instance_id(series_id: str, original_start: datetime | date) -> str:
    """§ Recurring events: ``<seriesId>_<YYYYMMDDTHHMMSSZ>`` (timed) or ``_<YYYYMMDD>`` (all day)."""
    if isinstance(original_start, datetime):
        return f"{series_id}_{original_start.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    return f"{series_id}_{original_start.strftime('%Y%m%d')}"


def _public(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if not k.startswith("_")}


def _starts(series: dict[str, Any], until: datetime) -> list[datetime | date]:
    """The original starts of a series' instances up to ``until`` (RRULE/EXDATE of ``recurrence``,
    expanded in the series' own time zone, as Google does across DST)."""
    rules = series.get("recurrence") or series.get(_PRIVATE) or []
    start = series["start"]
    if "dateTime" in start:
        zone = ZoneInfo(start.get("timeZone") or "UTC")
        first = datetime.fromisoformat(start["dateTime"]).astimezone(zone)
        rule = rrulestr("\n".join(rules), dtstart=first, forceset=True)
        out: list[datetime | date] = []
        for when in rule.xafter(first - timedelta(seconds=1), count=MAX_INSTANCES, inc=True):
            if when.astimezone(UTC) >= until:
                break
            out.append(when)
        return out
    day = date.fromisoformat(start["date"])
    rule = rrulestr("\n".join(rules), dtstart=datetime.combine(day, datetime.min.time()), forceset=True)
    days: list[datetime | date] = []
    for when in rule.xafter(
        datetime.combine(day, datetime.min.time()) - timedelta(seconds=1), count=MAX_INSTANCES, inc=True
    ):
        if when.replace(tzinfo=UTC) >= until:
            break
        days.append(when.date())
    return days


def _instance(series: dict[str, Any], original: datetime | date) -> dict[str, Any]:
    """One instance of a series, as ``singleEvents=true`` lists it."""
    start, end = series["start"], series["end"]
    zone = start.get("timeZone")
    body = {k: v for k, v in _public(series).items() if k not in ("recurrence", "id", "start", "end")}
    if isinstance(original, datetime):
        length = datetime.fromisoformat(end["dateTime"]) - datetime.fromisoformat(start["dateTime"])
        when: dict[str, Any] = {"dateTime": original.isoformat(), **({"timeZone": zone} if zone else {})}
        until = {"dateTime": (original + length).isoformat(), **({"timeZone": zone} if zone else {})}
    else:
        length = date.fromisoformat(end["date"]) - date.fromisoformat(start["date"])
        when, until = {"date": original.isoformat()}, {"date": (original + length).isoformat()}
    return {
        **body,
        "id": instance_id(series["id"], original),
        "recurringEventId": series["id"],
        "originalStartTime": dict(when),
        "start": when,
        "end": until,
    }


class FakeGoogle:
    def __init__(
        self,
        *,
        page_size: int = 2,
        deliver: Deliver | None = None,
        clock: Callable[[], datetime] | None = None,
        recurrence_window: timedelta = timedelta(days=183),
        allow_http_address: bool = False,
    ) -> None:
        self.page_size = page_size
        # § Push notifications: Google requires an HTTPS address; the local stack has no TLS, so
        # its end-to-end test (only) allows http://127.0.0.1
        self.allow_http_address = allow_http_address
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        # § Recurring events: how far ahead an incremental listing names a changed series' instances
        # (googleapis/google-api-ruby-client#860: about six months)
        self.recurrence_window = recurrence_window
        self.token_requests = 0  # refresh_token grants asked for (one per access-token lifetime)
        self._token_failures: list[tuple[int, Any]] = []
        self.requests: list[str] = []
        self.calendars: dict[str, dict[str, _Calendar]] = {}  # email -> calendars
        self.channels: dict[str, _Channel] = {}
        self.outbox: list[tuple[str, dict[str, str]]] = []
        self.client_id = "fake-client-id.apps.googleusercontent.com"
        self.client_secret = "fake-client-secret-" + secrets.token_hex(4)
        self._deliver = deliver or _post
        self._seq = itertools.count(1)
        self._number_steps = itertools.cycle([1, 3, 2])
        self._last_seq = 0
        self._throttles: list[tuple[int, str, dict[str, str]]] = []
        self._codes: dict[str, tuple[str, str, str]] = {}  # code -> (email, challenge, redirect)
        self._grants: dict[str, _Grant] = {}  # refresh token -> grant
        self._access: dict[str, str] = {}  # access token -> email
        self._access_expiry: dict[str, datetime] = {}  # access token -> when it expires (fake clock)
        self._access_scope: dict[str, str] = {}  # access token -> the scopes granted
        self._code_scopes: dict[str, str] = {}
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
                headers: dict[str, str] = {}
                try:
                    answer = fake.handle(method, self.path, dict(self.headers.items()), raw)
                    status, body = answer[0], answer[1]
                    headers = answer[2] if len(answer) > 2 else {}  # type: ignore[misc]
                except Exception as exc:  # a bug in the fake: say so loudly
                    status, body = 500, {"error": {"code": 500, "message": repr(exc)}}
                if isinstance(body, str):  # an HTML error page (a proxy's 502)
                    data = body.encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "text/html; charset=UTF-8")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                self._answer(status, body, headers)

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
        self,
        email: str,
        cal_id: str,
        summary: str = "",
        access_role: str = "owner",
        *,
        primary: bool = False,
        push: bool | None = None,
    ) -> None:
        """``push=False`` (default for ``…#holiday@group.v.calendar.google.com`` ids): events.watch
        answers 400 ``pushNotSupportedForRequestedResource``."""
        with self._lock:
            self.calendars.setdefault(email, {})[cal_id] = _Calendar(
                cal_id,
                summary or cal_id,
                access_role,
                primary=primary,
                push=push if push is not None else "#holiday@" not in cal_id,
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
        event["updated"] = self.clock().isoformat()
        cal.events[event["id"]] = event
        cal.log.append((seq, event["id"]))
        for ch in self.live_channels(cal.cal_id):  # § Push notifications: expired/stopped send nothing
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
            if old.get("recurrence"):  # § Recurring events: its instances are listed cancelled
                tomb.update({_PRIVATE: old["recurrence"], "start": old["start"], "end": old["end"]})
            self._touch(cal, {"kind": "calendar#event", **tomb, "status": "cancelled"})
        if deliver:
            self.deliver()

    def put_instance(
        self,
        cal_id: str,
        series_id: str,
        original_start: datetime | date,
        changes: dict[str, Any],
        *,
        deliver: bool = True,
    ) -> dict[str, Any]:
        """Change one instance of a series (an exception: moved when ``changes`` has start/end)."""
        with self._lock:
            cal = self._cal(cal_id)
            assert cal is not None
            iid = instance_id(series_id, original_start)
            base = cal.overrides.get(iid) or self._expand_one(cal, series_id, iid)
            assert base is not None, f"{series_id} has no instance at {original_start}"
            stored = self._touch_instance(cal, {**base, **changes, "id": iid})
        if deliver:
            self.deliver()
        return stored

    def cancel_instance(
        self, cal_id: str, series_id: str, original_start: datetime | date, *, deliver: bool = True
    ) -> None:
        """Delete one instance of a series: listed ``status: cancelled`` with its
        ``recurringEventId`` and ``originalStartTime``."""
        with self._lock:
            cal = self._cal(cal_id)
            assert cal is not None
            iid = instance_id(series_id, original_start)
            base = cal.overrides.get(iid) or self._expand_one(cal, series_id, iid)
            assert base is not None
            tomb = {k: base[k] for k in ("id", "recurringEventId", "originalStartTime")}
            self._touch_instance(cal, {"kind": "calendar#event", **tomb, "status": "cancelled"})
        if deliver:
            self.deliver()

    def _touch_instance(self, cal: _Calendar, instance: dict[str, Any]) -> dict[str, Any]:
        seq = next(self._seq)
        self._last_seq = seq
        instance["etag"] = f'"{seq}"'
        instance["updated"] = self.clock().isoformat()
        cal.overrides[instance["id"]] = instance
        cal.log.append((seq, instance["id"]))
        for ch in self.live_channels(cal.cal_id):
            self._queue(ch, "exists")
        return instance

    def _expand_one(self, cal: _Calendar, series_id: str, iid: str) -> dict[str, Any] | None:
        series = cal.events.get(series_id)
        if series is None:
            return None
        horizon = self.clock() + timedelta(days=3650)
        return next((i for i in self._instances(cal, series, horizon) if i["id"] == iid), None)

    def _instances(self, cal: _Calendar, series: dict[str, Any], until: datetime) -> list[dict[str, Any]]:
        """Every instance of ``series`` starting before ``until``, exceptions applied; all of them
        cancelled when the series is."""
        out = []
        for original in _starts(series, until):
            inst = _instance(series, original)
            if series.get("status") == "cancelled":
                tomb = {k: inst[k] for k in ("id", "recurringEventId", "originalStartTime")}
                out.append({"kind": "calendar#event", **tomb, "status": "cancelled", "etag": series["etag"]})
                continue
            override = cal.overrides.get(inst["id"])
            out.append(override if override is not None else {**inst, "etag": series["etag"]})
        return out

    def _expanded(self, cal: _Calendar, items: list[dict[str, Any]], until: datetime) -> list[dict[str, Any]]:
        """§ Recurring events, ``singleEvents=true``: a series is replaced by its instances."""
        out: list[dict[str, Any]] = []
        for item in items:
            if item.get("recurrence") or item.get(_PRIVATE):
                out.extend(self._instances(cal, item, until))
            else:
                out.append(item)
        return out

    def expire_sync_tokens(self, cal_id: str) -> None:
        """Every sync token handed out so far for ``cal_id`` answers 410 from now on."""
        with self._lock:
            cal = self._cal(cal_id)
            assert cal is not None
            cal.oldest_token = self._last_seq + 1

    def throttle(
        self, n: int, status: int = 429, reason: str = "rateLimitExceeded", retry_after: str | None = None
    ) -> None:
        """§ Errors: the next ``n`` API requests answer ``status``/``reason`` (domain
        ``usageLimits`` for the quota reasons, ``global`` otherwise), with ``Retry-After`` if given."""
        with self._lock:
            headers = {"Retry-After": retry_after} if retry_after is not None else {}
            self._throttles.extend([(status, reason, headers)] * n)

    def fail_token(self, n: int, status: int = 503, error: str | None = "temporarily_unavailable") -> None:
        """§ OAuth token endpoint: the next ``n`` token requests fail with ``status`` and the OAuth
        ``error`` (None: an HTML error page, as a proxy's 502 is)."""
        with self._lock:
            body: Any = (
                {"error": error} if error else "<html><title>Error 502 (Server Error)!!1</title></html>"
            )
            self._token_failures.extend([(status, body)] * n)

    def revoke(self, email: str) -> None:
        with self._lock:
            for grant in self._grants.values():
                if grant.email == email:
                    grant.revoked = True
            for token in [t for t, e in self._access.items() if e == email]:
                del self._access[token]

    def withdraw_calendar_scope(self, email: str) -> None:
        """The person takes the calendar permission back (granular consent) but not the whole
        grant: refreshed tokens carry no calendar scope, the API answers 403."""
        with self._lock:
            for grant in self._grants.values():
                if grant.email == email:
                    grant.scope = ""
            for token in [t for t, e in self._access.items() if e == email]:
                self._access_scope[token] = ""

    def expire_access_tokens(self, email: str) -> None:
        """Every access token of ``email`` has expired: the API answers 401 ``authError`` (§ Errors)
        and the client must refresh at the token endpoint."""
        with self._lock:
            for token in [t for t, e in self._access.items() if e == email]:
                del self._access[token]

    def grant(self, email: str) -> str:
        """A refresh token for ``email`` as if the person had consented (tests that skip OAuth)."""
        with self._lock:
            refresh = "rt-" + secrets.token_urlsafe(16)
            self._grants[refresh] = _Grant(email, refresh)
            return refresh

    def live_channels(self, cal_id: str | None = None) -> list[_Channel]:
        """Channels that still send: not stopped and not expired (§ Push notifications)."""
        now_ms = int(self.clock().timestamp() * 1000)
        return [
            c
            for c in self.channels.values()
            if not c.stopped and c.expiration > now_ms and (cal_id is None or c.cal_id == cal_id)
        ]

    # ---- OAuth --------------------------------------------------------------------------------
    def authorize(self, authorization_url: str, email: str, *, grant: str | None = None) -> tuple[str, str]:
        """The person signs in as ``email`` and consents: (code, state) sent to the redirect URI.
        ``grant``: the scopes the person leaves checked (§ OAuth token endpoint: with granular
        consent a person may grant fewer scopes than asked); default: all asked for."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorization_url).query).items()}
        assert query["client_id"] == self.client_id
        assert query["response_type"] == "code"
        assert query["code_challenge_method"] == "S256"
        assert query["access_type"] == "offline"
        code = "code-" + secrets.token_urlsafe(12)
        self._codes[code] = (email, query["code_challenge"], query["redirect_uri"])
        self._code_scopes[code] = query.get("scope", "") if grant is None else grant
        return code, query["state"]

    def _token(self, form: dict[str, str]) -> tuple[int, Any]:
        if form.get("grant_type") == "refresh_token":
            self.token_requests += 1
        if self._token_failures:
            return self._token_failures.pop(0)
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return 401, {"error": "invalid_client"}
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            found = self._codes.pop(form.get("code", ""), None)
            if found is None:
                return 400, {"error": "invalid_grant", "error_description": "Bad code"}
            email, challenge, redirect = found
            scope = self._code_scopes.pop(form.get("code", ""), "")
            verifier = form.get("code_verifier", "")
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
            if digest.decode() != challenge or form.get("redirect_uri") != redirect:
                return 400, {"error": "invalid_grant", "error_description": "PKCE or redirect mismatch"}
            refresh = "rt-" + secrets.token_urlsafe(16)
            self._grants[refresh] = _Grant(email, refresh, scope=scope)
        elif grant_type == "refresh_token":
            grant = self._grants.get(form.get("refresh_token", ""))
            if grant is None or grant.revoked:
                return 400, {"error": "invalid_grant", "error_description": "Token has been revoked."}
            email, refresh, scope = grant.email, "", grant.scope
        else:
            return 400, {"error": "unsupported_grant_type"}
        access = "at-" + secrets.token_urlsafe(16)
        self._access[access] = email
        self._access_expiry[access] = self.clock() + timedelta(seconds=ACCESS_TOKEN_SECONDS)
        self._access_scope[access] = scope
        body: dict[str, Any] = {
            "access_token": access,
            "expires_in": ACCESS_TOKEN_SECONDS,
            "token_type": "Bearer",
            "scope": scope,
        }
        if refresh:
            body["refresh_token"] = refresh
        return 200, body

    # ---- the API ------------------------------------------------------------------------------
    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, Any] | tuple[int, Any, dict[str, str]]:
        parts = urlsplit(raw_path)
        path = parts.path
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        with self._lock:
            if path == "/token" and method == "POST":
                form = {k: v[-1] for k, v in parse_qs(raw.decode()).items()}
                return self._token(form)
            self.requests.append(f"{method} {path}")
            lower = {k.lower(): v for k, v in headers.items()}
            bearer = lower.get("authorization", "").removeprefix("Bearer ")
            email = self._access.get(bearer)
            expires = self._access_expiry.get(bearer)
            if email is None or (expires is not None and expires <= self.clock()):  # § Errors: 401
                return 401, _error(401, "authError", "Invalid Credentials")
            if CALENDAR_SCOPE not in self._access_scope.get(bearer, CALENDAR_SCOPE).split():
                # § OAuth token endpoint: a token without the calendar scope
                return 403, _error(
                    403, "insufficientPermissions", "Request had insufficient authentication scopes."
                )
            if self._throttles:
                status, reason, extra = self._throttles.pop(0)
                return status, _error(status, reason, "Rate Limit Exceeded"), extra
            body = json.loads(raw) if raw else {}
            segs = [unquote(s) for s in path.removeprefix("/calendar/v3/").split("/")]
            if segs == ["users", "me", "calendarList"]:
                return 200, self._calendar_list(email, query)
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
                    if "id" in body and not EVENT_ID.match(str(body["id"])):
                        return 400, _error(400, "invalid", "Invalid resource id value.")
                    if body.get("id") in cal.events:
                        return 409, _error(409, "duplicate", "The requested identifier already exists.")
                    event = {**body, "id": body.get("id") or secrets.token_hex(10)}
                    event.setdefault("organizer", {"email": cal.cal_id, "self": True})
                    return 200, self._touch(cal, {"kind": "calendar#event", "status": "confirmed", **event})
                if rest == ["watch"] and method == "POST":
                    refused = self._refused_watch(cal, body)
                    if refused:
                        return 400, _error(400, *refused)
                    return 200, self._watch(cal, body)
                if len(rest) == 1:
                    event = cal.events.get(rest[0]) or cal.overrides.get(rest[0])
                    if event is None and "_" in rest[0]:
                        event = self._expand_one(cal, rest[0].rsplit("_", 1)[0], rest[0])
                    if event is not None and rest[0] not in cal.events and method == "PATCH":
                        if_match = lower.get("if-match")
                        if if_match and if_match != event["etag"]:
                            return 412, _error(412, "conditionNotMet", "Precondition Failed")
                        return 200, self._touch_instance(cal, {**event, **body})
                    if event is not None:
                        event = _public(event)
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

    def _calendar_list(self, email: str, query: dict[str, str]) -> dict[str, Any]:
        """§ calendarList.list: pages of ``maxResults`` (default 100, at most 250; never more than
        the fake's ``page_size`` so that tests see the paging)."""
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
        size = min(int(query.get("maxResults", CALENDAR_LIST_PAGE)), 250, self.page_size)
        offset = int(query.get("pageToken", "0") or 0)
        body: dict[str, Any] = {"kind": "calendar#calendarList", "items": items[offset : offset + size]}
        if offset + size < len(items):
            body["nextPageToken"] = str(offset + size)
        else:
            body["nextSyncToken"] = f"cl:{self._last_seq}"
        return body

    def _list(self, cal: _Calendar, query: dict[str, str]) -> tuple[int, Any]:
        page_token = query.get("pageToken")
        if page_token:
            snap = self._snapshots.get(page_token.split(":")[0])
            if snap is None:
                return 400, _error(400, "invalid", "Invalid pageToken")
            items, next_sync = snap
            offset = int(page_token.split(":")[1])
        else:
            refused = _refused_list(query)
            if refused:
                return 400, _error(400, *refused)
            if "syncToken" in query:
                token = query["syncToken"]
                if not token.startswith(f"st:{cal.cal_id}:"):
                    return 410, _error(410, "fullSyncRequired", "Sync token is no longer valid")
                since = int(token.rsplit(":", 1)[1])
                if since < cal.oldest_token:
                    return 410, _error(410, "fullSyncRequired", "Sync token is no longer valid")
                ids = list(dict.fromkeys(eid for seq, eid in cal.log if seq > since))
                until = self.clock() + self.recurrence_window
                items = []
                for i in ids:
                    if i in cal.events:
                        items.extend(self._expanded(cal, [cal.events[i]], until))
                    elif i in cal.overrides:
                        items.append(cal.overrides[i])
                # an instance listed twice (its series and its own exception changed): once
                items = list({item["id"]: item for item in items}.values())
            else:
                low = datetime.fromisoformat(query["timeMin"]) if "timeMin" in query else None
                high = datetime.fromisoformat(query["timeMax"]) if "timeMax" in query else None
                until = high or self.clock() + self.recurrence_window
                live = [e for e in cal.events.values() if e.get("status") != "cancelled"]
                items = [
                    e
                    for e in self._expanded(cal, live, until)
                    if e.get("status") != "cancelled"
                    and (low is None or _parse_time(e["end"]) > low)
                    and (high is None or _parse_time(e["start"]) < high)
                ]
            assert query.get("singleEvents") == "true", "calsync lists single events"
            snap_id = secrets.token_hex(6)
            next_sync = f"st:{cal.cal_id}:{self._last_seq}"
            self._snapshots[snap_id] = ([_public(i) for i in items], next_sync)
            page_token, offset = snap_id, 0
        size = min(int(query.get("maxResults", self.page_size)), self.page_size)
        page = items[offset : offset + size]
        body: dict[str, Any] = {"kind": "calendar#events", "items": page, "timeZone": cal.time_zone}
        if offset + size < len(items):
            body["nextPageToken"] = f"{page_token.split(':')[0]}:{offset + size}"
        else:
            body["nextSyncToken"] = next_sync
        return 200, body

    def _refused_watch(self, cal: _Calendar, body: dict[str, Any]) -> tuple[str, str] | None:
        """§ Push notifications: what events.watch answers 400 to."""
        address = str(body.get("address") or "")
        if not cal.push:
            return (
                "pushNotSupportedForRequestedResource",
                "Push notifications are not supported by this resource.",
            )
        if body.get("type") not in ("web_hook", "webhook"):
            return "invalid", "Invalid channel type."
        if not CHANNEL_ID.match(str(body.get("id") or "")):
            return "invalid", "Invalid channel id."
        if len(str(body.get("token") or "")) > 256:
            return "invalid", "Channel token too long."
        if not (
            address.startswith("https://") or (self.allow_http_address and address.startswith("http://"))
        ):
            return "push.webhookUrlNotHttps", "WebHook callback must be HTTPS: " + address
        return None

    def _watch(self, cal: _Calendar, body: dict[str, Any]) -> dict[str, Any]:
        # § Push notifications: the requested ``expiration`` (ms), else ``params.ttl`` seconds, else
        # the default TTL of 604800 s (7 days)
        ttl = int((body.get("params") or {}).get("ttl") or 604800)
        expiration = int(body.get("expiration") or (self.clock().timestamp() + ttl) * 1000)
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
        # § Push notifications: "Value is always 1 for sync messages. Message numbers increase for
        # each subsequent message on the channel, but they are not sequential" (gaps of 1 to 3 here)
        ch.number = 1 if state == "sync" else ch.number + next(self._number_steps)
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
    """§ Errors: Google's error body; quota reasons come from the ``usageLimits`` domain."""
    domain = "usageLimits" if reason in QUOTA_REASONS else "global"
    return {
        "error": {
            "code": code,
            "message": message,
            "errors": [{"domain": domain, "reason": reason, "message": message}],
        }
    }


def _refused_list(query: dict[str, str]) -> tuple[str, str] | None:
    """§ events.list: the parameter combinations Google answers 400 to (reason, message)."""
    if "syncToken" in query and (
        any(k in query for k in SYNC_TOKEN_EXCLUSIVE) or query.get("showDeleted") == "false"
    ):
        return (
            "syncTokenWithRequestRestrictions",
            "Sync token cannot be used with other request restrictions.",
        )
    if query.get("orderBy") == "startTime" and query.get("singleEvents") != "true":
        return "invalid", "The requested ordering is not available for the particular query."
    if (
        "timeMin" in query
        and "timeMax" in query
        and datetime.fromisoformat(query["timeMax"]) <= datetime.fromisoformat(query["timeMin"])
    ):
        return "timeRangeEmpty", "The specified time range is empty."
    return None


@contextmanager
def fake_google(**kwargs: Any) -> Iterator[FakeGoogle]:
    fake = FakeGoogle(**kwargs).start()
    try:
        yield fake
    finally:
        fake.stop()
