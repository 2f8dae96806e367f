"""A cheap first pass over a resource's text: leave out what cannot reach the horizon (issue 12).

Reading iCalendar with icalendar costs about 0.5 ms per VEVENT (a 1.65 MB resource with 4,778
VEVENTs: seconds), almost all in its parser. Most of that work is wasted: a calendar file that
has grown for years holds mostly events that ended long before the horizon. This pass reads only
the lines' names and a few values, with plain string operations, and returns the text without:

- every VEVENT of a UID none of whose VEVENTs recurs (no RRULE, no RDATE) and all of whose
  VEVENTs certainly lie outside the horizon (more than :data:`MARGIN` before or after it, which
  covers every UTC offset and floating time; a value it cannot read keeps the UID);
- VALARM, VTODO, VJOURNAL and VFREEBUSY components, and the VEVENT properties listed in
  :data:`UNREAD` (calsync reads none of them; they are a third of a typical export's lines, and
  icalendar's cost grows with every character it reads).

Everything else is kept as written, in order (VTIMEZONEs, the calendar's properties, the other
VEVENTs with the lines calsync reads). Anything unexpected in the structure (END without BEGIN, a
component never closed) makes it give up (``None``): the caller then parses the whole text, so
this pass can only save work, never change what is read. A VEVENT left out this way is not
parsed at all, so its own errors (if any) are not reported: it has no occurrence to report them
for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Final

#: distance from the horizon beyond which a VEVENT is certainly outside it
MARGIN: Final = timedelta(days=2)
_SKIPPED: Final = frozenset({"VALARM", "VTODO", "VJOURNAL", "VFREEBUSY"})
_DATE: Final = re.compile(r"(\d{4})(\d{2})(\d{2})")
_DURATION: Final = re.compile(r"^([+-]?)P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")
_FOLD: Final = re.compile(r"(?:\r?\n)+[ \t]")  # as icalendar unfolds (blank lines too)
_UNTIL: Final = re.compile(r"UNTIL=(\d{8})")
#: properties of a VEVENT that calsync never reads (ical.py): left out before parsing. A reader of
#: one of them must take it off this list.
UNREAD: Final = re.compile(
    r"(?:DTSTAMP|CREATED|LAST-MODIFIED|CATEGORIES|COMMENT|CONTACT|GEO|PRIORITY|RESOURCES|RELATED-TO"
    r"|REQUEST-STATUS|ATTACH|IMAGE|X-ALT-DESC)[;:]|X-(?:MOZ|MICROSOFT-CDO|GOOGLE-CALENDAR-CONTENT|APPLE|LIC)-",
    re.IGNORECASE,
)
# the properties read here, matched on a line's first characters (upper-cased)
_NOTED: Final = re.compile(r"(UID|DTSTART|DTEND|DURATION|RRULE|RDATE|RECURRENCE-ID)[;:]")


@dataclass(slots=True)
class _Block:
    """One VEVENT: its lines (unfolded) and what decides whether it can reach the horizon."""

    lines: list[str] = field(default_factory=list)
    uid: str | None = None
    start: date | None = None
    end: date | None = None
    duration: timedelta | None = None
    # the latest day an instance may start on (UNTIL, RDATEs); unbounded: a rule without UNTIL
    # (COUNT is not counted here)
    last_start: date | None = None
    unbounded: bool = False
    future_range: bool = False  # RECURRENCE-ID;RANGE=THISANDFUTURE: may move later instances
    unreadable: bool = False


def _value(line: str) -> str:
    """The value after the first colon that is not inside a quoted parameter value."""
    if '"' not in line:
        at = line.find(":")
        return line[at + 1 :].strip() if at >= 0 else ""
    quoted = False
    for i, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char == ":" and not quoted:
            return line[i + 1 :].strip()
    return ""


def _day(value: str) -> date | None:
    match = _DATE.match(value)
    if match is None:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def _duration(value: str) -> timedelta | None:
    match = _DURATION.match(value.upper())
    if match is None:
        return None
    weeks, days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups()[1:])
    try:
        length = timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    except OverflowError:
        return None
    return -length if match[1] == "-" else length


def _later(known: date | None, day: date | None) -> date | None:
    return day if known is None or (day is not None and day > known) else known


def _note(block: _Block, name: str, line: str) -> None:
    value = _value(line)
    if name == "UID":
        block.uid = value
    elif name == "DTSTART":
        block.start = _day(value)
        block.unreadable |= block.start is None
    elif name == "DTEND":
        block.end = _day(value)
        block.unreadable |= block.end is None
    elif name == "DURATION":
        block.duration = _duration(value)
        block.unreadable |= block.duration is None
    elif name == "RRULE":
        until = _UNTIL.search(value.upper())
        if until is None:
            block.unbounded = True
        else:
            day = _day(until[1])
            block.unreadable |= day is None
            block.last_start = _later(block.last_start, day)
    elif name == "RDATE":
        if "/P" in value.upper():
            block.unbounded = True  # a period given by its duration: not worth reading here
        for found in _DATE.finditer(value):
            block.last_start = _later(block.last_start, _day(found[0]))
    elif name == "RECURRENCE-ID":
        block.future_range |= "THISANDFUTURE" in line[: line.find(":")].upper()


def _outside(block: _Block, first: date, last: date) -> bool:
    """Whether every instance of the VEVENT certainly lies outside the days ``first``..``last``."""
    if block.unreadable or block.unbounded or block.future_range or block.start is None:
        return False  # (no DTSTART: an override's RECURRENCE-ID may place it; parse it)
    end = block.end or block.start
    try:
        if block.duration is not None:
            end = block.start + block.duration
        low, high = min(block.start, end), max(block.start, end)
        if block.last_start is not None and block.last_start > block.start:
            high += block.last_start - block.start
    except OverflowError:
        return False
    return high < first or low > last


def relevant_text(text: str, horizon_start: datetime, horizon_end: datetime) -> str | None:
    """``text`` without what cannot reach the horizon ("" when no VEVENT may reach it), or None
    to parse it whole."""
    lines = _FOLD.sub("", text).splitlines()
    first = (horizon_start - MARGIN).date()
    last = (horizon_end + MARGIN).date()
    out: list[str | _Block] = []  # kept lines, and VEVENTs (decided once all are seen)
    stack: list[str] = []
    block: _Block | None = None
    skipping = 0  # depth inside a skipped component
    for line in lines:
        head = line[:14].upper()
        if head.startswith(("BEGIN:", "END:")):
            kind = _value(line).upper()
            if head.startswith("BEGIN:"):
                stack.append(kind)
                if skipping or kind in _SKIPPED:
                    skipping += 1
                    continue
                if kind == "VEVENT":
                    if block is not None:
                        return None  # a VEVENT inside a VEVENT: let the parser decide
                    block = _Block([line])
                    out.append(block)
                    continue
            else:
                if not stack or stack.pop() != kind:
                    return None
                if skipping:
                    skipping -= 1
                    continue
                if kind == "VEVENT" and block is not None:
                    block.lines.append(line)
                    block = None
                    continue
        elif skipping or not line.strip():
            continue
        if block is not None:
            if stack[-1] != "VEVENT":  # a line of a component inside the VEVENT
                block.lines.append(line)
            elif (noted := _NOTED.match(head)) is not None:
                block.lines.append(line)
                _note(block, noted[1], line)
            elif UNREAD.match(line) is None:
                block.lines.append(line)
        else:
            out.append(line)
    if stack or block is not None:
        return None

    groups: dict[str, list[_Block]] = {}
    for item in out:
        if isinstance(item, _Block):
            groups.setdefault(item.uid or f"#{id(item)}", []).append(item)
    dropped = {
        id(b) for blocks in groups.values() if all(_outside(b, first, last) for b in blocks) for b in blocks
    }
    blocks_seen = sum(len(blocks) for blocks in groups.values())
    if blocks_seen and len(dropped) == blocks_seen:
        return ""  # no VEVENT may reach the horizon: nothing to parse
    kept: list[str] = []
    for item in out:
        if isinstance(item, _Block):
            if id(item) not in dropped:
                kept.extend(item.lines)
        else:
            kept.append(item)
    return "\r\n".join(kept) + "\r\n"


def may_reach_after(text: str, day: date) -> bool:
    """Whether an instance of some VEVENT of ``text`` may lie after ``day`` (when in doubt: True).

    The sync engine stores only what overlaps the horizon, and a resource whose etag it knows is not
    read again: a resource with no occurrence in today's horizon but one after it (a meeting planned
    three months ahead, a series that starts later) must be read again once the horizon moved, or it
    would never appear. A resource that lies wholly before the horizon never comes back: reading it
    again every day would only cost requests."""
    block: _Block | None = None
    nested = 0  # depth of components inside the VEVENT (VALARM…): their lines are not the event's
    for line in _FOLD.sub("", text).splitlines():
        head = line[:14].upper()
        if head.startswith("BEGIN:"):
            if block is not None:
                nested += 1
            elif _value(line).upper() == "VEVENT":
                block = _Block()
            continue
        if head.startswith("END:"):
            if nested:
                nested -= 1
            elif block is not None and _value(line).upper() == "VEVENT":
                if _reaches_after(block, day):
                    return True
                block = None
            continue
        if block is not None and not nested and (noted := _NOTED.match(head)) is not None:
            _note(block, noted[1], line)
    return block is not None  # a VEVENT never closed: not sure


def _reaches_after(block: _Block, day: date) -> bool:
    if block.unreadable or block.unbounded or block.future_range or block.start is None:
        return True
    end = block.end or block.start
    try:
        if block.duration is not None:
            end = block.start + block.duration
        high = max(block.start, end)
        if block.last_start is not None and block.last_start > block.start:
            high += block.last_start - block.start
    except OverflowError:
        return True
    return high + MARGIN > day
