"""Microsoft 365 end to end IN THE LOCAL STACK (issue 6): ``python -m local`` as a subprocess on free
ports, its ``MicrosoftAuthority`` and ``GraphEndpoint`` pointed at the fake Graph and identity
platform (tests/support/fake_graph.py) through ``CALSYNC_PARAMETERS``, the app's credentials set
through ``CALSYNC_SECRETS``, its ``MicrosoftWebhookUrl`` at its own API. msal insists on an https
authority, so here the fake answers over TLS with a throwaway certificate for 127.0.0.1 that the
stack trusts through ``REQUESTS_CA_BUNDLE`` (msal and the Graph client both use requests); nothing
leaves the machine. Over real HTTP(S):

connect (authorize -> sign-in at the fake -> callback) -> subscription (Graph's validation handshake
against the stack's webhook) -> first sync; a change -> Graph POSTs a notification -> queue -> sync ->
meetings API; a wrong clientState -> refused, nothing changes; expired delta links (410) -> full
resync, nothing lost or duplicated; a subscription near expiry -> renewed by the schedule; SIGINT ->
every port closed. Rules: C1, S2, S4, S6, U8, X2, X3.

Schedules never run by themselves here (``CALSYNC_SCHEDULE_SPEEDUP=0``): the renewal schedule runs
only when a test invokes it, so what a step shows is caused by that step, never by a schedule that
happened to fire in a window of wall time; waits are causal ("every job on the sync queues has
run", ``Stack.idle``).
"""

from __future__ import annotations

import ipaddress
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.fake_graph import FakeGraph, graph_event
from tests.support.local_stack import Stack, running, stack_ports, start_stack, table_of, until
from tests.support.local_stack import alive as _alive
from tests.support.local_stack import port_open as _port_open

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended"),
]

UPN = "mia@contoso.test"
CAL = "cal-work"
USER = "mia"
TEAMS: dict[str, Any] = {"onlineMeeting": {"joinUrl": "https://teams.microsoft.com/l/meetup-join/mia"}}


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A throwaway certificate (and key) for IP 127.0.0.1, valid for an hour."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "fake-graph.pem", directory / "fake-graph.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


class TlsGraph(FakeGraph):
    """The fake Graph and identity platform over https on its loopback port, noting every Graph
    request with its query ("METHOD path?query")."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.requests: list[str] = []

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], Any]:
        if raw_path.startswith("/v1.0/"):
            with self._lock:
                self.requests.append(f"{method} {raw_path}")
        return super().handle(method, raw_path, headers, body)

    def start_tls(self, cert: Path, key: Path) -> None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.start()
        server = self._server
        assert server is not None
        plain = server.get_request

        def get_request() -> tuple[Any, Any]:
            sock, addr = plain()
            sock.settimeout(10)
            return ctx.wrap_socket(sock, server_side=True), addr

        server.get_request = get_request  # type: ignore[method-assign]

    @property
    def graph_endpoint(self) -> str:
        return f"https://127.0.0.1:{self.port}/v1.0"


@dataclass
class World:
    stack: Stack
    fake: TlsGraph
    token: str
    webhook: str
    now: datetime
    account_id: str = ""

    def meetings(self) -> dict[str, Any]:
        got = requests.get(
            f"{self.stack.api}/v1/me/meetings?explain=true",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10,
        )
        assert got.status_code == 200, got.text
        body: dict[str, Any] = got.json()
        return body

    def ours(self, meetings: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [m for m in meetings if m["provider"] == "microsoft" and m["accountId"] == self.account_id]

    def titles(self) -> list[str]:
        return sorted(m["title"] for m in self.ours(self.meetings()["meetings"]))

    def wait_titles(self, expected: list[str], timeout: float = 60.0) -> float:
        started = time.monotonic()
        until(f"the meetings API to list {expected}", lambda: self.titles() == sorted(expected), timeout)
        return time.monotonic() - started

    def tick(self) -> None:
        """One run of the renewal schedule, and every sync job it started, to their end."""
        self.stack.invoke("MicrosoftRenewFunction", "microsoft_renew-schedule.json")  # the hourly renewal
        self.stack.idle()

    def sync_runs(self, since: int) -> int:
        """Sync jobs that asked Graph for the calendar's changes since request ``since``: each job
        starts with one delta request that is not a next page ($skiptoken)."""
        with self.fake._lock:
            made = self.fake.requests[since:]
        return sum(1 for r in made if "calendarView/delta" in r and "skiptoken" not in r)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("microsoft-stack")
    cert, key = _self_signed(tmp)
    fake = TlsGraph(page_size=2)
    fake.start_tls(cert, key)
    fake.add_mailbox(UPN, {CAL: ("Calendar", True)})
    now = datetime.now(UTC).replace(microsecond=0)
    for i, title in enumerate(("Standup", "Planning", "Retro"), start=1):  # 3 events: 2 pages
        fake.put_event(
            UPN, CAL, {**graph_event(title, now + timedelta(hours=i), **TEAMS), "id": f"AAMk-ev{i}"}
        )
    try:
        ports = stack_ports()
        api = f"http://127.0.0.1:{ports['CALSYNC_API_PORT']}"
        stack = start_stack(
            tmp,
            ports,
            parameters={
                "MicrosoftAuthority": fake.authority,
                "GraphEndpoint": fake.graph_endpoint,
                "MicrosoftWebhookUrl": f"{api}/v1/webhooks/microsoft",
            },
            secrets={
                "MicrosoftOAuthSecret": {"client_id": "local-app-id", "client_secret": "local-app-secret"}
            },
            # schedules run when a test invokes them
            env={"CALSYNC_SCHEDULE_SPEEDUP": "0", "REQUESTS_CA_BUNDLE": str(cert)},
        )
        print(f"\nlocal stack: API answered {stack.ready_s:.1f} s after start")
        with running(stack):
            token = stack.token("--user", USER, "--location", "hq")
            yield World(stack, fake, token, f"{api}/v1/webhooks/microsoft", now)
    finally:
        fake.stop()


def test_connect_against_the_fake_and_first_sync(world: World) -> None:  # rules C1, S2, X3
    auth = {"Authorization": f"Bearer {world.token}"}
    started = requests.post(
        f"{world.stack.api}/v1/me/accounts/microsoft/authorize",
        json={"locationId": "hq", "redirectUri": "http://127.0.0.1:9/oauth/microsoft"},
        headers=auth,
        timeout=30,
    )
    assert started.status_code == 200, started.text
    url = started.json()["authorizationUrl"]
    assert url.startswith(world.fake.authority)  # MicrosoftAuthority from CALSYNC_PARAMETERS
    params = world.fake.sign_in(url, UPN)  # the person signs in (the fake checks PKCE S256)
    done = requests.get(
        f"{world.stack.api}/v1/oauth/microsoft/callback", params=params, headers=auth, timeout=30
    )
    assert done.status_code == 201, done.text
    assert done.json()["provider"] == "microsoft" and done.json()["email"] == UPN
    world.account_id = done.json()["id"]
    took = world.wait_titles(["Planning", "Retro", "Standup"])
    print(f"connect -> first sync -> meetings API: {took:.1f} s")
    # one subscription for the mailbox, validated against the stack's own webhook (handshake)
    subs = until("a subscription", lambda: world.fake.subscriptions_of(UPN))
    assert [(s.notification_url, s.lifecycle_url) for s in subs] == [
        (world.webhook, world.webhook + "/lifecycle")
    ]
    items = table_of(world.stack).scan()["Items"]
    assert not [i for i in items if "local-app-secret" in str(i)]


def test_notification_queue_sync_meetings(world: World) -> None:  # rules S2, U7
    world.fake.outbox.clear()
    world.fake.put_event(
        UPN, CAL, {**graph_event("Review", world.now + timedelta(hours=4), **TEAMS), "id": "AAMk-ev4"}
    )
    moved = graph_event("Planning (moved)", world.now + timedelta(hours=5), **TEAMS)
    world.fake.put_event(UPN, CAL, {**moved, "id": "AAMk-ev2"})
    world.fake.delete_event(UPN, CAL, "AAMk-ev3")
    started = time.monotonic()
    statuses = world.fake.deliver_notifications()
    assert statuses and all(s == 202 for s in statuses), statuses
    world.wait_titles(["Planning (moved)", "Review", "Standup"])
    print(f"notification -> queue -> sync -> meetings API: {time.monotonic() - started:.1f} s")
    planning = next(m for m in world.meetings()["meetings"] if m["title"] == "Planning (moved)")
    assert datetime.fromisoformat(planning["start"]) == world.now + timedelta(hours=5)


def test_wrong_client_state_changes_nothing(world: World) -> None:  # rule X2
    world.stack.idle()  # no work left from earlier steps; no schedule runs by itself
    (sub,) = world.fake.subscriptions_of(UPN)
    real = sub.client_state
    since = len(world.fake.requests)
    sub.client_state = "forged-" + real[:8]
    try:
        world.fake.put_event(
            UPN,
            CAL,
            {**graph_event("Secret plan", world.now + timedelta(hours=6), **TEAMS), "id": "AAMk-ev5"},
        )
        statuses = world.fake.deliver_notifications()
        assert statuses and all(s >= 400 for s in statuses), statuses
    finally:
        sub.client_state = real
    # The webhook enqueues before it answers, and the queue is FIFO per mailbox: a job that a forged
    # notification had enqueued would run before the genuine one below, as a delta request of its
    # own. Exactly one sync asks Graph: the genuine notification's.
    world.fake.put_event(
        UPN, CAL, {**graph_event("Secret plan", world.now + timedelta(hours=6), **TEAMS), "id": "AAMk-ev5"}
    )
    assert all(s == 202 for s in world.fake.deliver_notifications())
    world.wait_titles(["Planning (moved)", "Review", "Secret plan", "Standup"])
    world.stack.idle()
    assert world.sync_runs(since) == 1, world.fake.requests[since:]


def test_expired_delta_leads_to_a_full_resync_nothing_lost_or_duplicated(world: World) -> None:  # S2, U8
    expected = ["Late", "Planning (moved)", "Review", "Secret plan", "Standup"]
    world.fake.expire_deltas()
    world.fake.put_event(
        UPN, CAL, {**graph_event("Late", world.now + timedelta(hours=7), **TEAMS), "id": "AAMk-ev6"}
    )
    assert all(s == 202 for s in world.fake.deliver_notifications())
    world.wait_titles(expected)
    body = world.meetings()
    listed = world.ours(body["meetings"])
    assert len({m["id"] for m in listed}) == len(listed) == len(expected)
    assert not [e for e in body["excluded"] if "U8" in e["rules"]]
    items = table_of(world.stack).scan()["Items"]
    stored = [i for i in items if i.get("type") == "occurrence" and i.get("accountId") == world.account_id]
    assert sorted(str(i["title"]) for i in stored) == expected, stored


def test_subscription_near_expiry_is_renewed_by_the_schedule(world: World) -> None:  # rule S4
    from calsync_microsoft.registry import MicrosoftRegistry

    (sub,) = world.fake.subscriptions_of(UPN)
    before = sub.expires
    registry = MicrosoftRegistry(table_of(world.stack))
    record = registry.get_subscription(sub.id)
    assert record is not None
    # as if almost the whole lifetime had passed: it expires in a minute
    registry.set_expiry(record, datetime.now(UTC) + timedelta(minutes=1))
    world.tick()  # the schedule's next run
    assert world.fake.subscriptions[sub.id].expires != before
    renewed = world.fake.subscriptions_of(UPN)
    assert len(renewed) == 1
    expires = datetime.fromisoformat(renewed[0].expires[:19]).replace(tzinfo=UTC)  # Graph: …T…Z
    assert expires - datetime.now(UTC) > timedelta(minutes=30)
    # and it still delivers
    world.fake.put_event(
        UPN,
        CAL,
        {**graph_event("Standup (renewed)", world.now + timedelta(hours=1), **TEAMS), "id": "AAMk-ev1"},
    )
    assert all(s == 202 for s in world.fake.deliver_notifications())
    world.wait_titles(["Late", "Planning (moved)", "Review", "Secret plan", "Standup (renewed)"])


def test_stop_leaves_no_port_open(world: World) -> None:
    children = world.stack.info()["children"]
    assert world.stack.stop() == 0
    assert "Traceback" not in world.stack.err.read_text()
    assert [p for p in world.stack.ports.values() if _port_open(p)] == []
    assert [pid for pid in children if _alive(pid)] == []
    world.fake.stop()
    assert not _port_open(world.fake.port)
