"""Conditional reads (issue 15; API.md: meetings and presence answers carry an ``ETag``,
``If-None-Match`` with the current one answers 304): through ApiFunction's and PresenceFunction's
handlers on moto, DynamoDB requests counted with a botocore event hook (``dynamodb_calls``). The
clock is frozen; time moves only when a test moves it."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from calsync.config import get_presence_settings
from calsync.domain.presence import Status as PresenceStatus
from calsync.store import keys
from calsync.store.items import Room
from calsync.store.presence import PresenceRepository
from calsync.store.repository import Repository
from calsync.wiring.presence import presence_deps
from tests.support import apigw
from tests.support.apigw import Answer, LambdaContext, answer, api_on, calendar, dynamodb_calls, occurrence
from tests.support.tasks import run_cleanup

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)  # a Friday
ALICE = apigw.claims("alice", ["hq"])
BOB = apigw.claims("bob", ["hq"])
READS_OF_A_304 = ["GetItem"]  # the profile (or room) item: its version, and what X1 needs


@dataclass
class World:
    """ApiFunction and PresenceFunction on one moto table; a movable clock."""

    table: Any
    now: datetime = NOW
    context: LambdaContext = field(default_factory=LambdaContext)

    @property
    def repo(self) -> Repository:
        return Repository(self.table)

    def api(self, path: str, claims: dict[str, Any], etag: str | None = None) -> Answer:
        path, _, query = path.partition("?")
        with api_on(self.table, self.now) as api:
            headers = {"if-none-match": etag} if etag else None
            return api.get(path, claims=claims, headers=headers, query=query or None)

    def presence(
        self, method: str, path: str, claims: dict[str, Any], etag: str | None = None, body: Any = None
    ) -> Answer:
        module = importlib.import_module("functions.presence.app")
        headers = {"if-none-match": etag} if etag else None
        event = apigw.event(method, path, claims=claims, headers=headers, body=body)
        return answer(module.lambda_handler(event, self.context))


@pytest.fixture
def world(moto_table: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for name in ("PHOTO_BUCKET", "PRESENCE_BUS_NAME"):
        monkeypatch.delenv(name, raising=False)
    get_presence_settings.cache_clear()
    module = importlib.import_module("functions.presence.app")
    w = World(moto_table)
    try:
        with module.wiring.use(presence_deps(moto_table, clock=lambda: w.now)):
            yield w
    finally:
        get_presence_settings.cache_clear()


def at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 11, 20, hour, minute, second, tzinfo=UTC)


def seed(world: World, *meetings: tuple[str, datetime, datetime]) -> Any:
    cal = calendar(world.repo, "cal-a", "acc-a", "alice", subscribers={"USER#alice": "primary"})
    world.repo.store_occurrences(cal, [occurrence(cal, name, name, s, e) for name, s, e in meetings])
    return cal


def etag_of(got: Answer) -> str:
    assert got.status == 200, got.body
    etag = got.headers.get("ETag")
    assert etag and etag.startswith('"') and etag.endswith('"'), got.headers
    return etag


# ---- the 304: one GetItem, never the partition's Query --------------------------------------------
@pytest.mark.parametrize("explain", [False, True])
def test_my_meetings_304_costs_one_getitem(world: World, explain: bool) -> None:
    seed(world, ("Standup", at(11), at(11, 30)), ("Review", at(14), at(15)))
    path = "/v1/me/meetings" + ("?explain=true" if explain else "")
    etag = etag_of(world.api(path, ALICE))

    with dynamodb_calls(world.table) as calls:
        got = world.api(path, ALICE, etag)
    assert got.status == 304, got.body
    assert got.body == ""
    assert got.headers["ETag"] == etag
    assert calls.calls == READS_OF_A_304  # no Query, nothing written

    # the other representation (explain or not) never matches this one's tag
    other = "/v1/me/meetings" + ("" if explain else "?explain=true")
    assert world.api(other, ALICE, etag).status == 200


def test_a_change_of_the_meetings_ends_the_304(world: World) -> None:
    cal = seed(world, ("Standup", at(11), at(11, 30)))
    etag = etag_of(world.api("/v1/me/meetings", ALICE))
    world.repo.store_occurrences(cal, [occurrence(cal, "moved", "Moved", at(12), at(13))])
    got = world.api("/v1/me/meetings", ALICE, etag)
    assert got.status == 200
    assert [m["title"] for m in got.json()["meetings"]] == ["Standup", "Moved"]
    assert etag_of(got) != etag
    assert world.api("/v1/me/meetings", ALICE, etag_of(got)).status == 304


def test_storing_the_same_meetings_again_keeps_the_etag(world: World) -> None:
    cal = seed(world, ("Standup", at(11), at(11, 30)))
    etag = etag_of(world.api("/v1/me/meetings", ALICE))
    world.repo.store_occurrences(cal, [occurrence(cal, "Standup", "Standup", at(11), at(11, 30))])
    assert world.api("/v1/me/meetings", ALICE, etag).status == 304


def test_a_time_zone_change_ends_the_304(world: World) -> None:
    seed(world, ("Standup", at(11), at(11, 30)))
    etag = etag_of(world.api("/v1/me/meetings", ALICE))
    with api_on(world.table, world.now) as api:
        assert api.patch("/v1/me/profile", body={"timeZone": "Asia/Tokyo"}, claims=ALICE).status == 200
    got = world.api("/v1/me/meetings", ALICE, etag)
    assert got.status == 200 and got.json()["timeZone"] == "Asia/Tokyo"


def test_room_meetings_304_costs_one_small_read(world: World) -> None:
    cal = calendar(world.repo, "cal-r", "acc-a", "alice", subscribers={"ROOM#hq#blue": "room"})
    world.repo.put_room(
        Room(room_id="blue", location_id="hq", name="Blue", account_id="acc-a", calendar_id="cal-r")
    )
    world.repo.store_occurrences(cal, [occurrence(cal, "b", "Booked", at(12), at(13))])
    etag = etag_of(world.api("/v1/rooms/blue/meetings", BOB))

    with dynamodb_calls(world.table) as calls:
        got = world.api("/v1/rooms/blue/meetings", BOB, etag)
    # room ids are scoped by location (ADR 0012): the room item is looked up in the caller's
    # locations, one BatchGetItem of ROOM items (one key per location), never the Query
    assert got.status == 304 and calls.calls == ["BatchGetItem"]

    world.repo.store_occurrences(cal, [occurrence(cal, "c", "Booked too", at(14), at(15))])
    assert world.api("/v1/rooms/blue/meetings", BOB, etag).status == 200
    # a person's tag never stands for a room's answer, nor one owner's for another's
    mine = etag_of(world.api("/v1/me/meetings", ALICE))
    assert world.api("/v1/rooms/blue/meetings", BOB, mine).status == 200
    assert world.api("/v1/users/bob/meetings", BOB, mine).status == 200


def test_presence_304_costs_one_getitem_and_a_status_set_ends_it(world: World) -> None:
    assert world.presence("POST", "/v1/me/sessions", ALICE).status == 201
    world.presence("GET", "/v1/users/bob/presence", BOB)  # bob's locations are remembered
    etag = etag_of(world.presence("GET", "/v1/users/alice/presence", BOB))

    with dynamodb_calls(world.table) as calls:
        got = world.presence("GET", "/v1/users/alice/presence", BOB, etag)
    assert got.status == 304 and got.headers["ETag"] == etag
    assert calls.calls == READS_OF_A_304

    # what alice sees of herself (with her choice) is another answer than what bob sees
    assert world.presence("GET", "/v1/users/alice/presence", ALICE, etag).status == 200
    assert world.presence("PUT", "/v1/me/presence", ALICE, body={"status": "do_not_disturb"}).status == 200
    got = world.presence("GET", "/v1/users/alice/presence", BOB, etag)
    assert got.status == 200 and got.json()["acceptsCalls"] is False


def test_a_stranger_gets_403_not_304(world: World) -> None:
    assert world.presence("POST", "/v1/me/sessions", ALICE).status == 201
    etag = etag_of(world.presence("GET", "/v1/users/alice/presence", BOB))
    stranger = apigw.claims("mallory", ["elsewhere"])
    assert world.presence("GET", "/v1/users/alice/presence", stranger, etag).status == 403


def test_if_none_match_star_and_lists(world: World) -> None:
    seed(world, ("Standup", at(11), at(11, 30)))
    etag = etag_of(world.api("/v1/me/meetings", ALICE))
    assert world.api("/v1/me/meetings", ALICE, f'"nope", {etag}').status == 304
    assert world.api("/v1/me/meetings", ALICE, f"W/{etag}").status == 304  # weak comparison (RFC 9110)
    star = world.api("/v1/me/meetings", ALICE, "*")
    assert star.status == 304 and star.headers["ETag"] == etag  # any current answer matches '*'
    assert world.api("/v1/me/meetings", ALICE, '"m.1.9999999999.0000000000000000"').status == 200


# ---- time: the answer changes by itself, and so does its ETag --------------------------------------
def test_meetings_etag_changes_when_a_meeting_ends(world: World) -> None:
    # U2: a meeting ended more than 61 minutes ago leaves the list, without any write
    seed(world, ("Standup", at(9, 30), at(10, 30)), ("Review", at(14), at(15)))
    etag = etag_of(world.api("/v1/me/meetings", ALICE))

    world.now = at(11, 30)  # the Standup ended an hour ago: still listed, the tag still current
    assert world.api("/v1/me/meetings", ALICE, etag).status == 304

    world.now = at(11, 31, 1)
    got = world.api("/v1/me/meetings", ALICE, etag)
    assert got.status == 200
    assert [m["title"] for m in got.json()["meetings"]] == ["Review"]
    assert etag_of(got) != etag


def test_meetings_etag_changes_at_midnight(world: World) -> None:
    # U1: the window is today and the next two days: at midnight a new day comes in
    seed(world, ("Far", datetime(2026, 11, 23, 9, tzinfo=UTC), datetime(2026, 11, 23, 10, tzinfo=UTC)))
    etag = etag_of(world.api("/v1/me/meetings", ALICE))
    world.now = datetime(2026, 11, 20, 23, 59, 59, tzinfo=UTC)
    assert world.api("/v1/me/meetings", ALICE, etag).status == 304
    world.now = datetime(2026, 11, 21, 0, 0, tzinfo=UTC)
    got = world.api("/v1/me/meetings", ALICE, etag)
    assert got.status == 200 and [m["title"] for m in got.json()["meetings"]] == ["Far"]


def test_presence_etag_changes_when_a_meeting_starts_and_ends(world: World) -> None:
    # P6: "in a meeting until" begins and ends with the meeting, without any write
    seed(world, ("Design review", at(10, 30), at(11)))
    assert world.presence("POST", "/v1/me/sessions", ALICE).status == 201
    world.presence("GET", "/v1/users/bob/presence", BOB)
    free = world.presence("GET", "/v1/users/alice/presence", BOB)
    assert free.json()["status"] == "available"

    world.now = at(10, 29)
    assert world.presence("GET", "/v1/users/alice/presence", BOB, etag_of(free)).status == 304
    world.now = at(10, 30)
    busy = world.presence("GET", "/v1/users/alice/presence", BOB, etag_of(free))
    assert busy.status == 200 and busy.json()["status"] == "busy"

    world.now = at(10, 59, 59)
    assert world.presence("GET", "/v1/users/alice/presence", BOB, etag_of(busy)).status == 304
    world.now = at(11)
    after = world.presence("GET", "/v1/users/alice/presence", BOB, etag_of(busy))
    assert after.status == 200 and after.json()["status"] == "available"


def test_presence_etag_changes_when_the_session_expires(world: World) -> None:
    # P5: a session that expires makes the person offline, without any write
    # (with a chosen status: P6 does not apply, so no meeting can change the answer either)
    assert world.presence("PUT", "/v1/me/presence", ALICE, body={"status": "away"}).status == 200
    created = world.presence("POST", "/v1/me/sessions", ALICE)
    expires = datetime.fromisoformat(created.json()["expiresAt"])
    world.presence("GET", "/v1/users/bob/presence", BOB)
    online = world.presence("GET", "/v1/users/alice/presence", BOB)
    world.now = expires - timedelta(seconds=1)
    assert world.presence("GET", "/v1/users/alice/presence", BOB, etag_of(online)).status == 304
    world.now = expires
    got = world.presence("GET", "/v1/users/alice/presence", BOB, etag_of(online))
    assert got.status == 200 and got.json()["status"] == "offline"
    offline = etag_of(got)
    world.now = expires + timedelta(days=30)  # offline stays offline until a write
    assert world.presence("GET", "/v1/users/alice/presence", BOB, offline).status == 304


# ---- every writer makes the version grow -----------------------------------------------------------
def test_every_writer_of_a_persons_answers_bumps_their_version(world: World) -> None:
    repo, presence = world.repo, PresenceRepository(world.table)
    subscribers: dict[str, Any] = {"USER#alice": "primary", "USER#bob": "conflict"}
    cal = calendar(repo, "cal-a", "acc-a", "alice", subscribers=subscribers)
    repo.store_occurrences(cal, [occurrence(cal, "standup", "Standup", at(11), at(11, 30))])

    def grows(step: Any) -> bool:
        before = _version(world.table, keys.user_pk("alice"), keys.PROFILE)
        step()
        return _version(world.table, keys.user_pk("alice"), keys.PROFILE) > before

    x = occurrence(cal, "x", "X", at(12), at(13))
    assert grows(lambda: repo.store_occurrences(cal, [x]))  # a sync (or a written meeting link)
    assert not grows(lambda: repo.store_occurrences(cal, [x]))  # the same again
    assert grows(lambda: repo.delete_occurrence("cal-a", x.id))
    assert grows(lambda: repo.update_profile("alice", time_zone="Europe/Berlin"))
    assert not grows(lambda: repo.update_profile("alice", display_name="Alice"))  # in neither answer
    assert grows(lambda: presence.set_status("alice", PresenceStatus.BUSY, None, NOW))
    assert grows(lambda: presence.clear_status("alice", NOW))
    assert grows(lambda: presence.create_session("alice", "s1", NOW, timedelta(hours=1)))
    assert not grows(lambda: presence.renew_session("alice", "s1", NOW, timedelta(hours=2)))  # same answer
    assert grows(lambda: presence.delete_session("alice", "s1", NOW))
    assert grows(lambda: repo.unsubscribe("cal-a", "USER#alice"))
    assert not grows(lambda: repo.subscribe("cal-a", "USER#alice", "conflict"))  # nothing copied yet
    stored = repo.get_calendar("cal-a")
    assert stored is not None
    assert grows(lambda: repo.backfill(stored, "USER#alice", "conflict"))
    assert grows(lambda: repo.backfill(stored, "USER#alice", "primary", restamp=True))  # a role change
    assert grows(lambda: run_cleanup(repo, at(23)))  # the cleanup (explain=true listed it)


def _version(table: Any, pk: str, sk: str) -> int:
    item = table.get_item(Key={"pk": pk, "sk": sk}, ConsistentRead=True).get("Item") or {}
    return int(item.get("version", 0))


def test_room_writers_bump_its_version_and_a_room_registered_again_starts_above(world: World) -> None:
    cal = calendar(world.repo, "cal-r", "acc-a", "alice", subscribers={})
    room = Room(room_id="blue", location_id="hq", name="Blue", account_id="acc-a", calendar_id="cal-r")
    world.repo.put_room(room)
    cal = world.repo.get_calendar("cal-r") or cal  # now with the room as a subscriber

    def version() -> int:
        return _version(world.table, keys.room_pk("hq", "blue"), keys.ROOM)

    first = version()
    world.repo.store_occurrences(cal, [occurrence(cal, "b", "Booked", at(12), at(13))])
    assert version() == first + 1
    world.repo.put_room(room)  # the same again: nothing changes
    assert version() == first + 1
    world.repo.put_room(room.model_copy(update={"time_zone": "Asia/Tokyo"}))
    assert version() == first + 2
    world.repo.delete_room("hq", "blue")
    world.repo.store_occurrences(cal, [occurrence(cal, "c", "Booked", at(14), at(15))])
    assert world.repo.get_room("hq", "blue") is None  # a bump never brings a deleted room back
    world.repo.put_room(room)
    assert version() > first + 2
