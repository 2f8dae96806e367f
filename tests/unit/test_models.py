"""The normalized Occurrence model: its invariants, ids and placement on the time line (U1, U3)."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from calsync.domain.models import (
    UTC,
    Occurrence,
    OwnerSettings,
    Provider,
    Status,
    Visibility,
    as_utc,
    day_start,
    occurrence_id,
    widest_instants,
)
from tests.support.builders import all_day, at, timed

ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
    "Etc/GMT+12",
    "Asia/Kolkata",
]


def test_instants_are_normalized_to_utc() -> None:
    # rule U1: instants compare on one time line whatever offset they came with
    occ = timed(
        datetime(2026, 6, 10, 16, 0, tzinfo=timezone(timedelta(hours=2))),
        datetime(2026, 6, 10, 11, 0, tzinfo=ZoneInfo("America/New_York")),
    )
    assert occ.start == at("2026-06-10T14:00:00Z")
    assert occ.end == at("2026-06-10T15:00:00Z")
    assert occ.start is not None and occ.end is not None
    assert occ.start.tzinfo is UTC and occ.end.tzinfo is UTC


class _NoOffset(tzinfo):
    """A tzinfo that does not know its offset (``utcoffset`` is None): as good as naive."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str | None:
        return None


def test_datetimes_whose_zone_has_no_offset_are_refused() -> None:
    # Python's definition of aware: tzinfo set AND utcoffset() not None
    with pytest.raises(ValueError, match=r"^naive datetime: instants must be timezone-aware$"):
        as_utc(datetime(2026, 6, 10, 12, tzinfo=_NoOffset()))


def test_naive_datetimes_are_refused() -> None:
    # rule U1: naive datetimes would make the window ambiguous
    with pytest.raises(ValueError, match=r"^naive datetime: instants must be timezone-aware$"):
        as_utc(datetime(2026, 6, 10, 12, 0))
    with pytest.raises(ValueError, match=r"^naive datetime: instants must be timezone-aware$"):
        Occurrence(
            provider=Provider.GOOGLE,
            account_id="a",
            calendar_id="c",
            event_id="e",
            title="t",
            start=datetime(2026, 6, 10, 12),
            end=datetime(2026, 6, 10, 13),
        )


NOON, DAY, NEXT_DAY = at("2026-06-10T12:00:00Z"), date(2026, 6, 10), date(2026, 6, 11)


@pytest.mark.parametrize(
    "times",
    [
        {},
        {"start": at("2026-06-10T12:00:00Z")},
        {"start_date": date(2026, 6, 10)},
        {
            "start": at("2026-06-10T12:00:00Z"),
            "end": at("2026-06-10T13:00:00Z"),
            "start_date": date(2026, 6, 10),
            "end_date": date(2026, 6, 11),
        },
        # half of one kind with the whole of the other is neither (a stray start next to the dates
        # would be stored and served while the rules place the dates)
        {"start": at("2026-06-10T12:00:00Z"), "start_date": date(2026, 6, 10), "end_date": date(2026, 6, 11)},
        {"end": at("2026-06-10T12:00:00Z"), "start_date": date(2026, 6, 10), "end_date": date(2026, 6, 11)},
        {
            "start": at("2026-06-10T12:00:00Z"),
            "end": at("2026-06-10T13:00:00Z"),
            "start_date": date(2026, 6, 10),
        },
        {
            "start": at("2026-06-10T12:00:00Z"),
            "end": at("2026-06-10T13:00:00Z"),
            "end_date": date(2026, 6, 11),
        },
    ],
)
def test_timed_xor_all_day(times: dict[str, Any]) -> None:
    # an occurrence is either timed or all-day, never both, never neither, never half of one
    with pytest.raises(ValueError, match=r"^an occurrence has either start/end instants or all-day dates$"):
        Occurrence(
            provider=Provider.GOOGLE, account_id="a", calendar_id="c", event_id="e", title="t", **times
        )


def test_end_before_start_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^end before start$"):
        timed("2026-06-10T12:00:00Z", "2026-06-10T11:59:59Z")
    zero = timed("2026-06-10T12:00:00Z", "2026-06-10T12:00:00Z")
    assert zero.start == zero.end


@pytest.mark.parametrize("end", ["2026-06-10", "2026-06-09"])
def test_all_day_lasts_at_least_one_day(end: str) -> None:
    # rule U3: an all-day event counts by days, end exclusive, at least one
    with pytest.raises(ValueError, match=r"^an all-day event ends at least one day after it starts$"):
        all_day("2026-06-10", end)


def test_id_is_stable_and_keyed_on_the_provider_identity() -> None:
    # rule U8: the same occurrence read twice has one id (and a moved occurrence keeps its id)
    a = timed("2026-06-10T12:00:00Z", event_id="E1", calendar_id="C", original_start="2026-06-10T12:00:00Z")
    moved = timed(
        "2026-06-10T15:00:00Z",
        event_id="E1",
        calendar_id="C",
        original_start="2026-06-10T12:00:00Z",
        title="Renamed",
    )
    assert a.id == moved.id == occurrence_id("google", "C", "E1", "2026-06-10T12:00:00Z")
    assert len(a.id) == 32 and a.id.isalnum()
    others = {
        timed(
            "2026-06-10T12:00:00Z", event_id="E1", calendar_id="C", original_start="2026-06-11T12:00:00Z"
        ).id,
        timed(
            "2026-06-10T12:00:00Z", event_id="E1", calendar_id="D", original_start="2026-06-10T12:00:00Z"
        ).id,
        timed(
            "2026-06-10T12:00:00Z", event_id="E2", calendar_id="C", original_start="2026-06-10T12:00:00Z"
        ).id,
        timed(
            "2026-06-10T12:00:00Z",
            event_id="E1",
            calendar_id="C",
            original_start="2026-06-10T12:00:00Z",
            provider=Provider.MICROSOFT,
        ).id,
    }
    assert a.id not in others and len(others) == 4


def test_id_is_the_same_from_release_to_release() -> None:
    # stored occurrences and the meetingIds clients hold keep their ids across deployments: a
    # changed derivation would store every event a second time under a new id
    assert occurrence_id("google", "cal-1", "evt-1", None) == "da2c8e5882494c4052ad252dcd76860e"
    assert occurrence_id("caldav", "cal-1", "uid-1", "20261120T090000Z") == "f8661e65fa783723aa9f661cb9cbf17b"


def test_id_fields_do_not_run_into_each_other() -> None:
    # rule U8: ("ab", "c") and ("a", "bc") are different occurrences
    assert occurrence_id("google", "ab", "c", None) != occurrence_id("google", "a", "bc", None)


def test_explicit_id_is_kept() -> None:
    assert timed("2026-06-10T12:00:00Z", id="given").id == "given"


def test_flags() -> None:
    # rules R4 and U7: derived flags
    assert timed("2026-06-10T12:00:00Z", visibility=Visibility.PRIVATE).private
    assert timed("2026-06-10T12:00:00Z", visibility=Visibility.CONFIDENTIAL).private
    assert not timed("2026-06-10T12:00:00Z", visibility=Visibility.PUBLIC).private
    assert timed("2026-06-10T12:00:00Z", status=Status.CANCELLED).cancelled
    assert not timed("2026-06-10T12:00:00Z", status=Status.TENTATIVE).cancelled
    assert all_day("2026-06-10").all_day and not timed("2026-06-10T12:00:00Z").all_day


def test_occurrence_is_immutable() -> None:
    occ = timed("2026-06-10T12:00:00Z")
    with pytest.raises(dataclasses.FrozenInstanceError):
        occ.title = "changed"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("day", "zone", "expected"),
    [
        ("2026-03-29", "Europe/Berlin", "2026-03-28T23:00:00Z"),  # 00:00 CET, before the change at 02:00
        ("2026-03-30", "Europe/Berlin", "2026-03-29T22:00:00Z"),  # 00:00 CEST
        ("2026-11-01", "America/New_York", "2026-11-01T04:00:00Z"),  # 00:00 EDT
        ("2026-11-02", "America/New_York", "2026-11-02T05:00:00Z"),  # 00:00 EST
        ("2026-06-10", "Pacific/Kiritimati", "2026-06-09T10:00:00Z"),
        ("2026-06-10", "Pacific/Pago_Pago", "2026-06-10T11:00:00Z"),
    ],
)
def test_day_start_in_zone(day: str, zone: str, expected: str) -> None:
    # rules U1/U3: all-day dates are placed at 00:00 in the owner's zone, DST included
    assert day_start(date.fromisoformat(day), ZoneInfo(zone)) == at(expected)


def test_placed_all_day_instants_are_in_calsyncs_utc() -> None:
    # rules U1/U3 and the model's invariant: every instant is an aware datetime whose tzinfo IS
    # datetime.UTC (not merely an equal offset), whatever the process's local time zone is
    start, end = all_day("2026-03-29").instants(ZoneInfo("Europe/Berlin"))
    assert start.tzinfo is UTC and end.tzinfo is UTC
    assert day_start(date(2026, 3, 29), ZoneInfo("Europe/Berlin")).tzinfo is UTC


def test_all_day_instants_on_a_dst_day_are_23_hours() -> None:
    # rule U3: a one-day all-day event on a spring-forward day is 23 h on the time line
    start, end = all_day("2026-03-08").instants(ZoneInfo("America/New_York"))
    assert end - start == timedelta(hours=23)
    timed_occ = timed("2026-03-08T12:00:00Z")
    assert timed_occ.instants(ZoneInfo("America/New_York")) == (timed_occ.start, timed_occ.end)


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("day", ["2026-03-08", "2026-03-29", "2026-06-10", "2026-10-25", "2026-12-31"])
def test_widest_instants_cover_the_event_in_every_zone(zone: str, day: str) -> None:
    # rule U1: the store's widest span of an all-day event holds its placement in any owner zone
    occ = all_day(day, days=2)
    lo, hi = widest_instants(occ)
    start, end = occ.instants(ZoneInfo(zone))
    assert lo <= start and end <= hi


def test_owner_settings_default_to_utc_and_no_primary() -> None:
    # rule U1: default time zone is UTC
    owner = OwnerSettings()
    assert owner.time_zone == ZoneInfo("UTC")
    assert owner.primary_calendar_ids == frozenset()
