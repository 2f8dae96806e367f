"""PUT and DELETE /v1/locations/{locationId}/rooms/{roomId} (admins of the location only)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from calsync.store import keys
from calsync.store.repository import Repository
from tests.support import apigw
from tests.support.apigw import Api, api_on, calendar

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
ADMIN = apigw.claims("hank", ["hq"], admin_of=["hq"])
ROOM = {
    "name": "Board room",
    "timeZone": "Europe/London",
    "accountId": "acc-hank",
    "calendarId": "board@rooms",
}


@pytest.fixture
def repo(table: Any) -> Repository:
    calendar(Repository(table), "board@rooms", "acc-hank", "hank", access_role="writer")
    return Repository(table)


@pytest.fixture
def api(table: Any) -> Iterator[Api]:
    with api_on(table, NOW) as api:
        yield api


def test_admin_registers_then_changes_a_room(repo: Repository, api: Api) -> None:
    # rule X1 (admins manage their location); API.md PUT → 201 created, then 200
    got = api.put("/v1/locations/hq/rooms/board", body=ROOM, claims=ADMIN)
    assert got.status == 201, got.body
    assert got.content_type == "application/json"
    assert got.json() == {"id": "board", "locationId": "hq", **ROOM}
    assert repo.list_rooms("hq") == ["board"]
    calendar_item = repo.get_calendar("board@rooms")
    assert calendar_item is not None
    assert calendar_item.subscribers == {keys.room_pk("board"): "room"}

    got = api.put("/v1/locations/hq/rooms/board", body={**ROOM, "name": "Boardroom 2"}, claims=ADMIN)
    assert got.status == 200
    room = repo.get_room("board")
    assert room is not None
    assert room.name == "Boardroom 2"


def test_room_calendar_of_a_member_of_the_location(repo: Repository, api: Api) -> None:
    # rule X1: a calendar connected by a member of this location may become its room
    calendar(repo, "huddle@rooms", "acc-ida", "ida")
    api.get("/v1/me/profile", claims=apigw.claims("ida", ["hq"]))  # ida's token: member of hq
    body = {**ROOM, "accountId": "acc-ida", "calendarId": "huddle@rooms"}
    assert api.put("/v1/locations/hq/rooms/huddle", body=body, claims=ADMIN).status == 201


def test_admin_deletes_a_room(repo: Repository, api: Api) -> None:
    # API.md DELETE → 204; then 404
    api.put("/v1/locations/hq/rooms/board", body=ROOM, claims=ADMIN)
    got = api.delete("/v1/locations/hq/rooms/board", claims=ADMIN)
    assert got.status == 204
    assert got.body == ""
    assert repo.get_room("board") is None
    assert repo.list_rooms("hq") == []
    got = api.delete("/v1/locations/hq/rooms/board", claims=ADMIN)
    assert got.status == 404
    assert got.content_type == "application/problem+json"


@pytest.mark.parametrize(
    "case",
    [
        # rule X1: not an admin of this location
        ("PUT", "/v1/locations/hq/rooms/board", ROOM, apigw.claims("ann", ["hq"]), 403),
        ("PUT", "/v1/locations/hq/rooms/board", ROOM, apigw.claims("lena", ["lon"], admin_of=["lon"]), 403),
        (
            "DELETE",
            "/v1/locations/hq/rooms/exists",
            None,
            apigw.claims("lena", ["hq"], admin_of=["lon"]),
            403,
        ),
        # no token
        ("PUT", "/v1/locations/hq/rooms/board", ROOM, None, 401),
        ("DELETE", "/v1/locations/hq/rooms/exists", None, None, 401),
        # the calendar must be known, with that account, and be the admin's or a member's
        ("PUT", "/v1/locations/hq/rooms/board", {**ROOM, "calendarId": "nope@rooms"}, ADMIN, 409),
        ("PUT", "/v1/locations/hq/rooms/board", {**ROOM, "accountId": "acc-other"}, ADMIN, 409),
        (
            "PUT",
            "/v1/locations/hq/rooms/board",
            {**ROOM, "calendarId": "private@cal", "accountId": "acc-zoe"},
            ADMIN,
            409,
        ),
        # a room id belongs to one location for good
        ("PUT", "/v1/locations/lon/rooms/exists", ROOM, apigw.claims("hank", ["lon"], admin_of=["lon"]), 409),
        # rule X5: bad input
        ("PUT", "/v1/locations/hq/rooms/board", {**ROOM, "timeZone": "Nowhere/Land"}, ADMIN, 400),
        ("PUT", "/v1/locations/hq/rooms/board", {**ROOM, "name": ""}, ADMIN, 400),
        ("PUT", "/v1/locations/hq/rooms/board", {**ROOM, "calendarId": "a#b"}, ADMIN, 400),
        ("PUT", "/v1/locations/hq/rooms/board", {**ROOM, "extra": 1}, ADMIN, 400),
        ("PUT", "/v1/locations/hq/rooms/board", {"name": "No calendar"}, ADMIN, 400),
        ("PUT", "/v1/locations/hq/rooms/board", None, ADMIN, 400),
        ("PUT", "/v1/locations/h%20q/rooms/board", ROOM, ADMIN, 400),
        ("PUT", "/v1/locations/hq/rooms/" + "r" * 129, ROOM, ADMIN, 400),
        ("DELETE", "/v1/locations/hq/rooms/b%23oard", None, ADMIN, 400),
        ("DELETE", "/v1/locations/hq/rooms/missing", None, ADMIN, 404),
    ],
    ids=[
        "member-not-admin",
        "admin-of-other-location",
        "delete-admin-of-other-location",
        "put-no-token",
        "delete-no-token",
        "unknown-calendar",
        "calendar-of-other-account",
        "calendar-of-a-stranger",
        "room-of-other-location",
        "unknown-zone",
        "empty-name",
        "bad-calendar-id",
        "extra-field",
        "missing-fields",
        "no-body",
        "bad-location-id",
        "long-room-id",
        "bad-room-id",
        "delete-missing",
    ],
)
def test_refusals_are_problems_and_write_nothing(
    table: Any, repo: Repository, api: Api, case: tuple[str, str, Any, dict[str, Any] | None, int]
) -> None:
    # rules X1, X5: 4xx problem answers, and the table is unchanged
    calendar(repo, "private@cal", "acc-zoe", "zoe")  # zoe is in no location the admin has
    api.put("/v1/locations/hq/rooms/exists", body=ROOM, claims=ADMIN)
    method, path, body, claims, status = case
    before = apigw.snapshot(table)

    got = api.call(method, path, body=body, claims=claims)

    assert got.status == status, got.body
    assert got.content_type == "application/problem+json"
    problem = got.json()
    assert problem["status"] == status
    assert problem["type"].startswith("https://calsync.dev/errors/")
    assert problem["title"] and problem["detail"]
    assert apigw.snapshot(table) == before


def test_conflict_detail_says_what_to_do(repo: Repository, api: Api) -> None:
    # API.md: a clear detail
    got = api.put("/v1/locations/hq/rooms/board", body={**ROOM, "calendarId": "nope@rooms"}, claims=ADMIN)
    assert got.status == 409
    assert got.json()["type"] == "https://calsync.dev/errors/conflict"
    assert "connect the account" in got.json()["detail"]
