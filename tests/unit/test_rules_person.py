"""Rules U1-U11 (meetings of a person) against ``select_for_person``, each with a frozen ``now``."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from calsync.domain.models import UTC, Occurrence, OwnerSettings, Provider, Status
from calsync.domain.rules import Selection, rule_ids, select_for_person, window
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

UTC_OWNER = OwnerSettings()
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
KIRITIMATI = ZoneInfo("Pacific/Kiritimati")  # UTC+14
PAGO_PAGO = ZoneInfo("Pacific/Pago_Pago")  # UTC-11

NOW = at("2026-06-10T12:00:00Z")


def person(occurrences: list[Occurrence], now: datetime = NOW, owner: OwnerSettings = UTC_OWNER) -> Selection:
    return select_for_person(occurrences, now, owner)


def in_neither(selection: Selection, occ: Occurrence) -> bool:
    return occ.id not in listed_ids(selection) and occ.id not in excluded_rules(selection)


# --- U1 window ------------------------------------------------------------------------------------


def test_in_progress_event_is_listed() -> None:
    # rule U1: an event in progress is included
    occ = timed("2026-06-10T11:00:00Z", "2026-06-10T13:00:00Z")
    assert listed_ids(person([occ])) == [occ.id]


def test_window_is_today_and_two_more_days_in_the_owner_zone() -> None:
    # rule U1: from 00:00 today to 00:00 three days later, in the person's zone
    now = at("2026-06-10T08:00:00Z")  # 10:00 in Berlin
    ws, we = window(now, BERLIN)
    assert ws.astimezone(UTC) == at("2026-06-09T22:00:00Z")
    assert we.astimezone(UTC) == at("2026-06-12T22:00:00Z")
    selection = person([], now, OwnerSettings(time_zone=BERLIN))
    assert selection.window_start == ws
    assert selection.window_end == we


def test_window_boundaries_in_owner_zone() -> None:
    # rule U1: the window is half-open [00:00 today, 00:00 in three days), in Europe/Berlin
    now = at("2026-06-09T22:30:00Z")  # 00:30 on 2026-06-10 in Berlin
    owner = OwnerSettings(time_zone=BERLIN)
    # ended 30 minutes ago (U2 would keep it), but exactly at 00:00 today: outside the window
    ends_at_midnight = timed("2026-06-09T21:00:00Z", "2026-06-09T22:00:00Z")
    ends_just_after_midnight = timed("2026-06-09T21:00:00Z", "2026-06-09T22:00:01Z")
    starts_at_window_end = timed("2026-06-12T22:00:00Z", duration=timedelta(hours=1))
    starts_one_second_before_end = timed("2026-06-12T21:59:59Z", duration=timedelta(hours=1))
    selection = person(
        [ends_at_midnight, ends_just_after_midnight, starts_at_window_end, starts_one_second_before_end],
        now,
        owner,
    )
    assert in_neither(selection, ends_at_midnight)
    assert in_neither(selection, starts_at_window_end)
    assert listed_ids(selection) == [ends_just_after_midnight.id, starts_one_second_before_end.id]
    assert selection.excluded == []


def test_zero_length_event_is_in_window_at_its_start_not_at_its_end() -> None:
    # rule U1: an instant (zero-length event, e.g. a reminder) is in the window when it falls in [start, end)
    now = at("2026-06-10T00:10:00Z")
    at_start = timed("2026-06-10T00:00:00Z", "2026-06-10T00:00:00Z", title="a")
    at_end = timed("2026-06-13T00:00:00Z", "2026-06-13T00:00:00Z", title="b")
    before_end = timed("2026-06-12T23:59:59Z", "2026-06-12T23:59:59Z", title="c")
    selection = person([at_start, at_end, before_end], now)
    assert listed_ids(selection) == [at_start.id, before_end.id]
    assert in_neither(selection, at_end)


def test_events_far_outside_window_are_neither_listed_nor_excluded() -> None:
    # rule U1 / U11: explain only covers events in the window
    past = timed("2026-06-01T10:00:00Z", status=Status.CANCELLED)
    future = timed("2026-06-20T10:00:00Z", updatable=False)
    selection = person([past, future])
    assert selection.listed == [] and selection.excluded == []


@pytest.mark.parametrize(
    ("day", "zone", "hours"),
    [
        ("2026-03-29", BERLIN, 23),
        ("2026-10-25", BERLIN, 25),
        ("2026-03-08", NEW_YORK, 23),
        ("2026-11-01", NEW_YORK, 25),
    ],
)
def test_window_on_a_dst_day(day: str, zone: ZoneInfo, hours: int) -> None:
    # rule U1: "today" on a daylight-saving day is 23 or 25 hours long, and so is the window's first day
    now = at(f"{day}T18:00:00Z")  # afternoon local time in both zones, after the change
    ws, we = window(now, zone)
    assert ws.astimezone(zone).date().isoformat() == day
    assert (we.astimezone(UTC) - ws.astimezone(UTC)) == timedelta(hours=hours + 48)
    ws1, we1 = window(now, zone, days=1)
    assert we1.astimezone(UTC) - ws1.astimezone(UTC) == timedelta(hours=hours)


# --- U2 ended -------------------------------------------------------------------------------------


def test_ended_exactly_61_minutes_ago_stays_one_second_more_is_excluded() -> None:
    # rule U2: end < now - 61 min is left out; exactly 61 min stays
    stays = timed(NOW - timedelta(hours=2), NOW - timedelta(minutes=61))
    gone = timed(NOW - timedelta(hours=2), NOW - timedelta(minutes=61, seconds=1))
    selection = person([stays, gone])
    assert listed_ids(selection) == [stays.id]
    assert excluded_rules(selection) == {gone.id: {"U2"}}


def test_all_day_events_are_placed_as_calsyncs_utc_instants() -> None:
    # rules U1/U3: an all-day event is placed at 00:00 in the owner's zone, as an instant whose tzinfo
    # IS datetime.UTC like every other instant (models.py), whatever the process's local zone
    day = all_day("2026-06-11")
    [item] = person([day], owner=OwnerSettings(time_zone=ZoneInfo("Asia/Tokyo"))).listed
    assert (item.start, item.end) == (at("2026-06-10T15:00:00Z"), at("2026-06-11T15:00:00Z"))
    assert item.start.tzinfo is UTC and item.end.tzinfo is UTC


def test_all_day_event_of_yesterday_is_outside_and_today_stays_until_midnight() -> None:
    # rule U2 / U1: an all-day event of today ends at 00:00 tomorrow, so it is never "ended" today
    now = at("2026-06-10T23:59:59Z")
    today = all_day("2026-06-10")
    yesterday = all_day("2026-06-09")
    selection = person([today, yesterday], now)
    assert listed_ids(selection) == [today.id]
    assert in_neither(selection, yesterday)


# --- U3 long --------------------------------------------------------------------------------------


def test_exactly_24_hours_stays_one_second_more_is_excluded() -> None:
    # rule U3: more than 24 h is left out; exactly 24 h stays
    stays = timed("2026-06-10T09:00:00Z", duration=timedelta(hours=24))
    gone = timed("2026-06-10T09:00:00Z", duration=timedelta(hours=24, seconds=1), title="Other")
    selection = person([stays, gone])
    assert listed_ids(selection) == [stays.id]
    assert excluded_rules(selection) == {gone.id: {"U3"}}


def test_long_event_with_link_is_still_excluded_for_a_person() -> None:
    # rule U3: unlike R3, a meeting link does not save a long event in a person's list
    occ = timed("2026-06-10T09:00:00Z", duration=timedelta(hours=30), meeting_link=LINK_A)
    assert excluded_rules(person([occ])) == {occ.id: {"U3"}}


@pytest.mark.parametrize(
    ("day", "zone", "hours"),
    [
        ("2026-03-29", BERLIN, 23),
        ("2026-10-25", BERLIN, 25),
        ("2026-03-08", NEW_YORK, 23),
        ("2026-11-01", NEW_YORK, 25),
    ],
)
def test_all_day_events_on_dst_days(day: str, zone: ZoneInfo, hours: int) -> None:
    # rule U3: an all-day event counts by calendar days, whatever the day's length in hours
    now = at(f"{day}T16:00:00Z")
    owner = OwnerSettings(time_zone=zone)
    one_day = all_day(day)
    two_days = all_day(day, days=2, title="Offsite")
    selection = person([one_day, two_days], now, owner)
    assert listed_ids(selection) == [one_day.id]
    assert excluded_rules(selection) == {two_days.id: {"U3"}}
    (listed,) = selection.listed
    assert listed.end - listed.start == timedelta(hours=hours)
    assert listed.start.astimezone(zone).hour == 0
    # the two-day event is shorter than 48 h (or longer) on the time line, and long all the same
    (excluded,) = selection.excluded
    assert excluded.end - excluded.start == timedelta(hours=hours + 24)


# --- U1 in far-apart zones ------------------------------------------------------------------------

# At 10:30 UTC it is already 00:30 on 2026-06-11 in Kiritimati (UTC+14) and still 23:30 on
# 2026-06-09 in Pago Pago (UTC-11): their "today" is two calendar days apart.
FAR_NOW = at("2026-06-10T10:30:00Z")
KIRI = OwnerSettings(time_zone=KIRITIMATI)
PAGO = OwnerSettings(time_zone=PAGO_PAGO)


def test_far_zone_windows() -> None:
    # rule U1: windows of the two owners at the same instant
    assert [w.astimezone(UTC) for w in window(FAR_NOW, KIRITIMATI)] == [
        at("2026-06-10T10:00:00Z"),
        at("2026-06-13T10:00:00Z"),
    ]
    assert [w.astimezone(UTC) for w in window(FAR_NOW, PAGO_PAGO)] == [
        at("2026-06-09T11:00:00Z"),
        at("2026-06-12T11:00:00Z"),
    ]


@pytest.mark.parametrize(
    ("day", "in_kiritimati", "in_pago_pago"),
    [
        ("2026-06-08", False, False),
        ("2026-06-09", False, True),  # today (in progress) in Pago Pago, yesterday in Kiritimati
        ("2026-06-10", False, True),  # ends exactly at Kiritimati's window start (00:00 on the 11th)
        ("2026-06-11", True, True),
        ("2026-06-12", True, False),  # starts exactly at Pago Pago's window end
        ("2026-06-13", True, False),
        ("2026-06-14", False, False),
    ],
)
def test_same_all_day_date_depends_on_owner_zone(day: str, in_kiritimati: bool, in_pago_pago: bool) -> None:
    # rule U1: an all-day date is placed in the owner's own zone
    occ = all_day(day)
    assert (listed_ids(person([occ], FAR_NOW, KIRI)) == [occ.id]) is in_kiritimati
    assert (listed_ids(person([occ], FAR_NOW, PAGO)) == [occ.id]) is in_pago_pago
    # never "excluded": outside the window means absent
    assert person([occ], FAR_NOW, KIRI).excluded == []
    assert person([occ], FAR_NOW, PAGO).excluded == []


def test_timed_event_in_window_for_one_far_zone_only() -> None:
    # rule U1: the same instant is "today" for one owner and outside the window for the other
    # 09:30-09:55 UTC: 2026-06-09 22:30 in Pago Pago (today, ended 35 min ago: stays by U2);
    # 2026-06-10 23:30 in Kiritimati, i.e. yesterday there: outside.
    earlier = timed("2026-06-10T09:30:00Z", "2026-06-10T09:55:00Z")
    # 2026-06-12 12:00 UTC: 2026-06-13 02:00 in Kiritimati (last day of its window);
    # 2026-06-12 01:00 in Pago Pago, after its window's end (00:00 2026-06-12 there)
    later = timed("2026-06-12T12:00:00Z", duration=timedelta(hours=1))
    assert listed_ids(person([earlier, later], FAR_NOW, PAGO)) == [earlier.id]
    assert listed_ids(person([earlier, later], FAR_NOW, KIRI)) == [later.id]


def test_default_zone_is_utc() -> None:
    # rule U1: default time zone is UTC
    now = at("2026-06-10T23:30:00Z")
    last = timed("2026-06-12T23:59:59Z", duration=timedelta(minutes=1))
    beyond = timed("2026-06-13T00:00:00Z", duration=timedelta(minutes=1))
    selection = select_for_person([last, beyond], now, OwnerSettings())
    assert listed_ids(selection) == [last.id]
    assert in_neither(selection, beyond)


# --- U4 - U7 --------------------------------------------------------------------------------------


def test_not_updatable_is_excluded() -> None:
    # rule U4
    occ = timed("2026-06-10T14:00:00Z", updatable=False, organizer_is_self=False)
    ok = timed("2026-06-10T15:00:00Z")
    selection = person([occ, ok])
    assert listed_ids(selection) == [ok.id]
    assert excluded_rules(selection) == {occ.id: {"U4"}}


def test_recurring_without_link_excluded_with_link_stays() -> None:
    # rule U5
    no_link = timed("2026-06-10T14:00:00Z", recurring=True, series_id="s1", title="Standup")
    with_link = timed("2026-06-10T15:00:00Z", recurring=True, series_id="s2", meeting_link=LINK_A)
    selection = person([no_link, with_link])
    assert listed_ids(selection) == [with_link.id]
    assert excluded_rules(selection) == {no_link.id: {"U5"}}


def test_legacy_link_host_is_excluded() -> None:
    # rule U6: a link on a legacy meeting host, detected by links.py
    legacy = timed("2026-06-10T14:00:00Z", meeting_link=LEGACY_LINK, legacy_from_links=True)
    modern = timed("2026-06-10T15:00:00Z", meeting_link=LINK_A, legacy_from_links=True)
    assert legacy.legacy and not modern.legacy
    selection = person([legacy, modern])
    assert listed_ids(selection) == [modern.id]
    assert excluded_rules(selection) == {legacy.id: {"U6"}}


@pytest.mark.parametrize(
    ("organizer", "is_legacy"),
    [
        ("old.boss@example.com", True),
        ("mailto:Old.Boss@Example.com", True),
        ("anyone@still-legacy.example", True),  # "@domain" entry
        ("new.boss@example.com", False),
        ("anyone@not-still-legacy.example", False),
        (None, False),
    ],
)
def test_legacy_organizer_is_excluded(organizer: str | None, is_legacy: bool) -> None:
    # rule U6: organizer listed as still on the legacy platform (address or "@domain")
    occ = timed("2026-06-10T14:00:00Z", meeting_link=LINK_A, organizer=organizer, legacy_from_links=True)
    selection = person([occ])
    if is_legacy:
        assert excluded_rules(selection) == {occ.id: {"U6"}}
    else:
        assert listed_ids(selection) == [occ.id]


def test_cancelled_is_excluded() -> None:
    # rule U7: cancelled events and cancelled occurrences of a series
    event = timed("2026-06-10T14:00:00Z", status=Status.CANCELLED)
    occurrence = timed(
        "2026-06-10T15:00:00Z",
        status=Status.CANCELLED,
        recurring=True,
        series_id="s1",
        original_start="2026-06-10T15:00:00Z",
        meeting_link=LINK_A,
    )
    tentative = timed("2026-06-10T16:00:00Z", status=Status.TENTATIVE)
    selection = person([event, occurrence, tentative])
    assert listed_ids(selection) == [tentative.id]
    assert excluded_rules(selection) == {event.id: {"U7"}, occurrence.id: {"U7"}}


# --- U8 duplicates --------------------------------------------------------------------------------


def test_duplicates_across_two_calendars_keep_the_one_ending_latest() -> None:
    # rule U8
    short = timed("2026-06-10T14:00:00Z", "2026-06-10T15:00:00Z", calendar_id="cal-a", meeting_link=LINK_A)
    long = timed("2026-06-10T14:00:00Z", "2026-06-10T15:30:00Z", calendar_id="cal-b", meeting_link=LINK_A)
    for order in ([short, long], [long, short]):
        selection = person(order)
        assert listed_ids(selection) == [long.id]
        assert excluded_rules(selection) == {short.id: {"U8"}}


def test_duplicates_across_two_accounts_and_providers() -> None:
    # rule U8: across accounts (and providers) too
    google = timed(
        "2026-06-10T14:00:00Z",
        "2026-06-10T16:00:00Z",
        account_id="g",
        calendar_id="me@gmail.example",
        meeting_link=LINK_A,
    )
    graph = timed(
        "2026-06-10T14:00:00Z",
        "2026-06-10T15:00:00Z",
        account_id="m",
        calendar_id="AAMkAD",
        provider=Provider.MICROSOFT,
        meeting_link=LINK_A,
    )
    selection = person([graph, google])
    assert listed_ids(selection) == [google.id]
    assert excluded_rules(selection) == {graph.id: {"U8"}}


@pytest.mark.parametrize("primary", ["cal-a", "cal-b"])
def test_duplicates_with_same_end_prefer_the_primary_calendar(primary: str) -> None:
    # rule U8: same end -> keep one, preferring the primary calendar
    a = timed("2026-06-10T14:00:00Z", "2026-06-10T15:00:00Z", calendar_id="cal-a", meeting_link=LINK_A)
    b = timed("2026-06-10T14:00:00Z", "2026-06-10T15:00:00Z", calendar_id="cal-b", meeting_link=LINK_A)
    owner = OwnerSettings(primary_calendar_ids=frozenset({primary}))
    kept, dropped = (a, b) if primary == "cal-a" else (b, a)
    for order in ([a, b], [b, a]):
        selection = person(order, owner=owner)
        assert listed_ids(selection) == [kept.id]
        assert excluded_rules(selection) == {dropped.id: {"U8"}}


def test_duplicates_with_same_end_and_no_primary_keep_exactly_one() -> None:
    # rule U8: same end, neither primary: exactly one is listed, whatever the input order
    a = timed("2026-06-10T14:00:00Z", calendar_id="cal-a", meeting_link=LINK_A)
    b = timed("2026-06-10T14:00:00Z", calendar_id="cal-b", meeting_link=LINK_A)
    first = listed_ids(person([a, b]))
    assert len(first) == 1
    assert listed_ids(person([b, a])) == first


def test_three_copies_keep_the_latest_ending() -> None:
    # rule U8: more than two copies
    copies = [
        timed(
            "2026-06-10T14:00:00Z", duration=timedelta(minutes=m), calendar_id=f"cal-{m}", meeting_link=LINK_A
        )
        for m in (30, 90, 60)
    ]
    selection = person(copies)
    assert listed_ids(selection) == [copies[1].id]
    assert excluded_rules(selection) == {copies[0].id: {"U8"}, copies[2].id: {"U8"}}


@pytest.mark.parametrize(
    "other",
    [
        {"title": "Another title"},
        {"meeting_link": LINK_B},
        {"meeting_link": None},
        {"start": "2026-06-10T14:01:00Z"},
    ],
    ids=["title", "link", "no-link", "start"],
)
def test_not_duplicates_when_title_link_or_start_differ(other: dict[str, str | None]) -> None:
    # rule U8: only the same title AND link AND start make one meeting
    base = {"start": "2026-06-10T14:00:00Z", "title": "Review", "meeting_link": LINK_A}
    one = timed(**base, calendar_id="cal-a")  # type: ignore[arg-type]
    two = timed(**(base | other), calendar_id="cal-b")  # type: ignore[arg-type]
    selection = person([one, two])
    assert sorted(listed_ids(selection)) == sorted([one.id, two.id])
    assert selection.excluded == []


def test_same_occurrence_read_twice_is_listed_once() -> None:
    # rule U8: the very same occurrence (same id) never shows twice
    occ = timed("2026-06-10T14:00:00Z")
    selection = person([occ, occ])
    assert listed_ids(selection) == [occ.id]
    assert selection.excluded == []
    # ... and what follows the second read is still looked at
    later = timed("2026-06-10T16:00:00Z", title="later")
    assert listed_ids(person([occ, occ, later])) == [occ.id, later.id]


@pytest.mark.parametrize("calendar_ids", [("cal\x00", "cal"), ("\U0010ffff", "\x00"), ("b\x00", "b\x01")])
def test_duplicates_on_calendars_with_any_characters_keep_one_whatever_the_order(
    calendar_ids: tuple[str, str],
) -> None:
    # rule U8 (same end, neither primary: keep one, the same one whatever the input order); calendar
    # ids come from providers and may hold any code point, U+0000 and U+10FFFF included
    a, b = (
        timed("2026-06-10T14:00:00Z", calendar_id=c, meeting_link=LINK_A, title="Sync") for c in calendar_ids
    )
    kept = listed_ids(person([a, b]))
    assert len(kept) == 1 and kept[0] in (a.id, b.id)
    assert listed_ids(person([b, a])) == kept


# --- U9 order -------------------------------------------------------------------------------------


def test_order_is_start_then_end_then_title() -> None:
    # rule U9
    expected = [
        timed("2026-06-10T09:00:00Z", "2026-06-10T10:00:00Z", title="Zulu"),
        timed("2026-06-10T09:00:00Z", "2026-06-10T11:00:00Z", title="Alpha"),
        timed("2026-06-10T09:00:00Z", "2026-06-10T11:00:00Z", title="Bravo"),
        timed("2026-06-10T09:30:00Z", "2026-06-10T09:45:00Z", title="Alpha"),
        timed("2026-06-11T00:00:00Z", "2026-06-11T00:30:00Z", title="After midnight"),
        all_day("2026-06-11", title="Holiday"),  # same start, ends later
    ]
    shuffled = expected[:]
    random.Random(7).shuffle(shuffled)
    assert shuffled != expected
    assert listed_ids(person(shuffled, at("2026-06-10T09:05:00Z"))) == [o.id for o in expected]


# --- U10 add link ---------------------------------------------------------------------------------


def test_can_add_meeting_link() -> None:
    # rule U10: true when no meeting link and not recurring
    plain = timed("2026-06-10T14:00:00Z", title="a")
    with_link = timed("2026-06-10T15:00:00Z", meeting_link=LINK_A, title="b")
    recurring_with_link = timed("2026-06-10T16:00:00Z", recurring=True, meeting_link=LINK_B, title="c")
    day = all_day("2026-06-11", title="d")
    selection = person([plain, with_link, recurring_with_link, day])
    flags = {item.occurrence.id: item.can_add_meeting_link for item in selection.listed}
    assert flags == {plain.id: True, with_link.id: False, recurring_with_link.id: False, day.id: True}


# --- U11 explain ----------------------------------------------------------------------------------


def test_excluded_carries_every_rule_that_applies() -> None:
    # rule U11: several rule ids when several rules apply
    many = timed(
        "2026-06-10T14:00:00Z",
        updatable=False,
        recurring=True,
        status=Status.CANCELLED,
        meeting_link=LEGACY_LINK,
        legacy_from_links=True,
    )
    ended_and_long = timed(NOW - timedelta(hours=30), NOW - timedelta(hours=2))
    no_link_recurring_legacy_organizer = timed(
        "2026-06-10T15:00:00Z", recurring=True, organizer="x@still-legacy.example", legacy_from_links=True
    )
    selection = person([many, ended_and_long, no_link_recurring_legacy_organizer])
    assert selection.listed == []
    # every rule that left something out, each once, sorted (for logs and metrics)
    assert rule_ids(selection) == ["U2", "U3", "U4", "U5", "U6", "U7"]
    assert excluded_rules(selection) == {
        many.id: {"U4", "U6", "U7"},
        ended_and_long.id: {"U2", "U3"},
        no_link_recurring_legacy_organizer.id: {"U5", "U6"},
    }


def test_excluded_carry_their_placed_times_and_are_ordered() -> None:
    # rule U11: excluded events are explained with their times, in U9 order
    later = timed("2026-06-10T16:00:00Z", status=Status.CANCELLED)
    earlier = timed("2026-06-10T13:00:00Z", updatable=False)
    selection = person([later, earlier])
    assert [e.occurrence.id for e in selection.excluded] == [earlier.id, later.id]
    assert selection.excluded[0].start == at("2026-06-10T13:00:00Z")
    assert selection.excluded[0].end == at("2026-06-10T13:30:00Z")
