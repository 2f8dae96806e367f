"""Microsoft 365 / Outlook end to end (issue 6) through the handlers: real msal against the local
fake of Graph and the identity platform, the table fixture (moto and DynamoDB Local), moto KMS and SQS.

connect (authorize → sign-in → callback) → subscription (validation handshake) → change on the
fake → notification → webhook → queue → sync worker → meetings API."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from calsync.domain.models import UTC
from tests.support.apigw import snapshot
from tests.support.fake_graph import FakeGraph, fake_graph, graph_event
from tests.support.microsoft import MsWorld, ms_world

pytestmark = pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended")
NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
ANN = "ann@contoso.test"
TEAMS = {"onlineMeeting": {"joinUrl": "https://teams.microsoft.com/l/meetup-join/abc"}}


@pytest.fixture
def fake() -> Iterator[FakeGraph]:
    with fake_graph(page_size=2) as server:
        server.add_mailbox(ANN, {"cal-work": ("Calendar", True), "cal-shared": ("Team (read only)", False)})
        server.add_mailbox("bob@contoso.test")
        yield server


@pytest.fixture
def world(table: Any, fake: FakeGraph) -> Iterator[MsWorld]:
    with ms_world(table, fake, NOW) as w:
        yield w


def at(hours: float) -> datetime:
    return NOW + timedelta(hours=hours)


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def connected(world: MsWorld) -> dict[str, Any]:
    got = world.connect("ann", ANN)
    assert got.status == 201, got.body
    world.drain()
    return dict(got.json())


def test_connect_notification_queue_sync_meetings(world: MsWorld) -> None:
    """C1, S2: connect with msal (state + PKCE), one subscription per mailbox (validated by the
    webhook's handshake), a change → notification → queue → sync → listed; U4 and U5 honoured."""
    world.fake.put_event(ANN, "cal-work", graph_event("Standup", at(2), **TEAMS))
    account = connected(world)
    assert account["provider"] == "microsoft" and account["email"] == ANN and account["status"] == "active"
    subs = world.fake.subscriptions_of(ANN)
    assert len(subs) == 1 and subs[0].resource == "me/events" and subs[0].lifecycle_url.endswith("/lifecycle")
    assert world.listed("ann") == [("Standup", iso(at(2)))]

    world.fake.put_event(ANN, "cal-work", graph_event("Review", at(3), **TEAMS))
    # U4: an invitation the person did not organize is not updatable: left out
    world.fake.put_event(ANN, "cal-work", graph_event("Invited", at(4), isOrganizer=False, **TEAMS))
    # U5: an occurrence of a series without a link is left out
    world.fake.put_event(
        ANN,
        "cal-work",
        graph_event("Weekly", at(5), type="occurrence", seriesMasterId="S1", originalStart=iso(at(5))),
    )
    assert world.fake.deliver_notifications() == [202, 202, 202]
    world.drain()
    assert world.listed("ann") == [("Review", iso(at(3))), ("Standup", iso(at(2)))]


def test_delete_and_replayed_notifications_are_harmless(world: MsWorld) -> None:
    """S6: the same notification twice, and a deletion, leave the right state."""
    ev = world.fake.put_event(ANN, "cal-work", graph_event("Standup", at(2), **TEAMS))
    connected(world)
    world.fake.put_event(
        ANN,
        "cal-work",
        {**graph_event("Standup (moved)", at(6), **TEAMS), "id": ev["id"]},
    )
    outbox = list(world.fake.outbox)
    world.fake.outbox.extend(outbox)  # Graph may send the same change twice
    world.fake.deliver_notifications()
    world.drain()
    assert world.listed("ann") == [("Standup (moved)", iso(at(6)))]
    world.fake.delete_event(ANN, "cal-work", ev["id"])
    world.fake.deliver_notifications()
    world.drain()
    assert world.listed("ann") == []


def test_wrong_client_state_changes_nothing(world: MsWorld) -> None:
    """X2: a notification with a wrong clientState is dropped: nothing queued, nothing written."""
    connected(world)
    sub = world.fake.subscriptions_of(ANN)[0]
    before = snapshot(world.table)
    sub.client_state = "forged-" + sub.client_state[:10]
    world.fake.put_event(ANN, "cal-work", graph_event("Forged", at(2), **TEAMS))
    assert world.fake.deliver_notifications() == [403]
    assert world.queued() == 0
    assert snapshot(world.table) == before


def test_subscription_removed_and_missed_resync_with_nothing_lost(world: MsWorld) -> None:
    """S2: subscriptionRemoved → a new subscription and a full resync; missed → a full resync."""
    connected(world)
    old = world.fake.subscriptions_of(ANN)[0]
    world.fake.outbox.clear()
    world.fake.put_event(ANN, "cal-work", graph_event("While removed", at(2), **TEAMS))
    world.fake.outbox.clear()  # Graph lost these
    assert world.fake.lifecycle(old.id, "subscriptionRemoved") == 202
    world.drain()
    new = world.fake.subscriptions_of(ANN)
    assert len(new) == 1 and new[0].id != old.id
    assert world.listed("ann") == [("While removed", iso(at(2)))]

    world.fake.put_event(ANN, "cal-work", graph_event("While missed", at(3), **TEAMS))
    world.fake.outbox.clear()
    assert world.fake.lifecycle(new[0].id, "missed") == 202
    world.drain()
    assert world.listed("ann") == [("While missed", iso(at(3))), ("While removed", iso(at(2)))]


def test_subscription_near_expiry_is_renewed(world: MsWorld) -> None:
    """S4: the schedule renews at half-life at the latest; reauthorizationRequired renews too."""
    connected(world)
    sub = world.fake.subscriptions_of(ANN)[0]
    first_expiry = sub.expires
    assert world.renew()["queued"] == 0  # fresh: not due
    world.now = NOW + timedelta(minutes=4230 // 2 + 1)
    assert world.renew()["queued"] == 1
    world.drain()
    assert world.fake.subscriptions_of(ANN)[0].id == sub.id
    assert world.fake.subscriptions_of(ANN)[0].expires > first_expiry
    assert world.renew()["queued"] == 0
    assert world.fake.lifecycle(sub.id, "reauthorizationRequired") == 202
    assert world.queued() == 1
    world.drain()


def test_second_person_same_mailbox_gets_409_with_explanation(world: MsWorld) -> None:
    """C4: a mailbox connected by one person cannot be connected by another."""
    connected(world)
    got = world.connect("carl", ANN)
    assert got.status == 409
    problem = got.json()
    assert problem["type"].endswith("/account-owned-by-another-user")
    assert "share" in problem["detail"]


def test_throttled_sync_is_retried_after_retry_after(world: MsWorld) -> None:
    """S8: 429 + Retry-After → the record fails and comes back after Retry-After; nothing lost."""
    connected(world)
    world.fake.put_event(ANN, "cal-work", graph_event("Later", at(2), **TEAMS))
    world.fake.throttle(1, retry_after=1)
    world.fake.deliver_notifications()
    answers = world.drain()
    assert answers[0]["batchItemFailures"]
    assert world.queued() == 1  # invisible for Retry-After seconds, then handed out again
    time.sleep(1.2)
    world.drain()
    assert world.listed("ann") == [("Later", iso(at(2)))]


def test_refused_refresh_marks_reauth_required(world: MsWorld) -> None:
    """S7: a refresh refused with invalid_grant / AADSTS700082 → reauth_required, then skipped."""
    world.fake.token_lifetime = 60  # msal refreshes on every use
    connected(world)
    world.fake.fail_refresh = True
    world.fake.put_event(ANN, "cal-work", graph_event("After expiry", at(2), **TEAMS))
    world.fake.deliver_notifications()
    world.drain()
    accounts = [i for i in snapshot(world.table) if i.get("type") == "account"]
    assert accounts[0]["status"] == "reauth_required"
    calls = world.fake.calls
    world.fake.put_event(ANN, "cal-work", graph_event("Skipped", at(3), **TEAMS))
    world.fake.deliver_notifications()
    world.drain()
    assert world.fake.calls == calls  # no Graph request for an account that must reconnect


def test_token_cache_written_back_only_when_changed(world: MsWorld) -> None:
    """S7: the sealed msal cache is rewritten after a refresh, and not after a sync without one."""
    connected(world)

    def sealed() -> Any:
        return next(i for i in snapshot(world.table) if i.get("type") == "account")["credentials"]

    first = sealed()
    assert "refresh_token" not in str(first) and first["alg"] == "AES-256-GCM"
    world.fake.put_event(ANN, "cal-work", graph_event("One", at(2), **TEAMS))
    world.fake.deliver_notifications()
    world.drain()
    assert sealed() == first  # cached access token used: nothing written back


def test_refreshed_token_cache_is_sealed_and_written_back(world: MsWorld) -> None:
    """S7: after msal refreshed (and rotated the refresh token) the cache is sealed again."""
    world.fake.token_lifetime = 60  # every use refreshes
    connected(world)
    before = next(i for i in snapshot(world.table) if i.get("type") == "account")["credentials"]
    refreshes = world.fake.token_requests
    world.fake.put_event(ANN, "cal-work", graph_event("One", at(2), **TEAMS))
    world.fake.deliver_notifications()
    world.drain()
    assert world.fake.token_requests > refreshes
    after = next(i for i in snapshot(world.table) if i.get("type") == "account")["credentials"]
    assert after != before
    assert world.listed("ann") == [("One", iso(at(2)))]


class _KmsAsMicrosoftAccountsRole:
    """moto's KMS as template.yaml lets MicrosoftAccountsFunction use it (issue 13 point 6): data
    keys for any context it may seal, Decrypt only under a sign-in flow's context (oauthState)."""

    def __init__(self, kms: Any) -> None:
        self._kms = kms
        self.refused: list[dict[str, str]] = []

    def generate_data_key(self, **kwargs: Any) -> Any:
        return self._kms.generate_data_key(**kwargs)

    def decrypt(self, **kwargs: Any) -> Any:
        context = dict(kwargs.get("EncryptionContext") or {})
        if set(context) != {"oauthState"}:
            self.refused.append(context)
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "denied"}}, "Decrypt")
        return self._kms.decrypt(**kwargs)


def test_connect_opens_only_its_sign_in_flow(world: MsWorld) -> None:
    """The callback creates the subscription with the msal cache it holds: its role opens sign-in
    flows only, never an account's credentials (issue 13 point 6)."""
    from calsync_microsoft.provider import connect_deps
    from functions.microsoft_accounts import app as accounts_app

    kms = _KmsAsMicrosoftAccountsRole(world.kms)
    with accounts_app.wiring.use(connect_deps({**world.deps, "kms": kms}, clock=lambda: world.now)):
        got = world.connect("ann", ANN)
    assert got.status == 201, got.body
    assert kms.refused == []
    assert len(world.fake.subscriptions_of(ANN)) == 1  # created in the callback, not left to a job
