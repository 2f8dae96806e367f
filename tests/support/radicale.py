"""A real Radicale CalDAV server for the accounts tests, on a free 127.0.0.1 port.

NOTE (sync engineer): the first version of this file, by the accounts engineer, was overwritten by
mistake while the sync engineer created its own helper (now ``tests/support/caldav_server.py``).
This is a reconstruction of the interface the accounts tests use (``Radicale``, ``radicale_server``,
``free_port``); its owner should check it against the original.

Started like the local stack starts it (``local.servers``): its own config, plain htpasswd users,
own process group.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

import requests

from local.servers import start_radicale, write_radicale_config

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port nothing listens on at the moment (on 127.0.0.1)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class Radicale:
    url: str  # "http://127.0.0.1:<port>/", as a person would type it (normalized with a "/")
    users_file: Path
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def base_url(self) -> str:
        return self.url.rstrip("/")

    def add_user(self, user: str, password: str) -> None:
        with self.users_file.open("a") as f:
            f.write(f"{user}:{password}\n")

    def make_calendar(
        self,
        user: str,
        password: str,
        slug: str = "calendar",
        name: str | None = None,
        *,
        tasks: bool = False,
    ) -> str:
        """MKCALENDAR /<user>/<slug>/ (VEVENT, or VTODO with ``tasks``); its absolute URL."""
        url = f"{self.base_url}/{user}/{slug}/"
        comp = "VTODO" if tasks else "VEVENT"
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop>'
            f"<D:displayname>{escape(name or slug)}</D:displayname>"
            "<C:supported-calendar-component-set>"
            f'<C:comp name="{comp}"/>'
            "</C:supported-calendar-component-set>"
            "</D:prop></D:set></C:mkcalendar>"
        )
        resp = self.session.request("MKCALENDAR", url, data=body.encode(), auth=(user, password), timeout=10)
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


@contextlib.contextmanager
def radicale_server(state_dir: Path) -> Iterator[Radicale]:
    port = free_port()
    config = write_radicale_config(state_dir, port)
    server = start_radicale(config, state_dir / "logs")
    try:
        server.wait_ready(port, timeout=30)
        yield Radicale(f"http://{HOST}:{port}/", state_dir / "radicale" / "users")
    finally:
        server.stop()
