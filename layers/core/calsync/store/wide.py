"""Wide calendars (docs/adr/0021): past ``WIDE_THRESHOLD`` subscribers a calendar's occurrences are
stored once, in the calendar's own partitions, instead of once per subscriber (docs/adr/0002).

- ``WIDE#<calendarId>``: the occurrences whole (what people read); written when a person subscribes.
- ``WIDEROOM#<calendarId>``: the same with R4 applied on write (``privacy.for_room``): what rooms
  read; written only when a room subscribes, so that what a room may not show is never written
  for a calendar only rooms use.
- Each subscriber's anchor item (``PROFILE`` of a person, ``ROOM`` of a room) lists its wide
  calendars with its role (``wide``: {calendarId: role}); a meetings read Queries the subscriber's
  own partition and each of them: at most ``1 + MAX_WIDE`` Queries. A subscriber whose list is full
  keeps getting copies (the calendar's ``copyTo``), so a read never needs more.
- ``WIDE#<calendarId> / VERSION``: the calendar's version, part of its subscribers' ETags.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from calsync.store import keys

if TYPE_CHECKING:
    from calsync.store.items import Calendar, SubscriberRole

# Past this many subscribers a calendar is stored once (0021: the measured write cost of a moved
# event is ~5N + 6 WCU with copies (bench sharing); at 25 that is ~130 WCU in 5 BatchWriteItem calls).
WIDE_THRESHOLD = 25
# At most this many wide calendars per reader: a meetings read is at most 1 + MAX_WIDE Queries.
MAX_WIDE = 4
WIDE_ATTR = "wide"  # on PROFILE and ROOM items: {calendarId: role}


def wide_targets(calendar: Calendar) -> dict[str, SubscriberRole]:
    """The calendar's own partitions a write of a wide calendar goes to: the whole one when a person
    subscribes, the R4 one when a room does."""
    roles = set(calendar.subscribers.values())
    out: dict[str, SubscriberRole] = {}
    if roles - {"room"}:
        out[keys.wide_pk(calendar.calendar_id)] = "conflict"  # a person's role is theirs, read-time
    if "room" in roles:
        out[keys.wide_room_pk(calendar.calendar_id)] = "room"
    return out


def targets(calendar: Calendar) -> dict[str, SubscriberRole]:
    """The partitions an occurrence of ``calendar`` is written to, with the role stored on each copy."""
    if calendar.layout == "copies":
        return dict(calendar.subscribers)
    if calendar.layout == "widening":  # both while subscribers move (0021: no read misses anything)
        return {**calendar.subscribers, **wide_targets(calendar)}
    return {**calendar.copy_to, **wide_targets(calendar)}


def should_widen(calendar: Calendar, threshold: int = WIDE_THRESHOLD) -> bool:
    """Past ``threshold`` and still on copies, or a widening not finished (copies left to sweep)."""
    if calendar.layout == "copies":
        return len(calendar.subscribers) > threshold
    return calendar.layout == "widening" or not calendar.swept
