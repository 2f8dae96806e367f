"""A local fake of Microsoft Graph and of the identity platform endpoints msal uses (issue 6).

One HTTP server with state on 127.0.0.1 (a free port):

Each behaviour cites the fact of docs/providers/microsoft.md it models ("[M<n>]"); where the fake
and a fact disagree, the fake is wrong.

- Identity: ``/common/v2.0/.well-known/openid-configuration``, ``/common/oauth2/v2.0/token``
  (authorization_code with PKCE S256 checked against the challenge of the authorize URL;
  refresh_token, which rotates the refresh token; the scopes granted are the ones the authorize
  URL asked for [M11]; ``fail_refresh`` answers ``invalid_grant`` AADSTS700082 as Entra does for an
  expired refresh token [M1]; ``token_failure`` answers the next token requests with an outage:
  a 5xx, ``temporarily_unavailable``, or any error body [M2]). ``sign_in(auth_uri, user)`` plays
  the browser: it reads msal's authorization URL and returns the callback parameters.
- Graph ``/v1.0``: ``/me``, ``/me/calendars`` (pages of ``page_size`` with ``@odata.nextLink``
  [M6]; calendars shared with the mailbox carry their ``owner`` [M9]),
  ``/me/calendars/{id}/calendarView/delta`` (startDateTime and endDateTime required on the first
  request [M7]; pages of at most ``page_size`` and of ``Prefer: odata.maxpagesize`` [M7] with
  ``@odata.nextLink``, the ``@odata.deltaLink`` only on the last page [M7]; ``@removed`` items;
  delta tokens expire with ``expire_deltas`` → 410 ``syncStateNotFound`` [M8]), ``POST …/events``,
  ``PATCH /me/events/{id}`` with If-Match (412 on a stale changeKey), ``/subscriptions``
  (POST validates the notification and lifecycle URLs with a validationToken handshake [M12];
  PATCH renews; DELETE).
- Shared calendars: ``share_calendar(owner, calendar, sharee)`` puts a calendar of another
  mailbox into the sharee's ``/me/calendars``; its events are read only with a
  ``Calendars.Read.Shared`` / ``Calendars.ReadWrite.Shared`` token [M9]; its changes notify only
  the owner's subscriptions, never the sharee's [M10].
- Throttling: ``throttle(n, retry_after, status)`` answers the next n Graph requests 429, 503 or
  504, with or without Retry-After [M3, M4].
- Notifications: every change to a mailbox's events queues a change notification for its
  subscriptions; ``deliver_notifications()`` POSTs them, ``lifecycle(sub_id, event)`` POSTs a
  lifecycle notification. A delivery answered with anything but 2xx is kept in ``redeliveries``:
  Graph sends it again, for up to 4 hours [M13]. Delivery goes through ``transport(url, query,
  body) -> (status, headers, text)``: by default a real HTTP POST; tests plug the webhook Lambda
  handler in.
- ``peak_concurrency`` per mailbox and ``calls`` count the Graph requests (S8 bench).

msal is pointed at it through its ``http_client``: ``LoopbackHttp`` rewrites the https authority
``https://127.0.0.1:<port>`` to plain http on the same loopback port (msal requires an https
authority; nothing leaves the machine).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import secrets
import threading
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

Transport = Callable[[str, dict[str, str], bytes | None], tuple[int, dict[str, str], str]]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def http_transport(url: str, query: dict[str, str], body: bytes | None) -> tuple[int, dict[str, str], str]:
    full = url + ("?" + urlencode(query) if query else "")
    req = urllib.request.Request(
        full, data=body or b"", method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode("utf-8", "replace")


@dataclass
class Mailbox:
    oid: str
    upn: str
    tid: str = "9188040d-6c67-4c5b-b112-36a304b66dad"  # the consumer tenant
    # id -> {name, canEdit, default, shared_from: (owner upn, owner calendar id) | None}
    calendars: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # cal -> id -> event
    log: list[tuple[int, str, str]] = field(default_factory=list)  # (version, calendar, event id)


@dataclass
class Subscription:
    id: str
    mailbox: str
    notification_url: str
    lifecycle_url: str
    client_state: str
    expires: str
    resource: str


class FakeGraph:
    def __init__(self, *, page_size: int = 2) -> None:
        self.page_size = page_size
        self.mailboxes: dict[str, Mailbox] = {}
        # code -> (mailbox, challenge, redirect, nonce, scope)
        self.codes: dict[str, tuple[str, str, str, str, str]] = {}
        self.refresh_tokens: dict[str, tuple[str, str]] = {}  # token -> (mailbox, scope)
        self.access_tokens: dict[str, tuple[str, str]] = {}  # token -> (mailbox, scope)
        self.deltas: dict[str, tuple[str, str, int, str, str]] = {}  # token -> (mbx, cal, version, s, e)
        self.pages: dict[str, tuple[list[dict[str, Any]], str]] = {}  # skiptoken -> (items left, delta)
        self.subscriptions: dict[str, Subscription] = {}
        self.outbox: list[tuple[str, dict[str, Any]]] = []  # (url, notification collection)
        self.redeliveries: list[tuple[str, dict[str, Any]]] = []  # answered non-2xx: Graph retries [M13]
        self.transport: Transport = http_transport
        self.fail_refresh = False
        # the next token requests fail: (status, JSON body or None: no body), status 0: the
        # connection drops without an answer [M2]
        self.token_failures: list[tuple[int, dict[str, Any] | None]] = []
        self.token_lifetime = 3600  # < 300: msal refreshes on every silent call
        # the app's valid client secrets (Entra keeps several while one is rotated); None: not
        # checked. Another is refused: 401 invalid_client, AADSTS7000215 [M2]
        self.client_secrets: set[str] | None = None
        self.token_requests = 0
        self.calls = 0
        self.calls_by_path: list[str] = []
        self.in_flight: dict[str, int] = {}
        self.peak_concurrency: dict[str, int] = {}
        self.delay = 0.0  # seconds each Graph request takes (concurrency measurements)
        self._throttle = 0
        self._retry_after: int | None = 1
        self._throttle_status = 429
        self._throttle_only = ""
        self._version = itertools.count(1)
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    # ---- server --------------------------------------------------------------------------------
    @property
    def authority(self) -> str:
        return f"https://127.0.0.1:{self.port}/common"

    @property
    def graph_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1.0"

    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, payload = fake.handle(self.command, self.path, dict(self.headers), body)
                if status == 0:  # the connection drops without an answer (a network failure)
                    self.close_connection = True
                    return
                data = b"" if payload is None else json.dumps(payload).encode("utf-8")
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if data:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _answer

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # ---- what tests do ---------------------------------------------------------------------------
    def add_mailbox(self, upn: str, calendars: dict[str, tuple[str, bool]] | None = None) -> Mailbox:
        """``calendars``: id -> (name, canEdit); the first is the default calendar."""
        with self._lock:
            mbx = Mailbox(oid=f"00000000-0000-0000-0000-{len(self.mailboxes) + 1:012d}", upn=upn)
            for n, (cal_id, (name, can_edit)) in enumerate(
                (calendars or {"cal-main": ("Calendar", True)}).items()
            ):
                mbx.calendars[cal_id] = {
                    "name": name,
                    "canEdit": can_edit,
                    "default": n == 0,
                    "shared_from": None,
                }
                mbx.events[cal_id] = {}
            self.mailboxes[upn] = mbx
            return mbx

    def share_calendar(self, owner: str, calendar: str, sharee: str, *, can_edit: bool = False) -> str:
        """The owner shares a calendar and the sharee accepts: it appears in the sharee's
        ``/me/calendars`` under an id of its own, owned by ``owner`` [M9]. Its events stay in the
        owner's mailbox: their changes notify the owner's subscriptions only [M10]."""
        with self._lock:
            src = self.mailboxes[owner].calendars[calendar]
            cal_id = f"shared-{next(self._ids)}"
            self.mailboxes[sharee].calendars[cal_id] = {
                "name": src["name"],
                "canEdit": can_edit,
                "default": False,
                "shared_from": (owner, calendar),
            }
            return cal_id

    def put_event(self, upn: str, calendar: str, event: dict[str, Any]) -> dict[str, Any]:
        """Create or replace an event (Graph JSON); a new changeKey; queue notifications."""
        with self._lock:
            mbx = self.mailboxes[upn]
            event = dict(event)
            event.setdefault("id", f"AAMk-{next(self._ids)}")
            event.setdefault("type", "singleInstance")
            event.setdefault("isOrganizer", True)
            created = event["id"] not in mbx.events[calendar]
            version = next(self._version)
            event["changeKey"] = f"ck{version}"
            event["@odata.etag"] = f'W/"ck{version}"'
            mbx.events[calendar][event["id"]] = event
            mbx.log.append((version, calendar, event["id"]))
            self._notify(mbx, "created" if created else "updated", event["id"])
            return event

    def delete_event(self, upn: str, calendar: str, event_id: str) -> None:
        with self._lock:
            mbx = self.mailboxes[upn]
            del mbx.events[calendar][event_id]
            mbx.log.append((next(self._version), calendar, event_id))
            self._notify(mbx, "deleted", event_id)

    def expire_deltas(self) -> None:
        with self._lock:
            self.deltas.clear()

    def throttle(
        self, requests_: int, retry_after: int | None = 1, status: int = 429, only: str = ""
    ) -> None:
        """The next ``requests_`` Graph requests (those whose ``"METHOD /v1.0/path"`` starts with
        ``only``) are answered ``status`` (429, 503 or 504), with a Retry-After header unless
        ``retry_after`` is None [M3, M4]."""
        with self._lock:
            self._throttle, self._retry_after, self._throttle_status = requests_, retry_after, status
            self._throttle_only = only

    def sign_in(self, auth_uri: str, upn: str) -> dict[str, str]:
        """The browser part: the person signs in; the parameters the redirect URI receives."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(auth_uri).query).items()}
        assert query.get("code_challenge_method") == "S256", "msal must use PKCE"
        code = secrets.token_urlsafe(16)
        with self._lock:
            self.codes[code] = (
                upn,
                query["code_challenge"],
                query["redirect_uri"],
                query.get("nonce", ""),
                query.get("scope", ""),
            )
        return {"code": code, "state": query["state"]}

    def _notify(self, mbx: Mailbox, change: str, event_id: str) -> None:
        for sub in self.subscriptions.values():
            if sub.mailbox == mbx.upn:
                self.outbox.append(
                    (
                        sub.notification_url,
                        {
                            "value": [
                                {
                                    "subscriptionId": sub.id,
                                    "subscriptionExpirationDateTime": sub.expires,
                                    "changeType": change,
                                    "resource": f"Users/{mbx.oid}/Events/{event_id}",
                                    "resourceData": {
                                        "@odata.type": "#Microsoft.Graph.Event",
                                        "@odata.id": f"Users/{mbx.oid}/Events/{event_id}",
                                        "id": event_id,
                                    },
                                    "clientState": sub.client_state,
                                    "tenantId": mbx.tid,
                                }
                            ]
                        },
                    )
                )

    def deliver_notifications(self) -> list[int]:
        """POST the queued change notifications, as Graph does; the webhook's status codes. A
        delivery answered with anything but 2xx is kept for redelivery [M13]."""
        with self._lock:
            outbox, self.outbox = self.outbox, []
        statuses: list[int] = []
        for url, body in outbox:
            status = self.transport(url, {}, json.dumps(body).encode())[0]
            statuses.append(status)
            if not 200 <= status < 300:
                self.redeliveries.append((url, body))
        return statuses

    def lifecycle(self, sub_id: str, event: str) -> int:
        """POST a lifecycle notification (reauthorizationRequired, subscriptionRemoved, missed)."""
        sub = self.subscriptions[sub_id]
        mbx = self.mailboxes[sub.mailbox]
        if event == "subscriptionRemoved":
            with self._lock:
                del self.subscriptions[sub_id]
        body = {
            "value": [
                {
                    "subscriptionId": sub.id,
                    "subscriptionExpirationDateTime": sub.expires,
                    "tenantId": mbx.tid,
                    "clientState": sub.client_state,
                    "lifecycleEvent": event,
                }
            ]
        }
        return self.transport(sub.lifecycle_url, {}, json.dumps(body).encode())[0]

    def subscriptions_of(self, upn: str) -> list[Subscription]:
        return [s for s in self.subscriptions.values() if s.mailbox == upn]

    # ---- requests ------------------------------------------------------------------------------
    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], Any]:
        parts = urlsplit(raw_path)
        path = parts.path
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if path.startswith("/common/"):
            return self._identity(method, path, body)
        if not path.startswith("/v1.0/"):
            return 404, {}, {"error": {"code": "NotFound"}}
        auth = headers.get("Authorization") or headers.get("authorization") or ""
        grant = self.access_tokens.get(auth.removeprefix("Bearer "))
        if grant is None:
            return 401, {}, {"error": {"code": "InvalidAuthenticationToken"}}
        upn, scope = grant
        with self._lock:
            self.calls += 1
            self.calls_by_path.append(f"{method} {path}")
            self.in_flight[upn] = self.in_flight.get(upn, 0) + 1
            self.peak_concurrency[upn] = max(self.peak_concurrency.get(upn, 0), self.in_flight[upn])
            throttled = self._throttle > 0 and f"{method} {path}".startswith(self._throttle_only)
            if throttled:
                self._throttle -= 1
        try:
            if self.delay:
                threading.Event().wait(self.delay)
            if throttled:  # [M3, M4]
                code = {429: "TooManyRequests", 503: "ServiceUnavailable", 504: "GatewayTimeout"}
                hdrs = {} if self._retry_after is None else {"Retry-After": str(self._retry_after)}
                status = self._throttle_status
                return status, hdrs, {"error": {"code": code.get(status, "UnknownError")}}
            return self._graph(method, path.removeprefix("/v1.0/"), query, headers, body, upn, scope)
        finally:
            with self._lock:
                self.in_flight[upn] -= 1

    def _identity(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, str], Any]:
        base = self.authority
        if path == "/common/v2.0/.well-known/openid-configuration":
            return (
                200,
                {},
                {
                    "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                    "token_endpoint": f"{base}/oauth2/v2.0/token",
                    "issuer": "https://login.microsoftonline.com/{tenantid}/v2.0",
                    "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                    "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                },
            )
        if path == "/common/oauth2/v2.0/token" and method == "POST":
            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            with self._lock:
                self.token_requests += 1
                if self.token_failures:  # an outage of the identity platform [M2]
                    status, payload = self.token_failures.pop(0)
                    return status, {}, payload
                if self.client_secrets is not None and form.get("client_secret") not in self.client_secrets:
                    return (
                        401,
                        {},
                        {
                            "error": "invalid_client",
                            "error_description": "AADSTS7000215: Invalid client secret provided.",
                            "error_codes": [7000215],
                        },
                    )
                if form.get("grant_type") == "authorization_code":
                    entry = self.codes.pop(form.get("code", ""), None)
                    verifier = form.get("code_verifier", "")
                    if entry is None or _b64(hashlib.sha256(verifier.encode()).digest()) != entry[1]:
                        return (
                            400,
                            {},
                            {"error": "invalid_grant", "error_description": "AADSTS54005: bad code"},
                        )
                    if form.get("redirect_uri") != entry[2]:
                        return (
                            400,
                            {},
                            {"error": "invalid_grant", "error_description": "redirect_uri mismatch"},
                        )
                    return 200, {}, self._tokens(entry[0], entry[4], entry[3])
                if form.get("grant_type") == "refresh_token":
                    granted = self.refresh_tokens.pop(form.get("refresh_token", ""), None)
                    if granted is None or self.fail_refresh:
                        return (
                            400,
                            {},
                            {
                                "error": "invalid_grant",
                                "error_description": "AADSTS700082: refresh token expired (inactivity)",
                                "error_codes": [700082],
                            },
                        )
                    asked = {x.lower() for x in form.get("scope", "").split()} - _OIDC
                    if not asked <= {x.lower() for x in granted[1].split()}:
                        # [M11] a refresh asks for a subset of what the person consented to
                        self.refresh_tokens[form["refresh_token"]] = granted
                        return (
                            400,
                            {},
                            {
                                "error": "invalid_grant",
                                "error_description": "AADSTS65001: The user or administrator has not "
                                "consented to use the application",
                                "error_codes": [65001],
                            },
                        )
                    return 200, {}, self._tokens(granted[0], granted[1])
            return 400, {}, {"error": "unsupported_grant_type"}
        return 404, {}, {"error": "not_found"}

    def _tokens(self, upn: str, requested: str, nonce: str = "") -> dict[str, Any]:
        """The tokens of a grant: the scopes granted are the resource scopes asked for at sign-in
        (the person consents to them), kept across refreshes [M11]."""
        mbx = self.mailboxes[upn]
        scope = " ".join(s for s in requested.split() if s.lower() not in _OIDC)
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        self.access_tokens[access] = (upn, scope)
        self.refresh_tokens[refresh] = (upn, scope)
        now = int(datetime.now(UTC).timestamp())
        claims = {
            "aud": "calsync-client-id",
            "iss": f"https://login.microsoftonline.com/{mbx.tid}/v2.0",
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "oid": mbx.oid,
            "tid": mbx.tid,
            "sub": f"sub-{mbx.oid}",
            "preferred_username": mbx.upn,
            "name": mbx.upn.split("@")[0],
        }
        if nonce:
            claims["nonce"] = nonce
        id_token = ".".join(
            (_b64(b'{"alg":"none","typ":"JWT"}'), _b64(json.dumps(claims).encode()), _b64(b"sig"))
        )
        return {
            "token_type": "Bearer",
            "scope": f"{scope} openid profile offline_access".strip(),
            "expires_in": self.token_lifetime,
            "access_token": access,
            "refresh_token": refresh,
            "id_token": id_token,
            "client_info": _b64(json.dumps({"uid": mbx.oid, "utid": mbx.tid}).encode()),
        }

    def _graph(  # noqa: PLR0917
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        upn: str,
        scope: str = "",
    ) -> tuple[int, dict[str, str], Any]:
        mbx = self.mailboxes[upn]
        seg = path.split("/")
        with self._lock:
            if path == "me" and method == "GET":
                return 200, {}, {"id": mbx.oid, "userPrincipalName": mbx.upn, "mail": mbx.upn}
            if path == "me/calendars" and method == "GET":
                return self._calendars(mbx, query)
            if (
                len(seg) >= 3
                and seg[:2] == ["me", "calendars"]
                and seg[2] in mbx.calendars
                and mbx.calendars[seg[2]]["shared_from"]
                and not _reads_shared(scope)
            ):  # [M9] another mailbox's calendar needs Calendars.Read.Shared / ReadWrite.Shared
                return 403, {}, {"error": {"code": "ErrorAccessDenied", "message": "Access is denied."}}
            if len(seg) == 5 and seg[:2] == ["me", "calendars"] and seg[3:] == ["calendarView", "delta"]:
                return self._delta(mbx, seg[2], query, headers)
            if len(seg) == 4 and seg[:2] == ["me", "calendars"] and seg[3] == "events" and method == "POST":
                if seg[2] not in mbx.calendars:
                    return 404, {}, {"error": {"code": "ErrorItemNotFound"}}
                if not mbx.calendars[seg[2]]["canEdit"]:  # a calendar shared read-only with the mailbox
                    return 403, {}, {"error": {"code": "ErrorAccessDenied"}}
                data = json.loads(body)
                data.pop("id", None)
                owner, cal = self._owner_of(mbx, seg[2])
                return 201, {}, self.put_event(owner.upn, cal, data)
            if len(seg) == 3 and seg[:2] == ["me", "events"]:
                cal = next((c for c, evs in mbx.events.items() if seg[2] in evs), None)
                if cal is None:
                    return 404, {}, {"error": {"code": "ErrorItemNotFound"}}
                event = mbx.events[cal][seg[2]]
                if method == "GET":
                    return 200, {}, event
                if method == "PATCH":
                    if not mbx.calendars[cal]["canEdit"]:
                        return 403, {}, {"error": {"code": "ErrorAccessDenied"}}
                    match = headers.get("If-Match") or headers.get("if-match")
                    if match and match not in (event["changeKey"], event["@odata.etag"]):
                        return 412, {}, {"error": {"code": "ErrorIrresolvableConflict"}}
                    return 200, {}, self.put_event(upn, cal, {**event, **json.loads(body)})
            if seg[0] == "subscriptions":
                return self._subscriptions(method, seg, body, upn)
        return 404, {}, {"error": {"code": "ResourceNotFound"}}

    def _calendars(self, mbx: Mailbox, query: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        """``GET /me/calendars``: a page of ``page_size`` (or ``$top``) calendars and an
        ``@odata.nextLink`` while more are left [M6]; a shared calendar names its owner [M9]."""
        rows = []
        for cid, c in mbx.calendars.items():
            owner = self.mailboxes[c["shared_from"][0]] if c["shared_from"] else mbx
            rows.append(
                {
                    "id": cid,
                    "name": c["name"],
                    "canEdit": c["canEdit"],
                    "canShare": c["shared_from"] is None,
                    "isDefaultCalendar": c["default"],
                    "owner": {"name": owner.upn.split("@")[0], "address": owner.upn},
                }
            )
        skip = int(query.get("$skip", "0") or 0)
        size = min(self.page_size, int(query.get("$top", self.page_size) or self.page_size))
        page: dict[str, Any] = {"value": rows[skip : skip + size]}
        if skip + size < len(rows):
            page["@odata.nextLink"] = f"{self.graph_endpoint}/me/calendars?$top={size}&$skip={skip + size}"
        return 200, {}, page

    def _owner_of(self, mbx: Mailbox, cal: str) -> tuple[Mailbox, str]:
        """The mailbox and calendar id that hold a calendar's events (the owner's, when shared)."""
        shared = mbx.calendars[cal]["shared_from"]
        return (self.mailboxes[shared[0]], shared[1]) if shared else (mbx, cal)

    def _in_range(self, event: dict[str, Any], start: str, end: str) -> bool:
        s = str(event["start"]["dateTime"])[:19]
        e = str(event["end"]["dateTime"])[:19]
        return s < end[:19] and e > start[:19]

    def _delta(
        self, mbx: Mailbox, cal: str, query: dict[str, str], headers: dict[str, str]
    ) -> tuple[int, dict[str, str], Any]:
        if cal not in mbx.calendars:
            return 404, {}, {"error": {"code": "ErrorItemNotFound"}}
        base = f"{self.graph_endpoint}/me/calendars/{cal}/calendarView/delta"
        size = self.page_size
        prefer = {k.lower(): v for k, v in headers.items()}.get("prefer", "")
        for part in prefer.split(","):  # [M7] Prefer: odata.maxpagesize caps a page
            name, _, value = part.strip().partition("=")
            if name == "odata.maxpagesize" and value.isdigit() and int(value) > 0:
                size = min(size, int(value))
        if "$skiptoken" in query:
            pending = self.pages.get(query["$skiptoken"])
            if pending is None:
                return 410, {}, {"error": {"code": "syncStateNotFound"}}
            return self._page(base, query["$skiptoken"], size)
        owner, owner_cal = self._owner_of(mbx, cal)
        version = max((v for v, _, _ in owner.log), default=0)
        if "$deltatoken" in query:
            entry = self.deltas.get(query["$deltatoken"])
            if entry is None or entry[0] != mbx.upn or entry[1] != cal:
                return 410, {}, {"error": {"code": "syncStateNotFound", "message": "resync required"}}
            _, _, since, start, end = entry
            changed = sorted({eid for v, c, eid in owner.log if v > since and c == owner_cal})
            items: list[dict[str, Any]] = []
            for eid in changed:
                ev = owner.events[owner_cal].get(eid)
                if ev is None or not self._in_range(ev, start, end):
                    items.append({"id": eid, "@removed": {"reason": "deleted"}})
                else:
                    items.append(dict(ev))
        else:
            lowered = {k.lower(): v for k, v in query.items()}
            start, end = lowered.get("startdatetime", ""), lowered.get("enddatetime", "")
            if not start or not end:  # [M7] a calendar view needs its window
                return (
                    400,
                    {},
                    {
                        "error": {
                            "code": "ErrorInvalidParameter",
                            "message": "This request requires a time window specified by the query "
                            "string parameters StartDateTime and EndDateTime.",
                        }
                    },
                )
            items = [dict(ev) for ev in owner.events[owner_cal].values() if self._in_range(ev, start, end)]
        token = secrets.token_urlsafe(12)
        self.deltas[token] = (mbx.upn, cal, version, start, end)
        skip = secrets.token_urlsafe(12)
        self.pages[skip] = (items, token)
        return self._page(base, skip, size)

    def _page(self, base: str, skip: str, size: int) -> tuple[int, dict[str, str], Any]:
        """The next page of a round: ``@odata.nextLink`` while items are left, the
        ``@odata.deltaLink`` only on the last page [M7]."""
        items, token = self.pages[skip]
        page, rest = items[:size], items[size:]
        if not rest:
            del self.pages[skip]
            return 200, {}, {"value": page, "@odata.deltaLink": f"{base}?$deltatoken={token}"}
        self.pages[skip] = (rest, token)
        return 200, {}, {"value": page, "@odata.nextLink": f"{base}?$skiptoken={skip}"}

    def _subscriptions(
        self, method: str, seg: list[str], body: bytes, upn: str
    ) -> tuple[int, dict[str, str], Any]:
        if method == "POST" and len(seg) == 1:
            data = json.loads(body)
            for url in (data["notificationUrl"], data.get("lifecycleNotificationUrl")):
                if not url:
                    continue
                token = f"Validation: Testing client application reachability {secrets.token_hex(8)}"
                status, hdrs, text = self.transport(url, {"validationToken": token}, None)
                ctype = {k.lower(): v for k, v in hdrs.items()}.get("content-type", "")
                if status != 200 or not ctype.startswith("text/plain") or text != token:
                    return (
                        400,
                        {},
                        {
                            "error": {
                                "code": "ValidationError",
                                "message": "Subscription validation request failed",
                            }
                        },
                    )
            sub = Subscription(
                id=f"sub-{secrets.token_hex(8)}",
                mailbox=upn,
                notification_url=data["notificationUrl"],
                lifecycle_url=data.get("lifecycleNotificationUrl", ""),
                client_state=data.get("clientState", ""),
                expires=data["expirationDateTime"],
                resource=data["resource"],
            )
            self.subscriptions[sub.id] = sub
            return 201, {}, {"id": sub.id, "resource": sub.resource, "expirationDateTime": sub.expires}
        if len(seg) == 2:
            sub_found = self.subscriptions.get(seg[1])
            if sub_found is None or sub_found.mailbox != upn:
                return 404, {}, {"error": {"code": "ResourceNotFound"}}
            if method == "PATCH":
                sub_found.expires = json.loads(body)["expirationDateTime"]
                return 200, {}, {"id": sub_found.id, "expirationDateTime": sub_found.expires}
            if method == "DELETE":
                del self.subscriptions[seg[1]]
                return 204, {}, None
        return 404, {}, {"error": {"code": "ResourceNotFound"}}


class LoopbackHttp(requests.Session):
    """msal's ``http_client``: https://127.0.0.1:<port> (the authority msal insists on) → http."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self._prefix = f"https://127.0.0.1:{port}/"
        self._target = f"http://127.0.0.1:{port}/"

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        text = url.decode() if isinstance(url, bytes) else url
        if text.startswith(self._prefix):
            text = self._target + text[len(self._prefix) :]
        host = urlsplit(text).hostname
        assert host == "127.0.0.1", f"no network in tests: {text}"
        return super().request(method, text, *args, **kwargs)


@contextmanager
def fake_graph(page_size: int = 2) -> Iterator[FakeGraph]:
    fake = FakeGraph(page_size=page_size)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


_OIDC = frozenset({"openid", "profile", "offline_access", "email"})


def _reads_shared(scope: str) -> bool:
    granted = {s.lower() for s in scope.split()}
    return bool(granted & {"calendars.read.shared", "calendars.readwrite.shared"})


def graph_event(subject: str, start: datetime, minutes: int = 30, **fields: Any) -> dict[str, Any]:
    """A Graph event (UTC), single instance unless ``type`` says otherwise."""
    end = start + timedelta(minutes=minutes)
    return {
        "subject": subject,
        "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"},
        "end": {"dateTime": end.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"},
        "showAs": "busy",
        "sensitivity": "normal",
        "isCancelled": False,
        "isAllDay": False,
        **fields,
    }
