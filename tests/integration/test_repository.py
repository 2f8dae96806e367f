"""The repository against a real table (moto AND Amazon DynamoDB Local, built from template.yaml).

Assertions are made on the raw items where it matters ("never written" is proven by reading what
is in the table, not what the repository chooses to return).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest
from botocore.exceptions import ClientError

from calsync.domain.errors import Conflict, StoreUnavailable
from calsync.domain.models import UTC, Occurrence, OwnerKind, OwnerSettings, Provider, Visibility
from calsync.domain.rules import select_for_person, window
from calsync.store import keys
from calsync.store.items import Calendar, Room
from calsync.store.repository import TTL_MARGIN, Repository
from tests.support.template import table_ttl_attribute

NOW = datetime(2025, 3, 10, 9, 30, tzinfo=UTC)  # a Monday; frozen clock for every test here
CAL = "cal-1"
LINK = "https://zoom.us/j/123"


def occ(
    event_id: str,
    start: datetime | None = None,
    hours: float = 1,
    *,
    calendar_id: str = CAL,
    **kw: Any,
) -> Occurrence:
    if "start_date" in kw:
        return Occurrence(Provider.GOOGLE, "acc-1", calendar_id, event_id, kw.pop("title", event_id), **kw)
    start = start or NOW + timedelta(hours=2)
    return Occurrence(
        Provider.GOOGLE,
        "acc-1",
        calendar_id,
        event_id,
        kw.pop("title", f"title {event_id}"),
        start=start,
        end=start + timedelta(hours=hours),
        **kw,
    )


def calendar(subscribers: dict[str, Any], access_role: str = "owner", calendar_id: str = CAL) -> Calendar:
    return Calendar(
        calendar_id=calendar_id,
        account_id="acc-1",
        owner_user_id="alice",
        provider=Provider.GOOGLE,
        name="Work",
        access_role=access_role,  # type: ignore[arg-type]
        subscribers=subscribers,
    )


def raw(table: Any, pk: str) -> list[dict[str, Any]]:
    """Every item of one partition, straight from the table (consistent read)."""
    resp = table.query(
        KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": pk}, ConsistentRead=True
    )
    return sorted(resp["Items"], key=lambda i: i["sk"])


def events_of(table: Any, pk: str) -> list[dict[str, Any]]:
    return [i for i in raw(table, pk) if str(i["sk"]).startswith(keys.EV_PREFIX)]


def all_items(table: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"ConsistentRead": True}
    while True:  # a Scan is fine in a test: it proves what is (not) in the table
        resp = table.scan(**kwargs)
        items.extend(resp["Items"])
        if "LastEvaluatedKey" not in resp:
            return sorted(items, key=lambda i: (i["pk"], i["sk"]))
        kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


@pytest.fixture
def repo(table: Any) -> Repository:
    return Repository(table)


def stored(repo: Repository, cal: Calendar, *occurrences: Occurrence) -> Calendar:
    repo.put_calendar(cal)
    repo.store_occurrences(cal, occurrences)
    return cal


def ws_we(zone: str = "UTC", now: datetime = NOW) -> tuple[datetime, datetime]:
    return window(now, ZoneInfo(zone))


# ---------------------------------------------------------------- fan-out and upsert


def test_fan_out_to_every_subscriber_person_and_room(repo: Repository, table: Any) -> None:
    # storage of S1-S3 results: one calendar copied to every subscriber partition (U1 read = ONE Query)
    cal = calendar({"USER#alice": "primary", "USER#bob": "conflict", "ROOM#r1": "room"})
    occurrences = [occ(f"e{i}", NOW + timedelta(hours=i + 1)) for i in range(3)]
    written = repo.store_occurrences(stored(repo, cal), occurrences)
    assert written == 3 * 3 + 3  # one copy per subscriber and occurrence, plus one index entry each

    for pk in ("USER#alice", "USER#bob", "ROOM#r1"):
        items = events_of(table, pk)
        assert sorted(i["occId"] for i in items) == sorted(o.id for o in occurrences)
    ws, we = ws_we()
    alice = repo.read_owner_events(OwnerKind.USER, "alice", ws, we)
    bob = repo.read_owner_events(OwnerKind.USER, "bob", ws, we)
    room = repo.read_owner_events(OwnerKind.ROOM, "r1", ws, we)
    assert {o.id for o in alice.occurrences} == {o.id for o in occurrences}
    assert {o.id for o in room.occurrences} == {o.id for o in occurrences}
    assert alice.primary_calendar_ids == frozenset({CAL})  # U8 tie-break needs the primary role
    assert bob.primary_calendar_ids == frozenset()
    assert alice.occurrences == sorted(occurrences, key=lambda o: o.start or NOW)  # round trip
    # nobody else got a copy
    assert repo.read_owner_events(OwnerKind.USER, "carol", ws, we).occurrences == []


def test_upsert_is_idempotent(repo: Repository, table: Any) -> None:
    # S6: duplicate notifications never corrupt the stored state
    cal = calendar({"USER#alice": "primary", "ROOM#r1": "room"})
    occurrences = [occ("e1"), occ("e2", NOW + timedelta(days=1), hours=30)]
    stored(repo, cal, *occurrences)
    first = all_items(table)
    repo.store_occurrences(cal, occurrences)
    repo.store_occurrences(cal, list(reversed(occurrences)))
    assert all_items(table) == first
    ws, we = ws_we()
    got = repo.read_owner_events(OwnerKind.USER, "alice", ws, we).occurrences
    assert sorted(o.id for o in got) == sorted(o.id for o in occurrences)  # no duplicates


def test_moved_occurrence_replaces_its_old_copies(repo: Repository, table: Any) -> None:
    # S6: a moved occurrence (same id, new start) leaves no stale copy behind
    cal = calendar({"USER#alice": "primary", "ROOM#r1": "room"})
    before = occ("e1", NOW + timedelta(hours=2), hours=30, original_start="2025-03-10T11:30:00Z")
    stored(repo, cal, before)
    assert len(events_of(table, "USER#alice")) == 2  # 30 h: indexed twice
    moved = occ("e1", NOW + timedelta(days=1, hours=5), hours=1, original_start="2025-03-10T11:30:00Z")
    assert moved.id == before.id
    repo.store_occurrences(cal, [moved])
    for pk in ("USER#alice", "ROOM#r1"):
        items = events_of(table, pk)
        assert [i["sk"] for i in items] == [keys.event_sk(moved.start or NOW, moved.id, 0)]
        assert items[0]["start"] == keys.iso(moved.start or NOW)
    index = table.get_item(Key={"pk": keys.calendar_pk(CAL), "sk": keys.occurrence_index_sk(moved.id)})
    assert index["Item"]["copies"] == [
        ["USER#alice", keys.event_sk(moved.start or NOW, moved.id, 0)],
        ["ROOM#r1", keys.event_sk(moved.start or NOW, moved.id, 0)],
    ]
    ws, we = ws_we()
    got = repo.read_owner_events(OwnerKind.USER, "alice", ws, we).occurrences
    assert got == [moved]


# ---------------------------------------------------------------- reading a window


@pytest.mark.parametrize(
    ("name", "start_offset", "hours"),
    [
        ("started 5 days before, lasts 8 days", timedelta(days=-5), 8 * 24),
        ("started 28 h before the window, lasts 30 h", timedelta(hours=-28), 30),
        ("exactly 24 h, started 23 h before the window", timedelta(hours=-23), 24),
        ("starts in the window, lasts 10 days", timedelta(days=2), 240),
    ],
)
def test_long_events_are_found_for_a_window_they_overlap(
    repo: Repository, name: str, start_offset: timedelta, hours: int
) -> None:
    # U1/U3: an event that began before the window still overlaps it, so the read must return it
    # (the rules then exclude it as long, U3); one Query on the index start must find it
    ws, we = ws_we()
    long_event = occ("long", ws + start_offset, hours=hours)
    cal = stored(repo, calendar({"USER#alice": "primary"}), long_event)
    got = repo.read_owner_events(OwnerKind.USER, "alice", ws, we).occurrences
    assert got == [long_event], name  # once, although it is indexed once per started 24 h
    selection = select_for_person(got, NOW, OwnerSettings(ZoneInfo("UTC"), frozenset({cal.calendar_id})))
    assert [e.occurrence.id for e in selection.listed + selection.excluded] == [long_event.id]


def test_events_that_ended_before_the_window_are_not_read(repo: Repository) -> None:
    # U1: the Query is narrow (an event that ended more than 24 h before the window is not a candidate)
    ws, we = ws_we()
    old = occ("old", ws - timedelta(days=4), hours=48)
    later = occ("later", we + timedelta(hours=1))
    inside = occ("inside", ws + timedelta(hours=10))
    stored(repo, calendar({"USER#alice": "primary"}), old, later, inside)
    got = repo.read_owner_events(OwnerKind.USER, "alice", ws, we).occurrences
    assert [o.id for o in got] == [inside.id]


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago", "UTC"])  # UTC+14, UTC-11
@pytest.mark.parametrize("place", ["first day", "last day"])
def test_all_day_events_are_found_in_extreme_time_zones(repo: Repository, zone: str, place: str) -> None:
    # U1 / U10 (all-day events are placed in the owner's zone): stored once for every zone
    tz = ZoneInfo(zone)
    day = date(2025, 3, 12)
    today = day if place == "first day" else day - timedelta(days=2)
    now = datetime(today.year, today.month, today.day, 0, 30, tzinfo=tz)
    all_day = occ("holiday", start_date=day, end_date=day + timedelta(days=1))
    two_days = occ("offsite", start_date=day, end_date=day + timedelta(days=2))
    cal = stored(repo, calendar({"USER#alice": "primary"}), all_day, two_days)
    ws, we = window(now, tz)
    got = repo.read_owner_events(OwnerKind.USER, "alice", ws, we).occurrences
    assert {o.id for o in got} == {all_day.id, two_days.id}
    selection = select_for_person(got, now, OwnerSettings(tz, frozenset({cal.calendar_id})))
    assert [item.occurrence.id for item in selection.listed] == [all_day.id]
    listed = selection.listed[0]
    assert listed.start == datetime(day.year, day.month, day.day, tzinfo=tz)
    if place == "first day":  # a two-day all-day event is long (U3); on the last day it still overlaps
        assert [(e.occurrence.id, e.rules) for e in selection.excluded] == [(two_days.id, ("U3",))]


# ---------------------------------------------------------------- privacy at storage (R4)


@pytest.mark.parametrize("visibility", [Visibility.PRIVATE, Visibility.CONFIDENTIAL])
def test_r4_private_room_copy_has_no_title_and_no_link_for_reader_access(
    repo: Repository, table: Any, visibility: Visibility
) -> None:
    # rule R4: what may not be shown is never written (asserted on the raw ROOM# item)
    secret = occ("secret", title="Layoffs", visibility=visibility, meeting_link=LINK, organizer="ceo@x.test")
    public = occ("public", NOW + timedelta(hours=3), title="Standup", meeting_link=LINK)
    stored(repo, calendar({"USER#alice": "primary", "ROOM#r1": "room"}, "reader"), secret, public)
    room_items = {i["eventId"]: i for i in events_of(table, "ROOM#r1")}
    assert "title" not in room_items["secret"]
    assert "meetingLink" not in room_items["secret"]
    assert "organizer" not in room_items["secret"]
    assert "Layoffs" not in repr(room_items["secret"])
    assert LINK not in repr(room_items["secret"])
    assert room_items["public"]["title"] == "Standup"  # R4 is about private events only
    assert room_items["public"]["meetingLink"] == LINK
    person = {i["eventId"]: i for i in events_of(table, "USER#alice")}
    assert person["secret"]["title"] == "Layoffs"  # the person's own copy is complete
    assert person["secret"]["meetingLink"] == LINK


@pytest.mark.parametrize("role", ["writer", "owner"])
def test_r4_private_room_copy_keeps_the_link_for_writer_access(
    repo: Repository, table: Any, role: str
) -> None:
    # rule R4: with write access the link stays, the title never does
    secret = occ("secret", title="Layoffs", visibility=Visibility.PRIVATE, meeting_link=LINK)
    stored(repo, calendar({"ROOM#r1": "room"}, role), secret)
    (item,) = events_of(table, "ROOM#r1")
    assert "title" not in item
    assert item["meetingLink"] == LINK


# ---------------------------------------------------------------- unsubscribe and delete


def test_unsubscribe_deletes_the_copies_of_that_subscriber_only(repo: Repository, table: Any) -> None:
    # a room (or person) no longer configured for a calendar keeps nothing of it
    cal = calendar({"USER#alice": "primary", "ROOM#r1": "room"})
    occurrences = [occ("e1"), occ("e2", NOW + timedelta(hours=5), hours=30)]
    stored(repo, cal, *occurrences)
    repo.unsubscribe(CAL, "ROOM#r1")
    assert events_of(table, "ROOM#r1") == []
    assert len(events_of(table, "USER#alice")) == 3
    fresh = repo.get_calendar(CAL)
    assert fresh is not None and fresh.subscribers == {"USER#alice": "primary"}
    for o in occurrences:
        index = table.get_item(Key={"pk": keys.calendar_pk(CAL), "sk": keys.occurrence_index_sk(o.id)})
        assert all(pk == "USER#alice" for pk, _ in index["Item"]["copies"])
    repo.store_occurrences(fresh, occurrences)  # the next sync writes no room copy again
    assert events_of(table, "ROOM#r1") == []


def test_unsubscribe_from_a_calendar_no_longer_stored_still_deletes_copies(
    repo: Repository, table: Any
) -> None:
    # a room whose calendar's account was removed can still be deleted (no raw ValidationException)
    stored(repo, calendar({"USER#alice": "primary", "ROOM#r1": "room"}), occ("e1"))
    table.delete_item(Key={"pk": keys.calendar_pk(CAL), "sk": keys.CALENDAR})
    repo.unsubscribe(CAL, "ROOM#r1")
    assert events_of(table, "ROOM#r1") == []
    assert len(events_of(table, "USER#alice")) == 1
    assert repo.get_calendar(CAL) is None  # and no half calendar item was created
    repo.unsubscribe("never-stored", "ROOM#r1")


def test_subscribe_then_store_copies_to_the_new_subscriber(repo: Repository, table: Any) -> None:
    cal = stored(repo, calendar({"USER#alice": "primary"}), occ("e1"))
    repo.subscribe(CAL, "ROOM#r1", "room")
    fresh = repo.get_calendar(CAL)
    assert fresh is not None and fresh.subscribers == {"USER#alice": "primary", "ROOM#r1": "room"}
    assert cal.subscribers == {"USER#alice": "primary"}
    repo.store_occurrences(fresh, [occ("e1")])
    assert [i["eventId"] for i in events_of(table, "ROOM#r1")] == ["e1"]


def test_delete_occurrence_removes_every_copy_and_the_index(repo: Repository, table: Any) -> None:
    # S6: an event deleted at the provider disappears from every list
    cal = calendar({"USER#alice": "primary", "USER#bob": "conflict", "ROOM#r1": "room"})
    gone, kept = occ("gone", hours=50), occ("kept")
    stored(repo, cal, gone, kept)
    assert repo.delete_occurrence(CAL, gone.id) is True
    for pk in ("USER#alice", "USER#bob", "ROOM#r1"):
        assert [i["occId"] for i in events_of(table, pk)] == [kept.id]
    assert [i["sk"] for i in raw(table, keys.calendar_pk(CAL)) if i["sk"] != keys.CALENDAR] == [
        keys.occurrence_index_sk(kept.id)
    ]
    assert repo.delete_occurrence(CAL, gone.id) is False  # a late duplicate notification changes nothing


# ---------------------------------------------------------------- TTL (S9 backstop) and cleanup keys


def test_ttl_attribute_expires_at_is_on_every_occurrence_item(repo: Repository, table: Any) -> None:
    # S9: DynamoDB TTL on expiresAt = end + 1 day is a backstop behind the cleanup function
    assert table_ttl_attribute() == "expiresAt"
    timed = occ("timed", hours=30)
    all_day = occ("day", start_date=date(2025, 3, 11), end_date=date(2025, 3, 12))
    stored(repo, calendar({"USER#alice": "primary", "ROOM#r1": "room"}), timed, all_day)
    ends = {timed.id: timed.end, all_day.id: datetime(2025, 3, 12, 12, tzinfo=UTC)}  # latest zone: UTC-12
    items = [i for i in all_items(table) if i.get("type") in ("occurrence", "occurrenceIndex")]
    assert len(items) == 2 * 2 + 2 + 2 * 2 + 2
    for item in items:
        end = ends[item["occId"]]
        assert end is not None
        assert int(item["expiresAt"]) == int((end + TTL_MARGIN).timestamp())
        shard = keys.cleanup_shard(item["pk"])
        assert item["gsi1pk"] == keys.end_bucket(end, shard)
        assert item["gsi1sk"] == keys.end_sort(end, item["pk"], item["sk"])


# ---------------------------------------------------------------- profiles and rooms


def test_profile_and_room_round_trip(repo: Repository) -> None:
    assert repo.get_profile("alice") is None
    profile = repo.update_profile("alice", time_zone="Pacific/Kiritimati", display_name="Alice")
    assert (profile.time_zone, profile.display_name) == ("Pacific/Kiritimati", "Alice")
    assert repo.update_profile("alice", display_name="Al").time_zone == "Pacific/Kiritimati"
    room = Room(room_id="r1", location_id="loc-1", name="Blue", account_id="acc-1", calendar_id="cal-r1")
    repo.put_calendar(calendar({}, "writer", calendar_id="cal-r1"))  # the room's calendar is synced first
    repo.put_room(room)
    got = repo.get_room("loc-1", "r1")
    assert got is not None and got.version > 0  # calsync.store.versions: a new room starts high
    assert got.model_copy(update={"version": 0}) == room
    assert repo.list_rooms("loc-1") == ["r1"]
    stored_cal = repo.get_calendar("cal-r1")
    assert stored_cal is not None and stored_cal.subscribers == {"ROOM#loc-1#r1": "room"}
    # docs/adr/0012: a room id is scoped by its location (another location's "r1" is another room)
    repo.put_room(room.model_copy(update={"location_id": "loc-2", "name": "Green"}))
    first, other = repo.get_room("loc-1", "r1"), repo.get_room("loc-2", "r1")
    assert first is not None and first.model_copy(update={"version": 0}) == room
    assert other is not None and (other.location_id, other.name) == ("loc-2", "Green")
    assert repo.find_rooms(["loc-1", "loc-2", "loc-3"], "r1") == [first, other]


# ---------------------------------------------------------------- ClientError mapping


def test_missing_table_is_store_unavailable(table: Any) -> None:
    # X5 / S8: a store failure is a 503 answer, never a raw ClientError
    resource = boto3.resource(
        "dynamodb",
        region_name=table.meta.client.meta.region_name,
        endpoint_url=table.meta.client.meta.endpoint_url,
    )
    gone = Repository(resource.Table("calsync-no-such-table"))
    with pytest.raises(StoreUnavailable) as info:
        gone.get_profile("alice")
    assert isinstance(info.value.__cause__, ClientError)
    assert info.value.__cause__.response["Error"]["Code"] == "ResourceNotFoundException"
    ws, we = ws_we()
    with pytest.raises(StoreUnavailable):
        gone.read_owner_events(OwnerKind.USER, "alice", ws, we)


def test_conditional_failure_is_conflict(repo: Repository) -> None:
    # subscribing to a calendar that is not stored fails its condition: Conflict, nothing written
    with pytest.raises(Conflict) as info:
        repo.subscribe("no-such-cal", "USER#alice", "primary")
    assert isinstance(info.value.__cause__, ClientError)
    assert repo.get_calendar("no-such-cal") is None


def test_cancelled_transaction_on_a_condition_is_conflict(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a room registered meanwhile by someone else (the read saw nothing): the transaction's
    # condition fails, and that is a Conflict, not a 503
    room = Room(room_id="r1", location_id="loc-1", name="Blue", account_id="acc-1", calendar_id="cal-r1")
    repo.put_calendar(calendar({}, "writer", calendar_id="cal-r1"))
    repo.put_room(room)
    monkeypatch.setattr(repo, "get_room", lambda location_id, room_id: None)
    with pytest.raises(Conflict):
        repo.put_room(room.model_copy(update={"name": "Red"}))
    monkeypatch.undo()
    got = repo.get_room("loc-1", "r1")
    assert got is not None and got.model_copy(update={"version": 0}) == room


class _FailingTable:
    """A table whose every call fails with the given error code (for codes a local store never returns)."""

    name = "t"

    def __init__(self, code: str) -> None:
        self.code = code

    def get_item(self, **_: Any) -> Any:
        raise ClientError({"Error": {"Code": self.code, "Message": "x"}}, "GetItem")


@pytest.mark.parametrize(
    "code", ["ProvisionedThroughputExceededException", "ThrottlingException", "InternalServerError"]
)
def test_throttling_is_store_unavailable(code: str) -> None:
    # S8: throttling is retried later (503), not a bug
    with pytest.raises(StoreUnavailable):
        Repository(_FailingTable(code)).get_profile("alice")  # type: ignore[arg-type]


def test_validation_errors_are_not_hidden() -> None:
    # a ValidationException is a bug in calsync: it is not turned into a 503
    with pytest.raises(ClientError):
        Repository(_FailingTable("ValidationException")).get_profile("alice")  # type: ignore[arg-type]


# ---- R8: a new subscriber is filled from the store (Repository.backfill) ----------------------------
def test_backfill_copies_every_occurrence_and_index_chunk_in_pages(table: Any) -> None:
    # more occurrences than one BatchGetItem holds (100), one of them spanning three index chunks;
    # the room's copies are R4-filtered and listed in the index, so later updates replace them
    repo = Repository(table)
    cal = calendar({"USER#alice": "primary"}, access_role="reader")
    repo.put_calendar(cal)
    many = [occ(f"e{n:03d}", NOW + timedelta(minutes=n)) for n in range(230)]
    many.append(occ("long", NOW, hours=50))
    many.append(occ("secret", NOW, title="Merger", visibility=Visibility.PRIVATE, meeting_link=LINK))
    repo.store_occurrences(cal, many)
    repo.subscribe(CAL, "ROOM#r1", "room")
    subscribed = repo.get_calendar(CAL)
    assert subscribed is not None

    done = repo.backfill(subscribed, "ROOM#r1", "room")

    assert (done.copied, done.missing) == (232, 0)
    person, room = events_of(table, "USER#alice"), events_of(table, "ROOM#r1")
    assert [i["sk"] for i in room] == [i["sk"] for i in person]  # 234 items: "long" has three chunks
    assert len(room) == 234
    secret = [i for i in room if i["eventId"] == "secret"]
    assert secret and all("title" not in i and "meetingLink" not in i for i in secret)  # R4 on write
    assert all(i["role"] == "room" for i in room)
    assert all(
        i["gsi1pk"].startswith("END#") and "ROOM#r1" in i["gsi1sk"] for i in room
    )  # cleanup finds them
    # idempotent: nothing copied twice
    assert repo.backfill(subscribed, "ROOM#r1", "room").copied == 0
    # a time budget stops it between pages of 100 (the rest is left to a full sync)
    repo.subscribe(CAL, "ROOM#r2", "room")
    two = repo.get_calendar(CAL)
    assert two is not None
    budget = iter([True, False])
    cut = repo.backfill(two, "ROOM#r2", "room", in_time=lambda: next(budget))
    assert (cut.copied, cut.incomplete, cut.complete) == (100, True, False)
    repo.unsubscribe(CAL, "ROOM#r2")
    assert len(events_of(table, "ROOM#r1")) == 234
    # the index knows the copies: a shorter "long" leaves no stale chunk in the room
    repo.store_occurrences(subscribed, [occ("long", NOW, hours=1)])
    assert len([i for i in events_of(table, "ROOM#r1") if i["eventId"] == "long"]) == 1
    # and unsubscribing deletes every copy
    repo.unsubscribe(CAL, "ROOM#r1")
    assert events_of(table, "ROOM#r1") == []


def test_backfill_never_gives_a_person_a_rooms_filtered_copy(table: Any) -> None:
    # only a room uses the calendar: its copies lack private titles (R4), so a person joining later
    # gets nothing from the store; each such occurrence is counted missing (a fetch must fill it)
    repo = Repository(table)
    cal = calendar({"ROOM#r1": "room"})
    repo.put_calendar(cal)
    repo.store_occurrences(cal, [occ("a"), occ("secret", title="Merger", visibility=Visibility.PRIVATE)])
    repo.subscribe(CAL, "USER#alice", "conflict")
    subscribed = repo.get_calendar(CAL)
    assert subscribed is not None

    done = repo.backfill(subscribed, "USER#alice", "conflict")

    assert (done.copied, done.missing) == (0, 2)
    assert events_of(table, "USER#alice") == []
    # a second room may copy the first room's copies (already filtered with the same access role)
    repo.subscribe(CAL, "ROOM#r2", "room")
    again = repo.get_calendar(CAL)
    assert again is not None
    assert repo.backfill(again, "ROOM#r2", "room").copied == 2
