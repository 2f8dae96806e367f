"""The live channel (issue 15, docs/adr/0015): writes publish the owner's new version through
AppSync Events' HTTP publish endpoint, here the local emulation (local/live.py) on 127.0.0.1; a
client speaks the documented WebSocket protocol with aiohttp. The store is moto; the clock of the
API is frozen."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from calsync import live
from calsync.domain.presence import Status
from calsync.store.items import Room
from calsync.store.presence import PresenceRepository
from calsync.store.repository import Repository
from local import auth
from local.live import PROTOCOL, LiveServer, header_subprotocol
from tests.support.apigw import api_on, calendar, occurrence

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
ISSUER, AUDIENCE, API_KEY = "https://idp.calsync.test/", "calsync", "local-live-key"
WAIT = 10.0  # seconds: a bound on waiting for a frame, never a timing the test relies on


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 20, hour, minute, tzinfo=UTC)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def key(tmp_path: Path) -> auth.SigningKey:
    return auth.SigningKey.load_or_create(tmp_path)


@pytest.fixture
def server(key: auth.SigningKey) -> Iterator[LiveServer]:
    def verify(token: str) -> dict[str, Any]:
        return auth.verify(token, key, issuer=ISSUER, audience=AUDIENCE)

    running = LiveServer("127.0.0.1", _free_port(), verify, API_KEY)
    running.start()
    live.use(live.HttpPublisher(running.publish_url, API_KEY))
    try:
        yield running
    finally:
        live.use(None)
        running.stop()


def token(key: auth.SigningKey, user: str, locations: list[str]) -> str:
    return key.issue(issuer=ISSUER, audience=AUDIENCE, user=user, locations=locations)


class Client:
    """An AppSync Events client over aiohttp: connect, subscribe, read ``data`` frames."""

    def __init__(self, server: LiveServer, jwt: str) -> None:
        self._server, self._jwt = server, jwt
        self._session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None

    async def connect(self) -> dict[str, Any]:
        self._session = aiohttp.ClientSession()
        host = f"{self._server.host}:{self._server.port}"
        self.ws = await self._session.ws_connect(
            self._server.realtime_url, protocols=(PROTOCOL, header_subprotocol(self._jwt, host))
        )
        await self.ws.send_json({"type": "connection_init"})
        return await self.frame()

    async def subscribe(self, channel: str) -> dict[str, Any]:
        assert self.ws is not None
        await self.ws.send_json(
            {
                "type": "subscribe",
                "id": uuid.uuid4().hex,
                "channel": channel,
                "authorization": {"Authorization": self._jwt},
            }
        )
        return await self.frame()

    async def frame(self) -> dict[str, Any]:
        assert self.ws is not None
        while True:
            got: dict[str, Any] = json.loads(await self.ws.receive_str(timeout=WAIT))
            if got["type"] != "ka":
                return got

    async def event(self) -> dict[str, Any]:
        got = await self.frame()
        assert got["type"] == "data", got
        event: dict[str, Any] = json.loads(got["event"])
        return event

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._session is not None:
            await self._session.close()


def meetings(table: Any, etag: str | None = None) -> tuple[int, list[str], str]:
    claims = {"sub": "alice", "locations": "[hq]", "admin_of": "[]"}
    with api_on(table, NOW) as api:
        got = api.get("/v1/me/meetings", claims=claims, headers={"if-none-match": etag} if etag else None)
    titles = [m["title"] for m in got.json()["meetings"]] if got.status == 200 else []
    return got.status, titles, got.headers["ETag"]


def test_reconnect_loses_nothing(moto_table: Any, server: LiveServer, key: auth.SigningKey) -> None:
    # issue 15: a message carries a version that only grows; a client that reconnects refetches once
    # (If-None-Match) and has everything written while it was away
    repo = Repository(moto_table)
    cal = calendar(repo, "cal-a", "acc-a", "alice", subscribers={"USER#alice": "primary"})

    async def scenario() -> None:
        client = Client(server, token(key, "alice", ["hq"]))
        assert (await client.connect())["type"] == "connection_ack"
        assert (await client.subscribe(live.user_channel("alice")))["type"] == "subscribe_success"

        standup = occurrence(cal, "standup", "Standup", at(11), at(11, 30))
        repo.store_occurrences(cal, [standup])
        first = await client.event()
        assert first["type"] == "meetings" and first["id"] == "alice"
        status, titles, etag = meetings(moto_table)
        assert (status, titles) == (200, ["Standup"])

        await client.close()  # away: what is written now is published to no one
        repo.store_occurrences(cal, [occurrence(cal, "review", "Review", at(14), at(15))])
        repo.delete_occurrence("cal-a", standup.id)

        again = Client(server, token(key, "alice", ["hq"]))
        await again.connect()
        await again.subscribe(live.user_channel("alice"))
        status, titles, etag = meetings(moto_table, etag)  # the one refetch after reconnecting
        assert (status, titles) == (200, ["Review"])

        repo.store_occurrences(cal, [occurrence(cal, "retro", "Retro", at(16), at(17))])
        later = await again.event()
        assert later["version"] > first["version"] + 2  # a gap: two versions were missed while away
        status, titles, etag = meetings(moto_table, etag)
        assert (status, titles) == (200, ["Review", "Retro"])
        assert meetings(moto_table, etag)[0] == 304  # nothing more: the client is current
        await again.close()

    asyncio.run(scenario())
    assert server.published >= 4


def test_presence_reaches_colleagues_of_the_location_only(
    moto_table: Any, server: LiveServer, key: auth.SigningKey
) -> None:
    repo = Repository(moto_table)
    repo.set_member_locations("alice", ["hq"])
    presence = PresenceRepository(moto_table)

    async def scenario() -> None:
        bob = Client(server, token(key, "bob", ["hq"]))
        await bob.connect()
        assert (await bob.subscribe("/calsync/locations/hq/presence/*"))["type"] == "subscribe_success"
        presence.set_status("alice", Status.DO_NOT_DISTURB, "Focus", NOW)
        got = await bob.event()
        assert got["type"] == "presence" and got["id"] == "alice" and got["version"] >= 1

        stranger = Client(server, token(key, "mallory", ["lon"]))
        await stranger.connect()
        refused = await stranger.subscribe("/calsync/locations/hq/presence/alice")
        assert refused["type"] == "subscribe_error"
        assert (await stranger.subscribe(live.user_channel("alice")))["type"] == "subscribe_error"
        await bob.close()
        await stranger.close()

    asyncio.run(scenario())


def test_a_bad_token_is_refused(server: LiveServer, key: auth.SigningKey, tmp_path: Path) -> None:
    other = auth.SigningKey.load_or_create(tmp_path / "other")

    async def scenario() -> None:
        client = Client(server, token(other, "alice", ["hq"]))
        got = await client.connect()
        assert got["type"] == "connection_error"
        await client.close()

    asyncio.run(scenario())


def test_publishing_needs_the_backends_key(server: LiveServer) -> None:
    assert (
        live.HttpPublisher(server.publish_url, "wrong").publish("/calsync/users/alice", [{"x": 1}]) is False
    )
    assert live.HttpPublisher(server.publish_url, API_KEY).publish("/calsync/users/alice", [{"x": 1}]) is True


def test_channels_follow_x1() -> None:
    assert live.may_subscribe("/calsync/users/alice", "alice", [])
    assert not live.may_subscribe("/calsync/users/alice", "bob", ["hq"])
    assert live.may_subscribe("/calsync/locations/hq/rooms/blue", "bob", ["hq"])
    assert live.may_subscribe("/calsync/locations/hq/presence/*", "bob", ["hq"])
    assert not live.may_subscribe("/calsync/locations/hq/presence/*", "bob", ["lon"])
    assert not live.may_subscribe("/calsync/locations/hq", "bob", ["hq"])
    assert not live.may_subscribe("/other/users/bob", "bob", ["hq"])


def test_a_rooms_change_reaches_members_of_its_location(
    moto_table: Any, server: LiveServer, key: auth.SigningKey
) -> None:
    # "this room's meetings changed" for a room panel (members of the room's location)
    repo = Repository(moto_table)
    cal = calendar(repo, "cal-r", "acc-a", "alice", subscribers={})
    repo.put_room(
        Room(room_id="blue", location_id="hq", name="Blue", account_id="acc-a", calendar_id="cal-r")
    )
    stored = repo.get_calendar("cal-r")
    assert stored is not None and "ROOM#hq#blue" in stored.subscribers

    async def scenario() -> None:
        panel = Client(server, token(key, "panel-1", ["hq"]))
        await panel.connect()
        assert (await panel.subscribe(live.room_channel("hq", "blue")))["type"] == "subscribe_success"
        repo.store_occurrences(stored, [occurrence(cal, "b", "Booked", at(12), at(13))])
        got = await panel.event()
        assert got["type"] == "room" and got["id"] == "blue"
        assert got["version"] == repo.get_room("hq", "blue").version  # type: ignore[union-attr]
        await panel.close()

    asyncio.run(scenario())
