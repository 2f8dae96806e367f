"""A real Radicale CalDAV server for tests and the bench, on a free 127.0.0.1 port.

Started like the local stack starts it (``local.servers``): its own config, plain htpasswd users,
own process group. ``RadicaleServer`` also writes to it the way a person's calendar app would
(MKCALENDAR, PUT, DELETE over HTTP), and can make it misbehave through a small proxy
(``FaultyProxy``: 401, 503 with Retry-After, garbage XML).

``XandikosServer`` (``xandikos()``) is a second real server with the same interface, for the core
sync tests (issue 4). Xandikos has no authentication of its own here: the client's Basic auth is
sent and ignored; ``add_user`` creates the user's home collection instead.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

from local.servers import Subprocess, port_open, start_radicale, write_radicale_config

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class _DavWrites:
    """What a calendar app does to a server: MKCALENDAR, PUT, DELETE (needs ``base_url``, ``session``)."""

    base_url: str
    session: requests.Session

    def make_calendar(self, user: str, password: str, name: str = "calendar") -> str:
        """MKCALENDAR /<user>/<name>/ (a VEVENT calendar); returns its absolute URL."""
        url = f"{self.base_url}/{user}/{name}/"
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop>'
            f"<D:displayname>{name}</D:displayname>"
            '<C:supported-calendar-component-set><C:comp name="VEVENT"/></C:supported-calendar-component-set>'
            "</D:prop></D:set></C:mkcalendar>"
        )
        resp = self.session.request("MKCALENDAR", url, data=body, auth=(user, password), timeout=10)
        assert resp.status_code == 201, (resp.status_code, resp.text)
        return url

    def put(self, calendar_url: str, name: str, ics: str, auth: tuple[str, str]) -> str:
        resp = self.session.put(
            f"{calendar_url}{name}.ics",
            data=ics.encode(),
            headers={"Content-Type": "text/calendar; charset=utf-8"},
            auth=auth,
            timeout=10,
        )
        assert resp.status_code in (201, 204), (resp.status_code, resp.text)
        return resp.headers.get("ETag", "")

    def delete(self, calendar_url: str, name: str, auth: tuple[str, str]) -> None:
        resp = self.session.delete(f"{calendar_url}{name}.ics", auth=auth, timeout=10)
        assert resp.status_code in (200, 204), (resp.status_code, resp.text)


@dataclass
class RadicaleServer(_DavWrites):
    base_url: str
    users_file: Path
    session: requests.Session = field(default_factory=requests.Session)

    def add_user(self, user: str, password: str) -> None:
        with self.users_file.open("a") as f:
            f.write(f"{user}:{password}\n")


@dataclass
class XandikosServer(_DavWrites):
    """Xandikos ignores credentials; MKCALENDAR needs the parent, so a user is a plain collection."""

    base_url: str
    session: requests.Session = field(default_factory=requests.Session)

    def add_user(self, user: str, password: str) -> None:
        resp = self.session.request("MKCOL", f"{self.base_url}/{user}/", auth=(user, password), timeout=10)
        assert resp.status_code == 201, (resp.status_code, resp.text)


@contextlib.contextmanager
def radicale(state_dir: Path) -> Iterator[RadicaleServer]:
    port = free_port()
    config = write_radicale_config(state_dir, port)
    server = start_radicale(config, state_dir / "logs")
    try:
        server.wait_ready(port, timeout=30)
        yield RadicaleServer(f"http://{HOST}:{port}", state_dir / "radicale" / "users")
    finally:
        server.stop()


@contextlib.contextmanager
def xandikos(state_dir: Path) -> Iterator[XandikosServer]:
    """``python -m xandikos.web`` on a free port, data and state under ``state_dir``; stopped, port closed."""
    port = free_port()
    server = Subprocess(
        "Xandikos",
        [
            sys.executable,
            "-m",
            "xandikos.web",
            "--directory",
            str(state_dir / "data"),
            "--state-dir",
            str(state_dir / "state"),
            "--autocreate",
            "--no-detect-systemd",
            "--listen-address",
            HOST,
            "--port",
            str(port),
        ],
        state_dir / "logs" / "xandikos.log",
    )
    try:
        server.wait_ready(port, timeout=30)
        yield XandikosServer(f"http://{HOST}:{port}")
    finally:
        server.stop()
        deadline = time.monotonic() + 5
        while port_open(port) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not port_open(port), f"xandikos still listens on {HOST}:{port}"


# ---------------------------------------------------------------------------- ics


def ics(
    uid: str,
    title: str,
    start: datetime,
    end: datetime,
    *,
    extra: str = "",
    rrule: str | None = None,
    overrides: str = "",
) -> str:
    """A VCALENDAR with one VEVENT (UTC times), optional RRULE, extra lines and override VEVENTs."""
    fmt = "%Y%m%dT%H%M%SZ"
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//calsync//tests//EN",
        "BEGIN:VEVENT",
        f"UID:{uid}",
        "DTSTAMP:20260101T000000Z",
        f"DTSTART:{start.astimezone(UTC).strftime(fmt)}",
        f"DTEND:{end.astimezone(UTC).strftime(fmt)}",
        f"SUMMARY:{title}",
    ]
    if rrule:
        lines.append(f"RRULE:{rrule}")
    lines += [line for line in extra.splitlines() if line.strip()]
    lines.append("END:VEVENT")
    lines += [line for line in overrides.splitlines() if line.strip()]
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"


def override(
    uid: str, original: datetime, start: datetime, end: datetime, *, title: str, extra: str = ""
) -> str:
    fmt = "%Y%m%dT%H%M%SZ"
    lines = [
        "BEGIN:VEVENT",
        f"UID:{uid}",
        "DTSTAMP:20260101T000000Z",
        f"RECURRENCE-ID:{original.astimezone(UTC).strftime(fmt)}",
        f"DTSTART:{start.astimezone(UTC).strftime(fmt)}",
        f"DTEND:{end.astimezone(UTC).strftime(fmt)}",
        f"SUMMARY:{title}",
        *[line for line in extra.splitlines() if line.strip()],
        "END:VEVENT",
    ]
    return "\r\n".join(lines)


# ---------------------------------------------------------------------------- a misbehaving server

Fault = Callable[[str, str], tuple[int, dict[str, str], bytes] | None]


class FaultyProxy:
    """A proxy in front of Radicale: ``fault(method, path)`` may answer instead of the server."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.fault: Fault | None = None
        self.requests = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                proxy.requests += 1
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                answer = proxy.fault(self.command, self.path) if proxy.fault else None
                if answer is None:
                    headers = {
                        k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")
                    }
                    resp = requests.request(
                        self.command, proxy.upstream + self.path, data=body, headers=headers, timeout=10
                    )
                    answer = (resp.status_code, dict(resp.headers), resp.content)
                status, headers, content = answer
                self.send_response(status)
                for k, v in headers.items():
                    if k.lower() not in (
                        "content-length",
                        "transfer-encoding",
                        "connection",
                        "content-encoding",
                    ):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_PUT = do_DELETE = do_PROPFIND = do_REPORT = do_OPTIONS = _any

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.url = f"http://{HOST}:{self.server.server_address[1]}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, name=f"proxy-{uuid.uuid4().hex[:6]}"
        )
        self._thread.daemon = True
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
