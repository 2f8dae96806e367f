"""Every real-world iCalendar file of the shared corpus through ``parse_resource`` (issue 12, rule D1).

The corpus (``../shared/corpus/ics`` from the project root, sources and licenses in its
``SOURCES.txt``) is never copied into the repository; where it is absent the tests skip, saying so.

Each file is read in a horizon around its events (a day before its earliest DTSTART or
RECURRENCE-ID to a year after its latest; two years around the median one where they span more
than three years) and checked:

0. the first pass that leaves out what cannot reach the horizon changes no occurrence (over a
   60-day horizon in the middle of the file's horizon: see :func:`check_prescan`);
1. nothing raises, and no error text is a raw Python exception message;
2. every valid event appears: each UID whose master (or, without one, override) has a readable
   DTSTART has at least one occurrence, unless the file is listed in :data:`NOT_SHOWN` (with why);
3. the occurrences -- (UID, start, end) -- equal those of ``recurring_ical_events`` over the same
   horizon, wherever RFC 5545 defines the answer. The files where calsync deliberately differs
   are listed in :data:`DIFFERS`, each with its reason (docs/ical-leniency.md). Two readings are
   normalized on recurring-ical-events' side first, because RFC 5545 or our leniency defines them
   and recurring-ical-events returns a zero-length all-day event instead: an all-day event
   without DTEND lasts one day (RFC 5545 §3.6.1), and so does one whose DTEND equals DTSTART.

A file listed in :data:`DIFFERS` that comes to agree fails the test, so the list stays true.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
import recurring_ical_events  # type: ignore[import-untyped]
from icalendar import Calendar, Component

from calsync.domain.models import EARLIEST_OFFSET, LATEST_OFFSET
from calsync_caldav import ParseContext, parse_resource

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus" / "ics"
FILES = sorted(p.name for p in CORPUS.glob("*.ics")) if CORPUS.is_dir() else []
CTX = ParseContext(account_id="acct-1", calendar_id="cal-1")
SPAN = timedelta(days=3 * 365)

# errors we write ourselves; anything else would be a library's message leaking through
OUR_ERRORS = re.compile(
    r"^(not an iCalendar resource: .*|VEVENT: .*|VEVENT '[^']*'( \(RECURRENCE-ID[^)]*\))?: "
    r"(?!.*(Traceback|object has no attribute|not supported between|unexpected keyword|"
    r"invalid literal|can't compare)).*)$",
    re.DOTALL,
)

#: files where calsync deliberately differs from recurring-ical-events, and why
DIFFERS: dict[str, str] = {
    # where RFC 5545 leaves the answer undefined or the data is invalid; calsync's reading is in
    # docs/ical-leniency.md
    "icalendar__src__icalendar__tests__calendars__america_new_york_forward_reference.ics": (
        "recurring-ical-events raises (AttributeError) on this file"
    ),
    "icalendar__src__icalendar__tests__calendars__pacific_fiji.ics": (
        "recurring-ical-events raises (AttributeError) on this file"
    ),
    "icalendar__src__icalendar__tests__calendars__multiple_timezones.ics": (
        "RDATE;VALUE=TIME (invalid): recurring-ical-events raises; calsync ignores those RDATEs"
    ),
    "icalendar__src__icalendar__tests__calendars__issue_1081_invalid_rrule_freq.ics": (
        "FREQ=INVALID_TYPE: recurring-ical-events drops the event (skip_bad_series); calsync shows "
        "its first occurrence and reports the rule"
    ),
    "rie__recurring_ical_events__test__calendars__issue_128_only_first_event.ics": (
        "COUNT=-1 (invalid): recurring-ical-events ignores COUNT; calsync shows the first "
        "occurrence and reports the rule"
    ),
    "icalendar__src__icalendar__tests__calendars__rfc_7529.ics": (
        "RSCALE (RFC 7529, non-Gregorian): calsync does not expand it; it shows the first "
        "occurrence and reports the rule; recurring-ical-events drops the events"
    ),
    "icalendar__src__icalendar__tests__calendars__issue_165_missing_event.ics": (
        "BYDAY=MO, TU, ... (spaces, invalid): calsync ignores the spaces; recurring-ical-events "
        "drops the series"
    ),
    "rie__recurring_ical_events__test__calendars__bad_rrule_missing_until_event.ics": (
        "RRULE part UNTL (a typo, invalid): calsync ignores the unknown part (a weekly series "
        "without end); recurring-ical-events drops the series"
    ),
    "icalendar__src__icalendar__tests__events__issue_464_invalid_rdate.ics": (
        "an RDATE that cannot be read: calsync keeps the event without those RDATEs and reports "
        "them; recurring-ical-events drops the event"
    ),
    "icalendar__src__icalendar__tests__calendars__issue_722_missing_timezones.ics": (
        "an override without DTSTART and without a master: calsync shows it at its RECURRENCE-ID "
        "(its original start); recurring-ical-events drops it"
    ),
    "khal__tests__ics__event_dt_rrule_until_before_start.ics": (
        "UNTIL before DTSTART: calsync keeps DTSTART (RFC 5545 3.8.5.3: DTSTART is the first "
        "instance); recurring-ical-events drops it"
    ),
    "rie__recurring_ical_events__test__calendars__issue_117_until_before_dtstart.ics": (
        "UNTIL before DTSTART: as khal__tests__ics__event_dt_rrule_until_before_start.ics"
    ),
    "rie__recurring_ical_events__test__calendars__multiple_rrule.ics": (
        "two RRULEs (deprecated, RFC 5545 3.8.5.3) with COUNT and a DTSTART that does not match "
        "the second (the recurrence set is then undefined): calsync counts DTSTART as the first "
        "instance of each COUNT, recurring-ical-events (dateutil) does not"
    ),
    "khal__tests__ics__event_dt_mixed_awareness.ics": (
        "floating DTSTART with a TZID DTEND written with Z (invalid): calsync reads the floating "
        "time in the calendar's zone"
    ),
    "rie__recurring_ical_events__test__calendars__issue_201_mixed_datetime_and_date.ics": (
        "DATE DTSTART with DATE-TIME DTEND (invalid): calsync keeps an all-day event up to the "
        "DTEND's day (allenporter/ical's compat mode); recurring-ical-events makes it timed"
    ),
    "rie__recurring_ical_events__test__calendars__issue_201_test_matrix.ics": (
        "DATE DTSTART with DATE-TIME DTEND or DURATION in hours: as issue_201_mixed_datetime_and_date"
    ),
    "rie__recurring_ical_events__test__calendars__issue_75_range_parameter.ics": (
        "RANGE=THISANDFUTURE is read as recurring-ical-events reads it, but the RRULE's UNTIL is a "
        "DATE on a timed series (invalid): calsync counts UNTIL's whole day (one more instance)"
    ),
    "icalendar__src__icalendar__tests__calendars__issue_178_custom_component_contains_other.ics": (
        "a VEVENT inside an unknown X- component (see NOT_SHOWN): recurring-ical-events shows it"
    ),
}

#: files where a VEVENT with a readable DTSTART has no occurrence in its horizon, and why
NOT_SHOWN: dict[str, str] = {
    "icalendar__src__icalendar__tests__calendars__issue_178_custom_component_contains_other.ics": (
        "its VEVENT is inside an unknown X- component, not a VCALENDAR: not an event of a calendar"
    ),
}


@dataclass(frozen=True, slots=True)
class Case:
    text: str
    calendars: list[Component]
    start: datetime
    end: datetime


def _utc(value: date | datetime) -> date | datetime:
    if isinstance(value, datetime):
        return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).astimezone(UTC)
    return value


def _day(value: object) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else None


def _dtstart(component: Component) -> date | datetime | None:
    try:
        value = component.get("DTSTART").dt
    except (AttributeError, ValueError, TypeError):
        return None
    return value if isinstance(value, date) else None


def _components(calendars: list[Component]) -> list[Component]:
    out: list[Component] = []
    for calendar in calendars:
        out += [calendar] if calendar.name == "VEVENT" else calendar.walk("VEVENT")
    return out


def load(name: str) -> Case | None:
    text = (CORPUS / name).read_bytes().decode("utf-8", errors="replace")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            calendars = Calendar.from_ical(text, multiple=True)
        except Exception:  # icalendar itself refuses the file: no reference
            calendars = []
    days = [
        d
        for c in _components(calendars)
        for d in (_day(_dtstart(c)), _day(getattr(c.get("RECURRENCE-ID"), "dt", None)))
        if d is not None
    ]
    if not days:
        return Case(text, calendars, datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    days.sort()
    if days[-1] - days[0] > SPAN:
        # a calendar kept for decades: two years around its median event (fast enough for CI)
        middle = datetime.combine(days[len(days) // 2], time(), UTC)
        return Case(text, calendars, middle - SPAN / 3, middle + SPAN / 3)
    start = datetime.combine(days[0], time(), UTC) - timedelta(days=1)
    end = datetime.combine(days[-1], time(), UTC) + timedelta(days=366)
    return Case(text, calendars, start, end)


def in_horizon(start: date | datetime, end: date | datetime, hs: datetime, he: datetime) -> bool:
    """What parse_resource promises (as in the differential test)."""
    if isinstance(start, datetime) and isinstance(end, datetime):
        return hs <= start < he if start == end else start < he and end > hs
    first = datetime.combine(_day(start) or hs.date(), time(), UTC) - EARLIEST_OFFSET
    last = datetime.combine(_day(end) or hs.date(), time(), UTC) + LATEST_OFFSET
    return first < he and last > hs


Key = tuple[str, date | datetime, date | datetime]


def ours(case: Case) -> tuple[Counter[Key], list[str]]:
    result = parse_resource(case.text, CTX, case.start, case.end)
    keys: Counter[Key] = Counter()
    for o in result.occurrences:
        uid = "" if o.event_id.startswith("no-uid-") else o.event_id
        start = o.start if o.start is not None else o.start_date
        end = o.end if o.end is not None else o.end_date
        assert start is not None and end is not None
        keys[(uid, start, end)] += 1
    return keys, result.errors


def theirs(case: Case) -> Counter[Key]:
    keys: Counter[Key] = Counter()
    margin = timedelta(days=3)
    for calendar in case.calendars:
        # a VEVENT without DTSTART has no occurrence (RFC 5545 §3.6.1: DTSTART is required without
        # METHOD); calsync reports it, recurring-ical-events raises: leave it out of the reference
        for parent in [calendar, *calendar.walk()]:
            parent.subcomponents = [
                c for c in parent.subcomponents if c.name != "VEVENT" or c.get("DTSTART") is not None
            ]
        if calendar.name == "VEVENT" and calendar.get("DTSTART") is None:
            continue
        query = recurring_ical_events.of(calendar, skip_bad_series=True)
        for occ in query.between(case.start - margin, case.end + margin):
            start = _utc(occ["DTSTART"].dt)
            end_prop = occ.get("DTEND")
            if end_prop is not None:
                end = _utc(end_prop.dt)
            elif occ.get("DURATION") is not None:
                end = start + occ["DURATION"].dt
            else:
                end = start
            if not isinstance(start, datetime) and end == start:
                end = start + timedelta(days=1)  # RFC 5545 §3.6.1, and our leniency (module docstring)
            if in_horizon(start, end, case.start, case.end):
                keys[(str(occ.get("UID") or ""), start, end)] += 1
    return keys


def _diff(mine: Counter[Key], their: Counter[Key]) -> str:
    only_ours = sorted((mine - their).elements(), key=str)[:5]
    only_theirs = sorted((their - mine).elements(), key=str)[:5]
    return f"only calsync: {only_ours}\nonly recurring-ical-events: {only_theirs}"


def check_prescan(case: Case) -> None:
    """Issue 12: leaving out what cannot reach the horizon (calsync_caldav.prescan) only saves
    work: over a short horizon (S10: a day back, 60 days on) in the middle of the file's horizon,
    every occurrence -- every field of it -- is what parsing the whole text gives."""
    middle = case.start + (case.end - case.start) / 2
    start, end = middle - timedelta(days=1), middle + timedelta(days=60)
    fast = parse_resource(case.text, CTX, start, end)
    whole = parse_resource(case.text, CTX, start, end, prescan=False)
    assert fast.occurrences == whole.occurrences
    assert set(fast.errors) <= set(whole.errors)


pytestmark = pytest.mark.skipif(
    not FILES,
    reason=f"the iCalendar corpus is not there ({CORPUS}): it is expected beside the project as "
    "../shared/corpus (see its README.md)",
)


@pytest.mark.parametrize("name", FILES or ["(none)"])
def test_corpus_file(name: str) -> None:
    # rule D1: nothing raises, no raw exception text, every valid event appears, and the
    # occurrences agree with recurring-ical-events where RFC 5545 defines them
    case = load(name)
    assert case is not None
    check_prescan(case)
    mine, errors = ours(case)
    for error in errors:
        assert OUR_ERRORS.match(error), f"not one of our error texts: {error!r}"
        assert len(error) < 300

    their: Counter[Key] | None = None
    failure = ""
    if case.calendars:  # else icalendar refuses the file: there is no reference to compare with
        try:
            their = theirs(case)
        except Exception as exc:  # the reference itself fails on this file
            failure = f"recurring-ical-events raises {type(exc).__name__}"

    # every valid event appears: a VEVENT with a readable DTSTART, not cancelled, and (where the
    # reference runs) with an occurrence in the horizon (a series may exclude all its instances)
    shown = {uid for uid, _, _ in mine}
    expected = {
        str(c.get("UID") or "")
        for c in _components(case.calendars)
        if _dtstart(c) is not None and str(c.get("STATUS", "")).upper() != "CANCELLED"
    }
    if their is not None:
        expected &= {uid for uid, _, _ in their}
    missing = expected - shown
    if name in NOT_SHOWN:
        assert missing, f"{name} now shows every event: remove it from NOT_SHOWN"
    else:
        assert not missing, f"events without any occurrence: {sorted(missing)[:5]}; errors: {errors[:3]}"

    if their is None:
        assert not failure or name in DIFFERS, f"{failure}: list it in DIFFERS"
        return
    if name in DIFFERS:
        assert mine != their, f"{name} now agrees with recurring-ical-events: remove it from DIFFERS"
    else:
        assert mine == their, _diff(mine, their)


def test_every_listed_file_exists() -> None:
    for name in [*DIFFERS, *NOT_SHOWN]:
        assert name in FILES, f"{name} is listed but not in the corpus"
