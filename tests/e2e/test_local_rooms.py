"""R8 end to end: rooms in the local stack (``python -m local``), used over HTTP like an admin and a
room panel would, against the stack's own Radicale, SQS queues and CalDAV sync worker.

carol connects her Radicale account, which holds her calendar and a "Board room" calendar that no
person uses. dana (admin of hq) cannot make rooms of them until carol marks them as room calendars
(R9); then she registers rooms on both; the panels show their events, later changes arrive through
the poll schedule, and deleting a room stops its calendar's sync. An admin of another location
learns nothing of hq's rooms (issue 13 point 4).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from calsync.store import keys
from tests.support.local_stack import Stack, table_of, until

pytestmark = pytest.mark.e2e

HQ = "hq"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack.start(tmp_path_factory.mktemp("rooms-stack"))
    try:
        yield s
    finally:
        s.stop()
        if s.proc.poll() is None:
            os.killpg(s.proc.pid, signal.SIGKILL)


class Http:
    def __init__(self, stack: Stack, token: str) -> None:
        self.base, self.headers = stack.api, {"Authorization": f"Bearer {token}"}

    def __call__(self, method: str, path: str, body: Any = None) -> requests.Response:
        return requests.request(method, f"{self.base}{path}", json=body, headers=self.headers, timeout=30)


def _ics(uid: str, title: str, start: datetime, extra: str = "") -> str:
    fmt = "%Y%m%dT%H%M%SZ"
    end = start + timedelta(minutes=45)
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//calsync//e2e rooms//EN",
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"DTSTAMP:{datetime.now(UTC).strftime(fmt)}",
        f"DTSTART:{start.strftime(fmt)}",
        f"DTEND:{end.strftime(fmt)}",
        f"SUMMARY:{title}",
        *([extra] if extra else []),
        "END:VEVENT",
        "END:VCALENDAR",
        "",
    ]
    return "\r\n".join(lines)


class Radicale:
    def __init__(self, stack: Stack) -> None:
        self.base = f"http://127.0.0.1:{stack.ports['caldav']}"
        self.auth = ("carol", "carol-demo")

    def make_calendar(self, path: str, name: str) -> None:
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
            f"<D:set><D:prop><D:displayname>{name}</D:displayname></D:prop></D:set></C:mkcalendar>"
        )
        got = requests.request("MKCALENDAR", f"{self.base}{path}", data=body, auth=self.auth, timeout=10)
        assert got.status_code in (201, 405), got.text  # 405: it exists (a re-run on the same state)

    def put(self, path: str, name: str, text: str) -> None:
        got = requests.put(
            f"{self.base}{path}{name}",
            data=text.encode(),
            headers={"Content-Type": "text/calendar"},
            auth=self.auth,
            timeout=10,
        )
        assert got.status_code in (201, 204), got.text


def _titles(http: Http, room: str) -> list[Any]:
    got = http("GET", f"/v1/rooms/{room}/meetings")
    assert got.status_code == 200, got.text
    return sorted((m["title"] or "") for m in got.json()["meetings"])


def _poll(stack: Stack) -> None:
    done = stack.cli("invoke", "CaldavPollFunction")
    assert done.returncode == 0, done.stderr


def _poll_entry(table: Any, calendar_id: str) -> dict[str, Any] | None:
    key = {"pk": keys.poll_pk("caldav", keys.poll_shard(calendar_id)), "sk": keys.poll_sk(calendar_id)}
    item: dict[str, Any] | None = table.get_item(Key=key, ConsistentRead=True).get("Item")
    return item


def test_rooms_sync_on_their_own(stack: Stack) -> None:
    carol = Http(stack, stack.token("--user", "carol", "--location", HQ))
    dana = Http(stack, stack.token("--user", "dana", "--location", HQ, "--admin", HQ))
    radicale, table = Radicale(stack), table_of(stack)
    board_path = "/carol/board/"
    radicale.make_calendar(board_path, "Board room")
    soon = (datetime.now(UTC) + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    radicale.put(board_path, "kickoff.ics", _ics("kickoff", "Kickoff", soon))
    radicale.put(
        board_path,
        "secret.ics",
        _ics("secret", "Acquisition talks", soon + timedelta(hours=1), "CLASS:PRIVATE"),
    )

    connected = carol(
        "POST",
        "/v1/me/accounts/caldav",
        {"locationId": HQ, "serverUrl": radicale.base + "/", "username": "carol", "password": "carol-demo"},
    )
    assert connected.status_code == 201, connected.text
    account_id = connected.json()["id"]
    calendars = {c["name"]: c["id"] for c in carol("GET", "/v1/me/calendars").json()["calendars"]}
    board, own = calendars["Board room"], calendars["Carol Chiba"]
    # carol uses only her own calendar: nobody uses the board calendar
    config = carol(
        "PUT",
        f"/v1/locations/{HQ}/users/carol/calendar-config",
        {"primaryCalendarId": own, "conflictCalendarIds": []},
    )
    assert config.status_code == 200, config.text
    own_state = {"pk": keys.calendar_pk(own), "sk": keys.SYNC}
    until("carol's calendar synced", lambda: table.get_item(Key=own_state).get("Item", {}).get("cursor"))

    # 0. R9: dana cannot make carol's calendars rooms until carol marks them as room calendars
    room = {"name": "Board", "timeZone": "Europe/Berlin", "accountId": account_id, "calendarId": board}
    refused = dana("PUT", f"/v1/locations/{HQ}/rooms/hq-board", room)
    assert refused.status_code == 409, refused.text
    assert refused.json()["type"] == "https://calsync.dev/errors/room-consent-required"
    for calendar_id in (board, own):
        assert carol("PUT", f"/v1/me/calendars/{calendar_id}/room-consent").status_code == 204
    listed = carol("GET", "/v1/me/calendars").json()["calendars"]
    assert {c["id"] for c in listed if c["roomCalendar"]} == {board, own}

    # 1. a room on a CalDAV calendar that no person uses gets its events (through its own sync)
    assert dana("PUT", f"/v1/locations/{HQ}/rooms/hq-board", room).status_code == 201
    assert until("the board room's events", lambda: _titles(dana, "hq-board") == ["", "Kickoff"])
    assert _poll_entry(table, board) is not None  # registered for polling
    # another location's admin: the same 404 as for no room, and the id is free in her location
    lena = Http(stack, stack.token("--user", "lena", "--location", "lon", "--admin", "lon"))
    other, missing = lena("GET", "/v1/rooms/hq-board/meetings"), lena("GET", "/v1/rooms/nowhere/meetings")
    assert other.status_code == missing.status_code == 404 and other.json() == missing.json()

    # ... and its later changes (the poll schedule's next run)
    radicale.put(board_path, "review.ics", _ics("review", "Budget review", soon + timedelta(hours=3)))
    _poll(stack)
    until("the later change", lambda: _titles(dana, "hq-board") == ["", "Budget review", "Kickoff"])

    # 2. a room on an already-synced calendar shows its events at once (no waiting for a sync)
    own_room = {**room, "name": "Carol's desk", "calendarId": own}
    assert dana("PUT", f"/v1/locations/{HQ}/rooms/hq-desk", own_room).status_code == 201
    assert "1:1 with carol" in _titles(dana, "hq-desk")

    # 3. deleting the room stops its sync: its copies go, the worker forgets the calendar
    assert dana("DELETE", f"/v1/locations/{HQ}/rooms/hq-board").status_code == 204
    assert dana("GET", "/v1/rooms/hq-board/meetings").status_code == 404
    until("the board calendar off the poll schedule", lambda: _poll_entry(table, board) is None)
    sync_state = {"pk": keys.calendar_pk(board), "sk": keys.SYNC}
    until("the board calendar's sync state gone", lambda: "Item" not in table.get_item(Key=sync_state))
    indexed = len(_occurrence_index(table, board))
    radicale.put(board_path, "late.ics", _ics("late", "Too late", soon + timedelta(hours=4)))
    _poll(stack)
    assert len(_occurrence_index(table, board)) == indexed  # the new event was never fetched
    room_items = table.query(
        KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": keys.room_pk(HQ, "hq-board")}
    )["Items"]
    assert room_items == []
    assert _poll_entry(table, board) is None
    assert "1:1 with carol" in _titles(dana, "hq-desk")  # the other room is untouched


def _occurrence_index(table: Any, calendar_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = table.query(
        KeyConditionExpression="pk = :pk AND begins_with(sk, :occ)",
        ExpressionAttributeValues={":pk": keys.calendar_pk(calendar_id), ":occ": keys.OCC_PREFIX},
        ConsistentRead=True,
    )["Items"]
    return items
