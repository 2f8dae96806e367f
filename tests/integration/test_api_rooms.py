"""PUT and DELETE /v1/locations/{locationId}/rooms/{roomId} (admins of the location only)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from calsync.domain.models import Provider, Visibility
from calsync.store import keys
from calsync.store.repository import Repository
from calsync.sync.jobs import SyncJob
from tests.support import apigw
from tests.support.apigw import Api, api_on, calendar, occurrence

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


class Queues(dict[Provider, Any]):
    """Every provider's sync queue, recording the jobs sent (R8)."""

    def __init__(self) -> None:
        self.sent: list[tuple[Provider, SyncJob]] = []
        super().__init__({p: (lambda job, p=p: self.sent.append((p, job))) for p in Provider})

    def calendars(self) -> list[str]:
        return [job.calendar_id for _, job in self.sent]


@pytest.fixture
def queues() -> Queues:
    return Queues()


@pytest.fixture
def api(table: Any, queues: Queues) -> Iterator[Api]:
    with api_on(table, NOW, queues) as api:
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
    assert calendar_item.subscribers == {keys.room_pk("hq", "board"): "room"}

    got = api.put("/v1/locations/hq/rooms/board", body={**ROOM, "name": "Boardroom 2"}, claims=ADMIN)
    assert got.status == 200
    room = repo.get_room("hq", "board")
    assert room is not None
    assert room.name == "Boardroom 2"


# ---- R9: a calendar becomes a room only with its owner's consent -----------------------------------
IDA = apigw.claims("ida", ["hq"])
HUDDLE = {**ROOM, "name": "Huddle", "accountId": "acc-ida", "calendarId": "ida@home"}
CONSENT = "/v1/me/calendars/ida@home/room-consent"


def _idas_calendar(repo: Repository, api: Api) -> None:
    """ida (a member of hq, not an admin) has her personal calendar synced, with a meeting in it."""
    cal = calendar(repo, "ida@home", "acc-ida", "ida", subscribers={"USER#ida": "primary"})
    repo.store_occurrences(cal, [occurrence(cal, "doctor", "Doctor: results", at(20, 13), at(20, 14))])
    api.get("/v1/me/profile", claims=IDA)  # ida's token: member of hq


def test_an_admin_cannot_make_a_members_personal_calendar_a_room(
    table: Any, repo: Repository, api: Api, queues: Queues
) -> None:
    # R9 (issue 13 point 1): before, 201 and every member of hq read ida's meetings
    _idas_calendar(repo, api)
    before = apigw.snapshot(table)

    got = api.put("/v1/locations/hq/rooms/spy", body=HUDDLE, claims=ADMIN)

    assert got.status == 409, got.body
    assert got.content_type == "application/problem+json"
    assert got.json()["type"] == "https://calsync.dev/errors/room-consent-required"
    assert "room-consent" in got.json()["detail"]  # says what the owner can do
    assert apigw.snapshot(table) == before and queues.sent == []
    assert api.get("/v1/rooms/spy/meetings", claims=IDA).status == 404


def test_the_owner_marks_her_calendar_as_a_room_calendar(
    table: Any, repo: Repository, api: Api, queues: Queues
) -> None:
    # R9: with the owner's mark, an admin of her location may make it a room; the answer is 204
    _idas_calendar(repo, api)
    assert api.put(CONSENT, claims=IDA).status == 204
    assert api.put(CONSENT, claims=IDA).status == 204  # idempotent
    stored = repo.get_calendar("ida@home")
    assert stored is not None and stored.room_consent

    assert api.put("/v1/locations/hq/rooms/huddle", body=HUDDLE, claims=ADMIN).status == 201
    got = api.get("/v1/rooms/huddle/meetings", claims=apigw.claims("ann", ["hq"]))
    assert [m["title"] for m in got.json()["meetings"]] == ["Doctor: results"]
    # ... and only where she is a member: an admin of a location she is not in still cannot
    lon_admin = apigw.claims("lena", ["lon"], admin_of=["lon"])
    got = api.put("/v1/locations/lon/rooms/huddle", body=HUDDLE, claims=lon_admin)
    assert got.status == 409 and got.json()["type"] == "https://calsync.dev/errors/conflict"


def test_marking_remembers_the_owners_locations(repo: Repository, api: Api) -> None:
    # R9 with X1: the admin's check reads the owner's locations; marking is a call of the owner's own
    calendar(repo, "ida@home", "acc-ida", "ida")  # ida has called nothing on this function before
    assert api.put(CONSENT, claims=IDA).status == 204
    assert api.put("/v1/locations/hq/rooms/huddle", body=HUDDLE, claims=ADMIN).status == 201


def test_the_owner_registers_the_room_herself(repo: Repository, api: Api) -> None:
    # R9: "the owner registers it": an admin's own calendar needs no mark
    _idas_calendar(repo, api)
    ida_admin = apigw.claims("ida", ["hq"], admin_of=["hq"])
    assert api.put("/v1/locations/hq/rooms/huddle", body=HUDDLE, claims=ida_admin).status == 201
    room = repo.get_room("hq", "huddle")
    assert room is not None and room.registered_by == "ida"


@pytest.mark.parametrize(
    "case",
    [
        ("PUT", CONSENT, ADMIN, 404),  # not hank's calendar: as if it did not exist
        ("DELETE", CONSENT, ADMIN, 404),
        ("PUT", "/v1/me/calendars/nope@home/room-consent", IDA, 404),
        ("PUT", CONSENT, None, 401),
        ("PUT", "/v1/me/calendars/a%23b/room-consent", IDA, 400),
    ],
    ids=["others-calendar", "withdraw-others", "unknown-calendar", "no-token", "bad-calendar-id"],
)
def test_only_the_owner_marks_a_calendar(
    table: Any, repo: Repository, api: Api, case: tuple[str, str, dict[str, Any] | None, int]
) -> None:
    # R9, X1, X5: problem answers, nothing written
    method, path, claims, status = case
    _idas_calendar(repo, api)
    before = apigw.snapshot(table)
    got = api.call(method, path, claims=claims)
    assert got.status == status, got.body
    assert got.content_type == "application/problem+json"
    assert apigw.snapshot(table) == before


def test_withdrawing_consent_deletes_the_rooms_admins_made(
    table: Any, repo: Repository, api: Api, queues: Queues
) -> None:
    # R9: the owner takes the mark back: the rooms an admin made of her calendar go (copies too), the
    # calendar keeps syncing for her; a room she registered herself stays
    _idas_calendar(repo, api)
    assert api.put(CONSENT, claims=IDA).status == 204
    assert api.put("/v1/locations/hq/rooms/huddle", body=HUDDLE, claims=ADMIN).status == 201
    ida_admin_lon = apigw.claims("ida", ["hq", "lon"], admin_of=["lon"])
    assert api.put("/v1/locations/lon/rooms/desk", body=HUDDLE, claims=ida_admin_lon).status == 201
    assert _partition(table, keys.room_pk("hq", "huddle"))

    assert api.delete(CONSENT, claims=IDA).status == 204

    assert repo.get_room("hq", "huddle") is None and repo.list_rooms("hq") == []
    assert _partition(table, keys.room_pk("hq", "huddle")) == []
    assert api.get("/v1/rooms/huddle/meetings", claims=IDA).status == 404
    assert repo.get_room("lon", "desk") is not None
    stored = repo.get_calendar("ida@home")
    assert stored is not None and not stored.room_consent
    assert stored.subscribers == {"USER#ida": "primary", keys.room_pk("lon", "desk"): "room"}
    # and without the mark, the admin cannot register it again
    assert api.put("/v1/locations/hq/rooms/huddle", body=HUDDLE, claims=ADMIN).status == 409


def _legacy_room(table: Any, repo: Repository, room_id: str, location_id: str, calendar_id: str) -> None:
    """A room as stored before docs/adr/0012: ``ROOM#<roomId>``, subscribed, with its copies."""
    table.put_item(
        Item={
            "pk": keys.legacy_room_pk(room_id),
            "sk": keys.ROOM,
            "type": "room",
            "locationId": location_id,
            "name": "Old",
            "timeZone": "UTC",
            "accountId": "acc-ida",
            "calendarId": calendar_id,
        }
    )
    table.put_item(Item={"pk": keys.location_pk(location_id), "sk": keys.location_room_sk(room_id)})
    repo.subscribe(calendar_id, keys.legacy_room_pk(room_id), "room")
    cal = repo.get_calendar(calendar_id)
    assert cal is not None
    repo.store_occurrences(cal, [occurrence(cal, "doctor", "Doctor: results", at(20, 13), at(20, 14))])


def test_rooms_stored_before_consent_are_retired(table: Any, repo: Repository, api: Api) -> None:
    # docs/adr/0012: a room registered before R9 has no consent on record: it is never served again;
    # registering its id again (with consent) or deleting it removes it, its copies and its subscription
    _idas_calendar(repo, api)
    _legacy_room(table, repo, "spy", "hq", "ida@home")
    _legacy_room(table, repo, "old", "hq", "ida@home")
    assert _partition(table, keys.legacy_room_pk("spy"))
    assert api.get("/v1/rooms/spy/meetings", claims=IDA).status == 404

    assert api.delete("/v1/locations/hq/rooms/spy", claims=ADMIN).status == 204
    assert _partition(table, keys.legacy_room_pk("spy")) == []
    assert table.get_item(Key={"pk": keys.legacy_room_pk("spy"), "sk": keys.ROOM}).get("Item") is None
    assert api.delete("/v1/locations/hq/rooms/spy", claims=ADMIN).status == 404
    assert repo.list_rooms("hq") == ["old"]

    assert api.put("/v1/locations/hq/rooms/old", body=HUDDLE, claims=ADMIN).status == 409  # no consent
    assert api.put(CONSENT, claims=IDA).status == 204
    assert api.put("/v1/locations/hq/rooms/old", body=HUDDLE, claims=ADMIN).status == 201
    assert _partition(table, keys.legacy_room_pk("old")) == []
    stored = repo.get_calendar("ida@home")
    assert stored is not None
    assert stored.subscribers == {"USER#ida": "primary", keys.room_pk("hq", "old"): "room"}
    assert api.get("/v1/rooms/old/meetings", claims=IDA).status == 200


def test_the_owner_retires_legacy_rooms_on_her_calendar(table: Any, repo: Repository, api: Api) -> None:
    # R9: "no" from the owner also removes a room stored before consent existed
    _idas_calendar(repo, api)
    _legacy_room(table, repo, "spy", "hq", "ida@home")
    assert api.delete(CONSENT, claims=IDA).status == 204
    assert _partition(table, keys.legacy_room_pk("spy")) == []
    assert repo.list_rooms("hq") == []
    stored = repo.get_calendar("ida@home")
    assert stored is not None and stored.subscribers == {"USER#ida": "primary"}


# ---- rooms do not tell other locations that they exist (issue 13 point 4) ---------------------------
LON_ADMIN = apigw.claims("lena", ["lon"], admin_of=["lon"])


def test_another_locations_room_answers_as_a_missing_one(table: Any, repo: Repository, api: Api) -> None:
    # X1: the same answer for a room of a location the caller is not in and for no room at all
    assert api.put("/v1/locations/hq/rooms/board", body=ROOM, claims=ADMIN).status == 201
    before = apigw.snapshot(table)
    other = api.get("/v1/rooms/board/meetings", claims=LON_ADMIN)
    missing = api.get("/v1/rooms/nowhere/meetings", claims=LON_ADMIN)
    assert (
        (other.status, other.content_type)
        == (missing.status, missing.content_type)
        == (
            404,
            "application/problem+json",
        )
    )
    assert other.json() == missing.json()
    named = api.get("/v1/rooms/board/meetings", query={"locationId": "hq"}, claims=LON_ADMIN)
    assert named.status == 404 and named.json() == missing.json()
    other = api.delete("/v1/locations/lon/rooms/board", claims=LON_ADMIN)
    missing = api.delete("/v1/locations/lon/rooms/nowhere", claims=LON_ADMIN)
    assert other.status == missing.status == 404 and other.json() == missing.json()
    assert apigw.snapshot(table) == before


def test_room_ids_are_scoped_by_location(repo: Repository, api: Api, queues: Queues) -> None:
    # issue 13 point 4: before, lon's admin got 409 "room id already taken"; now each location has its
    # own "board", and a member of both names the one she means
    calendar(repo, "lon-board@rooms", "acc-lena", "lena")
    assert api.put("/v1/locations/hq/rooms/board", body=ROOM, claims=ADMIN).status == 201
    lon_room = {**ROOM, "name": "London board", "accountId": "acc-lena", "calendarId": "lon-board@rooms"}
    got = api.put("/v1/locations/lon/rooms/board", body=lon_room, claims=LON_ADMIN)
    assert got.status == 201, got.body
    assert got.json()["locationId"] == "lon"
    hq_room, lon = repo.get_room("hq", "board"), repo.get_room("lon", "board")
    assert hq_room is not None and hq_room.name == "Board room"
    assert lon is not None and lon.name == "London board"

    assert api.get("/v1/rooms/board/meetings", claims=apigw.claims("ann", ["hq"])).json()["timeZone"] == (
        "Europe/London"
    )
    both = apigw.claims("max", ["hq", "lon"])
    got = api.get("/v1/rooms/board/meetings", claims=both)
    assert got.status == 409 and "locationId" in got.json()["detail"]
    assert api.get("/v1/rooms/board/meetings", query={"locationId": "lon"}, claims=both).status == 200
    assert api.get("/v1/rooms/board/meetings", query={"locationId": "x#y"}, claims=both).status == 400

    assert api.delete("/v1/locations/lon/rooms/board", claims=LON_ADMIN).status == 204
    assert repo.get_room("hq", "board") == hq_room  # hq's room is another room
    assert api.get("/v1/rooms/board/meetings", claims=both).status == 200


def test_admin_deletes_a_room(repo: Repository, api: Api) -> None:
    # API.md DELETE → 204; then 404
    api.put("/v1/locations/hq/rooms/board", body=ROOM, claims=ADMIN)
    got = api.delete("/v1/locations/hq/rooms/board", claims=ADMIN)
    assert got.status == 204
    assert got.body == ""
    assert repo.get_room("hq", "board") is None
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


# ---- R8: a room syncs on its own ------------------------------------------------------------------
def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def _partition(table: Any, pk: str) -> list[dict[str, Any]]:
    return table.query(
        KeyConditionExpression="pk = :pk AND begins_with(sk, :ev)",
        ExpressionAttributeValues={":pk": pk, ":ev": "EV#"},
        ConsistentRead=True,
    )["Items"]


def test_room_on_a_calendar_nobody_uses_starts_its_sync(repo: Repository, api: Api, queues: Queues) -> None:
    # R8: registering the room puts its calendar's sync job on the calendar's provider queue (the
    # worker then registers it for polling / opens its push channel, as for a person's calendar)
    assert api.put("/v1/locations/hq/rooms/board", body=ROOM, claims=ADMIN).status == 201
    assert queues.sent == [
        (
            Provider.GOOGLE,
            SyncJob(
                calendar_id="board@rooms", user_id="hank", account_id="acc-hank", reason="config", full=True
            ),
        )
    ]


def test_room_on_an_already_synced_calendar_shows_its_events_at_once(
    table: Any, repo: Repository, api: Api
) -> None:
    # R8 with R4: what the store holds of the calendar (a person's primary) is copied to the room at
    # once, privacy applied as on write; later syncs then update the room's copies like the person's
    cal = calendar(
        repo, "board@rooms", "acc-hank", "hank", access_role="reader", subscribers={"USER#hank": "primary"}
    )
    link = "https://meet.calsync.test/secret"
    secret = occurrence(
        cal, "secret", "Acquisition", at(20, 11), at(20, 12), visibility=Visibility.PRIVATE, meeting_link=link
    )
    town = occurrence(
        cal, "town", "Town hall", at(20, 13), at(20, 14), meeting_link="https://meet.calsync.test/t"
    )
    offsite = occurrence(
        cal, "offsite", "Offsite", at(19, 9), at(22, 9), meeting_link="https://meet.calsync.test/o"
    )
    repo.store_occurrences(cal, [secret, town, offsite])

    assert api.put("/v1/locations/hq/rooms/board", body=ROOM, claims=ADMIN).status == 201

    got = api.get("/v1/rooms/board/meetings", claims=ADMIN)
    assert got.status == 200, got.body
    shown = {(m["title"], m["meetingLink"], m["private"]) for m in got.json()["meetings"]}
    assert shown == {
        (None, None, True),  # R4: no title, and no link (calsync only reads this calendar)
        ("Town hall", "https://meet.calsync.test/t", False),
        ("Offsite", "https://meet.calsync.test/o", False),
    }
    room_items = _partition(table, keys.room_pk("hq", "board"))
    assert len(room_items) == len(_partition(table, keys.user_pk("hank")))  # every index chunk too
    assert "Acquisition" not in str(room_items) and link not in str(room_items)  # never written

    # a later sync moves the town hall: the room's copy moves with it (the index knows the copy)
    moved = occurrence(cal, "town", "Town hall", at(20, 15), at(20, 16))
    assert moved.id == town.id
    now_subscribed = repo.get_calendar("board@rooms")  # what a sync reads: the room is a subscriber
    assert now_subscribed is not None
    repo.store_occurrences(now_subscribed, [moved])
    starts = sorted(m["start"] for m in api.get("/v1/rooms/board/meetings", claims=ADMIN).json()["meetings"])
    assert "2026-11-20T15:00:00Z" in starts and "2026-11-20T13:00:00Z" not in starts
    assert len(_partition(table, keys.room_pk("hq", "board"))) == len(room_items)  # no stale copy left


def test_putting_a_room_again_copies_nothing_twice(
    table: Any, repo: Repository, api: Api, queues: Queues
) -> None:
    # R8: PUT is idempotent (a repeated PUT also re-sends the sync job, so that a failed start heals)
    cal = calendar(repo, "board@rooms", "acc-hank", "hank", subscribers={"USER#hank": "primary"})
    repo.store_occurrences(cal, [occurrence(cal, "town", "Town hall", at(20, 13), at(20, 14))])
    api.put("/v1/locations/hq/rooms/board", body=ROOM, claims=ADMIN)
    before = apigw.snapshot(table)
    assert api.put("/v1/locations/hq/rooms/board", body=ROOM, claims=ADMIN).status == 200
    assert apigw.snapshot(table) == before
    assert queues.calendars() == ["board@rooms", "board@rooms"]


def test_deleting_a_room_stops_its_sync_when_nobody_else_uses_the_calendar(
    table: Any, repo: Repository, api: Api, queues: Queues
) -> None:
    # R8: the room's copies go, and its calendar's worker is asked to stop (it forgets the sync
    # state and poll entry of a calendar without subscribers)
    cal = calendar(repo, "board@rooms", "acc-hank", "hank")
    api.put("/v1/locations/hq/rooms/board", body=ROOM, claims=ADMIN)
    repo.store_occurrences(
        repo.get_calendar("board@rooms") or cal,
        [occurrence(cal, "town", "Town hall", at(20, 13), at(20, 14))],
    )
    assert _partition(table, keys.room_pk("hq", "board"))

    assert api.delete("/v1/locations/hq/rooms/board", claims=ADMIN).status == 204
    assert _partition(table, keys.room_pk("hq", "board")) == []
    stored = repo.get_calendar("board@rooms")
    assert stored is not None and stored.subscribers == {}
    assert queues.calendars() == ["board@rooms", "board@rooms"]  # started, then asked to stop


def test_deleting_a_room_keeps_the_sync_a_person_still_uses(
    table: Any, repo: Repository, api: Api, queues: Queues
) -> None:
    # R8: "unless a person still uses the calendar"
    cal = calendar(repo, "board@rooms", "acc-hank", "hank", subscribers={"USER#hank": "conflict"})
    repo.store_occurrences(cal, [occurrence(cal, "town", "Town hall", at(20, 13), at(20, 14))])
    api.put("/v1/locations/hq/rooms/board", body=ROOM, claims=ADMIN)
    assert api.delete("/v1/locations/hq/rooms/board", claims=ADMIN).status == 204
    assert queues.calendars() == ["board@rooms"]  # only the start: nothing to stop
    assert _partition(table, keys.room_pk("hq", "board")) == []
    assert len(_partition(table, keys.user_pk("hank"))) == 1


def test_moving_a_room_to_another_calendar(table: Any, repo: Repository, api: Api, queues: Queues) -> None:
    # R8: the old calendar loses the room (and its sync, nobody else using it); the new one fills it
    calendar(repo, "board@rooms", "acc-hank", "hank")
    other = calendar(repo, "annex@rooms", "acc-hank", "hank", subscribers={"USER#hank": "conflict"})
    repo.store_occurrences(other, [occurrence(other, "retro", "Retro", at(20, 15), at(20, 16))])
    api.put("/v1/locations/hq/rooms/board", body=ROOM, claims=ADMIN)
    got = api.put("/v1/locations/hq/rooms/board", body={**ROOM, "calendarId": "annex@rooms"}, claims=ADMIN)
    assert got.status == 200, got.body
    assert queues.calendars() == ["board@rooms", "board@rooms", "annex@rooms"]
    titles = [m["title"] for m in api.get("/v1/rooms/board/meetings", claims=ADMIN).json()["meetings"]]
    assert titles == ["Retro"]


def test_a_room_whose_copy_runs_out_of_time_is_filled_by_the_full_sync(
    table: Any, repo: Repository, api: Api, queues: Queues
) -> None:
    # R8 within Lambda's time budget: when the request has no time left for the copy, the store's
    # etags of the calendar are forgotten so that the full sync queued for the room fetches it all
    from calsync.store.sync_state import ResourceEntry, SyncStateStore

    cal = calendar(repo, "board@rooms", "acc-hank", "hank", subscribers={"USER#hank": "primary"})
    town = occurrence(cal, "town", "Town hall", at(20, 13), at(20, 14))
    repo.store_occurrences(cal, [town])
    state = SyncStateStore(table)
    state.put_resource("board@rooms", ResourceEntry(key="town", etag='"1"', occ_ids=[town.id]))

    class Late(apigw.LambdaContext):
        def get_remaining_time_in_millis(self) -> int:
            return 2_500  # under the API function's reserve

    api.context = Late()
    assert api.put("/v1/locations/hq/rooms/board", body=ROOM, claims=ADMIN).status == 201
    assert _partition(table, keys.room_pk("hq", "board")) == []
    assert [e.etag for e in state.list_resources("board@rooms")] == [""]
    assert [(job.calendar_id, job.full) for _, job in queues.sent] == [("board@rooms", True)]


def test_the_api_function_sends_each_providers_job_to_its_queue(
    moto_table: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # R8 wiring (functions/api/app.py, template.yaml): CalDAV and Google calendars get a calendar job
    # on their provider's FIFO queue (group = the calendar), Microsoft a mailbox job (group = account)
    import json

    import boto3

    sqs = boto3.client("sqs", region_name="eu-west-1")
    urls = {}
    for provider in Provider:
        urls[provider] = sqs.create_queue(
            QueueName=f"{provider.value}-sync.fifo", Attributes={"FifoQueue": "true"}
        )["QueueUrl"]
        monkeypatch.setenv(f"{provider.value.upper()}_SYNC_QUEUE_URL", urls[provider])
    repo = Repository(moto_table)
    for provider in Provider:
        calendar(repo, f"{provider.value}@rooms", f"acc-{provider.value}", "hank", provider=provider)
    with api_on(moto_table, NOW) as api:
        for provider in Provider:
            body = {**ROOM, "accountId": f"acc-{provider.value}", "calendarId": f"{provider.value}@rooms"}
            got = api.put(f"/v1/locations/hq/rooms/{provider.value}", body=body, claims=ADMIN)
            assert got.status == 201, got.body

    def received(provider: Provider) -> list[tuple[str, dict[str, Any]]]:
        msgs = sqs.receive_message(
            QueueUrl=urls[provider], MaxNumberOfMessages=10, AttributeNames=["MessageGroupId"]
        ).get("Messages", [])
        return [(m["Attributes"]["MessageGroupId"], json.loads(m["Body"])) for m in msgs]

    for provider in (Provider.CALDAV, Provider.GOOGLE):
        [(group, job)] = received(provider)
        assert group == f"{provider.value}@rooms"
        assert (job["calendarId"], job["accountId"], job["reason"], job["full"]) == (
            f"{provider.value}@rooms",
            f"acc-{provider.value}",
            "config",
            True,
        )
    [(group, mailbox)] = received(Provider.MICROSOFT)
    assert group == "acc-microsoft"
    assert (mailbox["calendarIds"], mailbox["action"], mailbox["full"]) == (["microsoft@rooms"], "sync", True)
