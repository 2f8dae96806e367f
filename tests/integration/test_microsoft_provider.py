"""Microsoft as documented, not as our fake used to be (issue 11, the Microsoft points; each fact
is in docs/providers/microsoft.md, [M<n>]):

- point 3: only a revoked grant marks an account ``reauth_required``; the identity platform's
  outages (5xx, ``temporarily_unavailable``, a dropped connection, calsync's own app refused) are
  retried later [M1, M2];
- point 4: Graph's 429, 503 and 504, with and without Retry-After, are retried after Retry-After
  or the queue's backoff and never drop a job, also at connect time [M3, M4];
- point 7: ``me/calendars`` is read page after page [M6];
- point 8: a calendar shared with the mailbox is read with the ``.Shared`` scope and, Graph sending
  no notification for it, polled on a schedule [M9, M10].
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from calsync.domain.models import UTC
from calsync.store import keys
from calsync.store.accounts import AccountRepository
from calsync.store.repository import Repository
from calsync.sync.queue_worker import backoff
from calsync.sync.source import SourceAuthError, SourceUnavailable
from calsync_microsoft.auth import MicrosoftAppConfig, MicrosoftIdentity
from calsync_microsoft.graph import retry_after
from calsync_microsoft.registry import MicrosoftRegistry
from tests.support.apigw import snapshot
from tests.support.fake_graph import FakeGraph, LoopbackHttp, fake_graph, graph_event
from tests.support.microsoft import MsWorld, accounts_app, ms_connect_deps, ms_world

pytestmark = pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended")
NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
ANN, BOB = "ann@contoso.test", "bob@contoso.test"
TEAMS = {"onlineMeeting": {"joinUrl": "https://teams.microsoft.com/l/meetup-join/abc"}}


def at(hours: float) -> datetime:
    return NOW + timedelta(hours=hours)


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def fake() -> Iterator[FakeGraph]:
    with fake_graph(page_size=2) as server:
        server.add_mailbox(ANN, {"cal-work": ("Calendar", True)})
        server.add_mailbox(BOB, {"cal-bob": ("Calendar", True), "cal-team": ("Team", True)})
        yield server


@pytest.fixture
def world(table: Any, fake: FakeGraph, monkeypatch: pytest.MonkeyPatch) -> Iterator[MsWorld]:
    with ms_world(table, fake, NOW) as w:
        yield w


class Delays:
    """Records the delay the sync function sets on each failed record, and lets the record come
    back at once (the tests' clock does not wait for SQS)."""

    def __init__(self, world: MsWorld, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seen: list[int] = []
        real = world.sqs.change_message_visibility

        def spy(**kwargs: Any) -> Any:
            self.seen.append(int(kwargs["VisibilityTimeout"]))
            return real(**{**kwargs, "VisibilityTimeout": 0})

        monkeypatch.setattr(world.sqs, "change_message_visibility", spy)


def connected(world: MsWorld, upn: str = ANN) -> dict[str, Any]:
    got = world.connect("ann", upn)
    assert got.status == 201, got.body
    world.drain()
    return dict(got.json())


def account_status(world: MsWorld) -> str:
    return str(next(i for i in snapshot(world.table) if i.get("type") == "account")["status"])


# ---- point 3: the identity platform's outages are not revocations ---------------------------------
def _signed_in(fake: FakeGraph) -> tuple[MicrosoftIdentity, Any]:
    fake.token_lifetime = 60  # msal refreshes on every silent call
    identity = MicrosoftIdentity(
        MicrosoftAppConfig("calsync-client-id", "secret", fake.authority, LoopbackHttp(fake.port))
    )
    flow = identity.start("https://app.calsync.test/cb")
    cache, _ = identity.finish(flow, fake.sign_in(flow["auth_uri"], ANN))
    return identity, cache


def _error(error: str, code: int) -> dict[str, Any]:
    return {"error": error, "error_description": f"AADSTS{code}: ...", "error_codes": [code]}


@pytest.mark.parametrize(
    "failure",
    [
        (503, None),  # the token endpoint is down (msal raises for a 5xx)
        (500, {"error": "server_error"}),
        (0, None),  # the connection drops (a timeout or a reset reaches msal as requests' error)
        (400, _error("temporarily_unavailable", 90033)),  # documented: "retry the request"
        (401, _error("invalid_client", 7000222)),  # calsync's own client secret expired
        (400, {"unexpected": "body"}),  # no error named: never a reason to disconnect
    ],
    ids=["503", "500-server_error", "dropped", "temporarily_unavailable", "invalid_client", "unnamed"],
)
def test_identity_outages_are_transient(fake: FakeGraph, failure: tuple[int, Any]) -> None:
    # issue 11 point 3 [M2]: only a revoked grant asks the person to reconnect
    identity, cache = _signed_in(fake)
    fake.token_failures = [failure]
    with pytest.raises(SourceUnavailable):
        identity.access_token(cache)
    assert identity.access_token(cache)  # the outage is over: the same grant works


@pytest.mark.parametrize(
    "answer",
    [
        _error("invalid_grant", 700082),  # refresh token expired (inactivity)
        _error("invalid_grant", 50173),  # grant revoked (password change, admin revoked sessions)
        _error("invalid_grant", 65001),  # consent withdrawn
        _error("interaction_required", 50076),  # MFA now required: only the person can sign in
    ],
    ids=["700082", "50173", "65001", "interaction_required"],
)
def test_revoked_grants_need_reauth(fake: FakeGraph, answer: dict[str, Any]) -> None:
    # issue 11 point 3 [M1]
    identity, cache = _signed_in(fake)
    fake.token_failures = [(400, answer)]
    with pytest.raises(SourceAuthError):
        identity.access_token(cache)


def test_token_endpoint_outage_during_a_sync_is_retried_not_reauth(
    world: MsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # issue 11 point 3 (S7, S8, S13): the account stays active, the job comes back after the
    # backoff, and once the identity platform answers again the change is synced
    world.fake.token_lifetime = 60
    connected(world)
    delays = Delays(world, monkeypatch)
    world.fake.put_event(ANN, "cal-work", graph_event("During the outage", at(2), **TEAMS))
    world.fake.token_failures = [(503, None)]
    world.fake.deliver_notifications()
    answers = world.drain()
    assert answers[0]["batchItemFailures"] and delays.seen == [backoff(1)]
    assert account_status(world) == "active"
    assert world.listed("ann") == [("During the outage", iso(at(2)))]


# ---- point 4: Graph's throttling answers ----------------------------------------------------------
@pytest.mark.parametrize("status", [429, 503, 504])
@pytest.mark.parametrize("retry_after", [7, None], ids=["retry-after", "no-retry-after"])
def test_throttled_job_comes_back_after_retry_after_or_backoff(
    world: MsWorld, monkeypatch: pytest.MonkeyPatch, status: int, retry_after: int | None
) -> None:
    # issue 11 point 4 [M3, M4]: the record fails, comes back after Retry-After (or the backoff
    # when Graph sent none), and the change is synced: the job is never dropped
    connected(world)
    delays = Delays(world, monkeypatch)
    world.fake.put_event(ANN, "cal-work", graph_event("Throttled", at(2), **TEAMS))
    world.fake.throttle(1, retry_after=retry_after, status=status)
    world.fake.deliver_notifications()
    answers = world.drain()
    assert answers[0]["batchItemFailures"]
    assert delays.seen == [retry_after if retry_after is not None else backoff(1)]
    assert world.listed("ann") == [("Throttled", iso(at(2)))]
    assert account_status(world) == "active"


def test_graph_refusing_an_access_token_is_retried_not_reauth(
    world: MsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # issue 11 point 3 [M1]: a 401 from Graph (a token that expired during a long job) is not a
    # revoked grant: the job is retried with a fresh token and the account stays active
    connected(world)
    delays = Delays(world, monkeypatch)
    world.fake.put_event(ANN, "cal-work", graph_event("After a 401", at(2), **TEAMS))
    world.fake.throttle(1, retry_after=None, status=401)
    world.fake.deliver_notifications()
    answers = world.drain()
    assert answers[0]["batchItemFailures"] and delays.seen == [backoff(1)]
    assert account_status(world) == "active"
    assert world.listed("ann") == [("After a 401", iso(at(2)))]


def test_connect_while_graph_throttles_stores_nothing_and_can_be_retried(world: MsWorld) -> None:
    # issue 11 point 4 at connect time: me/calendars throttled → 503 with nothing stored (no
    # mailbox without calendars); the next sign-in connects
    world.fake.throttle(1, retry_after=None, status=503, only="GET /v1.0/me/calendars")
    got = world.connect("ann", ANN)
    assert got.status == 503, got.body
    assert got.json()["type"].endswith("/provider-unavailable")
    assert [i for i in snapshot(world.table) if i.get("type") == "account"] == []
    assert connected(world)["status"] == "active"


def test_subscription_throttled_at_connect_is_created_by_a_queued_job(world: MsWorld) -> None:
    # issue 11 point 4 at connect time: the subscription POST throttled → a recreate job, which
    # the sync worker runs (with the queue's retries): the mailbox gets its subscription
    world.fake.throttle(1, retry_after=None, status=429, only="POST /v1.0/subscriptions")
    got = world.connect("ann", ANN)
    assert got.status == 201, got.body
    assert world.fake.subscriptions_of(ANN) == []
    world.drain()
    [sub] = world.fake.subscriptions_of(ANN)
    assert MicrosoftRegistry(world.table).mailbox_subscription_id(got.json()["id"]) == sub.id


# ---- point 7: paging of me/calendars --------------------------------------------------------------
def test_every_calendar_is_listed_over_pages(world: MsWorld) -> None:
    # issue 11 point 7 [M6]: Graph pages me/calendars (the fake 2 per page): all 5 are stored
    names = {f"cal-{n}": (f"Calendar {n}", n == 0) for n in range(5)}
    world.fake.mailboxes[ANN].calendars.clear()
    for n, (cal_id, (name, can_edit)) in enumerate(names.items()):
        world.fake.mailboxes[ANN].calendars[cal_id] = {
            "name": name,
            "canEdit": can_edit,
            "default": n == 0,
            "shared_from": None,
        }
        world.fake.mailboxes[ANN].events[cal_id] = {}
    account = connected(world)
    listings = AccountRepository(world.table).list_calendars_of_account(account["id"])
    assert sorted(c.href for c in listings) == sorted(names)
    assert world.fake.calls_by_path.count("GET /v1.0/me/calendars") == 3  # pages of 2, 2 and 1


# ---- point 8: calendars shared with the mailbox ---------------------------------------------------
def test_shared_calendar_is_read_with_the_shared_scope_and_polled(world: MsWorld) -> None:
    # issue 11 point 8 [M9, M10]: Bob shares "Team" with Ann; Graph lists it in Ann's calendars
    # (owner Bob) and sends Ann's subscription no notification for it: calsync polls it
    shared = world.fake.share_calendar(BOB, "cal-team", ANN)
    world.fake.put_event(BOB, "cal-team", graph_event("Team offsite", at(3), **TEAMS))
    account = connected(world)
    listing = next(
        c for c in AccountRepository(world.table).list_calendars_of_account(account["id"]) if c.href == shared
    )
    owner = keys.user_pk("ann")
    Repository(world.table).subscribe(listing.calendar_id, owner, "conflict")
    assert list(MicrosoftRegistry(world.table).polled_mailboxes()) == [
        ("ann", account["id"], [listing.calendar_id])
    ]

    assert world.renew("poll")["queued"] == 1
    world.drain()
    stored = str(snapshot(world.table))
    assert "Team offsite" in stored  # read with Calendars.ReadWrite.Shared [M9]

    world.fake.put_event(BOB, "cal-team", graph_event("Team dinner", at(5), **TEAMS))
    assert world.fake.deliver_notifications() == []  # Bob has no subscription; Ann's hears nothing
    world.now += timedelta(minutes=5)  # the next poll run (one run sends a mailbox's job once)
    assert world.renew("poll")["queued"] == 1
    world.drain()
    assert "Team dinner" in str(snapshot(world.table))


def test_a_mailbox_without_shared_calendars_is_not_polled(world: MsWorld) -> None:
    connected(world)
    assert list(MicrosoftRegistry(world.table).polled_mailboxes()) == []
    assert world.renew("poll")["queued"] == 0


def test_an_account_connected_before_the_shared_scope_keeps_syncing(world: MsWorld) -> None:
    # [M11]: a refresh may ask only for consented scopes; an account signed in before calsync asked
    # for Calendars.ReadWrite.Shared keeps refreshing (not reauth_required), its own calendars
    # sync, and the shared calendar it cannot read yet is skipped (403) without failing the job

    world.fake.token_lifetime = 60  # every job refreshes
    shared = world.fake.share_calendar(BOB, "cal-team", ANN)
    older_app = {**world.deps, "scopes": ("Calendars.ReadWrite", "User.Read")}
    with accounts_app.wiring.use(ms_connect_deps(older_app, clock=lambda: world.now)):
        account = connected(world)
    listing = next(
        c for c in AccountRepository(world.table).list_calendars_of_account(account["id"]) if c.href == shared
    )
    Repository(world.table).subscribe(listing.calendar_id, keys.user_pk("ann"), "conflict")
    world.fake.put_event(BOB, "cal-team", graph_event("Team offsite", at(3), **TEAMS))
    world.fake.put_event(ANN, "cal-work", graph_event("Own meeting", at(2), **TEAMS))
    world.fake.deliver_notifications()
    assert world.renew("reconcile")["queued"] == 1  # every calendar of the mailbox
    answers = world.drain()
    assert all(not a["batchItemFailures"] for a in answers)
    assert account_status(world) == "active"
    assert world.listed("ann") == [("Own meeting", iso(at(2)))]
    assert "Team offsite" not in str(snapshot(world.table))


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7),
        ("0", 0),
        ("Fri, 20 Nov 2026 08:02:00 GMT", 120),  # an HTTP date: seconds from now
        ("Fri, 20 Nov 2026 07:00:00 GMT", 0),  # already past
        ("999999", 43200),  # at most SQS's longest visibility timeout
        ("soon", None),  # unreadable: the backoff
        ("", None),
    ],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(header: str, seconds: int | None) -> None:
    # issue 11 point 4 [M4]: RFC 9110 Retry-After, both forms
    assert retry_after({"Retry-After": header}, now=NOW) == seconds


def test_a_refused_subscription_does_not_stop_the_sync_and_is_tried_again(world: MsWorld) -> None:
    # [M12] Graph refuses a subscription whose notification URL fails the handshake (400): the
    # connect still answers 201 and queues a recreate job; that job syncs the calendars and
    # leaves the mailbox due for renewal, so the hourly schedule creates the subscription once
    # the webhook answers again (before: the mailbox was in no schedule, never subscribed)
    deliver = world.fake.transport

    def broken(url: str, query: dict[str, str], body: bytes | None) -> tuple[int, dict[str, str], str]:
        if "validationToken" in query:
            return 500, {}, ""
        return deliver(url, query, body)

    world.fake.transport = broken
    world.fake.put_event(ANN, "cal-work", graph_event("Before the webhook works", at(2), **TEAMS))
    account = connected(world)
    assert world.fake.subscriptions_of(ANN) == []
    assert world.listed("ann") == [("Before the webhook works", iso(at(2)))]
    world.fake.transport = deliver
    assert world.renew()["queued"] == 1
    world.drain()
    [sub] = world.fake.subscriptions_of(ANN)
    assert MicrosoftRegistry(world.table).mailbox_subscription_id(account["id"]) == sub.id
    assert world.renew()["queued"] == 0
