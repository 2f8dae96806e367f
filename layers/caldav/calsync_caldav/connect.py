"""Connecting a CalDAV account: the server URL check (rule X6) and the discovery of the principal,
its own addresses and its calendars (caldav 1.x over requests).

X6, server-side request forgery: the URL a person gives is fetched by calsync, so

- ``check_url`` refuses anything but https, URLs with credentials in them, and hosts that resolve
  to a loopback, private, link-local, shared, reserved, multicast or cloud metadata address (every
  address the name resolves to must be public); the local stack (``allow_local``) also accepts http
  and loopback;
- ``guarded_session`` enforces the same rule on **every connection** the HTTP client opens: it
  resolves the host itself, checks the addresses and connects to the checked address (so a DNS
  answer that changes between the check and the connection, or a redirect, or a calendar home on
  another host, cannot reach an internal address). Proxies and ``.netrc`` from the environment are
  ignored. Discovery, poll, sync and write all use it (issue 11).

Discovery keeps each calendar's ABSOLUTE collection URL (``DiscoveredCalendar.url``): iCloud's
calendar home is on a partition host, not the host the person typed (docs/providers/icloud.md, I2).

Nothing here logs or returns the password; errors carry our own messages, never a server's text.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util import connection as urllib3_connection

from calsync.domain.errors import CalsyncError, InvalidInput
from calsync.observability import logger
from calsync.store.items import AccessRole, valid_zone

ICLOUD_URL: Final = "https://caldav.icloud.com/"
DEFAULT_TIMEOUT: Final = 10.0
MAX_REDIRECTS: Final = 5
Resolver = Callable[[str, int], Sequence[str]]

# addresses named for a clearer message; every one of them is also non-global
METADATA_ADDRESSES: Final = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "168.63.129.16")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_HOST_RE = re.compile(r"^[A-Za-z0-9.\-_:\[\]]{1,253}$")


# ---- errors: clear 400 answers, nothing stored ------------------------------------------------
class UrlRefused(InvalidInput):
    type_slug = "caldav-url-refused"
    title = "Server URL not allowed"


class CredentialsRefused(InvalidInput):
    type_slug = "caldav-credentials-refused"
    title = "Credentials refused"


class ServerUnreachable(InvalidInput):
    type_slug = "caldav-server-unreachable"
    title = "CalDAV server unreachable"


class NotCaldavServer(InvalidInput):
    type_slug = "caldav-server-invalid"
    title = "Not a CalDAV server"


# ---- X6: the URL and the addresses it resolves to ---------------------------------------------
def default_resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (A and AAAA)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def blocked_reason(address: str, *, allow_loopback: bool = False) -> str | None:
    """Why calsync must not connect to ``address`` (``None``: a public address it may reach)."""
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip.teredo is not None:
            embedded = ip.teredo[1]
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return blocked_reason(str(embedded), allow_loopback=allow_loopback)
    if ip.is_loopback:
        return None if allow_loopback else "a loopback address"
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_private:
        return "a private address"
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved or not ip.is_global:
        return "a reserved address"
    return None


@dataclass(frozen=True, slots=True)
class CheckedUrl:
    url: str  # normalized: scheme and host lowercased, no fragment
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


def check_url(url: str, *, allow_local: bool = False, resolve: Resolver | None = None) -> CheckedUrl:
    """X6: ``url`` may be fetched by calsync, or ``UrlRefused`` / ``ServerUnreachable``."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise UrlRefused("the server URL is not a valid URL") from None
    scheme = parts.scheme.lower()
    allowed = ("https", "http") if allow_local else ("https",)
    if scheme not in allowed:
        raise UrlRefused("the server URL must start with https://")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("the server URL must not contain a user name or password: use the form's fields")
    host = (parts.hostname or "").rstrip(".")
    if not host or not _HOST_RE.fullmatch(host):
        raise UrlRefused("the server URL has no valid host name")
    port = port or (443 if scheme == "https" else 80)
    addresses = _checked_addresses(host, port, allow_local=allow_local, resolve=resolve)
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    normalized = urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))
    return CheckedUrl(normalized, scheme, host, port, addresses)


def _checked_addresses(
    host: str, port: int, *, allow_local: bool, resolve: Resolver | None
) -> tuple[str, ...]:
    try:
        addresses = tuple((resolve or default_resolve)(host, port))
    except (OSError, UnicodeError):
        raise ServerUnreachable(
            f"the server name {host!r} could not be resolved: check the server URL"
        ) from None
    if not addresses:
        raise ServerUnreachable(f"the server name {host!r} could not be resolved: check the server URL")
    for address in addresses:
        try:
            reason = blocked_reason(address, allow_loopback=allow_local)
        except ValueError:
            reason = "an invalid address"
        if reason is not None:
            raise UrlRefused(
                f"the server URL points to {reason}: calsync connects to public CalDAV servers only"
            )
    return addresses


# ---- the guarded HTTP client ------------------------------------------------------------------
@dataclass(frozen=True)
class _Guard:
    allow_local: bool
    resolve: Resolver | None = field(default=None)

    def connect(self, conn: HTTPConnection, scheme: str) -> socket.socket:
        if scheme != "https" and not self.allow_local:
            raise UrlRefused("the server (or a redirect) uses http: calsync connects over https only")
        host = conn._dns_host.rstrip(".")  # the name urllib3 would have resolved itself
        addresses = _checked_addresses(host, conn.port, allow_local=self.allow_local, resolve=self.resolve)
        # every address was checked; try them in order, as urllib3 does (one may be unreachable,
        # e.g. an IPv6 one from a Lambda without IPv6)
        last: OSError | None = None
        for address in addresses:
            try:
                return urllib3_connection.create_connection(
                    (address, conn.port),
                    conn.timeout,
                    source_address=conn.source_address,
                    socket_options=conn.socket_options,
                )
            except OSError as exc:
                last = exc
        if isinstance(last, TimeoutError):
            raise ConnectTimeoutError(conn, f"connection to {conn.host} timed out") from last
        raise NewConnectionError(conn, f"failed to connect to {conn.host}: {last}") from last


class _GuardedAdapter(HTTPAdapter):
    """Every connection of the pools this adapter makes goes through ``_Guard.connect``."""

    def __init__(self, guard: _Guard) -> None:
        self._guard = guard
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        guard = self._guard

        class GuardedHTTPConnection(HTTPConnection):
            def _new_conn(self) -> socket.socket:
                return guard.connect(self, "http")

        class GuardedHTTPSConnection(HTTPSConnection):
            def _new_conn(self) -> socket.socket:
                return guard.connect(self, "https")

        class GuardedHTTPPool(HTTPConnectionPool):
            ConnectionCls = GuardedHTTPConnection

        class GuardedHTTPSPool(HTTPSConnectionPool):
            ConnectionCls = GuardedHTTPSConnection

        self.poolmanager.pool_classes_by_scheme = {"http": GuardedHTTPPool, "https": GuardedHTTPSPool}


def guarded_session(*, allow_local: bool = False, resolve: Resolver | None = None) -> requests.Session:
    """A requests session that can reach only what X6 allows (also on redirects)."""
    session = requests.Session()
    session.trust_env = False  # no proxy or .netrc from the environment
    session.max_redirects = MAX_REDIRECTS
    adapter = _GuardedAdapter(_Guard(allow_local, resolve))
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def make_client(
    url: str,
    username: str,
    password: str,
    *,
    allow_local: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    resolve: Resolver | None = None,
) -> Any:
    """A ``caldav.DAVClient`` whose every request goes through ``guarded_session`` (discovery; the
    sync's ``client.CalDAVClient`` and the writer use the same guarded session)."""
    import caldav  # noqa: PLC0415 - heavy; only the functions that talk CalDAV import it

    client = caldav.DAVClient(url=url, username=username, password=password, timeout=timeout)  # type: ignore[arg-type]
    client.session.close()
    client.session = guarded_session(allow_local=allow_local, resolve=resolve)
    return client


# ---- discovery -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DiscoveredCalendar:
    url: str  # absolute URL of the collection
    href: str  # its path on the server: the provider's id of the calendar
    name: str
    access_role: AccessRole
    time_zone: str | None


@dataclass(frozen=True, slots=True)
class Discovery:
    server_url: str
    external_id: str  # lowercased "username@serverhost" (C4)
    email: str
    principal_url: str
    own_addresses: tuple[str, ...]
    calendars: tuple[DiscoveredCalendar, ...]

    @property
    def first_writable(self) -> DiscoveredCalendar | None:
        return next((c for c in self.calendars if c.access_role in ("owner", "writer")), None)


_PROPFIND_CALENDARS: Final = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
    "<d:prop><d:resourcetype/><d:displayname/><d:current-user-privilege-set/>"
    "<c:calendar-timezone/><c:supported-calendar-component-set/></d:prop>"
    "</d:propfind>"
)
_DAV = "{DAV:}"
_CALDAV = "{urn:ietf:params:xml:ns:caldav}"
_TZID = re.compile(r"^TZID:(.+?)\s*$", re.MULTILINE)


def external_id_of(username: str, server_url: str) -> str:
    host = (urlsplit(server_url).hostname or "").rstrip(".")
    return f"{username.strip()}@{host}".lower()


def discover(
    server_url: str,
    username: str,
    password: str,
    *,
    allow_local: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    resolve: Resolver | None = None,
) -> Discovery:
    """Log in, find the principal, its own addresses and its event calendars.

    Errors (all ``InvalidInput``, 400): ``UrlRefused`` (X6), ``CredentialsRefused`` (401/403),
    ``ServerUnreachable`` (DNS, connection, TLS, timeout), ``NotCaldavServer`` (anything the server
    answers that is not CalDAV: garbage XML, HTML, no principal, no calendar home).
    """
    from caldav.lib import error as caldav_error  # noqa: PLC0415

    checked = check_url(server_url, allow_local=allow_local, resolve=resolve)
    client = make_client(
        checked.url, username, password, allow_local=allow_local, timeout=timeout, resolve=resolve
    )
    host = checked.host
    try:
        principal = client.principal()
        home_url = str(principal.calendar_home_set.url)
        addresses = _own_addresses(principal)
        calendars = _calendars(client, home_url)
        principal_url = str(principal.url)
    except CalsyncError:
        raise
    except caldav_error.AuthorizationError:
        raise CredentialsRefused(
            f"the server at {host} refused these credentials: check the user name and the "
            "app-specific password (iCloud: appleid.apple.com, Sign-In and Security, "
            "App-Specific Passwords)"
        ) from None
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        logger.info("caldav server unreachable", extra={"host": host, "error_type": type(exc).__name__})
        raise ServerUnreachable(
            f"calsync could not reach the CalDAV server at {host}: check the server URL, or try again later"
        ) from None
    except Exception as exc:  # anything else the server's answers made the client do: not CalDAV
        logger.info("caldav discovery failed", extra={"host": host, "error_type": type(exc).__name__})
        raise NotCaldavServer(
            f"the server at {host} did not answer like a CalDAV server: check the server URL"
        ) from None
    finally:
        client.close()
    email = next((a.removeprefix("mailto:") for a in addresses if a.startswith("mailto:")), None)
    return Discovery(
        server_url=checked.url,
        external_id=external_id_of(username, checked.url),
        email=email or username.strip(),
        principal_url=principal_url,
        own_addresses=addresses,
        calendars=calendars,
    )


def _own_addresses(principal: Any) -> tuple[str, ...]:
    from caldav.lib import error as caldav_error  # noqa: PLC0415

    try:
        raw = principal.calendar_user_address_set()
    except caldav_error.NotFoundError:
        return ()
    seen: dict[str, None] = {}
    for address in raw or ():
        if isinstance(address, str) and address.strip():
            seen[address.strip().lower()] = None
    return tuple(seen)


def _calendars(client: Any, home_url: str) -> tuple[DiscoveredCalendar, ...]:
    response = client.propfind(home_url, _PROPFIND_CALENDARS, depth=1)
    if response.status != 207:
        raise ValueError(f"PROPFIND answered {response.status}")
    home_path = urlsplit(home_url).path.rstrip("/")
    found: list[DiscoveredCalendar] = []
    for href, props in response.find_objects_and_props().items():
        url = urljoin(home_url, href)
        path = urlsplit(url).path
        if path.rstrip("/") == home_path:
            continue
        kind = props.get(f"{_DAV}resourcetype")
        if kind is None or kind.find(f"{_CALDAV}calendar") is None:
            continue
        components = props.get(f"{_CALDAV}supported-calendar-component-set")
        if (
            components is not None
            and len(components)
            and not any((c.get("name") or "").upper() == "VEVENT" for c in components)
        ):
            continue  # a task list or journal, not events
        name_el = props.get(f"{_DAV}displayname")
        name = (name_el.text or "").strip() if name_el is not None else ""
        found.append(
            DiscoveredCalendar(
                url=url,
                href=path,
                name=name[:200] or path.rstrip("/").rsplit("/", 1)[-1],
                access_role=access_role(props.get(f"{_DAV}current-user-privilege-set")),
                time_zone=_time_zone(props.get(f"{_CALDAV}calendar-timezone")),
            )
        )
    return tuple(sorted(found, key=lambda c: c.href))


def access_role(privilege_set: Any) -> AccessRole:
    """DAV current-user-privilege-set → the access role. Without the property (a server that does
    not report it), the calendar is in the account's own home: its owner."""
    if privilege_set is None:
        return "owner"
    granted = {
        str(p.tag).rsplit("}", 1)[-1]
        for privilege in privilege_set
        for p in privilege
        if isinstance(p.tag, str)
    }
    if "all" in granted or "write-acl" in granted:
        return "owner"
    if "write" in granted or "write-content" in granted:
        return "writer"
    if "read" in granted:
        return "reader"
    return "freeBusyReader"


def _time_zone(element: Any) -> str | None:
    """The IANA zone of a calendar-timezone VTIMEZONE, when it names one."""
    text = element.text if element is not None else None
    match = _TZID.search(text or "")
    if not match:
        return None
    try:
        return valid_zone(match.group(1).strip())
    except ValueError:
        return None
