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
    room_items = _partition(table, keys.room_pk("board"))
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
    assert len(_partition(table, keys.room_pk("board"))) == len(room_items)  # no stale copy left


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
    assert _partition(table, keys.room_pk("board"))

    assert api.delete("/v1/locations/hq/rooms/board", claims=ADMIN).status == 204
    assert _partition(table, keys.room_pk("board")) == []
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
    assert _partition(table, keys.room_pk("board")) == []
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
    assert _partition(table, keys.room_pk("board")) == []
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
