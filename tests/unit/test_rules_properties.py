"""Property-based tests of the rules: whatever the events, the answers keep U1-U11 and R1-R7.

Every rule is re-checked here on its own terms (PRODUCT.md), not through rules.py's helpers:
the window overlap of all-day events is computed on calendar dates, that of timed events on POSIX
timestamps, so a mistake shared by the implementation and the test is unlikely.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from calsync.domain.models import Occurrence, OwnerSettings, Provider, Status, Visibility
from calsync.domain.rules import Excluded, Listed, Selection, select_for_person, select_for_room
from tests.support.builders import LINK_A, LINK_B, at

ZONES = [
    ZoneInfo(name)
    for name in (
        "UTC",
        "Europe/Berlin",
        "America/New_York",
        "Pacific/Kiritimati",  # UTC+14
        "Pacific/Pago_Pago",  # UTC-11
        "Asia/Kolkata",  # half-hour offset
        "Australia/Lord_Howe",  # half-hour daylight saving
    )
]
# fixed instants, several of them on or next to daylight-saving changes and date lines
NOWS = [
    at("2026-06-10T12:00:00Z"),
    at("2026-03-29T00:30:00Z"),  # Berlin: 01:30 on its 23-hour day
    at("2026-10-25T11:00:00Z"),  # Berlin: its 25-hour day
    at("2026-03-08T07:30:00Z"),  # New York: just after spring-forward
    at("2026-11-01T05:30:00Z"),  # New York: in the repeated hour
    at("2026-04-05T14:45:00Z"),  # Lord Howe: end of its daylight saving
    at("2026-12-31T10:30:00Z"),  # Kiritimati already in 2027
]
TITLES = ["Standup", "Review", None]
MEETING_LINKS = [None, LINK_A, LINK_B, "https://legacy-video.example.com/j/1"]
CALENDARS = ["cal-a", "cal-b", "cal-c"]
GRACE = 61 * 60
DAY = 24 * 3600


Selector = Callable[[Iterable[Occurrence], datetime, OwnerSettings], Selection]


@dataclass(frozen=True)
class Case:
    now: datetime
    owner: OwnerSettings
    occurrences: list[Occurrence]


@st.composite
def occurrences_around(draw: st.DrawFn, now: datetime, index: int) -> Occurrence:
    common: dict[str, Any] = {
        "provider": draw(st.sampled_from(list(Provider))),
        "account_id": draw(st.sampled_from(["acct-1", "acct-2"])),
        "calendar_id": draw(st.sampled_from(CALENDARS)),
        "event_id": f"evt-{index}",
        "title": draw(st.sampled_from(TITLES)),
        "meeting_link": draw(st.sampled_from(MEETING_LINKS)),
        # flags lean towards "eligible", so that enough events survive for U8/R5/R6 to matter
        "updatable": draw(st.sampled_from([True, True, True, False])),
        "recurring": draw(st.sampled_from([False, False, True])),
        "legacy": draw(st.sampled_from([False, False, False, True])),
        "status": draw(
            st.sampled_from([Status.CONFIRMED, Status.CONFIRMED, Status.TENTATIVE, Status.CANCELLED])
        ),
        "visibility": draw(st.sampled_from(list(Visibility))),
    }
    if draw(st.booleans()):
        # start on a few anchors or a quarter-hour grid (so that equal starts, i.e. duplicates,
        # happen), or anywhere
        offset = draw(
            st.one_of(
                st.sampled_from([-7200, 0, 5 * 3600, 30 * 3600]),
                st.integers(-5 * 96, 5 * 96).map(lambda q: q * 900),
                st.integers(-5 * DAY, 5 * DAY),
            )
        )
        duration = draw(
            st.one_of(
                st.sampled_from([0, 900, 3600, DAY, DAY + 1, GRACE]),
                st.integers(0, 72 * 3600),
            )
        )
        grid = now.replace(minute=0, second=0)
        start = grid + timedelta(seconds=offset)
        end = start + timedelta(seconds=duration)
        if draw(st.integers(0, 9)) == 0:  # now and then: ended exactly 61 minutes ago, or 1 s more
            end = now - timedelta(seconds=GRACE + draw(st.sampled_from([0, 1])))
            start = end - timedelta(seconds=duration)
        return Occurrence(start=start, end=end, **common)
    first = now.date() + timedelta(days=draw(st.integers(-4, 4)))
    days = draw(st.integers(1, 3))
    return Occurrence(start_date=first, end_date=first + timedelta(days=days), **common)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    now = draw(st.sampled_from(NOWS)) + timedelta(seconds=draw(st.sampled_from([0, 1, 59, 3599])))
    zone = draw(st.sampled_from(ZONES))
    primary = frozenset(draw(st.sets(st.sampled_from(CALENDARS), max_size=2)))
    count = draw(st.integers(0, 12))
    occs = [draw(occurrences_around(now, i)) for i in range(count)]
    return Case(now, OwnerSettings(time_zone=zone, primary_calendar_ids=primary), occs)


# --- the rules, restated independently -------------------------------------------------------------


def _midnight_ts(day: date, zone: ZoneInfo) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()


def _span(occ: Occurrence, zone: ZoneInfo) -> tuple[float, float]:
    if occ.start is not None and occ.end is not None:
        return occ.start.timestamp(), occ.end.timestamp()
    assert occ.start_date is not None and occ.end_date is not None
    return _midnight_ts(occ.start_date, zone), _midnight_ts(occ.end_date, zone)


def in_window(occ: Occurrence, now: datetime, zone: ZoneInfo) -> bool:
    """U1/R1: overlaps [00:00 today, 00:00 in three days) in the owner's zone."""
    today = now.astimezone(zone).date()
    last = today + timedelta(days=3)
    if occ.start_date is not None and occ.end_date is not None:
        return occ.start_date < last and occ.end_date > today  # on calendar dates
    ws, we = _midnight_ts(today, zone), _midnight_ts(last, zone)
    s, e = _span(occ, zone)
    if s == e:
        return ws <= s < we
    return s < we and e > ws


def is_long(occ: Occurrence) -> bool:
    if occ.start_date is not None and occ.end_date is not None:
        return (occ.end_date - occ.start_date).days >= 2
    assert occ.start is not None and occ.end is not None
    return (occ.end.timestamp() - occ.start.timestamp()) > DAY


def person_rules(occ: Occurrence, now: datetime, zone: ZoneInfo) -> set[str]:
    rules = set()
    if _span(occ, zone)[1] < now.timestamp() - GRACE:
        rules.add("U2")
    if is_long(occ):
        rules.add("U3")
    if not occ.updatable:
        rules.add("U4")
    if occ.recurring and occ.meeting_link is None:
        rules.add("U5")
    if occ.legacy:
        rules.add("U6")
    if occ.status == Status.CANCELLED:
        rules.add("U7")
    return rules


def room_rules(occ: Occurrence, now: datetime, zone: ZoneInfo) -> set[str]:
    rules = set()
    if _span(occ, zone)[1] < now.timestamp() - GRACE:
        rules.add("R2")
    if is_long(occ) and occ.meeting_link is None:
        rules.add("R3")
    if occ.status == Status.CANCELLED:
        rules.add("R7")
    return rules


def dup_key(occ: Occurrence, zone: ZoneInfo) -> tuple[str | None, str | None, float]:
    # an untitled event (title hidden by R4) is never "the same title" as another: never merged
    title = occ.title if occ.title is not None else f"<untitled {occ.id}>"
    return title, occ.meeting_link, _span(occ, zone)[0]


def answer(selection: Selection) -> tuple[list[str], list[tuple[str, tuple[str, ...]]]]:
    return (
        [i.occurrence.id for i in selection.listed],
        [(e.occurrence.id, e.rules) for e in selection.excluded],
    )


def check_partition(case: Case, selection: Selection) -> None:
    """listed + excluded is exactly the events overlapping the window, each once."""
    zone = case.owner.time_zone
    expected = {o.id for o in case.occurrences if in_window(o, case.now, zone)}
    listed = [i.occurrence.id for i in selection.listed]
    excluded = [e.occurrence.id for e in selection.excluded]
    assert len(listed) == len(set(listed))
    assert len(excluded) == len(set(excluded))
    assert not set(listed) & set(excluded)
    assert set(listed) | set(excluded) == expected


def check_placement(case: Case, items: list[Listed] | list[Excluded]) -> None:
    zone = case.owner.time_zone
    for item in items:
        assert (item.start.timestamp(), item.end.timestamp()) == _span(item.occurrence, zone)


def check_duplicates(case: Case, selection: Selection, eligible: list[Occurrence], dup_rule: str) -> None:
    """U8/R5: among events no other rule leaves out, one per (title, link, start): the latest ending,
    on equal ends a primary calendar's if there is one."""
    zone = case.owner.time_zone
    primary = case.owner.primary_calendar_ids
    groups: dict[tuple[str | None, str | None, float], list[Occurrence]] = defaultdict(list)
    for occ in eligible:
        groups[dup_key(occ, zone)].append(occ)
    listed_or_r6 = {i.occurrence.id for i in selection.listed} | {
        e.occurrence.id for e in selection.excluded if e.rules == ("R6",)
    }
    dropped = {e.occurrence.id for e in selection.excluded if e.rules == (dup_rule,)}
    for group in groups.values():
        kept = [o for o in group if o.id in listed_or_r6]
        assert len(kept) == 1, "exactly one of a set of duplicates survives"
        (winner,) = kept
        assert {o.id for o in group} - {winner.id} <= dropped
        latest = max(_span(o, zone)[1] for o in group)
        assert _span(winner, zone)[1] == latest
        tied = [o for o in group if _span(o, zone)[1] == latest]
        if any(o.calendar_id in primary for o in tied):
            assert winner.calendar_id in primary


def check_order_independent(case: Case, select: Selector, data: st.DataObject) -> None:
    first = select(case.occurrences, case.now, case.owner)
    shuffled = data.draw(st.permutations(case.occurrences), label="shuffled")
    again = select(shuffled, case.now, case.owner)
    assert answer(again) == answer(first)


# --- person -------------------------------------------------------------------------------------------


@settings(deadline=None, max_examples=300)
@given(case=cases(), data=st.data())
def test_person_selection_keeps_every_rule(case: Case, data: st.DataObject) -> None:
    # rules U1 U2 U3 U4 U5 U6 U7 U8 U9 U10 U11, each re-checked independently
    zone = case.owner.time_zone
    selection = select_for_person(case.occurrences, case.now, case.owner)

    check_partition(case, selection)  # U1, U11
    check_placement(case, selection.listed)
    check_placement(case, selection.excluded)

    for item in selection.listed:  # nothing listed breaks a rule
        assert person_rules(item.occurrence, case.now, zone) == set()
        # U10
        assert item.can_add_meeting_link == (
            item.occurrence.meeting_link is None and not item.occurrence.recurring
        )
    for left_out in selection.excluded:  # U11: the rule ids are exactly the rules that apply
        expected = person_rules(left_out.occurrence, case.now, zone)
        assert set(left_out.rules) == (expected or {"U8"})
        assert len(left_out.rules) == len(set(left_out.rules))

    # U8: no two listed events are duplicates, and the right one of each set is kept
    keys = [dup_key(i.occurrence, zone) for i in selection.listed]
    assert len(keys) == len(set(keys))
    eligible = [
        o for o in case.occurrences if in_window(o, case.now, zone) and not person_rules(o, case.now, zone)
    ]
    check_duplicates(case, selection, eligible, "U8")

    # U9: by start, then end, then title
    order = [(i.start, i.end, i.occurrence.title or "") for i in selection.listed]
    assert order == sorted(order)

    check_order_independent(case, select_for_person, data)


# --- room ---------------------------------------------------------------------------------------------


@settings(deadline=None, max_examples=300)
@given(case=cases(), data=st.data())
def test_room_selection_keeps_every_rule(case: Case, data: st.DataObject) -> None:
    # rules R1 R2 R3 R5 R6 R7 (and U4 U5 U6 do not apply to rooms), re-checked independently
    zone = case.owner.time_zone
    selection = select_for_room(case.occurrences, case.now, case.owner)

    check_partition(case, selection)  # R1
    check_placement(case, selection.listed)
    check_placement(case, selection.excluded)

    for item in selection.listed:
        assert room_rules(item.occurrence, case.now, zone) == set()
    for left_out in selection.excluded:
        expected = room_rules(left_out.occurrence, case.now, zone)
        if expected:
            assert set(left_out.rules) == expected
        else:
            assert left_out.rules in (("R5",), ("R6",))

    # R5: no two listed events are duplicates
    keys = [dup_key(i.occurrence, zone) for i in selection.listed]
    assert len(keys) == len(set(keys))
    eligible = [
        o for o in case.occurrences if in_window(o, case.now, zone) and not room_rules(o, case.now, zone)
    ]
    check_duplicates(case, selection, eligible, "R5")

    # R6: at most three; those with a link first; each group by start
    assert len(selection.listed) <= 3
    order = [(i.occurrence.meeting_link is None, i.start) for i in selection.listed]
    assert order == sorted(order)
    beyond = [e for e in selection.excluded if e.rules == ("R6",)]
    if beyond:
        assert len(selection.listed) == 3
        worst_listed = max(order)
        for b in beyond:
            assert (b.occurrence.meeting_link is None, b.start) >= worst_listed
    # every distinct eligible meeting is shown unless three others are
    assert len(selection.listed) == min(3, len({dup_key(o, zone) for o in eligible}))

    check_order_independent(case, select_for_room, data)
