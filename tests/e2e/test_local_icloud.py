"""iCloud end to end IN THE LOCAL STACK (issue 11): ``python -m local`` as a subprocess on free
ports, connected over real HTTP to an iCloud-shaped service (tests/support/icloud.py): a discovery
host on 127.0.0.2 (what ``https://caldav.icloud.com/`` is) whose principal names a calendar home
with an ABSOLUTE URL on another host, the "partition" (a real Radicale on 127.0.0.1).

connect through the API -> first sync (sync queue) -> meetings API; a change on iCloud -> the poll
schedule (invoked) -> sync -> meetings API; an appointment POSTed to the scheduling API -> written
to the primary calendar on the partition host; disconnect -> gone from calsync, still on iCloud.
Nothing after the connect goes to the discovery host. Rules: C1, C6, C7, C9, S3, X6 (the local
stack allows loopback only). Facts: docs/providers/icloud.md.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import pytest
import requests

from tests.support.caldav_server import ics
from tests.support.icloud import ICloudDiscovery
from tests.support.local_stack import Stack, running, table_of, until
from tests.support.radicale import Radicale, radicale_server

pytestmark = pytest.mark.e2e

USER = "ivy"  # the person in calsync (JWT sub)
APPLE_ID = "ivy.icloud"  # her Apple ID at the fake (a Radicale user on the partition)
APP_PASSWORD = "wxyz-abcd-efgh-ijkl"  # iCloud takes app-specific passwords only


@dataclass
class World:
    stack: Stack
    radicale: Radicale
    discovery: ICloudDiscovery
    token: str
    home_url: str  # on the partition itself
    now: datetime  # the events are relative to it (see _base_time)
    account_id: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def titles(self) -> list[str]:
        got = requests.get(f"{self.stack.api}/v1/me/meetings", headers=self.headers, timeout=10)
        assert got.status_code == 200, got.text
        return sorted(
            m["title"]
            for m in got.json()["meetings"]
            if m["provider"] == "caldav" and m["accountId"] == self.account_id
        )

    def put(self, name: str, title: str, minutes: int) -> None:
        start = self.now + timedelta(minutes=minutes)
        text = ics(name, title, start, start + timedelta(minutes=10))
        self.radicale.put(self.home_url, name, text, (APPLE_ID, APP_PASSWORD))

    def on_icloud(self) -> list[str]:
        resp = requests.request(
            "PROPFIND", self.home_url, headers={"Depth": "1"}, auth=(APPLE_ID, APP_PASSWORD), timeout=10
        )
        assert resp.status_code == 207
        hrefs = ElementTree.fromstring(resp.content).iter("{DAV:}href")
        return sorted(h.text or "" for h in hrefs if (h.text or "").endswith(".ics"))


def _base_time(zone: str) -> datetime:
    """Now, or 55 minutes ago when the next hour crosses midnight in the person's zone: the meetings
    API shows today, with events ended less than 61 minutes ago (U2), so the events at base +
    20..55 minutes are listed at any time of day."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    local = now.astimezone(ZoneInfo(zone))
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0)
    return now if midnight - local > timedelta(minutes=75) else now - timedelta(minutes=55)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with radicale_server(Path(tmp_path_factory.mktemp("icloud-partition"))) as partition:
        partition.add_user(APPLE_ID, APP_PASSWORD)
        home_url = partition.make_calendar(APPLE_ID, APP_PASSWORD, "home", "Home")
        partition.make_calendar(APPLE_ID, APP_PASSWORD, "work", "Work")
        discovery = ICloudDiscovery(partition.base_url)  # 127.0.0.2 -> home set on 127.0.0.1
        try:
            stack = Stack.start(tmp_path_factory.mktemp("icloud-stack"))
            print(f"\nlocal stack: API answered {stack.ready_s:.1f} s after start")
            with running(stack):
                token = stack.token("--user", USER, "--location", "hq")
                shown = requests.get(
                    f"{stack.api}/v1/me/meetings", headers={"Authorization": f"Bearer {token}"}, timeout=10
                )
                zone = shown.json()["timeZone"]  # the window "today" is in this zone
                yield World(stack, partition, discovery, token, home_url, _base_time(zone))
                assert stack.stop() == 0
        finally:
            discovery.close()


def test_connect_through_the_discovery_host_and_first_sync(world: World) -> None:  # C1, C6, S3
    world.put("standup", "Standup", 20)
    got = requests.post(
        f"{world.stack.api}/v1/me/accounts/caldav",
        json={
            "locationId": "hq",
            "serverUrl": world.discovery.url,
            "username": APPLE_ID,
            "password": APP_PASSWORD,
        },
        headers=world.headers,
        timeout=30,
    )
    assert got.status_code == 201, got.text
    world.account_id = got.json()["id"]
    assert world.discovery.url.startswith("http://127.0.0.2:")
    until("the first sync to list Standup", lambda: world.titles() == ["Standup"], timeout=30)
    # the calendars' absolute URLs on the partition host are what the stack keeps
    items = table_of(world.stack).scan()["Items"]
    ours = [i for i in items if i.get("type") == "accountCalendar" and i.get("accountId") == world.account_id]
    urls = sorted(str(i["url"]) for i in ours if "url" in i)  # (the demo's accounts are in the table too)
    assert urls == [f"{world.radicale.base_url}/{APPLE_ID}/{c}/" for c in ("home", "work")]
    assert APP_PASSWORD not in json.dumps(items, default=str)


def test_a_change_on_icloud_shows_after_a_poll(world: World) -> None:  # S3
    after_connect = len(world.discovery.requests)
    world.put("review", "Review", 30)
    done = world.stack.cli("invoke", "CaldavPollFunction")
    assert done.returncode == 0, done.stderr
    until("the poll's sync to list Review", lambda: world.titles() == ["Review", "Standup"], timeout=30)
    assert len(world.discovery.requests) == after_connect  # polls and syncs go to the partition host


def test_an_appointment_is_written_to_the_primary_calendar_on_the_partition(world: World) -> None:  # C6, C7
    after_connect = len(world.discovery.requests)
    start = world.now + timedelta(minutes=45)
    booked = requests.post(
        f"{world.stack.api}/v1/locations/hq/users/{USER}/appointments",
        json={
            "title": "Dentist",
            "start": start.isoformat(),
            "end": (start + timedelta(minutes=10)).isoformat(),
        },
        headers={**world.headers, "Idempotency-Key": uuid.uuid4().hex},
        timeout=30,
    )
    assert booked.status_code == 201, booked.text
    assert len(world.on_icloud()) == 3  # standup, review and the appointment, in Home
    until("the appointment to be listed", lambda: "Dentist" in world.titles(), timeout=30)
    assert len(world.discovery.requests) == after_connect


def test_disconnect(world: World) -> None:  # C9
    gone = requests.delete(
        f"{world.stack.api}/v1/me/accounts/{world.account_id}", headers=world.headers, timeout=30
    )
    assert gone.status_code == 204, gone.text
    assert world.titles() == []
    listed: Any = requests.get(f"{world.stack.api}/v1/me/calendars", headers=world.headers, timeout=10).json()
    assert [c for c in listed["calendars"] if c["accountId"] == world.account_id] == []
    assert len(world.on_icloud()) == 3  # calsync forgets; iCloud keeps the person's events
