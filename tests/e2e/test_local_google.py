"""Google end to end IN THE LOCAL STACK (issue 5, "Must show"): ``python -m local`` as a subprocess
on free ports, its Google endpoints pointed at the fake Google server (tests/support/fake_google.py)
through ``CALSYNC_PARAMETERS``, the OAuth client's secret set through ``CALSYNC_SECRETS``, and its
``GoogleWebhookUrl`` at its own API. Everything over real HTTP on 127.0.0.1:

connect (authorize -> the fake's consent -> callback) -> first sync; a change on the fake -> the fake
POSTs a notification to the stack's webhook -> Google sync queue -> sync function -> meetings API; a
forged notification -> 401, nothing enqueued; an expired sync token (410) -> full resync, nothing
lost or duplicated; a channel near expiry -> renewed by the schedule (new watch, old one stopped);
SIGINT -> every port closed. Real time, events relative to now. Rules: C1, S1, S4, S5, S6, U7, U8, X2,
X3.

Schedules never run by themselves here (``CALSYNC_SCHEDULE_SPEEDUP=0``): the renewal schedule (which
also enqueues a reconcile sync of every Google calendar) runs only when a test invokes it, so what
a step shows is caused by that step (a push, a forged notification, a schedule run), never by a
schedule that happened to fire in a window of wall time. Waits are causal too: "every job on the
sync queues has run" (``Stack.idle``), not "the fake has been quiet for a while".
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from tests.support.fake_google import FakeGoogle
from tests.support.local_stack import Stack, running, stack_ports, start_stack, table_of, until
from tests.support.local_stack import alive as _alive
from tests.support.local_stack import port_open as _port_open

pytestmark = pytest.mark.e2e

EMAIL = "gina@example.com"
CAL = EMAIL  # the primary calendar's id at Google
USER = "gina"


class RecordingGoogle(FakeGoogle):
    """The fake, also noting the status of every API answer ("METHOD path?query" -> status)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.answers: list[tuple[str, int]] = []

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, Any] | tuple[int, Any, dict[str, str]]:
        answer = super().handle(method, raw_path, headers, raw)
        if not raw_path.startswith("/token"):
            with self._lock:
                self.answers.append((f"{method} {raw_path}", answer[0]))
        return answer

    def lists(self) -> list[tuple[str, int]]:
        return self.lists_since(0)

    def lists_since(self, since: int) -> list[tuple[str, int]]:
        with self._lock:
            answers = self.answers[since:]
        return [(p, s) for p, s in answers if p.startswith("GET /calendar/v3/calendars/")]

    def watches(self) -> int:
        return sum(1 for p, s in self.answers if p.split("?")[0].endswith("/events/watch") and s < 300)

    def stops(self) -> int:
        return sum(1 for p, s in self.answers if p.startswith("POST /calendar/v3/channels/stop") and s < 300)


def _ev(event_id: str, title: str, start: datetime, minutes: int = 30) -> dict[str, Any]:
    return {
        "id": event_id,
        "summary": title,
        "start": {"dateTime": start.isoformat(), "timeZone": "Europe/Berlin"},
        "end": {"dateTime": (start + timedelta(minutes=minutes)).isoformat(), "timeZone": "Europe/Berlin"},
        "hangoutLink": f"https://meet.google.com/{event_id}-abc",
    }


@dataclass
class World:
    stack: Stack
    fake: RecordingGoogle
    token: str
    webhook: str
    now: datetime  # when the events were made (they are relative to it)
    account_id: str = ""  # set by the connect test

    # ---- the stack, over HTTP
    def meetings(self) -> dict[str, Any]:
        got = requests.get(
            f"{self.stack.api}/v1/me/meetings?explain=true",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10,
        )
        assert got.status_code == 200, got.text
        body: dict[str, Any] = got.json()
        return body

    def titles(self) -> list[str]:
        return sorted(m["title"] for m in self.ours(self.meetings()["meetings"]))

    def ours(self, meetings: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [m for m in meetings if m["provider"] == "google" and m["accountId"] == self.account_id]

    def wait_titles(self, expected: list[str], timeout: float = 60.0) -> float:
        started = time.monotonic()
        until(f"the meetings API to list {expected}", lambda: self.titles() == sorted(expected), timeout)
        return time.monotonic() - started

    # ---- the schedule (run only when a test says so)
    def tick(self) -> None:
        """One run of the renewal schedule, and every sync job it started, to their end."""
        self.stack.invoke("GoogleRenewFunction", "google_renew-schedule.json")
        self.stack.idle()

    def sync_runs(self, since: int) -> int:
        """Sync jobs that listed the calendar's events since answer ``since``: each job starts
        with one listing without a page token (then follows pages)."""
        return sum(1 for p, _ in self.fake.lists_since(since) if "pageToken=" not in p)

    # ---- the store (to age a channel, as if days had passed)
    def table(self) -> Any:
        return table_of(self.stack)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    # delivers notifications by POSTing to the channel's address; the local stack has no TLS, so
    # this fake (only) accepts an http:// webhook address, which Google refuses
    fake = RecordingGoogle(page_size=2, allow_http_address=True)
    fake.start()
    fake.add_calendar(EMAIL, CAL, "Work", "owner", primary=True)
    now = datetime.now(UTC).replace(microsecond=0)
    for i, title in enumerate(("Standup", "Planning", "Retro"), start=1):  # 3 events: 2 pages
        fake.put_event(CAL, _ev(f"ev{i}", title, now + timedelta(hours=i)), deliver=False)
    try:
        ports = stack_ports()
        api = f"http://127.0.0.1:{ports['CALSYNC_API_PORT']}"
        stack = start_stack(
            tmp_path_factory.mktemp("google-stack"),
            ports,
            parameters={
                "GoogleAuthUri": fake.auth_uri,
                "GoogleTokenUri": fake.token_uri,
                "GoogleApiEndpoint": fake.api_endpoint,
                "GoogleWebhookUrl": f"{api}/v1/webhooks/google",
            },
            secrets={"GoogleOAuthSecret": {"client_id": fake.client_id, "client_secret": fake.client_secret}},
            env={"CALSYNC_SCHEDULE_SPEEDUP": "0"},  # schedules run when a test invokes them
        )
        print(f"\nlocal stack: API answered {stack.ready_s:.1f} s after start")
        with running(stack):
            token = stack.token("--user", USER, "--location", "hq")
            yield World(stack, fake, token, f"{api}/v1/webhooks/google", now)
    finally:
        fake.stop()


def test_connect_against_the_fake_and_first_sync(world: World) -> None:  # rules C1, X3, S1
    auth = {"Authorization": f"Bearer {world.token}"}
    started = requests.post(
        f"{world.stack.api}/v1/me/accounts/google/authorize",
        json={"locationId": "hq", "redirectUri": "http://127.0.0.1:9/oauth/done"},
        headers=auth,
        timeout=10,
    )
    assert started.status_code == 200, started.text
    url = started.json()["authorizationUrl"]
    assert url.startswith(world.fake.auth_uri)  # GoogleAuthUri from CALSYNC_PARAMETERS
    # the person consents at "Google" (the fake checks client id, PKCE S256 and offline access)
    code, state = world.fake.authorize(url, EMAIL)
    assert state == started.json()["state"]
    done = requests.get(
        f"{world.stack.api}/v1/oauth/google/callback",
        params={"code": code, "state": state},
        headers=auth,
        timeout=30,
    )
    assert done.status_code == 201, done.text  # the code was exchanged with the secret's client
    assert done.json()["provider"] == "google"
    world.account_id = done.json()["id"]
    # the first sync ran through the Google sync queue: the fake's events, all pages
    took = world.wait_titles(["Planning", "Retro", "Standup"])
    print(f"connect -> first sync -> meetings API: {took:.1f} s")
    # ... and opened a push channel to the stack's own webhook (S1), with Google's `sync` message
    channels = until("a push channel", lambda: world.fake.live_channels(CAL))
    assert [c.address for c in channels] == [world.webhook]
    assert world.fake.deliver() == [200]  # `sync`: answered, nothing to do
    # the refresh token is stored sealed only (X3)
    items = world.table().scan()["Items"]
    assert not [i for i in items if "rt-" in json.dumps(i, default=str)]


def test_push_queue_sync_meetings(world: World) -> None:  # rules S1, U7
    world.stack.idle()  # no schedule runs by itself: what shows next comes from the push
    lists = len(world.fake.lists())
    world.fake.put_event(CAL, _ev("ev4", "Review", world.now + timedelta(hours=4)), deliver=False)
    moved = _ev("ev2", "Planning (moved)", world.now + timedelta(hours=5))
    world.fake.put_event(CAL, moved, deliver=False)
    world.fake.delete_event(CAL, "ev3", deliver=False)
    started = time.monotonic()
    assert world.fake.deliver() == [200, 200, 200]  # one `exists` per change, POSTed to the stack
    world.wait_titles(["Planning (moved)", "Review", "Standup"])
    took = time.monotonic() - started
    print(f"push -> queue -> sync -> meetings API: {took:.1f} s")
    # incremental listings only: the sync token was used, no full listing was needed
    pushed = world.fake.lists()[lists:]
    assert pushed and all("syncToken=" in p and s == 200 for p, s in pushed), pushed
    moved_start = next(m["start"] for m in world.meetings()["meetings"] if m["title"] == "Planning (moved)")
    assert datetime.fromisoformat(moved_start) == world.now + timedelta(hours=5)


def test_forged_notification_changes_nothing(world: World) -> None:  # rules X2, S1
    world.stack.idle()  # the previous test's later jobs have run; no schedule runs by itself
    (channel,) = world.fake.live_channels(CAL)
    # a change at Google whose notification never arrives ...
    world.fake.put_event(CAL, _ev("ev5", "Secret plan", world.now + timedelta(hours=6)), deliver=False)
    world.fake.outbox.clear()
    since = len(world.fake.answers)
    headers = {
        "X-Goog-Channel-ID": channel.channel_id,
        "X-Goog-Channel-Token": "not-the-token",
        "X-Goog-Resource-ID": channel.resource_id,
        "X-Goog-Resource-State": "exists",
        "X-Goog-Message-Number": "99",
    }
    # ... and forged ones instead: 401 (or 200 and dropped for a channel that is not ours)
    assert requests.post(world.webhook, headers=headers, timeout=10).status_code == 401
    wrong_resource = {**headers, "X-Goog-Channel-Token": "", "X-Goog-Resource-ID": "res-x"}
    assert requests.post(world.webhook, headers=wrong_resource, timeout=10).status_code == 401
    unknown = {**headers, "X-Goog-Channel-ID": "0" * 32 + "-" + "0" * 16}
    assert requests.post(world.webhook, headers=unknown, timeout=10).status_code == 200  # dropped
    # The webhook enqueues before it answers, and the queue is FIFO per calendar: a job that a
    # forged notification had enqueued would run before the genuine one below, as a listing of
    # its own. Exactly one sync runs: the genuine notification's.
    world.fake._queue(channel, "exists")
    assert world.fake.deliver() == [200]
    world.wait_titles(["Planning (moved)", "Review", "Secret plan", "Standup"])
    world.stack.idle()
    assert world.sync_runs(since) == 1, world.fake.lists_since(since)


def test_410_leads_to_a_full_resync_nothing_lost_or_duplicated(world: World) -> None:  # rules S1, U8
    expected = ["Planning (moved)", "Review", "Secret plan", "Standup", "Late"]
    lists_before = len(world.fake.lists())
    world.fake.expire_sync_tokens(CAL)
    world.fake.put_event(CAL, _ev("ev6", "Late", world.now + timedelta(hours=7)), deliver=False)
    assert world.fake.deliver() == [200]
    world.wait_titles(expected)
    lists = world.fake.lists()[lists_before:]
    gone = [i for i, (p, s) in enumerate(lists) if s == 410]
    assert gone, lists  # the push's incremental listing got 410 Gone ...
    after = lists[gone[0] + 1 :]
    assert after and "syncToken=" not in after[0][0] and "timeMin=" in after[0][0]  # ... then a full one
    body = world.meetings()
    listed = world.ours(body["meetings"])
    assert len({m["id"] for m in listed}) == len(listed) == len(expected)
    assert not [e for e in body["excluded"] if "U8" in e["rules"]]  # no duplicate hidden by U8
    # the store holds one copy per live event at Google, none of the cancelled one
    items = world.table().scan()["Items"]
    stored = [i for i in items if i.get("type") == "occurrence" and i.get("accountId") == world.account_id]
    assert sorted(str(i["title"]) for i in stored) == sorted(expected), stored


def test_channel_near_expiry_is_renewed_by_the_schedule(world: World) -> None:  # rule S4
    from calsync.store.channels import ChannelStore

    (old,) = world.fake.live_channels(CAL)
    store = ChannelStore(world.table())
    channel = store.get(old.channel_id)
    assert channel is not None and channel.state == "active"
    # as if almost 7 days had passed: the channel expires in a few seconds
    soon = datetime.now(UTC) + timedelta(seconds=4)
    store.forget_expiry(channel.channel_id, channel.expires_at)
    store.put(channel.model_copy(update={"expires_at": soon}))
    watches, stops = world.fake.watches(), world.fake.stops()
    # the schedule's next run opens a new channel first ...
    world.tick()
    assert world.fake.watches() == watches + 1
    new = [c for c in world.fake.live_channels(CAL) if c.channel_id != old.channel_id]
    assert len(new) == 1 and new[0].address == world.webhook
    # ... and stops the old one in the same run (the new one exists first: no change falls between)
    assert world.fake.stops() == stops + 1
    assert world.fake.channels[old.channel_id].stopped
    assert [c.channel_id for c in world.fake.live_channels(CAL)] == [new[0].channel_id]
    assert world.fake.watches() == watches + 1  # no other channel was opened meanwhile
    # the new channel works: `sync` first, then a change arrives through it
    world.fake.put_event(CAL, _ev("ev1", "Standup (renewed)", world.now + timedelta(hours=1)), deliver=False)
    assert world.fake.deliver() == [200, 200]
    world.wait_titles(["Late", "Planning (moved)", "Review", "Secret plan", "Standup (renewed)"])
    # Google may still send on the stopped channel for a while: 200, dropped
    stale = {
        "X-Goog-Channel-ID": old.channel_id,
        "X-Goog-Channel-Token": old.token,
        "X-Goog-Resource-ID": old.resource_id,
        "X-Goog-Resource-State": "exists",
    }
    assert requests.post(world.webhook, headers=stale, timeout=10).status_code == 200


def test_stop_leaves_no_port_open(world: World) -> None:
    children = world.stack.info()["children"]
    assert world.stack.stop() == 0
    assert "Traceback" not in world.stack.err.read_text()
    assert [p for p in world.stack.ports.values() if _port_open(p)] == []
    assert [pid for pid in children if _alive(pid)] == []
    port = int(world.fake.base_url.rsplit(":", 1)[1])
    world.fake.stop()
    assert not _port_open(port)
