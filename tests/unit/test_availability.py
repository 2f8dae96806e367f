"""The interval merge and the busy rules of availability (C11): property tests and time zones."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from calsync.domain.availability import blocks, busy, merge, overlaps
from calsync.domain.models import UTC, Occurrence, Provider, Status, Transparency

BASE = datetime(2026, 11, 20, tzinfo=UTC)
minutes = st.integers(min_value=0, max_value=2000)
intervals = st.lists(
    st.tuples(minutes, st.integers(min_value=0, max_value=300)).map(
        lambda t: (BASE + timedelta(minutes=t[0]), BASE + timedelta(minutes=t[0] + t[1]))
    ),
    max_size=40,
)


def covered(spans: list[tuple[datetime, datetime]]) -> set[int]:
    """The minutes [m, m+1) covered by half-open spans (all on whole minutes)."""
    out: set[int] = set()
    for s, e in spans:
        out.update(range(int((s - BASE).total_seconds() // 60), int((e - BASE).total_seconds() // 60)))
    return out


@settings(max_examples=400, deadline=None)
@given(intervals)
def test_merge_is_sorted_disjoint_and_covers_exactly_the_union(
    spans: list[tuple[datetime, datetime]],
) -> None:
    # rule C11: merged busy intervals
    merged = merge(spans)
    assert all(s < e for s, e in merged)  # no empty interval
    assert merged == sorted(merged)
    assert all(a[1] < b[0] for a, b in itertools.pairwise(merged))  # disjoint, not touching
    assert covered(merged) == covered(spans)  # exactly the union


@given(intervals)
def test_merge_is_idempotent_and_order_independent(spans: list[tuple[datetime, datetime]]) -> None:
    # rule C11
    assert merge(merge(spans)) == merge(spans)
    assert merge(list(reversed(spans))) == merge(spans)


def test_touching_intervals_join_and_empty_ones_vanish() -> None:
    # rule C11
    h = timedelta(hours=1)
    assert merge([(BASE + h, BASE + 2 * h), (BASE, BASE + h), (BASE + 3 * h, BASE + 3 * h)]) == [
        (BASE, BASE + 2 * h)
    ]
    assert overlaps([(BASE, BASE + h)], BASE + h, BASE + 2 * h) == []  # half-open: back to back is free


def occ(event_id: str, **kw: object) -> Occurrence:
    base: dict[str, object] = {"start": BASE + timedelta(hours=9), "end": BASE + timedelta(hours=10)}
    base.update(kw)
    return Occurrence(
        provider=Provider.CALDAV, account_id="a", calendar_id="c", event_id=event_id, title=event_id, **base
    )  # type: ignore[arg-type]


def test_free_cancelled_and_declined_events_do_not_block() -> None:
    # rule C11
    assert blocks(occ("busy"))
    assert blocks(occ("tentative", status=Status.TENTATIVE))
    assert not blocks(occ("free", transparency=Transparency.TRANSPARENT))
    assert not blocks(occ("cancelled", status=Status.CANCELLED))
    assert not blocks(occ("declined", declined=True))


def test_busy_keeps_only_the_locations_calendars_and_clips_to_the_range() -> None:
    # rule C11
    other = Occurrence(
        provider=Provider.GOOGLE,
        account_id="g",
        calendar_id="elsewhere",
        event_id="x",
        title="x",
        start=BASE,
        end=BASE + timedelta(days=1),
    )
    long = occ("long", start=BASE - timedelta(hours=5), end=BASE + timedelta(hours=2))
    got = busy(
        [long, other], calendar_ids={"c"}, zone=ZoneInfo("UTC"), start=BASE, end=BASE + timedelta(days=1)
    )
    assert got == [(BASE, BASE + timedelta(hours=2))]


def all_day(day: date) -> Occurrence:
    return occ("day", start=None, end=None, start_date=day, end_date=day + timedelta(days=1))


def test_all_day_blocks_the_whole_day_in_utc_plus_14_and_utc_minus_11() -> None:
    # rule C11: the same date is a different stretch of the time line
    day = date(2026, 11, 21)
    wide = (BASE - timedelta(days=2), BASE + timedelta(days=4))
    kiritimati = busy(
        [all_day(day)], calendar_ids={"c"}, zone=ZoneInfo("Pacific/Kiritimati"), start=wide[0], end=wide[1]
    )
    pago = busy(
        [all_day(day)], calendar_ids={"c"}, zone=ZoneInfo("Pacific/Pago_Pago"), start=wide[0], end=wide[1]
    )
    assert kiritimati == [(datetime(2026, 11, 20, 10, tzinfo=UTC), datetime(2026, 11, 21, 10, tzinfo=UTC))]
    assert pago == [(datetime(2026, 11, 21, 11, tzinfo=UTC), datetime(2026, 11, 22, 11, tzinfo=UTC))]


def test_all_day_on_daylight_saving_days_lasts_23_or_25_hours() -> None:
    # rule C11: Europe/Berlin, 2026-03-29 (spring forward) and 2026-10-25 (fall back)
    zone = ZoneInfo("Europe/Berlin")
    for day, hours in ((date(2026, 3, 29), 23), (date(2026, 10, 25), 25)):
        start = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(days=1)
        [(s, e)] = busy(
            [all_day(day)], calendar_ids={"c"}, zone=zone, start=start, end=start + timedelta(days=3)
        )
        assert e - s == timedelta(hours=hours)


def test_busy_skips_free_cancelled_declined_and_other_calendars_and_keeps_the_rest() -> None:
    # rule C11: events shown as free, cancelled ones, declined ones and other calendars' events do not
    # block, and they never hide the busy events that come after them
    h = timedelta(hours=1)
    got = busy(
        [
            occ("free", start=BASE, end=BASE + h, transparency=Transparency.TRANSPARENT),
            occ("cancelled", start=BASE + h, end=BASE + 2 * h, status=Status.CANCELLED),
            occ("declined", start=BASE + 2 * h, end=BASE + 3 * h, declined=True),
            occ("busy", start=BASE + 4 * h, end=BASE + 5 * h),
            Occurrence(
                provider=Provider.GOOGLE,
                account_id="g",
                calendar_id="elsewhere",
                event_id="x",
                title="x",
                start=BASE + 5 * h,
                end=BASE + 6 * h,
            ),
            occ("tentative", start=BASE + 7 * h, end=BASE + 8 * h, status=Status.TENTATIVE),
        ],
        calendar_ids={"c"},
        zone=ZoneInfo("UTC"),
        start=BASE,
        end=BASE + timedelta(days=1),
    )
    assert got == [(BASE + 4 * h, BASE + 5 * h), (BASE + 7 * h, BASE + 8 * h)]


def _minutes(start: datetime, end: datetime) -> set[int]:
    return covered([(start, end)])


@given(intervals, minutes, st.integers(min_value=1, max_value=300))
def test_overlaps_returns_exactly_the_intervals_sharing_a_minute_with_the_range(
    spans: list[tuple[datetime, datetime]], offset: int, length: int
) -> None:
    # rule C11 (a proposed meeting clashes with busy time): half-open [start, end) on both sides;
    # busy intervals are never empty (merge drops those)
    spans = [(s, e) for s, e in spans if s < e]
    start, end = BASE + timedelta(minutes=offset), BASE + timedelta(minutes=offset + length)
    got = overlaps(spans, start, end)
    assert got == [(s, e) for s, e in spans if _minutes(s, e) & _minutes(start, end)]


def test_overlaps_is_half_open_at_both_ends() -> None:
    # rule C11: back to back is free, on either side; one shared minute is a clash
    h = timedelta(hours=1)
    busy_hour = [(BASE + h, BASE + 2 * h)]
    assert overlaps(busy_hour, BASE, BASE + h) == []  # ends where the busy hour starts
    assert overlaps(busy_hour, BASE + 2 * h, BASE + 3 * h) == []  # starts where it ends
    assert overlaps(busy_hour, BASE, BASE + h + timedelta(minutes=1)) == busy_hour
    assert overlaps(busy_hour, BASE + 2 * h - timedelta(minutes=1), BASE + 3 * h) == busy_hour
