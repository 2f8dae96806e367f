"""Differential test of the CalDAV recurrence expansion against ``recurring-ical-events`` (issue 4).

Rule C10 (every occurrence inside the horizon, moved and cancelled ones honoured) and S10 (the
horizon): for random recurring series (DAILY/WEEKLY/MONTHLY, INTERVAL 1-3, COUNT, UNTIL or
neither, BYDAY, time zones with daylight-saving changes or far from UTC, all-day and timed, starts
around 01:00-03:59 local so that DST gaps and overlaps are hit, EXDATEs, overrides that move or
cancel instances, some with ``RANGE=THISANDFUTURE`` (issue 12: that instance and all later ones
move by the same wall-clock difference), sometimes a cancelled master) our occurrences -- start,
end and cancelled flag -- equal those of ``recurring_ical_events.of(cal).between(...)``.

Both sides are filtered with the same overlap predicate (``in_horizon`` below, which is what
``parse_resource`` promises); recurring-ical-events is asked for a wider span so that its own
boundary rules do not matter.

Where the two legitimately differ, RFC 5545 decides, and the test says so:

1. **Durations across a DST change.** RFC 5545 §3.8.5.3: "If the duration of the recurring
   component is specified with the DTEND property, then the same *exact* duration will apply to
   all the members of the generated recurrence set". recurring-ical-events adds the duration in
   wall-clock time (Python's arithmetic on datetimes sharing one tzinfo), so an instance that
   spans a DST change (e.g. 01:30-03:30 on the day New York springs forward) is an hour short or
   long there, and a master whose DTSTART or DTEND is itself in a gap or overlap gets a different
   duration. Where the ends differ, the test checks that a UTC-offset change explains it and that
   ours is the exact duration of the master (or of an override, which a RANGE=THISANDFUTURE
   override gives to later instances) -- or zero, when DTSTART lies in a gap and DTEND
   shortly after it (02:30-03:00 on a spring-forward day: the start moves to 03:30, after the end;
   recurring-ical-events then returns an end before the start).
2. **A cancelled master** (STATUS:CANCELLED on the series) cancels every occurrence in calsync,
   overrides and RANGE=THISANDFUTURE-moved instances included (the whole event is cancelled);
   recurring-ical-events keeps the override's own STATUS. (It does keep cancelled overrides as
   occurrences, as calsync does -- rule U7 needs them for ``explain``.)

Starts agree exactly, gaps included: both read a nonexistent local time with the offset before
the gap (RFC 5545 §3.3.5; PEP 495 ``fold=0``) and an ambiguous one as its first occurrence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import recurring_ical_events  # type: ignore[import-untyped]
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from icalendar import Calendar

from calsync.domain.models import EARLIEST_OFFSET, LATEST_OFFSET
from calsync_caldav import ParseContext, parse_resource

ZONES = ["Europe/Berlin", "America/New_York", "Australia/Sydney", "UTC", "Pacific/Kiritimati"]
DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
CTX = ParseContext(account_id="acct-1", calendar_id="cal-1")
# daylight-saving changes in 2026, to start series near them (UTC and Kiritimati have none)
TRANSITIONS = {
    "Europe/Berlin": [date(2026, 3, 29), date(2026, 10, 25)],
    "America/New_York": [date(2026, 3, 8), date(2026, 11, 1)],
    "Australia/Sydney": [date(2026, 4, 5), date(2026, 10, 4)],
}

Key = tuple[object, object, bool]  # (start, end, cancelled): instants or dates


@dataclass(frozen=True)
class Series:
    zone: str
    all_day: bool
    start: datetime  # wall-clock DTSTART (midnight for all-day)
    length: timedelta  # wall-clock DTEND - DTSTART (whole days for all-day)
    rule: str
    master_cancelled: bool


def _wall(value: datetime, zone: str, all_day: bool) -> str:
    """A DTSTART-like property value (without the name), as a client would write it."""
    if all_day:
        return f";VALUE=DATE:{value:%Y%m%d}"
    if zone == "UTC":
        return f":{value:%Y%m%dT%H%M%S}Z"
    return f";TZID={zone}:{value:%Y%m%dT%H%M%S}"


def _utc_text(value: datetime, zone: str) -> str:
    return f":{_instant(value, zone):%Y%m%dT%H%M%S}Z"


def _instant(wall: datetime, zone: str) -> datetime:
    # RFC 5545 §3.3.5 through PEP 495 fold=0 (independent of the code under test)
    return wall.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


Override = tuple[datetime, int, bool, bool]  # original start, shift, cancelled, RANGE=THISANDFUTURE


def _ics(series: Series, exdates: list[datetime], overrides: list[Override]) -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//calsync//differential//EN"]
    lines += [
        "BEGIN:VEVENT",
        "UID:series-1",
        "DTSTAMP:20260101T000000Z",
        f"DTSTART{_wall(series.start, series.zone, series.all_day)}",
        f"DTEND{_wall(series.start + series.length, series.zone, series.all_day)}",
        f"RRULE:{series.rule}",
        "SUMMARY:Standup",
    ]
    if series.master_cancelled:
        lines.append("STATUS:CANCELLED")
    # several EXDATEs per line, and several lines; timed ones alternately as TZID wall time and UTC
    for i in range(0, len(exdates), 2):
        chunk = exdates[i : i + 2]
        if series.all_day:
            lines.append("EXDATE;VALUE=DATE:" + ",".join(f"{d:%Y%m%d}" for d in chunk))
        elif i % 4 == 2 or series.zone == "UTC":
            lines.append("EXDATE:" + ",".join(_utc_text(d, series.zone)[1:] for d in chunk))
        else:
            lines.append(f"EXDATE;TZID={series.zone}:" + ",".join(f"{d:%Y%m%dT%H%M%S}" for d in chunk))
    lines.append("END:VEVENT")
    for original, shift, cancelled, future in overrides:
        moved = _moved(series, original, shift)
        rid = _wall(original, series.zone, series.all_day)
        lines += [
            "BEGIN:VEVENT",
            "UID:series-1",
            "DTSTAMP:20260101T000000Z",
            f"RECURRENCE-ID{';RANGE=THISANDFUTURE' if future else ''}{rid}",
            f"DTSTART{_wall(moved, series.zone, series.all_day)}",
            f"DTEND{_wall(moved + series.length, series.zone, series.all_day)}",
            "SUMMARY:Standup (moved)",
            f"STATUS:{'CANCELLED' if cancelled else 'CONFIRMED'}",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"


def _moved(series: Series, original: datetime, shift: int) -> datetime:
    return original + (timedelta(days=shift) if series.all_day else timedelta(hours=shift))


def in_horizon(start: object, end: object, hs: datetime, he: datetime) -> bool:
    """What parse_resource promises: overlap with [hs, he); zero length counts at its start;
    all-day dates as they may fall in any time zone (UTC-12 ... UTC+14)."""
    if isinstance(start, datetime) and isinstance(end, datetime):
        if start == end:
            return hs <= start < he
        return start < he and end > hs
    assert isinstance(start, date) and isinstance(end, date)
    first = datetime.combine(start, time(), UTC) - EARLIEST_OFFSET
    last = datetime.combine(end, time(), UTC) + LATEST_OFFSET
    return first < he and last > hs


@st.composite
def cases(draw: st.DrawFn) -> tuple[Series, str, datetime, datetime, list[Override]]:
    zone = draw(st.sampled_from(ZONES))
    all_day = draw(st.booleans())
    if zone in TRANSITIONS and draw(st.booleans()):
        day = draw(st.sampled_from(TRANSITIONS[zone])) + timedelta(days=draw(st.integers(-15, 1)))
    else:
        day = date(2026, 1, 1) + timedelta(days=draw(st.integers(0, 364)))
    if all_day:
        start = datetime.combine(day, time())
        length = timedelta(days=draw(st.integers(1, 3)))
    else:
        hour = draw(st.sampled_from([1, 1, 2, 2, 3, 9, 23]))
        start = datetime.combine(day, time(hour, draw(st.sampled_from([0, 15, 30, 45]))))
        length = timedelta(minutes=draw(st.sampled_from([0, 30, 60, 90, 120, 24 * 60])))
    freq = draw(st.sampled_from(["DAILY", "WEEKLY", "MONTHLY"]))
    parts = [f"FREQ={freq}"]
    interval = draw(st.integers(1, 3))
    if interval > 1 or draw(st.booleans()):
        parts.append(f"INTERVAL={interval}")
    if freq == "WEEKLY" and draw(st.booleans()):
        # synchronized with DTSTART (RFC 5545: otherwise the recurrence set is undefined)
        extra = draw(st.sets(st.sampled_from(DAYS), max_size=3))
        parts.append("BYDAY=" + ",".join(d for d in DAYS if d in extra | {DAYS[start.weekday()]}))
    end_kind = draw(st.sampled_from(["count", "until", "none"]))
    if end_kind == "count":
        parts.append(f"COUNT={draw(st.integers(1, 40))}")
    elif end_kind == "until":
        # not before DTSTART: there calsync keeps DTSTART as the first instance (RFC 5545: DTSTART
        # "defines the first instance") and recurring-ical-events drops it
        until = max(
            start,
            start + timedelta(days=draw(st.integers(0, 200)), minutes=draw(st.sampled_from([0, 1, -1]))),
        )
        parts.append(f"UNTIL={until:%Y%m%d}" if all_day else "UNTIL=" + _utc_text(until, zone)[1:])
    series = Series(zone, all_day, start, length, ";".join(parts), draw(st.integers(0, 9)) == 0)
    offset = draw(st.integers(-3, 20) if draw(st.integers(0, 4)) else st.integers(-10, 150))
    hs = _instant(start, "UTC") + timedelta(days=offset, hours=draw(st.integers(0, 23)))
    he = hs + timedelta(days=draw(st.integers(1, 70)), hours=draw(st.integers(0, 23)))

    # the plain series' instances near the horizon (from the independent implementation) to pick
    # EXDATEs and overrides from
    plain = Calendar.from_ical(_ics(series, [], []))
    walls = sorted(
        datetime.combine(o["DTSTART"].dt, time()) if all_day else o["DTSTART"].dt.replace(tzinfo=None)
        for o in recurring_ical_events.of(plain).between(hs - timedelta(days=5), he + timedelta(days=5))
    )
    chosen = draw(st.lists(st.sampled_from(walls), unique=True, max_size=6)) if walls else []
    split = draw(st.integers(0, len(chosen)))
    exdates = sorted(chosen[:split])
    overrides = [
        (
            original,
            draw(st.integers(-2, 2)) if all_day else draw(st.integers(-48, 48)),
            draw(st.booleans()),
            draw(st.integers(0, 3)) == 0,
        )
        for original in sorted(chosen[split:])
    ]
    return series, _ics(series, exdates, overrides), hs, he, overrides


def _theirs(text: str, hs: datetime, he: datetime, master_cancelled: bool) -> list[tuple[Key, bool]]:
    """recurring-ical-events' occurrences as (start, end, cancelled), each with whether it is an override."""
    out: list[tuple[Key, bool]] = []
    for occ in recurring_ical_events.of(Calendar.from_ical(text)).between(
        hs - timedelta(days=4), he + timedelta(days=4)
    ):
        start, end = occ["DTSTART"].dt, occ["DTEND"].dt
        if isinstance(start, datetime):
            start, end = start.astimezone(UTC), end.astimezone(UTC)
        is_override = str(occ.get("SUMMARY")) == "Standup (moved)"
        cancelled = master_cancelled or str(occ.get("STATUS", "")).upper() == "CANCELLED"
        if in_horizon(start, end, hs, he):
            out.append(((start, end, cancelled), is_override))
    return sorted(out, key=_order)


def _order(item: tuple[Key, bool]) -> tuple[datetime, bool, bool]:
    (start, _, cancelled), is_override = item
    if not isinstance(start, datetime):
        assert isinstance(start, date)
        start = datetime.combine(start, time(), UTC)
    return start, is_override, cancelled


def _case(
    series: Series, hs: datetime, he: datetime
) -> tuple[Series, str, datetime, datetime, list[Override]]:
    return series, _ics(series, [], []), hs, he, []


H = timedelta(hours=1)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
# explicit DST cases, so that the difference-1 path always runs: 01:30-03:30 across New York's
# spring-forward day; 02:30 in Berlin's gap (master *in* the gap: RFC exact duration 0 vs 1 h
# wall-clock); 02:30 in Berlin's fall-back overlap (first occurrence); Sydney's spring-forward
@example(
    _case(
        Series("America/New_York", False, datetime(2026, 3, 6, 1, 30), 2 * H, "FREQ=DAILY;COUNT=5", False),
        datetime(2026, 3, 1, tzinfo=UTC),
        datetime(2026, 3, 20, tzinfo=UTC),
    )
)
@example(
    _case(
        Series("Europe/Berlin", False, datetime(2026, 3, 29, 2, 30), H, "FREQ=WEEKLY;COUNT=3", False),
        datetime(2026, 3, 1, tzinfo=UTC),
        datetime(2026, 4, 30, tzinfo=UTC),
    )
)
@example(
    _case(
        Series("Europe/Berlin", False, datetime(2026, 3, 29, 2, 30), H / 2, "FREQ=DAILY;COUNT=1", True),
        datetime(2026, 3, 28, tzinfo=UTC),
        datetime(2026, 3, 30, tzinfo=UTC),
    )
)
@example(
    _case(
        Series("Europe/Berlin", False, datetime(2026, 10, 20, 2, 30), H, "FREQ=DAILY;INTERVAL=5", False),
        datetime(2026, 10, 1, tzinfo=UTC),
        datetime(2026, 11, 1, tzinfo=UTC),
    )
)
@example(
    _case(
        Series(
            "Australia/Sydney",
            False,
            datetime(2026, 9, 27, 1, 45),
            90 * 60 * timedelta(seconds=1),
            "FREQ=WEEKLY;BYDAY=SU,MO;UNTIL=20261101T000000Z",
            False,
        ),
        datetime(2026, 9, 1, tzinfo=UTC),
        datetime(2026, 11, 30, tzinfo=UTC),
    )
)
def test_expansion_matches_recurring_ical_events(
    case: tuple[Series, str, datetime, datetime, list[Override]],
) -> None:
    # rules C10, S10, U7 (cancelled occurrences are kept, flagged)
    series, text, hs, he, overrides = case
    result = parse_resource(text, CTX, hs, he)
    assert result.errors == []
    ours = sorted(
        (
            (
                (o.start, o.end, o.cancelled)
                if o.start is not None
                else (o.start_date, o.end_date, o.cancelled),
                o.title == "Standup (moved)",
            )
            for o in result.occurrences
        ),
        key=_order,
    )
    theirs = _theirs(text, hs, he, series.master_cancelled)
    # the exact duration (RFC 5545 §3.8.5.3) of the master and of each override (which a
    # RANGE=THISANDFUTURE override gives to later instances), computed independently
    exact = {
        max(_instant(start + series.length, series.zone) - _instant(start, series.zone), timedelta(0))
        for start in [series.start, *(_moved(series, o[0], o[1]) for o in overrides)]
    }
    if any(o[3] for o in overrides):
        event("with RANGE=THISANDFUTURE")

    event("no occurrence" if not theirs else f"{len(theirs) // 10 * 10}+ occurrences")
    if any(cancelled for (_, _, cancelled), _ in theirs):
        event("with cancelled occurrences")
    if any(is_override for _, is_override in theirs):
        event("with overrides")
    assert [k[0][0] for k in ours] == [k[0][0] for k in theirs], "starts differ"
    for (mine, my_override), (their, their_override) in zip(ours, theirs, strict=True):
        assert my_override == their_override
        assert mine[2] == their[2], "cancelled flag differs"
        if mine[1] == their[1]:
            continue
        # difference 1 (see the module docstring): only a DST change can explain it, and ours is
        # the exact duration of the master or of an override (RANGE=THISANDFUTURE)
        assert not series.all_day
        assert my_override or mine[1] - mine[0] in exact  # type: ignore[operator]
        zone = ZoneInfo(series.zone)
        start, end = their[0], their[1]
        assert isinstance(start, datetime) and isinstance(end, datetime)
        offsets = {
            start.astimezone(zone).utcoffset(),
            end.astimezone(zone).utcoffset(),
            series.start.replace(tzinfo=zone).utcoffset(),
            (series.start + series.length).replace(tzinfo=zone).utcoffset(),
        }
        assert len(offsets) > 1, f"ends differ without a DST change: {mine} vs {their}"
        event("ends differ across a DST change (RFC 5545 exact duration)")
        assert mine[1] - mine[0] in exact  # type: ignore[operator]


def test_the_generator_hits_dst_gaps() -> None:
    # rule C10: a sanity check of the differential test itself -- a series at 02:30 New York
    # crosses the spring-forward gap, where both read 02:30 as 03:30 EDT
    series = Series(
        "America/New_York",
        False,
        datetime(2026, 3, 6, 2, 30),
        timedelta(hours=1),
        "FREQ=DAILY;COUNT=5",
        False,
    )
    text = _ics(series, [], [])
    hs, he = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 20, tzinfo=UTC)
    ours = [o.start for o in parse_resource(text, CTX, hs, he).occurrences]
    theirs = [k[0][0] for k in _theirs(text, hs, he, False)]
    assert ours == theirs
    assert datetime(2026, 3, 8, 7, 30, tzinfo=UTC) in ours  # 03:30 EDT
