"""Rules R1-R7 (meetings of a room) against ``select_for_room``, each with a frozen ``now``."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from calsync.domain.models import UTC, Occurrence, OwnerSettings, Status, Visibility
from calsync.domain.privacy import for_room
from calsync.domain.rules import Selection, select_for_room
from tests.support.builders import (
    LEGACY_LINK,
    LINK_A,
    LINK_B,
    all_day,
    at,
    excluded_rules,
    listed_ids,
    timed,
)

NOW = at("2026-06-10T12:00:00Z")
ROOM = OwnerSettings()


def room(occurrences: list[Occurrence], now: datetime = NOW, owner: OwnerSettings = ROOM) -> Selection:
    return select_for_room(occurrences, now, owner)


def test_window_in_the_room_zone() -> None:
    # rule R1: as U1, in the room's time zone (Tokyo, UTC+9, no DST)
    tokyo = OwnerSettings(time_zone=ZoneInfo("Asia/Tokyo"))
    now = at("2026-06-10T16:00:00Z")  # 01:00 on 2026-06-11 in Tokyo
    ended_at_local_midnight = timed("2026-06-10T14:30:00Z", "2026-06-10T15:00:00Z", title="a")
    in_progress = timed("2026-06-10T15:30:00Z", "2026-06-10T16:30:00Z", title="b")
    last_second = timed("2026-06-13T14:59:59Z", duration=timedelta(hours=1), title="c")
    at_window_end = timed("2026-06-13T15:00:00Z", duration=timedelta(hours=1), title="d")
    selection = room([ended_at_local_midnight, in_progress, last_second, at_window_end], now, tokyo)
    assert selection.window_start.astimezone(UTC) == at("2026-06-10T15:00:00Z")
    assert selection.window_end.astimezone(UTC) == at("2026-06-13T15:00:00Z")
    assert listed_ids(selection) == [in_progress.id, last_second.id]
    assert selection.excluded == []


def test_ended_exactly_61_minutes_ago_stays_one_second_more_is_excluded() -> None:
    # rule R2
    stays = timed(NOW - timedelta(hours=1, minutes=30), NOW - timedelta(minutes=61), title="a")
    gone = timed(NOW - timedelta(hours=1, minutes=30), NOW - timedelta(minutes=61, seconds=1), title="b")
    selection = room([stays, gone])
    assert listed_ids(selection) == [stays.id]
    assert excluded_rules(selection) == {gone.id: {"R2"}}


def test_long_event_with_link_stays_without_link_is_excluded() -> None:
    # rule R3: over 24 h is left out only without a meeting link
    long_link = timed("2026-06-10T08:00:00Z", duration=timedelta(hours=24, seconds=1), meeting_link=LINK_A)
    long_plain = timed("2026-06-10T08:00:00Z", duration=timedelta(hours=24, seconds=1), title="Blocked")
    exactly_24 = timed("2026-06-10T09:00:00Z", duration=timedelta(hours=24), title="Day")
    selection = room([long_link, long_plain, exactly_24])
    assert listed_ids(selection) == [long_link.id, exactly_24.id]
    assert excluded_rules(selection) == {long_plain.id: {"R3"}}


def test_multi_day_all_day_event_without_link_is_excluded() -> None:
    # rule R3: an all-day event of two days counts as long
    one = all_day("2026-06-10", title="Today")
    two = all_day("2026-06-10", days=2, title="Renovation")
    two_with_link = all_day("2026-06-10", days=2, title="Hackathon", meeting_link=LINK_A)
    selection = room([one, two, two_with_link])
    assert set(listed_ids(selection)) == {one.id, two_with_link.id}
    assert excluded_rules(selection) == {two.id: {"R3"}}


def test_private_event_stored_for_room_is_listed_without_title() -> None:
    # rule R4: a private event is listed, but without title (privacy applied when storing)
    private = for_room(
        timed("2026-06-10T14:00:00Z", title="Salary talk", visibility=Visibility.PRIVATE), "reader"
    )
    selection = room([private])
    (listed,) = selection.listed
    assert listed.occurrence.title is None


def test_five_events_two_links_first_then_one_without() -> None:
    # rule R6: at most 3; events with a link first, each group by start; the rest excluded as R6
    plain_1 = timed("2026-06-10T13:00:00Z", title="p1")
    plain_2 = timed("2026-06-10T14:00:00Z", title="p2")
    plain_3 = timed("2026-06-10T15:00:00Z", title="p3")
    link_late = timed("2026-06-11T10:00:00Z", title="l2", meeting_link=LINK_B)
    link_early = timed("2026-06-10T16:00:00Z", title="l1", meeting_link=LINK_A)
    selection = room([plain_3, link_late, plain_1, link_early, plain_2])
    assert listed_ids(selection) == [link_early.id, link_late.id, plain_1.id]
    assert excluded_rules(selection) == {plain_2.id: {"R6"}, plain_3.id: {"R6"}}


def test_three_or_fewer_are_all_listed() -> None:
    # rule R6: the limit is three, not fewer
    events = [timed(f"2026-06-10T1{h}:00:00Z", title=str(h)) for h in (3, 4, 5)]
    assert listed_ids(room(events)) == [e.id for e in events]


def test_r6_counts_only_after_other_rules() -> None:
    # rule R6: events left out by other rules do not take one of the three places
    cancelled = timed("2026-06-10T12:30:00Z", title="c", status=Status.CANCELLED, meeting_link=LINK_A)
    events = [timed(f"2026-06-10T1{h}:00:00Z", title=str(h)) for h in (3, 4, 5, 6)]
    selection = room([cancelled, *events])
    assert listed_ids(selection) == [e.id for e in events[:3]]
    assert excluded_rules(selection) == {cancelled.id: {"R7"}, events[3].id: {"R6"}}


def test_duplicates_keep_the_one_ending_latest() -> None:
    # rule R5: as U8
    short = timed("2026-06-10T14:00:00Z", "2026-06-10T15:00:00Z", calendar_id="a", meeting_link=LINK_A)
    long = timed("2026-06-10T14:00:00Z", "2026-06-10T16:00:00Z", calendar_id="b", meeting_link=LINK_A)
    other_title = timed("2026-06-10T14:00:00Z", calendar_id="c", title="Other", meeting_link=LINK_A)
    selection = room([short, long, other_title])
    assert set(listed_ids(selection)) == {long.id, other_title.id}
    assert excluded_rules(selection) == {short.id: {"R5"}}


def test_duplicates_do_not_use_up_places() -> None:
    # rule R5 before R6: a duplicate dropped by R5 is not counted among the three
    a = timed("2026-06-10T13:00:00Z", title="a", calendar_id="x", meeting_link=LINK_A)
    a_copy = timed("2026-06-10T13:00:00Z", title="a", calendar_id="y", meeting_link=LINK_A)
    rest = [timed(f"2026-06-10T1{h}:00:00Z", title=str(h)) for h in (4, 5)]
    selection = room([a, a_copy, *rest])
    assert len(selection.listed) == 3
    assert list(excluded_rules(selection).values()) == [{"R5"}]


def test_cancelled_is_excluded() -> None:
    # rule R7: as U7
    cancelled = timed("2026-06-10T14:00:00Z", status=Status.CANCELLED)
    selection = room([cancelled])
    assert selection.listed == []
    assert excluded_rules(selection) == {cancelled.id: {"R7"}}


def test_person_only_rules_u4_u5_u6_do_not_apply_to_rooms() -> None:
    # rules U4, U5, U6 do not apply to rooms (each event below would fail one of them for a person)
    not_updatable = timed("2026-06-10T13:00:00Z", title="u4", updatable=False)
    recurring_no_link = timed("2026-06-10T14:00:00Z", title="u5", recurring=True)
    legacy = timed("2026-06-10T15:00:00Z", title="u6", meeting_link=LEGACY_LINK, legacy_from_links=True)
    assert legacy.legacy
    selection = room([not_updatable, recurring_no_link, legacy])
    assert set(listed_ids(selection)) == {not_updatable.id, recurring_no_link.id, legacy.id}
    assert selection.excluded == []


def test_room_rule_ids_are_r_ids() -> None:
    # rule R2 / R3 / R7: a room's explanation uses room rule ids, several at once
    occ = timed(NOW - timedelta(hours=30), NOW - timedelta(hours=2), status=Status.CANCELLED)
    assert excluded_rules(room([occ])) == {occ.id: {"R2", "R3", "R7"}}


def test_two_private_bookings_at_the_same_time_are_not_merged() -> None:
    # rule R5 with R4: titles hidden by privacy cannot make two different meetings "the same"
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    from calsync.domain.models import Occurrence, OwnerSettings, Provider, Visibility
    from calsync.domain.rules import select_for_room

    now = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    occs = [
        Occurrence(
            Provider.CALDAV,
            "acc",
            "room-cal",
            f"ev{i}",
            None,
            start=now + timedelta(hours=1),
            end=now + timedelta(hours=2),
            visibility=Visibility.PRIVATE,
        )
        for i in range(2)
    ]
    selection = select_for_room(occs, now, OwnerSettings(ZoneInfo("Europe/Berlin")))
    assert len(selection.listed) == 2
    assert selection.excluded == []


def test_room_listing_says_whether_a_link_can_be_added() -> None:
    # rule U10 for a room's listing (U5 does not apply to rooms, so a recurring occurrence without a
    # link IS listed): a link can be added only when there is none and it is not recurring
    plain = timed("2026-06-10T14:00:00Z", title="a")
    recurring_plain = timed("2026-06-10T15:00:00Z", recurring=True, title="b")
    with_link = timed("2026-06-10T16:00:00Z", meeting_link=LINK_A, title="c")
    selection = room([plain, recurring_plain, with_link])
    flags = {item.occurrence.id: item.can_add_meeting_link for item in selection.listed}
    assert flags == {plain.id: True, recurring_plain.id: False, with_link.id: False}
