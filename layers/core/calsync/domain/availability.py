"""Free/busy of a person (rule C11): which occurrences block time, and the merge of intervals.

Pure code. Busy time is the union of the person's primary and conflict calendars in one location;
events shown as free (transparent), cancelled ones and ones the person declined do not block.
All-day events block their whole days in the person's own time zone (``Occurrence.instants``):
the same date is a different stretch of the time line in Pacific/Kiritimati (UTC+14) and in
Pacific/Pago_Pago (UTC-11), and a day is 23 or 25 hours long on a daylight-saving change.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from calsync.domain.models import Occurrence, Transparency, as_utc

Interval = tuple[datetime, datetime]


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """The union of half-open ``[start, end)`` intervals: sorted, disjoint and not touching
    (``[9, 10)`` and ``[10, 11)`` become ``[9, 11)``). Empty intervals are dropped."""
    out: list[Interval] = []
    for start, end in sorted(i for i in intervals if i[0] < i[1]):
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def blocks(occ: Occurrence) -> bool:
    """Whether an occurrence makes its owner busy (C11)."""
    return not (occ.cancelled or occ.declined or occ.transparency is Transparency.TRANSPARENT)


def busy(
    occurrences: Iterable[Occurrence],
    *,
    calendar_ids: Collection[str],
    zone: ZoneInfo,
    start: datetime,
    end: datetime,
) -> list[Interval]:
    """The merged busy intervals of the occurrences of ``calendar_ids`` within ``[start, end)``
    (clipped to it), as UTC instants."""
    lo, hi = as_utc(start), as_utc(end)
    spans: list[Interval] = []
    for occ in occurrences:
        if occ.calendar_id not in calendar_ids or not blocks(occ):
            continue
        s, e = occ.instants(zone)
        s, e = max(s, lo), min(e, hi)
        if s < e:
            spans.append((s, e))
    return merge(spans)


def overlaps(intervals: Iterable[Interval], start: datetime, end: datetime) -> list[Interval]:
    """The intervals that overlap ``[start, end)``."""
    return [(s, e) for s, e in intervals if s < end and e > start]
