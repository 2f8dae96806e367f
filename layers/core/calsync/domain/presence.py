"""Presence (rules P1-P7), as pure functions: (chosen status, sessions, meetings, now) -> what is shown.

- P1: a person chooses available, busy, do_not_disturb or away; offline is derived, never chosen.
- P2: busy is shown as busy; calls and messages still reach the person.
- P3: do_not_disturb is shown to others as busy with ``accepts_calls=False`` (messages still arrive).
- P4: a custom message of at most 140 characters, without control characters; null or "" clears it.
- P5: a person with no live session (none, all logged out, or all expired) is offline.
- P6: with no chosen status, a listed meeting in progress (U1-U11; all-day and transparent events do
  not count) shows the person as busy, "In a meeting until HH:MM" in the person's own time zone.
- P7: every answer carries ``updated_at``.

Precedence: offline (P5) > chosen status (P1-P3) > in a meeting (P6) > available. A custom message
the person wrote is shown as written, also during a meeting; without one, P6 supplies its own.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from calsync.domain import rules
from calsync.domain.models import UTC, Occurrence, OwnerSettings, Transparency
from calsync.domain.rules import select_for_person

MAX_MESSAGE = 140


class Status(StrEnum):
    """What a person can choose (P1)."""

    AVAILABLE = "available"
    BUSY = "busy"
    DO_NOT_DISTURB = "do_not_disturb"
    AWAY = "away"


class Shown(StrEnum):
    """What others see: do_not_disturb is never shown as such (P3), offline is derived (P1, P5)."""

    AVAILABLE = "available"
    BUSY = "busy"
    AWAY = "away"
    OFFLINE = "offline"


def clean_message(value: str | None) -> str | None:
    """P4: ``None`` when cleared (null, "" or only spaces); ``ValueError`` when too long or when it
    holds a control, format, surrogate, private-use or unassigned character (Unicode category C*)."""
    if value is None or not value.strip():
        return None
    if len(value) > MAX_MESSAGE:
        raise ValueError(f"at most {MAX_MESSAGE} characters")
    if any(unicodedata.category(c).startswith("C") for c in value):
        raise ValueError("must not contain control characters")
    return value


@dataclass(frozen=True, slots=True)
class Chosen:
    """What the person set (the PRESENCE item): a status or none (automatic), a custom message."""

    status: Status | None
    message: str | None
    updated_at: datetime | None  # the last change of the presence item (status, message, sign-in/out)


@dataclass(frozen=True, slots=True)
class Session:
    session_id: str
    expires_at: datetime

    def live(self, now: datetime) -> bool:
        return self.expires_at > now


@dataclass(frozen=True, slots=True)
class Meeting:
    """The person's meeting block in progress: from its start to when they are free again."""

    start: datetime
    until: datetime


@dataclass(frozen=True, slots=True)
class PresenceView:
    status: Shown
    message: str | None
    in_meeting_until: datetime | None  # in the person's time zone
    accepts_calls: bool
    accepts_messages: bool
    updated_at: datetime
    chosen_status: Status | None  # only the person themself is shown this


def meeting_in_progress(
    occurrences: Iterable[Occurrence], now: datetime, owner: OwnerSettings
) -> Meeting | None:
    """P6: the listed meeting (U1-U11) in progress at ``now``, if any, extended over meetings that
    follow back to back or overlap it, so that "until" is when the person is free again. All-day and
    transparent (shown as free) events do not make a person busy."""
    selection = select_for_person(occurrences, now, owner)
    busy = sorted(
        (item.start, item.end)
        for item in selection.listed
        if not item.occurrence.all_day and item.occurrence.transparency is not Transparency.TRANSPARENT
    )
    current = [(s, e) for s, e in busy if s <= now < e]
    if not current:
        return None
    start = min(s for s, _ in current)
    until = max(e for _, e in current)
    for s, e in busy:  # sorted by start: one pass extends the block over what follows on
        if s <= until < e:
            until = e
    return Meeting(start=start, until=until)


def in_meeting_message(until: datetime, zone: ZoneInfo) -> str:
    return f"In a meeting until {until.astimezone(zone):%H:%M}"


def presence_view(
    chosen: Chosen | None,
    sessions: Sequence[Session],
    meeting: Meeting | None,
    now: datetime,
    zone: ZoneInfo,
) -> PresenceView:
    """What the person's presence is at ``now`` (P1-P7); ``chosen_status`` is for the person only."""
    chosen = chosen or Chosen(status=None, message=None, updated_at=None)
    moments = [chosen.updated_at] if chosen.updated_at else []
    message = chosen.message
    in_meeting_until: datetime | None = None
    calls = True
    if not any(s.live(now) for s in sessions):
        shown = Shown.OFFLINE  # P5: calls cannot reach the person; messages wait for them
        calls = False
        moments += [s.expires_at for s in sessions]  # expired ones: when the person went offline
    elif chosen.status is not None:
        shown = Shown.BUSY if chosen.status is Status.DO_NOT_DISTURB else Shown(chosen.status.value)
        calls = chosen.status is not Status.DO_NOT_DISTURB  # P3 (P2: busy still takes calls)
    elif meeting is not None:
        shown = Shown.BUSY  # P6
        in_meeting_until = meeting.until.astimezone(zone)
        message = message or in_meeting_message(meeting.until, zone)
        moments.append(meeting.start)
    else:
        shown = Shown.AVAILABLE
    updated = max((m for m in moments if m <= now), default=None)
    return PresenceView(
        status=shown,
        message=message,
        in_meeting_until=in_meeting_until,
        accepts_calls=calls,
        accepts_messages=True,
        updated_at=(updated or now).astimezone(UTC),
        chosen_status=chosen.status,
    )


def starting_by(occurrences: Iterable[Occurrence], instant: datetime) -> list[Occurrence]:
    """The occurrences that began by ``instant`` (all-day ones kept: P6 never counts them)."""
    return [o for o in occurrences if o.start is None or o.start <= instant]


def next_change(
    chosen: Chosen | None,
    sessions: Sequence[Session],
    now: datetime,
    meetings: tuple[Sequence[Occurrence], OwnerSettings, datetime, timedelta] | None = None,
) -> datetime | None:
    """The first instant after ``now`` at which ``presence_view`` may show something else without a
    write (``None``: never). ``meetings``: when P6 applies, the occurrences read up to a horizon, the
    owner, that horizon, and the lead with which the view takes an occurrence in (``starting_by(now +
    lead)``). The instants: the last live session's expiry (P5), an updatedAt written by a clock
    ahead of ours, and, for P6, every start and end of an event read, each start less the lead (it
    may extend "until"), the next midnight (the rules' window) and the horizon less the lead (events
    beyond it were not read). Conservative: an instant here may change nothing."""
    instants: list[datetime] = []
    if chosen is not None and chosen.updated_at is not None:
        instants.append(chosen.updated_at)
    live = [s.expires_at for s in sessions if s.live(now)]
    if live:
        instants.append(max(live))
        if meetings is not None:
            occurrences, owner, horizon, lead = meetings
            selection = select_for_person(occurrences, now, owner)
            instants += [horizon - lead, rules.next_change(selection, now)]
            items: list[rules.Listed | rules.Excluded] = [*selection.listed, *selection.excluded]
            for item in items:
                instants += [item.start - lead, item.start, item.end]
    return min((t for t in instants if t > now), default=None)
