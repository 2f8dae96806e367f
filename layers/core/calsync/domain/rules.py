"""The filtering rules of PRODUCT.md, as pure functions.

``select_for_person`` applies U1-U11 and ``select_for_room`` applies R1-R7 to a list of occurrences:
(occurrences, now, owner settings) -> a ``Selection`` of listed events and of the events in the
window that were left out, each with the ids of the rules that left it out. Only events that
overlap the window appear in either list; everything else is simply not there (U1/R1).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from calsync.domain.models import UTC, Occurrence, OwnerSettings

WINDOW_DAYS = 3
ENDED_GRACE = timedelta(minutes=61)
LONGEST = timedelta(hours=24)
ROOM_LIMIT = 3


@dataclass(frozen=True, slots=True)
class Listed:
    occurrence: Occurrence
    start: datetime  # on the time line (all-day events placed in the owner's zone)
    end: datetime
    can_add_meeting_link: bool

    @classmethod
    def of(cls, occ: Occurrence, start: datetime, end: datetime) -> Listed:
        """U10: a meeting link can be added to a meeting that has none and does not recur."""
        return cls(occ, start, end, can_add_meeting_link=occ.meeting_link is None and not occ.recurring)


@dataclass(frozen=True, slots=True)
class Excluded:
    occurrence: Occurrence
    start: datetime
    end: datetime
    rules: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Selection:
    window_start: datetime  # aware, in the owner's zone
    window_end: datetime
    listed: list[Listed]
    excluded: list[Excluded]


def window(now: datetime, zone: ZoneInfo, days: int = WINDOW_DAYS) -> tuple[datetime, datetime]:
    """Rule U1/R1: 00:00 today to 00:00 ``days`` later, in ``zone`` (a DST day is 23 or 25 hours)."""
    today = now.astimezone(zone).date()
    end_day = today + timedelta(days=days)
    return (
        datetime(today.year, today.month, today.day, tzinfo=zone),
        datetime(end_day.year, end_day.month, end_day.day, tzinfo=zone),
    )


class _Placer:
    """Places occurrences on the time line for one owner; all-day dates are cached per call."""

    __slots__ = ("_days", "_zone")

    def __init__(self, zone: ZoneInfo) -> None:
        self._zone = zone
        self._days: dict[date, datetime] = {}

    def _day(self, day: date) -> datetime:
        hit = self._days.get(day)
        if hit is None:
            hit = datetime(day.year, day.month, day.day, tzinfo=self._zone).astimezone(UTC)
            self._days[day] = hit
        return hit

    def place(self, occ: Occurrence) -> tuple[datetime, datetime]:
        if occ.start is not None and occ.end is not None:
            return occ.start, occ.end
        assert occ.start_date is not None and occ.end_date is not None
        return self._day(occ.start_date), self._day(occ.end_date)


def _overlaps(start: datetime, end: datetime, ws: datetime, we: datetime) -> bool:
    if start == end:  # a zero-length event is "in" the window when its instant is
        return ws <= start < we
    return start < we and end > ws


def _is_long(occ: Occurrence, start: datetime, end: datetime) -> bool:
    """U3/R3: over 24 hours; all-day events count by calendar days (two or more is long)."""
    if occ.start_date is not None and occ.end_date is not None:
        return (occ.end_date - occ.start_date).days >= 2
    return end - start > LONGEST


def _sort_key(item: Listed | Excluded) -> tuple[datetime, datetime, str, str, str]:
    occ = item.occurrence
    # U9: start, end, title; then stable ids so that the answer never depends on input order
    return (item.start, item.end, occ.title or "", occ.calendar_id, occ.id)


def _dedupe(candidates: list[Listed], primary: frozenset[str]) -> tuple[list[Listed], list[Listed]]:
    """U8/R5: same title, same meeting link, same start are one meeting: keep the one ending latest.

    Same end: prefer the primary calendar, then the smallest ids (deterministic).
    """
    best: dict[tuple[str | None, str | None, datetime], Listed] = {}
    dropped: list[Listed] = []

    def rank(item: Listed) -> tuple[datetime, bool, str, str]:
        occ = item.occurrence
        return (item.end, occ.calendar_id in primary, _neg(occ.calendar_id), _neg(occ.id))

    for item in candidates:
        occ = item.occurrence
        # An untitled event (a private one in a room's copy, R4) cannot be shown to have "the same
        # title" as another: it is never merged, so two private bookings never hide each other.
        key = (occ.title if occ.title is not None else "\x00" + occ.id, occ.meeting_link, item.start)
        kept = best.get(key)
        if kept is None:
            best[key] = item
        elif rank(item) > rank(kept):
            best[key] = item
            dropped.append(kept)
        else:
            dropped.append(item)
    return list(best.values()), dropped


def _neg(text: str) -> str:
    """A key that sorts strings in reverse, so that max() prefers the smallest id."""
    return "".join(chr(0x10FFFF - ord(c)) for c in text)


def _select(
    occurrences: Iterable[Occurrence],
    now: datetime,
    owner: OwnerSettings,
    *,
    room: bool,
) -> Selection:
    zone = owner.time_zone
    ws_local, we_local = window(now, zone)
    ws, we = ws_local.astimezone(UTC), we_local.astimezone(UTC)
    ended_before = now.astimezone(UTC) - ENDED_GRACE
    placer = _Placer(zone)

    survivors: list[Listed] = []
    excluded: list[Excluded] = []
    seen: set[str] = set()
    for occ in occurrences:
        if occ.id in seen:  # the same occurrence read twice (e.g. from two index entries) counts once
            continue
        seen.add(occ.id)
        start, end = placer.place(occ)
        if not _overlaps(start, end, ws, we):
            continue  # U1 / R1: outside the window, neither listed nor excluded
        rules: list[str] = []
        if end < ended_before:
            rules.append("R2" if room else "U2")
        if _is_long(occ, start, end) and (not room or occ.meeting_link is None):
            rules.append("R3" if room else "U3")
        if not room:
            if not occ.updatable:
                rules.append("U4")
            if occ.recurring and occ.meeting_link is None:
                rules.append("U5")
            if occ.legacy:
                rules.append("U6")
        if occ.cancelled:
            rules.append("R7" if room else "U7")
        if rules:
            excluded.append(Excluded(occ, start, end, tuple(rules)))
        else:
            survivors.append(Listed.of(occ, start, end))

    listed, duplicates = _dedupe(survivors, owner.primary_calendar_ids)
    dup_rule = ("R5",) if room else ("U8",)
    excluded.extend(Excluded(d.occurrence, d.start, d.end, dup_rule) for d in duplicates)
    listed.sort(key=_sort_key)

    if room:
        # R6: at most three; those with a meeting link first, each group by start time
        listed.sort(key=lambda item: item.occurrence.meeting_link is None)  # stable: keeps U9 order within
        listed, beyond = listed[:ROOM_LIMIT], listed[ROOM_LIMIT:]
        excluded.extend(Excluded(b.occurrence, b.start, b.end, ("R6",)) for b in beyond)

    excluded.sort(key=_sort_key)
    return Selection(ws_local, we_local, listed, excluded)


def select_for_person(occurrences: Iterable[Occurrence], now: datetime, owner: OwnerSettings) -> Selection:
    """Rules U1-U11: a person's meetings for the next three days, and what was left out and why."""
    return _select(occurrences, now, owner, room=False)


def select_for_room(occurrences: Iterable[Occurrence], now: datetime, owner: OwnerSettings) -> Selection:
    """Rules R1-R7: a room panel's meetings (at most three, links first). R4 is applied when storing."""
    return _select(occurrences, now, owner, room=True)


def rule_ids(selection: Selection) -> Sequence[str]:
    """Every rule id that left something out of ``selection`` (for logs and metrics)."""
    return sorted({r for e in selection.excluded for r in e.rules})


def next_change(selection: Selection, now: datetime) -> datetime:
    """The first instant after ``now`` at which ``selection`` (taken at ``now``) may differ without any
    write: the next midnight in the owner's zone (U1/R1: the window moves), or an event in the window
    passing its U2/R2 threshold (``end + ENDED_GRACE``: it leaves the list, R6 lets the next one in).
    Nothing else in the rules depends on the time. Conservative: an instant here may change nothing."""
    start = selection.window_start
    tomorrow = start.date() + timedelta(days=1)
    instants = [datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=start.tzinfo)]
    items: list[Listed | Excluded] = [*selection.listed, *selection.excluded]
    instants += [item.end + ENDED_GRACE for item in items]
    return min(t for t in instants if t > now)
