"""Recurrence rules (RFC 5545 §3.3.10, §3.8.5.3) expanded in wall-clock time, with hard bounds.

Pure code: a rule is read from icalendar's parsed ``RRULE`` value, checked, and expanded with
``dateutil.rrule`` over *naive wall-clock* date-times in the event's own time zone; the caller
places each wall-clock start on the time line (:func:`localize`), so 09:00 Europe/Berlin stays
09:00 across daylight-saving changes.

What a hostile rule can cost is bounded, deterministically (no wall-clock budget):

- ``FREQ=MINUTELY`` and ``FREQ=SECONDLY`` are refused (no calendar client offers them, and they
  are the cheapest way to make an expansion enormous);
- a rule without ``COUNT`` is fast-forwarded: its ``DTSTART`` is moved, period-aligned, to just
  before the window, so a daily series that began in 1990 costs what one that began last week
  costs. Every by-rule default that dateutil would derive from ``DTSTART`` is made explicit first,
  so moving ``DTSTART`` changes nothing else;
- a rule with ``COUNT`` must be counted from ``DTSTART``; it is scanned for at most
  :data:`MAX_PERIODS` periods (a daily ``COUNT`` series longer than 27 years is truncated);
- at most :data:`MAX_SCANNED` starts are generated, and at most :data:`MAX_INSTANCES` are kept in
  the window, per series; a :class:`Budget` shared by all series of one resource caps the periods
  scanned per resource;
- dateutil checks its ``until`` only when a candidate matches, so a rule that never matches
  (``BYMONTH=2;BYMONTHDAY=30``) would run on, period by period, to the year 9999 (seconds for a
  daily rule). The scan is therefore done on a copy of the calendar moved just below the year
  9999 (:func:`_calendar_shift`: same weekdays and leap years), so that "the year 9999" is
  always near.

Truncation is reported (``Expansion.truncated``), never silent.
"""

from __future__ import annotations

import re
from calendar import isleap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import MAXYEAR, MINYEAR, UTC, date, datetime, time, timedelta, timezone, tzinfo
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta
from dateutil.rrule import DAILY, HOURLY, MONTHLY, WEEKLY, YEARLY, rrule, weekday, weekdays

#: at most this many instances of one series are kept inside the window
MAX_INSTANCES: Final = 2_000
#: at most this many starts of one series are generated (inside and before the window)
MAX_SCANNED: Final = 50_000
#: at most this many periods (days of a DAILY rule, weeks of a WEEKLY one, ...) are scanned per series
MAX_PERIODS: Final = 10_000
#: at most this many periods are scanned for all the series of one resource together
MAX_PERIODS_PER_RESOURCE: Final = 40_000

Freq = Literal[0, 1, 2, 3, 4]
_FREQS: Final[dict[str, Freq]] = {
    "YEARLY": YEARLY,
    "MONTHLY": MONTHLY,
    "WEEKLY": WEEKLY,
    "DAILY": DAILY,
    "HOURLY": HOURLY,
}
_DAYS: Final = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_BYDAY: Final = re.compile(r"^([+-]?)(\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)$")
_RANGES: Final[dict[str, tuple[int, int, bool]]] = {
    # part: (lowest, highest absolute value, negative values allowed)
    "BYSECOND": (0, 60, False),
    "BYMINUTE": (0, 59, False),
    "BYHOUR": (0, 23, False),
    "BYMONTHDAY": (1, 31, True),
    "BYYEARDAY": (1, 366, True),
    "BYWEEKNO": (1, 53, True),
    "BYMONTH": (1, 12, False),
    "BYSETPOS": (1, 366, True),
}
_MAX_INTERVAL: Final = 10_000
_LATEST: Final = datetime.combine(date.max, time())


class RecurrenceError(ValueError):
    """The rule cannot be expanded (malformed, or a feature calsync does not support)."""


@dataclass(frozen=True, slots=True)
class Rule:
    """A checked RRULE. ``until`` is as written: a date, a UTC or a floating date-time."""

    freq: Freq
    interval: int = 1
    count: int | None = None
    until: date | datetime | None = None
    wkst: int = 0
    bysetpos: tuple[int, ...] = ()
    bymonth: tuple[int, ...] = ()
    bymonthday: tuple[int, ...] = ()
    byyearday: tuple[int, ...] = ()
    byweekno: tuple[int, ...] = ()
    byweekday: tuple[weekday, ...] = ()
    byhour: tuple[int, ...] = ()
    byminute: tuple[int, ...] = ()
    bysecond: tuple[int, ...] = ()


def _one(values: Sequence[Any], part: str) -> Any:
    if len(values) != 1:
        raise RecurrenceError(f"RRULE {part} must have exactly one value")
    return values[0]


def _ints(values: Sequence[Any], part: str) -> tuple[int, ...]:
    low, high, negative = _RANGES[part]
    out: list[int] = []
    for value in values:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise RecurrenceError(f"RRULE {part} has a bad value {value!r}") from None
        if not (low <= abs(number) <= high) or (number < 0 and not negative) or (number == 0 and low > 0):
            raise RecurrenceError(f"RRULE {part} value {number} is out of range")
        out.append(number)
    return tuple(out)


def _weekday(text: str) -> weekday:
    match = _BYDAY.match(text.strip().upper())
    if match is None:
        raise RecurrenceError(f"RRULE BYDAY has a bad value {text!r}")
    sign, number, day = match.groups()
    base = weekdays[_DAYS.index(day)]
    if number is None:
        return base
    n = int(number)
    if not 1 <= n <= 53:
        raise RecurrenceError(f"RRULE BYDAY ordinal {text!r} is out of range")
    return base(-n if sign == "-" else n)


def parse_rule(recur: Mapping[str, Sequence[Any]]) -> Rule:
    """Check icalendar's parsed RRULE (``vRecur``: part name -> list of values) and build a Rule."""
    parts = {str(key).upper(): list(values) for key, values in recur.items()}
    if "RSCALE" in parts:
        raise RecurrenceError("RRULE RSCALE (non-Gregorian calendars) is not supported")
    freq_name = str(_one(parts.get("FREQ", []), "FREQ")).upper()
    if freq_name in ("MINUTELY", "SECONDLY"):
        raise RecurrenceError(f"RRULE FREQ={freq_name} is not supported")
    if freq_name not in _FREQS:
        raise RecurrenceError(f"RRULE FREQ={freq_name!r} is not a frequency")
    interval = int(_one(parts["INTERVAL"], "INTERVAL")) if "INTERVAL" in parts else 1
    if not 1 <= interval <= _MAX_INTERVAL:
        raise RecurrenceError(f"RRULE INTERVAL={interval} is out of range")
    count: int | None = None
    if "COUNT" in parts:
        count = int(_one(parts["COUNT"], "COUNT"))
        if count < 1:
            raise RecurrenceError(f"RRULE COUNT={count} is out of range")
    until: date | datetime | None = None
    if "UNTIL" in parts:
        until = _one(parts["UNTIL"], "UNTIL")
        if not isinstance(until, date):
            raise RecurrenceError(f"RRULE UNTIL has a bad value {until!r}")
    wkst = 0
    if "WKST" in parts:
        wkst_name = str(_one(parts["WKST"], "WKST")).upper()
        if wkst_name not in _DAYS:
            raise RecurrenceError(f"RRULE WKST={wkst_name!r} is not a weekday")
        wkst = _DAYS.index(wkst_name)
    return Rule(
        freq=_FREQS[freq_name],
        interval=interval,
        count=count,
        until=until,
        wkst=wkst,
        bysetpos=_ints(parts.get("BYSETPOS", []), "BYSETPOS"),
        bymonth=_ints(parts.get("BYMONTH", []), "BYMONTH"),
        bymonthday=_ints(parts.get("BYMONTHDAY", []), "BYMONTHDAY"),
        byyearday=_ints(parts.get("BYYEARDAY", []), "BYYEARDAY"),
        byweekno=_ints(parts.get("BYWEEKNO", []), "BYWEEKNO"),
        byweekday=tuple(_weekday(str(v)) for v in parts.get("BYDAY", [])),
        byhour=_ints(parts.get("BYHOUR", []), "BYHOUR"),
        byminute=_ints(parts.get("BYMINUTE", []), "BYMINUTE"),
        bysecond=tuple(min(s, 59) for s in _ints(parts.get("BYSECOND", []), "BYSECOND")),
    )


# -- placing wall-clock times on the time line ---------------------------------------------------


def localize(wall: datetime, zone: tzinfo) -> datetime:
    """The UTC instant of the naive wall-clock time ``wall`` in ``zone``, as RFC 5545 §3.3.5 says:

    - a local time that occurs twice (clocks go back) is its *first* occurrence;
    - a local time that does not exist (clocks go forward) is read with the UTC offset *before*
      the gap, i.e. it is shifted forward by the length of the gap (02:30 on a day New York
      springs forward is 03:30 EDT).

    For ``zoneinfo`` zones this is exactly PEP 495's ``fold=0``; for other ``tzinfo`` (dateutil
    zones built from a VTIMEZONE, whose gap handling differs) it is computed from the offsets
    around ``wall``.
    """
    naive = wall.replace(tzinfo=None, fold=0)
    if isinstance(zone, ZoneInfo | timezone):
        return naive.replace(tzinfo=zone).astimezone(UTC)
    first, second = naive.replace(tzinfo=zone).utcoffset(), naive.replace(fold=1, tzinfo=zone).utcoffset()
    if first is not None and second is not None and first > second:
        # an ambiguous time (clocks went back): its first occurrence, read with the offset before
        # the change. Decided from the offsets alone: dateutil's conversion from UTC (used below)
        # is wrong around a change to a smaller offset that its VTIMEZONE calls DAYLIGHT
        return (naive - first).replace(tzinfo=UTC)
    offsets: set[timedelta] = set()
    for probe in (naive, naive.replace(fold=1), naive - timedelta(days=1), naive + timedelta(days=1)):
        offset = probe.replace(tzinfo=zone).utcoffset()
        if offset is not None:
            offsets.add(offset)
    if not offsets:
        raise ValueError(f"time zone {zone!r} has no UTC offset")
    valid = sorted(
        instant
        for instant in ((naive - offset).replace(tzinfo=UTC) for offset in offsets)
        if instant.astimezone(zone).replace(tzinfo=None) == naive
    )
    if valid:
        return valid[0]
    # in a gap the offset before it is the smaller one (clocks went forward)
    return (naive - min(offsets)).replace(tzinfo=UTC)


# -- expansion ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Budget:
    """Periods that may still be scanned for one resource (shared by all its series)."""

    periods: int = MAX_PERIODS_PER_RESOURCE


@dataclass(slots=True)
class Expansion:
    """Wall-clock starts of a rule inside a window, in order, DTSTART included (when inside)."""

    starts: list[datetime] = field(default_factory=list)
    truncated: str | None = None


def _period_start(freq: Freq, wkst: int, moment: datetime) -> datetime:
    day = moment.date()
    if freq == YEARLY:
        day = day.replace(month=1, day=1)
    elif freq == MONTHLY:
        day = day.replace(day=1)
    elif freq == WEEKLY:
        day -= timedelta(days=(day.weekday() - wkst) % 7)
    if freq == HOURLY:
        return moment.replace(minute=0, second=0, microsecond=0)
    return datetime.combine(day, time())


def _periods_between(freq: Freq, start: datetime, end: datetime) -> int:
    """Whole periods from period-aligned ``start`` to ``end`` (>= 0)."""
    if end <= start:
        return 0
    if freq == YEARLY:
        return end.year - start.year
    if freq == MONTHLY:
        return (end.year - start.year) * 12 + end.month - start.month
    if freq == WEEKLY:
        return (end - start).days // 7
    if freq == DAILY:
        return (end - start).days
    return int((end - start).total_seconds() // 3600)


def _add_periods(freq: Freq, start: datetime, periods: int) -> datetime:
    try:
        if freq == YEARLY:
            return start + relativedelta(years=periods)
        if freq == MONTHLY:
            return start + relativedelta(months=periods)
        if freq == WEEKLY:
            return start + timedelta(weeks=periods)
        if freq == DAILY:
            return start + timedelta(days=periods)
        return start + timedelta(hours=periods)
    except (OverflowError, ValueError):
        return _LATEST


def _same_calendar(year: int, shift: int) -> bool:
    other = year + shift
    return isleap(year) == isleap(other) and date(year, 1, 1).weekday() == date(other, 1, 1).weekday()


def _calendar_shift(first_year: int, last_year: int) -> int:
    """The largest shift (in years) that moves ``first_year..last_year`` below the year 9999 onto
    years with the same calendar (leap years, and the weekday of every date), or 0.

    The Gregorian calendar repeats every 400 years, so a shift is always found within 400 tries;
    in century-free stretches it repeats every 28 years, so the shift is usually closer.
    """
    years = range(max(first_year - 1, MINYEAR), last_year + 2)
    highest = MAXYEAR - 1 - last_year
    for shift in range(highest, max(highest - 400, 0), -1):
        if all(_same_calendar(year, shift) for year in years):
            return shift
    return 0


def _shifted(moment: datetime, years: int) -> datetime:
    return moment.replace(year=moment.year + years) if years else moment


def _dateutil_rule(rule: Rule, dtstart: datetime, scan_from: datetime, until: datetime) -> rrule:
    """The dateutil rule starting at ``scan_from``, with every default taken from ``dtstart``."""
    bymonth: tuple[int, ...] = rule.bymonth
    bymonthday: tuple[int, ...] = rule.bymonthday
    byweekday: tuple[weekday, ...] = rule.byweekday
    if not (rule.byweekno or rule.byyearday or rule.bymonthday or rule.byweekday):
        # RFC 5545 §3.3.10 / dateutil: missing parts are taken from DTSTART
        if rule.freq == YEARLY:
            bymonth = rule.bymonth or (dtstart.month,)
            bymonthday = (dtstart.day,)
        elif rule.freq == MONTHLY:
            bymonthday = (dtstart.day,)
        elif rule.freq == WEEKLY:
            byweekday = (weekdays[dtstart.weekday()],)
    byhour = rule.byhour or ((dtstart.hour,) if rule.freq < HOURLY else ())
    byminute = rule.byminute or (dtstart.minute,)
    bysecond = rule.bysecond or (dtstart.second,)
    return rrule(
        rule.freq,
        dtstart=scan_from,
        interval=rule.interval,
        wkst=rule.wkst,
        until=until,
        bysetpos=rule.bysetpos or None,
        bymonth=bymonth or None,
        bymonthday=bymonthday or None,
        byyearday=rule.byyearday or None,
        byweekno=rule.byweekno or None,
        byweekday=byweekday or None,
        byhour=byhour or None,
        byminute=byminute,
        bysecond=bysecond,
        cache=False,
    )


def expand(
    rule: Rule,
    dtstart: datetime,
    window_start: datetime,
    window_end: datetime,
    *,
    within_until: Callable[[datetime], bool],
    budget: Budget,
) -> Expansion:
    """The wall-clock starts in ``[window_start, window_end]`` of the recurrence set of ``rule``
    and ``dtstart`` (all naive, in the event's own zone; all-day events at midnight).

    ``DTSTART`` is always the first instance and counts toward ``COUNT`` (RFC 5545 §3.8.5.3),
    even when it does not match the rule. ``within_until(wall)`` says whether a start is not
    after ``UNTIL`` (the caller compares instants, see :func:`localize`); generation stops at the
    first one that is.
    """
    result = Expansion()
    if window_start <= dtstart <= window_end:
        result.starts.append(dtstart)
    # Scanning starts at the beginning of DTSTART's period, so BYSETPOS sees the whole period
    # (instances before DTSTART are then dropped), and for a rule without COUNT it is moved on by
    # whole multiples of INTERVAL periods to the window: nothing before the window is needed.
    scan_from = _period_start(rule.freq, rule.wkst, dtstart)
    if rule.count is None and window_start > dtstart:
        periods = _periods_between(rule.freq, scan_from, _period_start(rule.freq, rule.wkst, window_start))
        skip = periods // rule.interval * rule.interval
        if skip > 0:
            scan_from = _add_periods(rule.freq, scan_from, skip)
    if budget.periods <= 0:
        result.truncated = "the resource has too many recurrences to expand; this one is left out"
        return result
    allowed = min(MAX_PERIODS, budget.periods) * rule.interval
    scan_until = min(window_end, _add_periods(rule.freq, scan_from, allowed))
    if scan_until < scan_from:
        return result  # the window ends before the rule begins
    last, ended, result.truncated = _scan(
        rule,
        dtstart=dtstart,
        scan_from=scan_from,
        scan_until=scan_until,
        window_start=window_start,
        within_until=within_until,
        result=result,
    )
    # the budget pays for the periods actually scanned (up to the end of the rule, or all of them)
    budget.periods -= _periods_between(rule.freq, scan_from, last) // rule.interval + 1
    if not ended and result.truncated is None and scan_until < window_end:
        result.truncated = "the recurrence scans too many periods; later occurrences are left out"
    return result


def _scan(
    rule: Rule,
    *,
    dtstart: datetime,
    scan_from: datetime,
    scan_until: datetime,
    window_start: datetime,
    within_until: Callable[[datetime], bool],
    result: Expansion,
) -> tuple[datetime, bool, str | None]:
    """Append the rule's starts from ``scan_from`` to ``scan_until`` that fall in the window to
    ``result.starts``; return where scanning stopped, whether the rule ended (COUNT or UNTIL
    reached) and why the expansion was truncated, if it was."""
    shift = _calendar_shift(scan_from.year, scan_until.year)
    counted = 1  # DTSTART is the first instance
    scanned = 0
    for shifted in _dateutil_rule(rule, dtstart, _shifted(scan_from, shift), _shifted(scan_until, shift)):
        wall = _shifted(shifted, -shift)
        if wall <= dtstart:
            continue  # before DTSTART in its own period, or DTSTART itself (already counted)
        counted += 1
        scanned += 1
        if (rule.count is not None and counted > rule.count) or not within_until(wall):
            return wall, True, None
        if scanned > MAX_SCANNED:
            return wall, False, f"more than {MAX_SCANNED} instances to expand; later ones are left out"
        if wall < window_start:
            continue
        if len(result.starts) >= MAX_INSTANCES:
            return wall, False, f"more than {MAX_INSTANCES} occurrences in the horizon; the rest are left out"
        result.starts.append(wall)
    return scan_until, rule.count is not None and counted >= rule.count, None
