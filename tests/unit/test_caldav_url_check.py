"""Rule X6: the CalDAV server URL a person gives is checked before calsync fetches it, and every
connection (redirects, other hosts named by the server, a DNS answer that changes) is checked again.
No network: names resolve through fakes; the redirect test uses a server on 127.0.0.1."""

from __future__ import annotations

import http.server
import ipaddress
import threading
from collections.abc import Iterator, Sequence

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from calsync_caldav.connect import (
    ServerUnreachable,
    UrlRefused,
    access_role,
    blocked_reason,
    check_url,
    guarded_session,
)

BLOCKED_NETWORKS = [
    "127.0.0.0/8",  # loopback
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",  # private
    "169.254.0.0/16",  # link-local, incl. the metadata service 169.254.169.254
    "100.64.0.0/10",  # shared address space (carrier NAT; Alibaba's metadata 100.100.100.200)
    "0.0.0.0/8",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::1/128",
    "fc00::/7",  # unique local (AWS's IPv6 metadata fd00:ec2::254)
    "fe80::/10",  # link-local
    "ff00::/8",
]
PUBLIC = ["17.253.144.10", "93.184.216.34", "2606:4700:4700::1111", "1.1.1.1"]


def fake_dns(mapping: dict[str, Sequence[str]]):  # type: ignore[no-untyped-def]
    def resolve(host: str, port: int) -> Sequence[str]:
        if host in mapping:
            return mapping[host]
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            raise OSError("name not known") from None

    return resolve


def addresses_in(network: str) -> st.SearchStrategy[str]:
    net = ipaddress.ip_network(network)
    return st.integers(0, net.num_addresses - 1).map(lambda i: str(net[i]))


blocked_addresses = st.sampled_from(BLOCKED_NETWORKS).flatmap(addresses_in)
hostnames = st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,20}){1,3}", fullmatch=True)


@given(address=blocked_addresses)
def test_blocked_addresses_are_refused_as_literals(address: str) -> None:
    # rule X6: loopback, private, link-local, metadata, reserved: never fetched
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(UrlRefused):
        check_url(f"https://{host}/dav/", resolve=fake_dns({}))


@given(host=hostnames, address=blocked_addresses, public=st.sampled_from(PUBLIC))
def test_names_resolving_to_a_blocked_address_are_refused(host: str, address: str, public: str) -> None:
    # rule X6, after DNS resolution: one blocked address among public ones is enough to refuse
    with pytest.raises(UrlRefused):
        check_url(f"https://{host}/", resolve=fake_dns({host: [public, address]}))


@given(host=hostnames, public=st.sampled_from(PUBLIC))
def test_public_https_servers_are_allowed(host: str, public: str) -> None:
    checked = check_url(f"https://{host.upper()}:8443/dav", resolve=fake_dns({host: [public]}))
    assert checked.url == f"https://{host}:8443/dav"
    assert checked.addresses == (public,)


@given(
    host=hostnames, public=st.sampled_from(PUBLIC), scheme=st.sampled_from(["http", "ftp", "file", "gopher"])
)
def test_only_https(host: str, public: str, scheme: str) -> None:
    # rule X6: https only (a deployed stack)
    with pytest.raises(UrlRefused):
        check_url(f"{scheme}://{host}/", resolve=fake_dns({host: [public]}))


@pytest.mark.parametrize(
    "address",
    [
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::a00:1",
        "2002:a00:1::1",
        "2001:0:4136:e378:8000:63bf:f5ff:fffe",
    ],
)
def test_ipv4_hidden_in_ipv6_is_unwrapped(address: str) -> None:
    # rule X6: IPv4-mapped, NAT64, 6to4 and Teredo addresses are judged by the IPv4 inside
    assert blocked_reason(address) is not None


def test_metadata_addresses_are_named() -> None:
    assert blocked_reason("169.254.169.254") == "a cloud metadata address"
    assert blocked_reason("fd00:ec2::254") == "a cloud metadata address"


def test_the_local_stack_allows_loopback_and_http_only() -> None:
    # rule X6: "except in the local stack, which allows loopback"
    assert check_url("http://127.0.0.1:5232/", allow_local=True).addresses == ("127.0.0.1",)
    assert check_url("https://[::1]/", allow_local=True).host == "::1"
    for url in ("https://10.0.0.1/", "https://169.254.169.254/", "http://192.168.1.1/"):
        with pytest.raises(UrlRefused):
            check_url(url, allow_local=True)


@pytest.mark.parametrize(
    "url",
    [
        "https://user:pw@caldav.example.com/",
        "https:///path",
        "https://exa mple.com/",
        "https://x.example:99999/",
        "",
    ],
)
def test_malformed_urls(url: str) -> None:
    with pytest.raises(UrlRefused):
        check_url(url, resolve=fake_dns({"caldav.example.com": ["93.184.216.34"]}))


def test_unknown_names_are_unreachable() -> None:
    with pytest.raises(ServerUnreachable):
        check_url("https://nowhere.example/", resolve=fake_dns({}))


# ---- every connection is checked again ---------------------------------------------------------
class _Redirect(http.server.BaseHTTPRequestHandler):
    location = ""

    def do_GET(self) -> None:
        self.send_response(302)
        self.send_header("Location", self.location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def redirector() -> Iterator[tuple[str, type[_Redirect]]]:
    handler = type("Redirect", (_Redirect,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "target", ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/", "https://[fd00:ec2::254]/"]
)
def test_a_redirect_to_a_blocked_address_is_refused(
    redirector: tuple[str, type[_Redirect]], target: str
) -> None:
    # rule X6, "and again on redirects" (loopback is allowed here only to reach the test server)
    url, handler = redirector
    handler.location = target
    with pytest.raises(UrlRefused):
        guarded_session(allow_local=True).get(url, timeout=5)


def test_a_redirect_to_http_is_refused_in_a_deployed_stack() -> None:
    with pytest.raises(UrlRefused, match="https only"):
        guarded_session(resolve=fake_dns({"caldav.example.com": ["93.184.216.34"]})).get(
            "http://caldav.example.com/", timeout=5
        )


def test_dns_rebinding_is_refused_at_connection_time() -> None:
    # rule X6: the name is resolved again when connecting, and that answer is checked too
    answers = iter([["93.184.216.34"], ["169.254.169.254"]])

    def rebinding(host: str, port: int) -> Sequence[str]:
        return next(answers)

    assert check_url("https://rebind.example/", resolve=rebinding)
    with pytest.raises(UrlRefused):
        guarded_session(resolve=rebinding).get("https://rebind.example/", timeout=5)


def test_the_environments_proxy_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://10.0.0.1:3128")
    session = guarded_session()
    assert session.trust_env is False
    assert isinstance(session, requests.Session)


def test_every_checked_address_is_tried_in_order(
    redirector: tuple[str, type[_Redirect]],
) -> None:
    # a name with several (checked) addresses, the first one unreachable: the next one is used, as
    # urllib3 does on its own (the sync path used to; X6 must not make it more fragile)
    url, handler = redirector
    handler.location = "/elsewhere"
    port = url.rsplit(":", 1)[1].strip("/")
    dns = fake_dns({"dav.test": ["127.0.0.9", "127.0.0.1"]})  # nothing listens on 127.0.0.9
    answer = guarded_session(allow_local=True, resolve=dns).get(
        f"http://dav.test:{port}/", timeout=5, allow_redirects=False
    )
    assert answer.status_code == 302


# ---- access roles from current-user-privilege-set -----------------------------------------------
def _privileges(*names: str) -> etree._Element:
    xml = "".join(f"<d:privilege><d:{n}/></d:privilege>" for n in names)
    return etree.fromstring(
        f'<d:current-user-privilege-set xmlns:d="DAV:">{xml}</d:current-user-privilege-set>'
    )


@pytest.mark.parametrize(
    ("granted", "role"),
    [
        (("all",), "owner"),
        (("read", "write", "write-acl"), "owner"),
        (("read", "write"), "writer"),
        (("read", "write-content"), "writer"),
        (("read",), "reader"),
        (("read-free-busy",), "freeBusyReader"),
    ],
)
def test_access_roles(granted: tuple[str, ...], role: str) -> None:
    # rule U4 depends on it: write → writer/owner, read-only → reader
    assert access_role(_privileges(*granted)) == role
    assert access_role(None) == "owner"
