"""An iCloud-shaped CalDAV service for tests: a discovery host in front of a REAL CalDAV server.

What it models (each fact with its source in docs/providers/icloud.md):

- The discovery host (``caldav.icloud.com``: here ``ICloudDiscovery``, on 127.0.0.2) answers
  authentication and principal discovery only: ``PROPFIND /`` gives the ``current-user-principal``
  ``/<dsid>/principal/`` (vdirsyncer#838, go-webdav#61); ``PROPFIND`` of the principal gives a
  ``calendar-home-set`` that is an ABSOLUTE URL on the account's partition host
  (``https://pNN-caldav.icloud.com:443/<dsid>/calendars/``, go-webdav#61, python-caldav#3) and the
  ``calendar-user-address-set``. ``/.well-known/caldav`` redirects to the context path (RFC 6764
  §5). It serves no calendar: any other path is 404 (go-webdav#61: "the wrong host is being
  queried" fails).
- Wrong or missing credentials: 401 with ``WWW-Authenticate: Basic realm="MMCalDav"`` and the
  ``X-MobileMe-AuthToken`` challenge beside it (vdirsyncer#838).
- The partition host (a real Radicale, on 127.0.0.1, optionally behind a counting
  ``FaultyProxy``) serves the collections: calendars, sync tokens, ctags, PUT/REPORT.

The two hosts differ in address (127.0.0.2 vs 127.0.0.1: Linux routes all of 127/8 to lo), so a
client that rebuilds calendar URLs on the host the person typed reaches the discovery host and gets
404. Optionally the hosts are NAMES (``discovery_name``/``partition_name``) resolved by a resolver
hook of the X6 guard (``resolver()``), as the integration tests do; the local stack, which cannot
take a hook, uses the addresses.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import ipaddress
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import requests

DISCOVERY_ADDRESS: Final = "127.0.0.2"
PARTITION_ADDRESS: Final = "127.0.0.1"
_D = "{DAV:}"
_C = "{urn:ietf:params:xml:ns:caldav}"
CHALLENGES: Final = ('Basic realm="MMCalDav"', 'X-MobileMe-AuthToken realm="MMCalDav"')


def dsid_of(user: str) -> str:
    """A stable numeric "DSID" per Apple ID (iCloud's principal paths are /<dsid>/principal/)."""
    return str(int(hashlib.sha256(user.encode()).hexdigest()[:10], 16))


class ICloudDiscovery:
    """``caldav.icloud.com``: principal discovery, calendar home on the partition host."""

    def __init__(
        self,
        partition_url: str,
        *,
        address: str = DISCOVERY_ADDRESS,
        name: str | None = None,
        login_url: str | None = None,
        email_domain: str = "icloud.test",
    ) -> None:
        """``partition_url``: the base URL the home sets point at (``http://host:port``); the
        account ``user``'s calendar home is ``<partition_url>/<user>/`` there. ``login_url``: where
        credentials are checked (the partition's address, when ``partition_url`` uses a name)."""
        self.partition_url = partition_url.rstrip("/")
        self.login_url = (login_url or partition_url).rstrip("/")
        self.email_domain = email_domain
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request
        self._logins: dict[tuple[str, str], bool] = {}
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with fake._lock:
                    fake.requests.append((self.command, self.path))
                status, headers, content = fake.answer(self.command, self.path, dict(self.headers), body)
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_PUT = do_DELETE = do_PROPFIND = do_REPORT = do_OPTIONS = do_HEAD = _any

        self.server = ThreadingHTTPServer((address, 0), Handler)
        port = self.server.server_address[1]
        self.url = f"http://{name or address}:{port}/"  # what a person types (https://caldav.icloud.com/)
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="icloud-discovery", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ---- the answers ---------------------------------------------------------------------------
    def _login(self, headers: Mapping[str, str]) -> str | None:
        """The Apple ID of valid Basic credentials (checked with the partition, as iCloud's
        front end checks them for every host), or None."""
        auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        if not auth.lower().startswith("basic "):
            return None
        try:
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        key = (user, password)
        if key not in self._logins:
            resp = requests.request(
                "PROPFIND",
                f"{self.login_url}/{user}/",
                headers={"Depth": "0"},
                auth=key,
                timeout=10,
            )
            self._logins[key] = resp.status_code == 207
        return user if self._logins[key] else None

    def answer(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        if path.rstrip("/") == "/.well-known/caldav":  # RFC 6764 §5: to the context path
            return 301, [("Location", "/")], b""
        user = self._login(headers)
        if user is None:  # vdirsyncer#838: both challenges, empty body
            return 401, [("WWW-Authenticate", c) for c in CHALLENGES], b""
        if method != "PROPFIND":
            return 404, [], b""
        dsid = dsid_of(user)
        principal = f"/{dsid}/principal/"
        known = {
            f"{_D}current-user-principal": f"<D:href>{principal}</D:href>",
            f"{_D}principal-URL": f"<D:href>{principal}</D:href>",
        }
        if path == principal:
            email = f"{user}@{self.email_domain}" if "@" not in user else user
            known |= {
                f"{_D}resourcetype": "<D:principal/>",
                f"{_D}displayname": escape(user),
                # go-webdav#61: an absolute URL on the partition host, with an explicit port
                f"{_C}calendar-home-set": f"<D:href>{escape(self.partition_url)}/{escape(user)}/</D:href>",
                f"{_C}calendar-user-address-set": (
                    f"<D:href>mailto:{escape(email)}</D:href><D:href>{principal}</D:href>"
                ),
            }
        elif path != "/":
            return 404, [], b""  # no calendar is served here: they are on the partition host
        wanted = _requested(body) or list(known)
        found = [t for t in wanted if t in known]
        missing = [t for t in wanted if t not in known]
        xml = ['<?xml version="1.0" encoding="UTF-8"?>']
        xml.append('<D:multistatus xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">')
        xml.append(f"<D:response><D:href>{escape(path)}</D:href>")
        if found:
            xml.append("<D:propstat><D:prop>")
            xml += [f"{_element(t, known[t])}" for t in found]
            xml.append("</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>")
        if missing:
            xml.append("<D:propstat><D:prop>")
            xml += [_element(t, "") for t in missing]
            xml.append("</D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>")
        xml.append("</D:response></D:multistatus>")
        return 207, [("Content-Type", 'application/xml; charset="utf-8"')], "".join(xml).encode()


def _requested(body: bytes) -> list[str]:
    """The property names a PROPFIND asks for ([] for allprop or no body)."""
    if not body.strip():
        return []
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return []
    prop = root.find(f"{_D}prop")
    return [str(p.tag) for p in prop] if prop is not None else []


def _element(tag: str, inner: str) -> str:
    namespace, _, local = tag[1:].partition("}")
    prefix = {"DAV:": "D", "urn:ietf:params:xml:ns:caldav": "C"}.get(namespace)
    if prefix is None:
        return f'<X:{local} xmlns:X="{escape(namespace)}">{inner}</X:{local}>'
    return f"<{prefix}:{local}>{inner}</{prefix}:{local}>"


class Resolver:
    """A resolver hook for the X6 guard (``connect.Resolver``), used only by tests: host names to
    addresses, changeable while a test runs (a DNS answer that changes after connect)."""

    def __init__(self, names: Mapping[str, str]) -> None:
        self.names = dict(names)
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        with contextlib.suppress(ValueError):  # an address literal resolves to itself
            return [str(ipaddress.ip_address(host.strip("[]")))]
        if host in self.names:
            return [self.names[host]]
        raise OSError(f"unknown host {host}")
