"""CalDAV resources -> occurrences (issue 4): ``calsync_caldav.parse_resource``.

Rules: C10 (recurring series: every occurrence in the horizon, moved and cancelled ones honoured),
S10 (horizon), U4 (updatable), U5 (recurring), U6 (legacy), U7 (cancelled), R4 (privacy class).
Every test passes its horizon explicitly; nothing depends on the clock.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import pytest

from calsync.domain.models import UTC, Occurrence, Provider, Status, Transparency, Visibility
from calsync_caldav import MAX_INSTANCES, ParseContext, ParseResult, localize, parse_resource
from calsync_caldav.prescan import may_reach_after, relevant_text
from tests.support.builders import LEGACY_LINK, LINK_A, LINK_B, LINKS, at

CTX = ParseContext(
    account_id="acct-1",
    calendar_id="cal-1",
    own_addresses=frozenset({"me@example.com"}),
    calendar_writable=True,
    links=LINKS,
    etag='"etag-1"',
)
# a March/April 2026 horizon: Europe springs forward on 29 March, New York on 8 March
H0, H1 = at("2026-03-01T00:00:00Z"), at("2026-05-01T00:00:00Z")

BERLIN_VTIMEZONE = """BEGIN:VTIMEZONE
TZID:Custom Central European
BEGIN:STANDARD
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
END:DAYLIGHT
END:VTIMEZONE"""


def vevent(*lines: str, uid: str = "evt-1") -> str:
    body = [f"UID:{uid}", "DTSTAMP:20260101T000000Z", *lines]
    return "\n".join(["BEGIN:VEVENT", *body, "END:VEVENT"])


def ics(*components: str) -> str:
    return "\r\n".join(
        [
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:-//test//EN",
            *"\n".join(components).split("\n"),
            "END:VCALENDAR",
        ]
    )


def parse(*components: str, ctx: ParseContext = CTX, start: datetime = H0, end: datetime = H1) -> ParseResult:
    return parse_resource(ics(*components), ctx, start, end)


def only(result: ParseResult) -> Occurrence:
    assert result.errors == []
    assert len(result.occurrences) == 1, result.occurrences
    return result.occurrences[0]


def starts(result: ParseResult) -> list[datetime | date | None]:
    return [o.start if o.start is not None else o.start_date for o in result.occurrences]


# -- single events, time -------------------------------------------------------------------------


def test_a_timed_event_in_an_iana_zone() -> None:
    # rules U1 / S10: the instants every window is computed from
    occ = only(
        parse(
            vevent(
                "DTSTART;TZID=Europe/Berlin:20260310T090000",
                "DTEND;TZID=Europe/Berlin:20260310T100000",
                "SUMMARY:Planning",
            )
        )
    )
    assert occ.provider is Provider.CALDAV
    assert (occ.account_id, occ.calendar_id, occ.event_id) == ("acct-1", "cal-1", "evt-1")
    assert (occ.start, occ.end) == (at("2026-03-10T08:00:00Z"), at("2026-03-10T09:00:00Z"))
    assert occ.time_zone == "Europe/Berlin"
    assert occ.title == "Planning"
    assert occ.etag == '"etag-1"'
    assert not occ.recurring and occ.series_id is None and occ.original_start is None
    assert occ.status is Status.CONFIRMED and occ.transparency is Transparency.OPAQUE


def test_no_summary_is_no_title_and_utc_times() -> None:
    # rules U1 / U8 (title) / S10
    occ = only(parse(vevent("DTSTART:20260310T090000Z", "DTEND:20260310T093000Z")))
    assert occ.title is None
    assert (occ.start, occ.end) == (at("2026-03-10T09:00:00Z"), at("2026-03-10T09:30:00Z"))
    assert occ.time_zone == "UTC"


def test_floating_times_are_read_in_the_calendar_time_zone() -> None:
    # rules U1 / S10
    from zoneinfo import ZoneInfo

    ctx = ParseContext("acct-1", "cal-1", calendar_time_zone=ZoneInfo("America/New_York"))
    occ = only(parse(vevent("DTSTART:20260310T090000", "DTEND:20260310T100000"), ctx=ctx))
    assert occ.start == at("2026-03-10T13:00:00Z")  # 09:00 EDT
    assert occ.time_zone == "America/New_York"


def test_a_tzid_defined_only_by_the_resources_vtimezone() -> None:
    # rules U1 / S10
    occ = only(
        parse(
            BERLIN_VTIMEZONE,
            vevent(
                "DTSTART;TZID=Custom Central European:20260310T090000",
                "DTEND;TZID=Custom Central European:20260310T100000",
            ),
        )
    )
    assert (occ.start, occ.end) == (at("2026-03-10T08:00:00Z"), at("2026-03-10T09:00:00Z"))
    assert occ.time_zone == "Custom Central European"


def test_a_windows_time_zone_name_is_mapped() -> None:
    # rules U1 / S10
    occ = only(parse(vevent("DTSTART;TZID=W. Europe Standard Time:20260310T090000", "DURATION:PT1H")))
    assert occ.start == at("2026-03-10T08:00:00Z")


def test_a_timed_event_without_dtend_has_no_length_and_duration_is_honoured() -> None:
    # rules U2 / U3 need the end: RFC 5545 §3.6.1
    zero = only(parse(vevent("DTSTART:20260310T090000Z")))
    assert zero.start == zero.end == at("2026-03-10T09:00:00Z")
    long = only(parse(vevent("DTSTART:20260310T090000Z", "DURATION:PT45M")))
    assert long.end == at("2026-03-10T09:45:00Z")


def test_dtend_before_dtstart_spans_the_two_swapped() -> None:
    # rule D1 (docs/ical-leniency.md): DTEND before DTSTART is read as the span between them
    timed = only(parse(vevent("DTSTART:20260310T090000Z", "DTEND:20260310T080000Z")))
    assert (timed.start, timed.end) == (at("2026-03-10T08:00:00Z"), at("2026-03-10T09:00:00Z"))
    days = only(parse(vevent("DTSTART;VALUE=DATE:20260312", "DTEND;VALUE=DATE:20260310")))
    assert (days.start_date, days.end_date) == (date(2026, 3, 10), date(2026, 3, 12))
    # every instance of a series, each keeping its identity (the rule's start)
    series = parse(vevent("DTSTART:20260310T090000Z", "DTEND:20260310T083000Z", "RRULE:FREQ=DAILY;COUNT=2"))
    assert series.errors == []
    assert [(o.start, o.end, o.original_start) for o in series.occurrences] == [
        (at("2026-03-10T08:30:00Z"), at("2026-03-10T09:00:00Z"), "2026-03-10T09:00:00+00:00"),
        (at("2026-03-11T08:30:00Z"), at("2026-03-11T09:00:00Z"), "2026-03-11T09:00:00+00:00"),
    ]


def test_all_day_dtend_is_exclusive_and_a_missing_dtend_is_one_day() -> None:
    # rule U3 counts all-day events by calendar days: the parser must keep dates, not instants
    two = only(parse(vevent("DTSTART;VALUE=DATE:20260310", "DTEND;VALUE=DATE:20260312")))
    assert (two.start_date, two.end_date) == (date(2026, 3, 10), date(2026, 3, 12))
    assert two.all_day and two.start is None and two.time_zone is None
    one = only(parse(vevent("DTSTART;VALUE=DATE:20260310")))
    assert (one.start_date, one.end_date) == (date(2026, 3, 10), date(2026, 3, 11))
    by_duration = only(parse(vevent("DTSTART;VALUE=DATE:20260310", "DURATION:P3D")))
    assert by_duration.end_date == date(2026, 3, 13)


def test_nonexistent_local_time_is_shifted_forward_by_the_gap() -> None:
    # rules U1 / C10: deterministic DST handling
    # RFC 5545 §3.3.5: 02:30 on 8 March 2026 does not exist in New York -> 03:30 EDT
    occ = only(parse(vevent("DTSTART;TZID=America/New_York:20260308T023000", "DURATION:PT30M")))
    assert occ.start == at("2026-03-08T07:30:00Z")


def test_dtend_just_after_a_gap_start_gives_no_length_not_an_error() -> None:
    # rules U1 / C10: deterministic DST handling
    # 02:30-03:00 Berlin on 29 March: DTSTART does not exist and moves to 03:30, after DTEND
    occ = only(
        parse(
            vevent("DTSTART;TZID=Europe/Berlin:20260329T023000", "DTEND;TZID=Europe/Berlin:20260329T030000")
        )
    )
    assert occ.start == occ.end == at("2026-03-29T01:30:00Z")


def test_ambiguous_local_time_is_its_first_occurrence() -> None:
    # rules U1 / C10: deterministic DST handling
    # RFC 5545 §3.3.5: 01:30 on 1 November 2026 occurs twice in New York -> the first, EDT
    occ = only(
        parse(
            vevent("DTSTART;TZID=America/New_York:20261101T013000", "DURATION:PT30M"),
            end=at("2027-01-01T00:00:00Z"),
        )
    )
    assert occ.start == at("2026-11-01T05:30:00Z")


def test_gaps_and_overlaps_agree_for_iana_and_vtimezone_zones() -> None:
    # rules U1 / C10: deterministic DST handling
    # localize() handles dateutil zones (built from VTIMEZONE) as zoneinfo does PEP 495 fold=0
    from zoneinfo import ZoneInfo

    from icalendar import Calendar

    cal = Calendar.from_ical(
        ics(BERLIN_VTIMEZONE, vevent("DTSTART;TZID=Custom Central European:20260329T023000"))
    )
    custom = cal.walk("VEVENT")[0].decoded("DTSTART").tzinfo
    berlin = ZoneInfo("Europe/Berlin")
    for wall in (
        datetime(2026, 3, 29, 2, 30),  # gap
        datetime(2026, 3, 29, 1, 59),
        datetime(2026, 3, 29, 3, 0),
        datetime(2026, 10, 25, 2, 30),  # overlap
        datetime(2026, 10, 25, 3, 0),
        datetime(2026, 7, 1, 12, 0),
    ):
        assert localize(wall, custom) == localize(wall, berlin), wall
    assert localize(datetime(2026, 3, 29, 2, 30), custom) == at("2026-03-29T01:30:00Z")
    assert localize(datetime(2026, 10, 25, 2, 30), custom) == at("2026-10-25T00:30:00Z")


# -- recurrence (rule C10) ------------------------------------------------------------------------


def test_daily_count() -> None:
    # rule C10
    result = parse(vevent("DTSTART:20260302T090000Z", "DURATION:PT30M", "RRULE:FREQ=DAILY;COUNT=3"))
    assert starts(result) == [at(f"2026-03-0{d}T09:00:00Z") for d in (2, 3, 4)]
    assert all(o.recurring and o.series_id == "evt-1" for o in result.occurrences)


def test_weekly_byday_interval_until() -> None:
    # rule C10: every second week, Monday and Thursday, until 26 March (inclusive)
    result = parse(
        vevent(
            "DTSTART;TZID=Europe/Berlin:20260302T100000",
            "DTEND;TZID=Europe/Berlin:20260302T103000",
            "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH;UNTIL=20260326T090000Z",
        )
    )
    assert [s.date() for s in starts(result)] == [  # type: ignore[union-attr]
        date(2026, 3, 2),
        date(2026, 3, 5),
        date(2026, 3, 16),
        date(2026, 3, 19),
    ]


def test_monthly_bymonthday_and_last_weekday() -> None:
    # rule C10
    by_day = parse(vevent("DTSTART:20260315T120000Z", "RRULE:FREQ=MONTHLY;BYMONTHDAY=15,-1;COUNT=4"))
    assert starts(by_day) == [
        at("2026-03-15T12:00:00Z"),
        at("2026-03-31T12:00:00Z"),
        at("2026-04-15T12:00:00Z"),
        at("2026-04-30T12:00:00Z"),
    ]
    last_friday = parse(vevent("DTSTART:20260327T120000Z", "RRULE:FREQ=MONTHLY;BYDAY=-1FR"))
    assert starts(last_friday) == [at("2026-03-27T12:00:00Z"), at("2026-04-24T12:00:00Z")]


def test_wall_clock_expansion_keeps_0900_across_dst() -> None:
    # rule C10: 09:00 Europe/Berlin is 08:00Z before 29 March and 07:00Z after
    result = parse(
        vevent(
            "DTSTART;TZID=Europe/Berlin:20260326T090000",
            "DTEND;TZID=Europe/Berlin:20260326T093000",
            "RRULE:FREQ=DAILY;COUNT=6",
        )
    )
    assert starts(result) == [
        at("2026-03-26T08:00:00Z"),
        at("2026-03-27T08:00:00Z"),
        at("2026-03-28T08:00:00Z"),
        at("2026-03-29T07:00:00Z"),
        at("2026-03-30T07:00:00Z"),
        at("2026-03-31T07:00:00Z"),
    ]
    assert all(o.end - o.start == timedelta(minutes=30) for o in result.occurrences)  # type: ignore[operator]


def test_dtend_gives_every_instance_the_exact_duration_and_duration_the_nominal_one() -> None:
    # RFC 5545 §3.8.5.3; rule C10. 01:30-03:30 New York on the spring-forward day (8 March):
    exact = parse(
        vevent(
            "DTSTART;TZID=America/New_York:20260307T013000",
            "DTEND;TZID=America/New_York:20260307T033000",
            "RRULE:FREQ=DAILY;COUNT=2",
        )
    )
    assert [o.end - o.start for o in exact.occurrences] == [timedelta(hours=2)] * 2  # type: ignore[operator]
    nominal = parse(
        vevent(
            "DTSTART;TZID=America/New_York:20260307T120000",
            "DURATION:P1D",
            "RRULE:FREQ=DAILY;COUNT=2",
        )
    )
    # a day is 23 hours long when it contains the change
    assert [o.end - o.start for o in nominal.occurrences] == [timedelta(hours=23), timedelta(hours=24)]  # type: ignore[operator]


def test_rdate_adds_instances_including_periods() -> None:
    # rule C10
    result = parse(
        vevent(
            "DTSTART:20260302T090000Z",
            "DTEND:20260302T100000Z",
            "RDATE:20260310T090000Z,20260311T150000Z",
            "RDATE;VALUE=PERIOD:20260312T080000Z/20260312T083000Z,20260313T080000Z/PT2H",
        )
    )
    spans = [(o.start, o.end) for o in result.occurrences]
    assert spans == [
        (at("2026-03-02T09:00:00Z"), at("2026-03-02T10:00:00Z")),
        (at("2026-03-10T09:00:00Z"), at("2026-03-10T10:00:00Z")),
        (at("2026-03-11T15:00:00Z"), at("2026-03-11T16:00:00Z")),
        (at("2026-03-12T08:00:00Z"), at("2026-03-12T08:30:00Z")),
        (at("2026-03-13T08:00:00Z"), at("2026-03-13T10:00:00Z")),
    ]
    assert all(o.recurring for o in result.occurrences)


def test_exdate_several_per_line_several_lines_and_other_notations() -> None:
    # rule C10: 09:00 Berlin daily for 8 days; EXDATEs in TZID form (two on one line), in UTC,
    # and in a second TZID line
    result = parse(
        vevent(
            "DTSTART;TZID=Europe/Berlin:20260302T090000",
            "DURATION:PT1H",
            "RRULE:FREQ=DAILY;COUNT=8",
            "EXDATE;TZID=Europe/Berlin:20260303T090000,20260305T090000",
            "EXDATE:20260306T080000Z",
            "EXDATE;TZID=Europe/Berlin:20260309T090000",
        )
    )
    assert [s.day for s in starts(result)] == [2, 4, 7, 8]  # type: ignore[union-attr]


def test_all_day_series_with_exdate() -> None:
    # rule C10
    result = parse(
        vevent(
            "DTSTART;VALUE=DATE:20260302",
            "DTEND;VALUE=DATE:20260303",
            "RRULE:FREQ=WEEKLY;COUNT=4",
            "EXDATE;VALUE=DATE:20260309",
        )
    )
    assert starts(result) == [date(2026, 3, 2), date(2026, 3, 16), date(2026, 3, 23)]
    assert [o.original_start for o in result.occurrences] == ["2026-03-02", "2026-03-16", "2026-03-23"]


def test_dtstart_is_always_the_first_instance_and_counts() -> None:
    # rule C10
    # RFC 5545 §3.8.5.3 (documented choice for an unsynchronized DTSTART): a Wednesday DTSTART with
    # BYDAY=MO;COUNT=2 is the Wednesday and one Monday
    result = parse(vevent("DTSTART:20260304T090000Z", "RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=2"))
    assert starts(result) == [at("2026-03-04T09:00:00Z"), at("2026-03-09T09:00:00Z")]


def test_until_before_dtstart_leaves_dtstart() -> None:
    # rule C10
    # documented choice: RFC 5545 §3.8.5.3, DTSTART "defines the first instance" of the set
    result = parse(vevent("DTSTART:20260304T090000Z", "RRULE:FREQ=DAILY;UNTIL=20260301T000000Z"))
    assert starts(result) == [at("2026-03-04T09:00:00Z")]


def test_moved_override_keeps_the_identity_of_its_occurrence() -> None:
    # rule C10: the 4 March occurrence moves to 15:00; it keeps event_id, original_start and id
    master = vevent(
        "DTSTART;TZID=Europe/Berlin:20260302T090000",
        "DTEND;TZID=Europe/Berlin:20260302T093000",
        "RRULE:FREQ=DAILY;COUNT=5",
        "SUMMARY:Standup",
    )
    before = parse(master)
    override = vevent(
        "RECURRENCE-ID;TZID=Europe/Berlin:20260304T090000",
        "DTSTART;TZID=Europe/Berlin:20260304T150000",
        "DTEND;TZID=Europe/Berlin:20260304T160000",
        "SUMMARY:Standup (late)",
    )
    after = parse(master, override)
    assert after.errors == []
    moved = next(o for o in after.occurrences if o.title == "Standup (late)")
    original = next(o for o in before.occurrences if o.start == at("2026-03-04T08:00:00Z"))
    assert (moved.start, moved.end) == (at("2026-03-04T14:00:00Z"), at("2026-03-04T15:00:00Z"))
    assert moved.event_id == moved.series_id == "evt-1"
    assert moved.original_start == "2026-03-04T08:00:00+00:00" == original.original_start
    assert moved.id == original.id
    assert moved.recurring
    assert len(after.occurrences) == 5
    assert at("2026-03-04T08:00:00Z") not in starts(after)


def test_override_given_in_utc_matches_a_tzid_series() -> None:
    # rule C10: RECURRENCE-ID in UTC, the master in Europe/Berlin (Outlook writes it so)
    result = parse(
        vevent("DTSTART;TZID=Europe/Berlin:20260302T090000", "RRULE:FREQ=DAILY;COUNT=3"),
        vevent("RECURRENCE-ID:20260303T080000Z", "DTSTART:20260303T120000Z", "SUMMARY:moved"),
    )
    assert starts(result) == [
        at("2026-03-02T08:00:00Z"),
        at("2026-03-03T12:00:00Z"),
        at("2026-03-04T08:00:00Z"),
    ]


def test_cancelled_override_is_a_cancelled_occurrence() -> None:
    # rule U7: kept, flagged cancelled, so that explain can show why it is left out
    result = parse(
        vevent("DTSTART:20260302T090000Z", "DURATION:PT30M", "RRULE:FREQ=DAILY;COUNT=3"),
        vevent(
            "RECURRENCE-ID:20260303T090000Z",
            "DTSTART:20260303T090000Z",
            "DURATION:PT30M",
            "STATUS:CANCELLED",
        ),
    )
    assert [(o.start, o.status) for o in result.occurrences] == [
        (at("2026-03-02T09:00:00Z"), Status.CONFIRMED),
        (at("2026-03-03T09:00:00Z"), Status.CANCELLED),
        (at("2026-03-04T09:00:00Z"), Status.CONFIRMED),
    ]
    assert result.occurrences[1].original_start == "2026-03-03T09:00:00+00:00"


def test_highest_sequence_wins_between_two_overrides() -> None:
    # rule C10
    result = parse(
        vevent("DTSTART:20260302T090000Z", "RRULE:FREQ=DAILY;COUNT=2"),
        vevent("RECURRENCE-ID:20260303T090000Z", "SEQUENCE:2", "DTSTART:20260303T110000Z", "SUMMARY:new"),
        vevent("RECURRENCE-ID:20260303T090000Z", "SEQUENCE:1", "DTSTART:20260303T100000Z", "SUMMARY:old"),
    )
    assert [o.title for o in result.occurrences] == [None, "new"]


def test_override_not_produced_by_the_rule_is_still_an_occurrence() -> None:
    # rule C10: a RECURRENCE-ID outside the rule (a Saturday of a weekday series)
    result = parse(
        vevent("DTSTART:20260302T090000Z", "RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=2"),
        vevent("RECURRENCE-ID:20260307T090000Z", "DTSTART:20260307T100000Z", "SUMMARY:extra"),
    )
    assert starts(result) == [
        at("2026-03-02T09:00:00Z"),
        at("2026-03-07T10:00:00Z"),
        at("2026-03-09T09:00:00Z"),
    ]
    extra = result.occurrences[1]
    assert extra.recurring and extra.original_start == "2026-03-07T09:00:00+00:00"


def test_an_override_without_its_master_is_an_occurrence_of_the_series() -> None:
    # rule C10 / U5: invited to one occurrence only, the server sends just the override
    occ = only(
        parse(
            vevent(
                "RECURRENCE-ID;TZID=Europe/Berlin:20260304T090000",
                "DTSTART;TZID=Europe/Berlin:20260304T100000",
                "DTEND;TZID=Europe/Berlin:20260304T110000",
            )
        )
    )
    assert occ.recurring and occ.series_id == "evt-1"
    assert occ.start == at("2026-03-04T09:00:00Z")
    assert occ.original_start == "2026-03-04T08:00:00+00:00"


def test_cancelled_master_cancels_every_occurrence() -> None:
    # rule U7: the whole series is cancelled, overrides included
    result = parse(
        vevent("DTSTART:20260302T090000Z", "RRULE:FREQ=DAILY;COUNT=3", "STATUS:CANCELLED"),
        vevent("RECURRENCE-ID:20260303T090000Z", "DTSTART:20260303T100000Z", "STATUS:CONFIRMED"),
    )
    assert len(result.occurrences) == 3
    assert all(o.cancelled for o in result.occurrences)


def test_moved_occurrence_enters_or_leaves_the_horizon() -> None:
    # rules C10 / S10: an occurrence moved from outside the horizon into it is there, and one
    # moved out of it is gone (with no trace of its original slot)
    start, end = at("2026-03-10T00:00:00Z"), at("2026-03-12T00:00:00Z")
    result = parse(
        vevent("DTSTART:20260309T090000Z", "RRULE:FREQ=DAILY;COUNT=4"),
        vevent("RECURRENCE-ID:20260309T090000Z", "DTSTART:20260310T180000Z", "SUMMARY:into"),
        vevent("RECURRENCE-ID:20260311T090000Z", "DTSTART:20260320T090000Z", "SUMMARY:out"),
        start=start,
        end=end,
    )
    assert [(o.start, o.title) for o in result.occurrences] == [
        (at("2026-03-10T09:00:00Z"), None),
        (at("2026-03-10T18:00:00Z"), "into"),
    ]


def test_several_uids_in_one_resource() -> None:
    # rule C10 (issue 4: iCloud)
    # iCloud puts several events in one resource; each is its own event or series
    result = parse(
        vevent("DTSTART:20260302T090000Z", "SUMMARY:one", uid="a"),
        vevent("DTSTART:20260303T090000Z", "RRULE:FREQ=DAILY;COUNT=2", "SUMMARY:two", uid="b"),
        vevent("RECURRENCE-ID:20260304T090000Z", "DTSTART:20260304T100000Z", "SUMMARY:two*", uid="b"),
    )
    assert result.errors == []
    assert [(o.event_id, o.title, o.recurring) for o in result.occurrences] == [
        ("a", "one", False),
        ("b", "two", True),
        ("b", "two*", True),
    ]


# -- horizon (rule S10) ---------------------------------------------------------------------------


def test_only_occurrences_overlapping_the_horizon() -> None:
    # rule S10: [start, end): an event in progress at the start is in, one ending exactly at the
    # start is out, one starting exactly at the end is out
    start, end = at("2026-03-10T00:00:00Z"), at("2026-03-11T00:00:00Z")
    result = parse(
        vevent("DTSTART:20260309T230000Z", "DTEND:20260310T010000Z", uid="in-progress"),
        vevent("DTSTART:20260309T230000Z", "DTEND:20260310T000000Z", uid="ended"),
        vevent("DTSTART:20260311T000000Z", "DTEND:20260311T010000Z", uid="after"),
        vevent("DTSTART:20260310T000000Z", uid="zero-at-start"),
        start=start,
        end=end,
    )
    assert [o.event_id for o in result.occurrences] == ["in-progress", "zero-at-start"]


def test_all_day_events_are_kept_where_any_time_zone_may_place_them() -> None:
    # rule S10: 9 March is still "today" at 11:00Z in UTC-12 -> kept for a horizon from 10 March
    result = parse(
        vevent("DTSTART;VALUE=DATE:20260309", uid="yesterday"),
        vevent("DTSTART;VALUE=DATE:20260307", uid="long-ago"),
        start=at("2026-03-10T00:00:00Z"),
        end=at("2026-03-11T00:00:00Z"),
    )
    assert [o.event_id for o in result.occurrences] == ["yesterday"]


def test_a_series_that_began_long_ago_is_expanded_in_the_horizon() -> None:
    # rule C10: a daily standup since 1990 (no COUNT: fast-forwarded, not truncated)
    result = parse(vevent("DTSTART;TZID=Europe/Berlin:19900102T090000", "DURATION:PT15M", "RRULE:FREQ=DAILY"))
    assert result.errors == []
    assert len(result.occurrences) == 61  # March and April 2026
    assert result.occurrences[0].start == at("2026-03-01T08:00:00Z")
    assert result.occurrences[0].original_start == "2026-03-01T08:00:00+00:00"


def test_expansion_is_capped() -> None:
    # a hostile rule cannot exhaust the function: hourly for three months is more than the cap
    result = parse(vevent("DTSTART:20260301T000000Z", "RRULE:FREQ=HOURLY"), end=at("2026-06-01T00:00:00Z"))
    assert len(result.occurrences) == MAX_INSTANCES
    assert len(result.errors) == 1 and "occurrences in the horizon" in result.errors[0]


def test_rules_that_never_match_or_are_too_fine_end_with_an_error_not_a_hang() -> None:
    # rules C10 / X5: bounded work on hostile input
    # 30 February never exists; counted from 1604 it would be scanned day by day for centuries
    counted = parse(vevent("DTSTART:16040101T090000Z", "RRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30;COUNT=3"))
    assert len(counted.occurrences) == 0
    assert len(counted.errors) == 1 and "too many periods" in counted.errors[0]
    uncounted = parse(vevent("DTSTART:16040101T090000Z", "RRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"))
    assert uncounted.errors == [] and uncounted.occurrences == []
    # rule D1: a refused rule leaves the event's first occurrence (DTSTART), and says so
    secondly = parse(vevent("DTSTART:20260301T000000Z", "RRULE:FREQ=SECONDLY"))
    assert [o.start for o in secondly.occurrences] == [at("2026-03-01T00:00:00Z")]
    assert "FREQ=SECONDLY is not supported; only its first occurrence is shown" in secondly.errors[0]


def test_the_expansion_budget_is_per_resource_and_pays_for_what_is_scanned() -> None:
    # rules C10 / X5: bounded work on hostile input
    # many ordinary series in one resource are all expanded (a COUNT series that ended long ago
    # costs only its own periods) ...
    ordinary = parse(
        *(
            vevent(f"DTSTART:20{i % 20:02d}0101T090000Z", "RRULE:FREQ=DAILY;COUNT=30", uid=f"old-{i}")
            for i in range(100)
        ),
        vevent("DTSTART:20260302T090000Z", "RRULE:FREQ=DAILY;COUNT=2", uid="current"),
    )
    assert ordinary.errors == []
    assert [o.event_id for o in ordinary.occurrences] == ["current", "current"]
    # ... while never-matching counted series exhaust it, and the rest are left out with an error
    hostile = parse(
        *(
            vevent(
                "DTSTART:16040101T090000Z", "RRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30;COUNT=5", uid=f"h-{i}"
            )
            for i in range(50)
        ),
    )
    assert len(hostile.errors) == 50
    assert any("too many recurrences" in e for e in hostile.errors)


# -- everything but time (U4, U5, U6, R4) --------------------------------------------------------


@pytest.mark.parametrize(
    ("klass", "visibility"),
    [
        (None, Visibility.DEFAULT),
        ("PUBLIC", Visibility.PUBLIC),
        ("PRIVATE", Visibility.PRIVATE),
        ("CONFIDENTIAL", Visibility.CONFIDENTIAL),
        ("confidential", Visibility.CONFIDENTIAL),
        ("X-SECRET", Visibility.PRIVATE),  # RFC 5545 §3.8.1.3: unknown classes are private
    ],
)
def test_class_maps_to_visibility(klass: str | None, visibility: Visibility) -> None:
    # rule R4 (a private or confidential event is shown without title in rooms)
    lines = ["DTSTART:20260302T090000Z"] + ([f"CLASS:{klass}"] if klass else [])
    occ = only(parse(vevent(*lines)))
    assert occ.visibility is visibility
    assert occ.private is (visibility in (Visibility.PRIVATE, Visibility.CONFIDENTIAL))


def test_transparent_events() -> None:
    # rule C11 (free time does not block)
    occ = only(parse(vevent("DTSTART:20260302T090000Z", "TRANSP:TRANSPARENT")))
    assert occ.transparency is Transparency.TRANSPARENT


@pytest.mark.parametrize(
    ("organizer", "writable", "is_self", "updatable"),
    [
        (None, True, True, True),
        ("ORGANIZER:mailto:me@example.com", True, True, True),
        ("ORGANIZER;CN=Me:MAILTO:Me@Example.COM", True, True, True),
        ("ORGANIZER:mailto:boss@example.com", True, False, False),
        ("ORGANIZER;EMAIL=me@example.com:urn:uuid:0d5a-4c1e", True, True, True),
        ("ORGANIZER:mailto:me@example.com", False, True, False),
        (None, False, True, False),
    ],
)
def test_organizer_and_updatable(
    organizer: str | None, writable: bool, is_self: bool, updatable: bool
) -> None:
    # rule U4 (PRODUCT.md "Updatable", CalDAV): writable calendar, and no ORGANIZER or one of ours
    ctx = ParseContext(
        "acct-1", "cal-1", own_addresses=frozenset({"me@example.com"}), calendar_writable=writable
    )
    lines = ["DTSTART:20260302T090000Z"] + ([organizer] if organizer else [])
    occ = only(parse(vevent(*lines), ctx=ctx))
    assert (occ.organizer_is_self, occ.updatable) == (is_self, updatable)
    if organizer and "boss" in organizer:
        assert occ.organizer == "boss@example.com"


def test_structured_conference_fields_come_before_text() -> None:
    # rules U5 / U10 / R6 depend on the meeting link
    # meeting links (PRODUCT.md): structured fields first, then location, URL, description
    occ = only(
        parse(
            vevent(
                "DTSTART:20260302T090000Z",
                f"LOCATION:Room 1 {LINK_A}",
                f"X-GOOGLE-CONFERENCE:{LINK_B}",
            )
        )
    )
    assert occ.meeting_link == LINK_B
    conference = only(
        parse(
            vevent(
                "DTSTART:20260302T090000Z",
                f"DESCRIPTION:{LINK_A}",
                f"CONFERENCE;VALUE=URI;FEATURE=VIDEO:{LINK_B}",
            )
        )
    )
    assert conference.meeting_link == LINK_B
    teams = only(
        parse(
            vevent(
                "DTSTART:20260302T090000Z", "X-MICROSOFT-SKYPETEAMSMEETINGURL:https://teams.microsoft.com/l/x"
            )
        )
    )
    assert teams.meeting_link == "https://teams.microsoft.com/l/x"


def test_text_fields_in_order_location_url_description() -> None:
    # rules U5 / U10 / R6 depend on the meeting link
    occ = only(
        parse(
            vevent(
                "DTSTART:20260302T090000Z",
                f"DESCRIPTION:Join {LINK_A}",
                f"URL:{LINK_B}",
                "LOCATION:Room 1, https://example.org/not-a-meeting",
            )
        )
    )
    assert occ.meeting_link == LINK_B
    nothing = only(parse(vevent("DTSTART:20260302T090000Z", "LOCATION:Room 1")))
    assert nothing.meeting_link is None


def test_legacy_links_and_organizers() -> None:
    # rule U6
    by_link = only(parse(vevent("DTSTART:20260302T090000Z", f"LOCATION:{LEGACY_LINK}")))
    assert by_link.meeting_link == LEGACY_LINK and by_link.legacy
    by_organizer = only(
        parse(
            vevent("DTSTART:20260302T090000Z", f"LOCATION:{LINK_A}", "ORGANIZER:mailto:Old.Boss@example.com")
        )
    )
    assert by_organizer.legacy
    modern = only(parse(vevent("DTSTART:20260302T090000Z", f"LOCATION:{LINK_A}")))
    assert not modern.legacy


def test_recurring_occurrences_carry_their_link_or_none() -> None:
    # rule U5: the rules need `recurring` and `meeting_link` on every occurrence
    result = parse(
        vevent("DTSTART:20260302T090000Z", "RRULE:FREQ=DAILY;COUNT=2", uid="without"),
        vevent("DTSTART:20260302T100000Z", "RRULE:FREQ=DAILY;COUNT=2", f"DESCRIPTION:{LINK_A}", uid="with"),
    )
    assert {(o.event_id, o.recurring, o.meeting_link) for o in result.occurrences} == {
        ("without", True, None),
        ("with", True, LINK_A),
    }


# -- bad input ------------------------------------------------------------------------------------


def test_a_broken_vevent_is_reported_and_the_rest_still_parses() -> None:
    # rule X5; issue 4: a broken VEVENT, the rest of the calendar still syncs
    result = parse(
        vevent("DTSTART:garbage", uid="broken"),
        vevent("SUMMARY:no start", uid="no-start"),
        vevent("DTSTART:20260302T090000Z", "RRULE:FREQ=FORTNIGHTLY", uid="bad-rule"),
        vevent("DTSTART:20260302T090000Z", "SUMMARY:fine", uid="fine"),
    )
    # rule D1: the unreadable rule leaves its event's first occurrence
    assert [o.event_id for o in result.occurrences] == ["bad-rule", "fine"]
    assert len(result.errors) == 3
    assert any("'broken'" in e for e in result.errors)
    assert any("'no-start'" in e and "DTSTART is missing" in e for e in result.errors)
    assert any("'bad-rule'" in e for e in result.errors)


def test_a_broken_override_leaves_the_series() -> None:
    # rules X5 / C10
    result = parse(
        vevent("DTSTART:20260302T090000Z", "RRULE:FREQ=DAILY;COUNT=2"),
        vevent("RECURRENCE-ID:not-a-date", "DTSTART:20260303T100000Z"),
    )
    assert len(result.occurrences) == 2 and len(result.errors) == 1


@pytest.mark.parametrize("text", ["", "not ical at all", "BEGIN:VCALENDAR\nBEGIN:VEVENT\n", "\x00\xff" * 10])
def test_garbage_is_an_error_not_an_exception(text: str) -> None:
    # rule X5
    result = parse_resource(text, CTX, H0, H1)
    assert result.occurrences == []
    assert len(result.errors) == 1


def test_the_horizon_must_be_aware() -> None:
    # rule S10: the horizon is a pair of instants
    with pytest.raises(ValueError, match="aware"):
        parse_resource(ics(), CTX, datetime(2026, 3, 1), H1)


def test_parsing_is_deterministic() -> None:
    # rules C10 / S6: re-syncs upsert the same occurrence ids
    # the sync engine upserts by occurrence id: re-parsing must give the same ids
    text = ics(
        vevent("DTSTART;TZID=Europe/Berlin:20260302T090000", "RRULE:FREQ=WEEKLY;BYDAY=MO,WE"),
        vevent(
            "RECURRENCE-ID;TZID=Europe/Berlin:20260304T090000", "DTSTART;TZID=Europe/Berlin:20260304T100000"
        ),
    )
    first = parse_resource(text, CTX, H0, H1)
    second = parse_resource(text, CTX, H0, H1)
    assert [o.id for o in first.occurrences] == [o.id for o in second.occurrences]
    assert len({o.id for o in first.occurrences}) == len(first.occurrences)
    assert all(o.start is not None and o.start.tzinfo is UTC for o in first.occurrences)


# -- issue 12: overrides and real-world data (rule D1, docs/ical-leniency.md) -------------------


def test_range_thisandfuture_moves_that_instance_and_all_later_ones() -> None:
    # RFC 5545 §3.8.4.4 / §3.2.13: the instance and every later one move by the same difference
    # and take the override's duration and properties; an override of one later instance still
    # wins for that instance; a later THISANDFUTURE override takes over from its own instance
    result = parse(
        vevent("DTSTART:20260302T090000Z", "DTEND:20260302T100000Z", "RRULE:FREQ=DAILY;COUNT=8", "SUMMARY:A"),
        vevent(
            "RECURRENCE-ID;RANGE=THISANDFUTURE:20260304T090000Z",
            "DTSTART:20260304T113000Z",
            "DTEND:20260304T120000Z",
            "SUMMARY:B",
        ),
        vevent(
            "RECURRENCE-ID:20260306T090000Z",
            "DTSTART:20260306T150000Z",
            "DTEND:20260306T160000Z",
            "SUMMARY:C",
        ),
        vevent(
            "RECURRENCE-ID;RANGE=THISANDFUTURE:20260308T090000Z",
            "DTSTART:20260308T080000Z",
            "DTEND:20260308T090000Z",
            "SUMMARY:D",
        ),
    )
    assert result.errors == []
    got = [(o.start, o.end, o.title, o.original_start) for o in result.occurrences]
    assert got == [
        (at("2026-03-02T09:00:00Z"), at("2026-03-02T10:00:00Z"), "A", "2026-03-02T09:00:00+00:00"),
        (at("2026-03-03T09:00:00Z"), at("2026-03-03T10:00:00Z"), "A", "2026-03-03T09:00:00+00:00"),
        (at("2026-03-04T11:30:00Z"), at("2026-03-04T12:00:00Z"), "B", "2026-03-04T09:00:00+00:00"),
        (at("2026-03-05T11:30:00Z"), at("2026-03-05T12:00:00Z"), "B", "2026-03-05T09:00:00+00:00"),
        (at("2026-03-06T15:00:00Z"), at("2026-03-06T16:00:00Z"), "C", "2026-03-06T09:00:00+00:00"),
        (at("2026-03-07T11:30:00Z"), at("2026-03-07T12:00:00Z"), "B", "2026-03-07T09:00:00+00:00"),
        (at("2026-03-08T08:00:00Z"), at("2026-03-08T09:00:00Z"), "D", "2026-03-08T09:00:00+00:00"),
        (at("2026-03-09T08:00:00Z"), at("2026-03-09T09:00:00Z"), "D", "2026-03-09T09:00:00+00:00"),
    ]


def test_range_thisandfuture_brings_instances_from_outside_the_horizon() -> None:
    # an instance whose original start is after the horizon, moved into it by the range
    result = parse(
        vevent("DTSTART:20260302T090000Z", "DTEND:20260302T100000Z", "RRULE:FREQ=WEEKLY"),
        vevent(
            "RECURRENCE-ID;RANGE=THISANDFUTURE:20260309T090000Z",
            "DTSTART:20260302T120000Z",
            "DTEND:20260302T130000Z",
        ),
        start=at("2026-03-02T11:00:00Z"),
        end=at("2026-03-09T14:00:00Z"),
    )
    assert [(o.start, o.original_start) for o in result.occurrences] == [
        (at("2026-03-02T12:00:00Z"), "2026-03-09T09:00:00+00:00"),
        (at("2026-03-09T12:00:00Z"), "2026-03-16T09:00:00+00:00"),
    ]


def test_a_refused_override_leaves_the_masters_instance() -> None:
    # D1: an override calsync cannot read is reported; the occurrence it would move stays
    result = parse(
        vevent("DTSTART:20260302T090000Z", "DTEND:20260302T100000Z", "RRULE:FREQ=DAILY;COUNT=3"),
        vevent("RECURRENCE-ID:20260303T090000Z", "DTSTART:20260303T120000Z", "DURATION:garbage"),
    )
    assert starts(result) == [
        at("2026-03-02T09:00:00Z"),
        at("2026-03-03T09:00:00Z"),
        at("2026-03-04T09:00:00Z"),
    ]
    assert len(result.errors) == 1 and "RECURRENCE-ID 2026-03-03T09:00:00+00:00" in result.errors[0]


def test_stale_overrides_of_instances_the_newer_master_no_longer_has_are_dropped() -> None:
    # D1: a client excluded an instance (EXDATE, SEQUENCE 2) or shortened the series (UNTIL) but
    # left the old override (SEQUENCE 1) in the resource: it no longer shows
    master = ["DTSTART:20260302T090000Z", "DTEND:20260302T100000Z", "SEQUENCE:2"]
    result = parse(
        vevent(*master, "RRULE:FREQ=DAILY;UNTIL=20260305T090000Z", "EXDATE:20260303T090000Z"),
        vevent("RECURRENCE-ID:20260303T090000Z", "DTSTART:20260303T120000Z", "SEQUENCE:1"),
        vevent("RECURRENCE-ID:20260310T090000Z", "DTSTART:20260310T120000Z", "SEQUENCE:1"),
        # not stale: the master still has 4 March; and an override as new as the master stays
        vevent("RECURRENCE-ID:20260304T090000Z", "DTSTART:20260304T120000Z", "SEQUENCE:1"),
        vevent("RECURRENCE-ID:20260312T090000Z", "DTSTART:20260312T120000Z", "SEQUENCE:2"),
    )
    assert result.errors == []
    assert starts(result) == [
        at("2026-03-02T09:00:00Z"),
        at("2026-03-04T12:00:00Z"),
        at("2026-03-05T09:00:00Z"),
        at("2026-03-12T12:00:00Z"),
    ]


def test_dtend_and_duration_both_given_dtend_wins() -> None:
    occ = only(parse(vevent("DTSTART:20260310T090000Z", "DTEND:20260310T100000Z", "DURATION:PT3H")))
    assert occ.end == at("2026-03-10T10:00:00Z")
    # on an override too: it is read, not refused
    moved = parse(
        vevent("DTSTART:20260302T090000Z", "DTEND:20260302T100000Z", "RRULE:FREQ=DAILY;COUNT=2"),
        vevent(
            "RECURRENCE-ID:20260303T090000Z",
            "DTSTART:20260303T120000Z",
            "DTEND:20260303T123000Z",
            "DURATION:PT1H",
        ),
    )
    assert moved.errors == []
    assert [(o.start, o.end) for o in moved.occurrences][1] == (
        at("2026-03-03T12:00:00Z"),
        at("2026-03-03T12:30:00Z"),
    )


def test_an_empty_rrule_is_a_single_event() -> None:
    occ = only(parse(vevent("DTSTART;VALUE=DATE:20260310", "RRULE:")))
    assert (occ.start_date, occ.recurring) == (date(2026, 3, 10), False)


def test_date_dtstart_with_date_time_dtend_stays_all_day() -> None:
    # like allenporter/ical's dtstart/dtend compat mode: the DTEND's day counts unless it is midnight
    to_evening = only(parse(vevent("DTSTART;VALUE=DATE:20260310", "DTEND:20260312T235959Z")))
    assert (to_evening.start_date, to_evening.end_date) == (date(2026, 3, 10), date(2026, 3, 13))
    to_midnight = only(parse(vevent("DTSTART;VALUE=DATE:20260310", "DTEND:20260312T000000Z")))
    assert (to_midnight.start_date, to_midnight.end_date) == (date(2026, 3, 10), date(2026, 3, 12))
    # a timed DTSTART with a DATE DTEND on its own day ends at the next midnight
    timed = only(parse(vevent("DTSTART:20260310T100000Z", "DTEND;VALUE=DATE:20260310")))
    assert (timed.start, timed.end) == (at("2026-03-10T10:00:00Z"), at("2026-03-11T00:00:00Z"))


def test_rdate_value_time_is_ignored() -> None:
    result = parse(vevent("DTSTART:20260310T100000Z", "RDATE;VALUE=TIME:083000", "RDATE:20260311T100000Z"))
    assert result.errors == []
    assert starts(result) == [at("2026-03-10T10:00:00Z"), at("2026-03-11T10:00:00Z")]


def test_all_day_dtend_equal_to_dtstart_is_one_day() -> None:
    occ = only(parse(vevent("DTSTART;VALUE=DATE:20260310", "DTEND;VALUE=DATE:20260310")))
    assert (occ.start_date, occ.end_date) == (date(2026, 3, 10), date(2026, 3, 11))


def test_rrule_with_spaces_and_unreadable_rdates_and_exdates() -> None:
    spaced = parse(vevent("DTSTART:20260302T090000Z", "RRULE:FREQ=DAILY;COUNT=3;BYDAY=MO, TU, WE"))
    assert spaced.errors == [] and len(spaced.occurrences) == 3
    rdate = parse(vevent("DTSTART:20260302T090000Z", "RDATE:199709T180000Z"))
    assert starts(rdate) == [at("2026-03-02T09:00:00Z")]
    assert len(rdate.errors) == 1 and "RDATEs are left out" in rdate.errors[0]
    exdate = parse(vevent("DTSTART:20260302T090000Z", "RRULE:FREQ=DAILY;COUNT=2", "EXDATE:2026XX"))
    assert starts(exdate) == [at("2026-03-02T09:00:00Z"), at("2026-03-03T09:00:00Z")]
    assert len(exdate.errors) == 1 and "EXDATEs are left out" in exdate.errors[0]


def test_floating_times_follow_x_wr_timezone() -> None:
    text = ics(vevent("DTSTART:20260310T090000")).replace(
        "VERSION:2.0", "VERSION:2.0\r\nX-WR-TIMEZONE:Europe/Berlin"
    )
    occ = only(parse_resource(text, CTX, H0, H1))
    assert occ.start == at("2026-03-10T08:00:00Z")
    unknown = ics(vevent("DTSTART:20260310T090000")).replace(
        "VERSION:2.0", "VERSION:2.0\r\nX-WR-TIMEZONE:Mars/Base"
    )
    assert only(parse_resource(unknown, CTX, H0, H1)).start == at("2026-03-10T09:00:00Z")


def test_vevents_without_uid_or_outside_a_vcalendar_are_read() -> None:
    no_uid = "BEGIN:VEVENT\nDTSTART:20260302T090000Z\nSUMMARY:x\nEND:VEVENT"
    first, again = parse(no_uid), parse(no_uid)
    occ = only(first)
    assert occ.event_id.startswith("no-uid-") and occ.event_id == only(again).event_id
    bare = parse_resource(vevent("DTSTART:20260302T090000Z").replace("\n", "\r\n"), CTX, H0, H1)
    assert only(bare).event_id == "evt-1"


def test_error_texts_are_ours_never_a_raw_exception_message() -> None:
    result = parse(
        vevent("DTSTART:20260302T090000Z", "RRULE:FREQ=DAILY;BYMONTHDAY=40", uid="r"),
        vevent("DTSTART:99991231T230000Z", "DURATION:P99999D", uid="overflow"),
    )
    # the overflow is Python's "date value out of range": never shown as such
    assert result.errors == [
        "VEVENT 'r': RRULE BYMONTHDAY value 40 is out of range; only its first occurrence is shown",
        "VEVENT 'overflow': a date, time or rule value cannot be read",
    ]


# -- issue 12: the first pass (calsync_caldav.prescan) --------------------------------------------


def test_prescan_leaves_out_only_what_cannot_reach_the_horizon() -> None:
    past = [
        vevent(f"DTSTART:2010{m:02d}01T090000Z", "DTEND:20100101T100000Z", uid=f"old-{m}")
        for m in range(1, 13)
    ]
    kept = [
        vevent("DTSTART:20260302T090000Z", "SUMMARY:in the horizon", uid="in"),
        vevent("DTSTART:20260227T230000", "DTEND:20260228T230000", uid="floating-near"),  # within the margin
        vevent("DTSTART:20100101T090000Z", "RRULE:FREQ=YEARLY", uid="recurs"),
        vevent("DTSTART:20100101T090000Z", "RRULE:FREQ=DAILY;UNTIL=20260305T000000Z", uid="until-in"),
        vevent("DTSTART:20100101T090000Z", "RDATE:20260310T090000Z", uid="rdate-in"),
        vevent("DTSTART:20100101T090000Z", "DURATION:P10000D", uid="long"),
        vevent("DTSTART:20100101T090000Z", uid="moved"),
        vevent("RECURRENCE-ID:20100101T090000Z", "DTSTART:20260303T090000Z", uid="moved"),
        vevent("DTSTART:20100101T090000Z", "RRULE:FREQ=DAILY;UNTIL=20100201T000000Z", uid="range"),
        vevent("RECURRENCE-ID;RANGE=THISANDFUTURE:20100102T090000Z", "DTSTART:20100102T090000Z", uid="range"),
        vevent("DTSTART:garbage", uid="unreadable"),
    ]
    ended = vevent("DTSTART:20100101T090000Z", "RRULE:FREQ=DAILY;UNTIL=20100201T000000Z", uid="ended")
    text = ics(*past, *kept, ended, "BEGIN:VTODO\nUID:todo\nEND:VTODO")
    reduced = relevant_text(text, H0, H1)
    assert reduced is not None
    uids = {line[4:] for line in reduced.splitlines() if line.startswith("UID:")}
    assert uids == {
        "in",
        "floating-near",
        "recurs",
        "until-in",
        "rdate-in",
        "long",
        "moved",
        "range",
        "unreadable",
    }
    assert "DTSTAMP" not in reduced and "VTODO" not in reduced
    assert parse_resource(text, CTX, H0, H1).occurrences == parse_resource(reduced, CTX, H0, H1).occurrences
    # nothing may reach the horizon: nothing is parsed, nothing reported
    assert relevant_text(ics(*past), H0, H1) == ""
    assert parse(*past) == ParseResult()


@pytest.mark.parametrize(
    "text",
    [
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:x\n",  # never closed
        "BEGIN:VCALENDAR\nEND:VEVENT\nEND:VCALENDAR\n",  # END without BEGIN
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nBEGIN:VEVENT\nEND:VEVENT\nEND:VEVENT\nEND:VCALENDAR\n",
    ],
)
def test_prescan_gives_up_on_a_strange_structure(text: str) -> None:
    assert relevant_text(text, H0, H1) is None


def test_range_thisandfuture_moves_by_wall_clock_time_across_dst() -> None:
    # moved from Saturdays 09:00 to Sundays 09:00 Berlin: still 09:00 on 29 March (CEST)
    result = parse(
        vevent("DTSTART;TZID=Europe/Berlin:20260321T090000", "RRULE:FREQ=WEEKLY;COUNT=3"),
        vevent(
            "RECURRENCE-ID;TZID=Europe/Berlin;RANGE=THISANDFUTURE:20260321T090000",
            "DTSTART;TZID=Europe/Berlin:20260322T090000",
        ),
    )
    assert result.errors == []
    assert starts(result) == [
        at("2026-03-22T08:00:00Z"),
        at("2026-03-29T07:00:00Z"),
        at("2026-04-05T07:00:00Z"),
    ]


def test_ambiguous_time_in_a_vtimezone_whose_daylight_offset_is_smaller() -> None:
    # RFC 5545 §3.3.5: the first occurrence, also where dateutil's conversion from UTC fails
    # (a change to a smaller offset that the VTIMEZONE calls DAYLIGHT; icalendar issue 722)
    zone = "\n".join(
        [
            "BEGIN:VTIMEZONE",
            "TZID:Custom Twelve To Ten",
            "BEGIN:STANDARD",
            "DTSTART:20260101T000000",
            "TZOFFSETFROM:+1000",
            "TZOFFSETTO:+1200",
            "END:STANDARD",
            "BEGIN:DAYLIGHT",
            "DTSTART:20260503T080000",
            "TZOFFSETFROM:+1200",
            "TZOFFSETTO:+1000",
            "END:DAYLIGHT",
            "END:VTIMEZONE",
        ]
    )
    result = parse(
        zone,
        vevent("DTSTART;TZID=Custom Twelve To Ten:20260503T073000", uid="ambiguous"),
        vevent("DTSTART;TZID=Custom Twelve To Ten:20260503T090000", uid="after"),
        end=at("2026-06-01T00:00:00Z"),
    )
    assert {o.event_id: o.start for o in result.occurrences} == {
        "ambiguous": at("2026-05-02T19:30:00Z"),
        "after": at("2026-05-02T23:00:00Z"),
    }


def test_a_stale_range_override_moves_nothing() -> None:
    # the master (SEQUENCE 2) excluded the instance a RANGE=THISANDFUTURE override (SEQUENCE 1)
    # starts from: that override is a leftover, the later instances stay where the master has them
    result = parse(
        vevent(
            "DTSTART:20260302T090000Z", "RRULE:FREQ=DAILY;COUNT=4", "EXDATE:20260303T090000Z", "SEQUENCE:2"
        ),
        vevent(
            "RECURRENCE-ID;RANGE=THISANDFUTURE:20260303T090000Z", "DTSTART:20260303T150000Z", "SEQUENCE:1"
        ),
    )
    assert result.errors == []
    assert starts(result) == [
        at("2026-03-02T09:00:00Z"),
        at("2026-03-04T09:00:00Z"),
        at("2026-03-05T09:00:00Z"),
    ]


def test_the_first_pass_never_leaves_out_a_property_the_parser_reads() -> None:
    # prescan.UNREAD must follow ical.py: no property name written in ical.py (or in the link
    # settings it reads) is on the list
    import inspect

    from calsync_caldav import ical
    from calsync_caldav.prescan import UNREAD

    names = set(re.findall(r'"([A-Z][A-Z0-9-]+)"', inspect.getsource(ical)))
    names |= {*ical.STRUCTURED_LINK_PROPERTIES, *ical.TEXT_LINK_PROPERTIES}
    assert {"DTSTART", "ATTENDEE", "X-GOOGLE-CONFERENCE"} <= names
    assert sorted(n for n in names if UNREAD.match(f"{n}:x")) == []
    assert UNREAD.match("DTSTAMP:20260101T000000Z") and UNREAD.match("x-moz-generation:1")


def test_a_negative_duration_is_read_like_dtend_before_dtstart() -> None:
    # rule D1: the span before DTSTART, as DTEND before DTSTART is read
    timed = only(parse(vevent("DTSTART:20260310T090000Z", "DURATION:-PT45M")))
    assert (timed.start, timed.end) == (at("2026-03-10T08:15:00Z"), at("2026-03-10T09:00:00Z"))
    days = only(parse(vevent("DTSTART;VALUE=DATE:20260312", "DURATION:-P2D")))
    assert (days.start_date, days.end_date) == (date(2026, 3, 10), date(2026, 3, 12))


@pytest.mark.parametrize(
    ("lines", "later"),
    [
        (["DTSTART:20260601T090000Z", "DTEND:20260601T100000Z"], True),  # planned months ahead
        (["DTSTART;VALUE=DATE:20260601"], True),
        (["DTSTART:20100101T090000Z", "RRULE:FREQ=WEEKLY"], True),  # a series without end
        (["DTSTART:20100101T090000Z", "RRULE:FREQ=DAILY;UNTIL=20260601T000000Z"], True),
        (["DTSTART:20100101T090000Z", "RDATE:20260601T090000Z"], True),
        (["DTSTART:20100101T090000Z", "DURATION:P10000D"], True),
        (["DTSTART:20100101T090000Z", "RRULE:FREQ=DAILY;COUNT=3"], True),  # COUNT is not counted: not sure
        (["DTSTART:2010-01-01"], True),  # unreadable: not sure
        (["DTSTART:20100101T090000Z", "DTEND:20100101T100000Z"], False),  # long past
        (["DTSTART:20100101T090000Z", "RRULE:FREQ=DAILY;UNTIL=20100201T000000Z"], False),
    ],
)
def test_may_reach_after_says_whether_an_instance_may_lie_after_a_day(lines: list[str], later: bool) -> None:
    # S10/S3: a resource with no occurrence in the horizon is read again once the horizon moved
    # only when an instance may lie after it (a past event never comes back: no request for it)
    day = date(2026, 3, 1)
    assert may_reach_after(ics(vevent(*lines)), day) is later
    alarm = "BEGIN:VALARM\nTRIGGER;VALUE=DATE-TIME:20300101T000000Z\nACTION:DISPLAY\nEND:VALARM"
    with_alarm = ics(vevent(*lines).replace("END:VEVENT", alarm + "\nEND:VEVENT"))
    assert may_reach_after(with_alarm, day) is later  # a component inside the VEVENT is not the event


def test_may_reach_after_with_several_vevents_and_broken_text() -> None:
    past = vevent("DTSTART:20100101T090000Z", uid="old")
    ahead = vevent("DTSTART:20260601T090000Z", uid="ahead")
    assert may_reach_after(ics(past, ahead), date(2026, 3, 1))
    assert not may_reach_after(ics(past), date(2026, 3, 1))
    assert may_reach_after("BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART:20100101T090000Z\n", date(2026, 3, 1))
