"""A CalDAV resource (an iCalendar text) -> the normalized occurrences inside a horizon.

Pure code, no I/O. One resource may hold several VEVENTs: a master and its overrides
(``RECURRENCE-ID``) share a UID, and some servers (iCloud) put several UIDs in one resource.
Each UID is a series, expanded on its own; a VEVENT that cannot be read becomes one entry of
``ParseResult.errors`` and the rest of the resource still parses.

Time:

- ``DTSTART;TZID=`` with an IANA name (or a name icalendar maps to one, e.g. Windows names) is read
  in that zone; a TZID known only from the resource's VTIMEZONE uses that definition (icalendar
  builds it); a TZID that is neither is read as floating. UTC (``Z``) is UTC. Floating times
  are in ``ParseContext.calendar_time_zone``.
- A recurrence is expanded in wall-clock time in the zone of DTSTART and each instance is
  placed on the time line with RFC 5545 §3.3.5 (see :func:`~calsync_caldav.recurrence.localize`):
  an ambiguous local time is its first occurrence, a nonexistent one is shifted forward by the gap.
- Durations, RFC 5545 §3.8.5.3: with DTEND every instance lasts the *exact* duration of the master
  (DTEND - DTSTART as instants); with DURATION the *nominal* one (days/weeks in wall-clock time,
  hours/minutes/seconds exact). A timed event without either lasts zero; an all-day one, one day.
- All-day events (``VALUE=DATE``) keep dates (end exclusive) and are kept when they may overlap
  the horizon in any time zone (``widest_instants``), as the store indexes them.

Identity: every occurrence of a series has ``event_id`` = ``series_id`` = UID and ``original_start``
= its original start (the RECURRENCE-ID of an override) as ISO text: a UTC instant
(``2026-03-30T07:00:00+00:00``) for timed series, a date (``2026-03-30``) for all-day ones. An
override therefore keeps the occurrence id of the instance it moves or cancels.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any, Final
from zoneinfo import ZoneInfo

from icalendar import Calendar, Component
from icalendar.prop import vBroken, vDDDLists, vDDDTypes, vRecur

from calsync.domain.links import LinkSettings, find_meeting_link, is_legacy
from calsync.domain.models import (
    UTC,
    Occurrence,
    Provider,
    Status,
    Transparency,
    Visibility,
    widest_instants,
)
from calsync_caldav.prescan import relevant_text
from calsync_caldav.recurrence import Budget, RecurrenceError, Rule, expand, localize, parse_rule

#: structured conference fields, looked at before any free text (PRODUCT.md "Meeting links")
STRUCTURED_LINK_PROPERTIES: Final = (
    "X-GOOGLE-CONFERENCE",
    "X-MICROSOFT-SKYPETEAMSMEETINGURL",
    "X-MICROSOFT-ONLINEMEETINGURL",
    "CONFERENCE",
)
#: free text searched for a meeting link, in this order (PRODUCT.md: location, URL, description)
TEXT_LINK_PROPERTIES: Final = ("LOCATION", "URL", "DESCRIPTION")

_VISIBILITY: Final = {
    "PUBLIC": Visibility.PUBLIC,
    "PRIVATE": Visibility.PRIVATE,
    "CONFIDENTIAL": Visibility.CONFIDENTIAL,
}
_STATUS: Final = {"TENTATIVE": Status.TENTATIVE, "CANCELLED": Status.CANCELLED}
# slack around the horizon when choosing which wall-clock starts to generate (UTC offsets reach
# +14/-12 hours; instances are then filtered exactly)
_SLACK: Final = timedelta(days=2)


class EventError(ValueError):
    """One VEVENT cannot be turned into occurrences."""


@dataclass(frozen=True, slots=True)
class ParseContext:
    """What the parser needs to know of the calendar a resource comes from."""

    account_id: str
    calendar_id: str
    # lowercased e-mail addresses (and principal URIs) of the account, for rule U4
    own_addresses: frozenset[str] = frozenset()
    calendar_writable: bool = True
    # floating times are read in this zone
    calendar_time_zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    links: LinkSettings = field(default_factory=LinkSettings)
    etag: str | None = None


@dataclass(slots=True)
class ParseResult:
    occurrences: list[Occurrence] = field(default_factory=list)
    # one message per VEVENT that could not be parsed (or series that had to be truncated)
    errors: list[str] = field(default_factory=list)


# -- reading properties ---------------------------------------------------------------------------


def _clip(value: str, limit: int = 60) -> str:
    """Provider data quoted in an error text, bounded."""
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _values(component: Component, name: str) -> list[Any]:
    """All values of a property (icalendar returns a list when it occurs more than once)."""
    value = component.get(name)
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    for item in values:
        if isinstance(item, vBroken):
            raise EventError(f"{name} cannot be read: {_clip(str(item))}")
    return values


def _single(component: Component, name: str) -> Any:
    values = _values(component, name)
    if len(values) > 1:
        raise EventError(f"{name} occurs more than once")
    return values[0] if values else None


def _text(component: Component, name: str) -> str | None:
    values = _values(component, name)
    return str(values[0]) if values else None


def _texts(component: Component, name: str) -> list[str]:
    return [str(v) for v in _values(component, name)]


def _when(component: Component, name: str) -> date | datetime | None:
    prop = _single(component, name)
    if prop is None:
        return None
    if not isinstance(prop, vDDDTypes) or not isinstance(prop.dt, date):
        raise EventError(f"{name} is not a date or date-time")
    value: date | datetime = prop.dt
    return value


def _duration(component: Component) -> timedelta | None:
    prop = _single(component, "DURATION")
    if prop is None:
        return None
    if not isinstance(prop, vDDDTypes) or not isinstance(prop.dt, timedelta):
        raise EventError("DURATION is not a duration")
    value: timedelta = prop.dt
    return value  # negative: read like DTEND before DTSTART (docs/ical-leniency.md)


def _date_values(component: Component, name: str) -> list[Any]:
    """Every value of every RDATE/EXDATE line (several per line and several lines): dates,
    date-times, and (start, end or duration) periods."""
    out: list[Any] = []
    for prop in _values(component, name):
        if not isinstance(prop, vDDDLists):
            raise EventError(f"{name} cannot be read")
        out.extend(item.dt for item in prop.dts)
    return out


def _tzid(component: Component, name: str) -> str | None:
    prop = component.get(name)
    params = getattr(prop, "params", None)
    value = params.get("TZID") if params is not None else None
    return str(value) if value else None


# -- time -----------------------------------------------------------------------------------------


def _is_datetime(value: object) -> bool:
    return isinstance(value, datetime)


def _zone_name(zone: tzinfo, tzid: str | None) -> str:
    if isinstance(zone, ZoneInfo):
        return zone.key
    if zone is UTC:
        return "UTC"
    return tzid or str(zone)


def _instant(value: datetime, floating_zone: tzinfo) -> datetime:
    """A DATE-TIME value on the time line (RFC 5545 §3.3.5 for TZID values, see ``localize``)."""
    zone = value.tzinfo if value.tzinfo is not None else floating_zone
    return localize(value.replace(tzinfo=None), zone)


@dataclass(frozen=True, slots=True)
class _Span:
    start: datetime | date  # UTC instant, or a date for all-day
    end: datetime | date


@dataclass(frozen=True, slots=True)
class _Timing:
    """How the instances of a component are placed: its zone, start and duration."""

    all_day: bool
    zone: tzinfo  # the wall-clock zone of DTSTART (UTC for all-day, unused)
    zone_name: str | None
    wall: datetime  # DTSTART as naive wall-clock time (all-day: midnight)
    exact: timedelta | None = None  # DTEND given: exact duration of every instance
    nominal: timedelta | None = None  # DURATION given: nominal duration
    days: int = 1  # all-day length in days

    def key(self, value: date | datetime) -> datetime | date:
        """The identity of an instance starting at ``value`` (a RECURRENCE-ID / EXDATE / RDATE)."""
        if self.all_day:
            return value.date() if isinstance(value, datetime) else value
        if isinstance(value, datetime):
            return _instant(value, self.zone)
        return localize(datetime.combine(value, time()), self.zone)

    def span_at(self, key: datetime | date) -> _Span:
        """The instance whose original start is ``key`` (see :meth:`key`)."""
        if isinstance(key, datetime):
            if self.exact is not None:
                # DTEND before DTSTART (leniency): the instance spans the two, swapped
                return _Span(min(key, key + self.exact), max(key, key + self.exact))
            assert self.nominal is not None
            local = key.astimezone(self.zone).replace(tzinfo=None)
            if self.nominal < timedelta(0):  # leniency: the span before DTSTART, as swapped
                back = -self.nominal
                day_part = timedelta(days=back.days)
                return _Span(localize(local - day_part, self.zone) - (back - day_part), key)
            day_part = timedelta(days=self.nominal.days)
            end = localize(local + day_part, self.zone) + (self.nominal - day_part)
            return _Span(key, max(end, key))
        other = key + timedelta(days=self.days)
        return _Span(min(key, other), max(key, other))

    def key_of_wall(self, wall: datetime) -> datetime | date:
        return wall.date() if self.all_day else localize(wall, self.zone)

    def within(self, key: datetime | date, until: date | datetime) -> bool:
        """Whether an instance starting at ``key`` is not after UNTIL (instants compared)."""
        if isinstance(key, datetime):
            if isinstance(until, datetime):
                return key <= _instant(until, self.zone)
            # a DATE UNTIL on a timed rule (invalid, but seen): the whole local day counts
            return key.astimezone(self.zone).date() <= until
        return key <= (until.date() if isinstance(until, datetime) else until)


def _timing(component: Component, ctx: ParseContext, fallback_start: date | datetime | None) -> _Timing:
    start = _when(component, "DTSTART")
    tzid = _tzid(component, "DTSTART")
    if start is None:
        start = fallback_start
        tzid = _tzid(component, "RECURRENCE-ID")
    if start is None:
        raise EventError("DTSTART is missing")
    end = _when(component, "DTEND")
    # leniency (docs/ical-leniency.md): DTEND and DURATION both given -> DTEND, DURATION ignored
    duration = _duration(component) if end is None else None
    if not isinstance(start, datetime):
        days = 1
        if end is not None:
            end_day = end.date() if isinstance(end, datetime) else end
            if isinstance(end, datetime) and end.time() != time():
                end_day += timedelta(days=1)  # leniency: a DATE-TIME DTEND covers its own day
            days = (end_day - start).days
            if days < 0:  # leniency: DTEND before DTSTART -> the days between them
                return _Timing(True, UTC, None, datetime.combine(start, time()), days=days)
        elif duration is not None:
            length = abs(duration)
            days = length.days + (1 if length.seconds or length.microseconds else 0)
            if duration < timedelta(0):  # leniency: a negative DURATION, as DTEND before DTSTART
                return _Timing(True, UTC, None, datetime.combine(start, time()), days=-max(days, 1))
        # leniency: DTEND equal to DTSTART on an all-day event -> one day
        return _Timing(True, UTC, None, datetime.combine(start, time()), days=max(days, 1))
    zone: tzinfo = start.tzinfo if start.tzinfo is not None else ctx.calendar_time_zone
    wall = start.replace(tzinfo=None)
    name = _zone_name(zone, tzid if start.tzinfo is not None else None)
    if duration is not None:
        return _Timing(False, zone, name, wall, nominal=duration)
    exact = timedelta(0)
    if end is not None:
        if isinstance(end, datetime):
            end_instant = _instant(end, zone)
        else:
            # leniency: a DATE DTEND on a timed event is midnight of that day, or of the next
            # day when that midnight is not after DTSTART (allenporter/ical's compat mode)
            end_day = end if end > wall.date() else wall.date() + timedelta(days=1)
            end_instant = localize(datetime.combine(end_day, time()), zone)
        exact = end_instant - localize(wall, zone)
        if exact < timedelta(0):
            in_order = (
                isinstance(end, datetime) and end.tzinfo is start.tzinfo and end.replace(tzinfo=None) >= wall
            )
            # written in order, reversed only because DTSTART is in a DST gap and moved forward
            # (02:30-03:00 on a spring-forward day starts at 03:30): an event of no length.
            # Otherwise (leniency) DTEND before DTSTART: the event spans DTEND..DTSTART.
            if in_order:
                exact = timedelta(0)
    return _Timing(False, zone, name, wall, exact=exact)


# -- everything but time --------------------------------------------------------------------------


def _address(value: str) -> str:
    address = value.strip().lower()
    return address[len("mailto:") :] if address.startswith("mailto:") else address


@dataclass(frozen=True, slots=True)
class _Details:
    title: str | None
    status: Status
    visibility: Visibility
    transparency: Transparency
    organizer: str | None
    organizer_is_self: bool
    meeting_link: str | None
    legacy: bool
    declined: bool = False  # C11: PARTSTAT=DECLINED on the account's own ATTENDEE


def _declined(component: Component, own: set[str]) -> bool:
    """Whether one of the account's own addresses is an ATTENDEE that declined (RFC 5545 PARTSTAT)."""
    for prop in _values(component, "ATTENDEE"):
        params = getattr(prop, "params", {})
        if str(params.get("PARTSTAT", "")).strip().upper() != "DECLINED":
            continue
        email = params.get("EMAIL")
        addresses = {str(prop).strip().lower(), _address(str(prop))}
        if (addresses | ({_address(str(email))} if email else set())) & own:
            return True
    return False


def _details(component: Component, ctx: ParseContext) -> _Details:
    status = _STATUS.get((_text(component, "STATUS") or "").strip().upper(), Status.CONFIRMED)
    klass = (_text(component, "CLASS") or "").strip().upper()
    # RFC 5545 §3.8.1.3: an unknown class is treated as PRIVATE
    visibility = Visibility.DEFAULT if not klass else _VISIBILITY.get(klass, Visibility.PRIVATE)
    transp = (_text(component, "TRANSP") or "").strip().upper()
    transparency = Transparency.TRANSPARENT if transp == "TRANSPARENT" else Transparency.OPAQUE

    organizer: str | None = None
    organizer_is_self = True
    prop = _single(component, "ORGANIZER")
    if prop is not None and str(prop).strip():
        raw = str(prop).strip()
        email = getattr(prop, "params", {}).get("EMAIL")
        # iCloud writes ORGANIZER;EMAIL=a@icloud.com:urn:uuid:... ; mailto: is case-insensitive
        candidates = {raw.lower(), _address(raw)} | ({_address(str(email))} if email else set())
        own = {_address(a) for a in ctx.own_addresses}
        organizer_is_self = bool(candidates & own)
        if raw.lower().startswith("mailto:"):
            organizer = _address(raw)
        else:
            organizer = _address(str(email)) if email else raw

    structured = [v for name in STRUCTURED_LINK_PROPERTIES for v in _texts(component, name)]
    texts = [v for name in TEXT_LINK_PROPERTIES for v in _texts(component, name)]
    link = find_meeting_link(structured, texts, ctx.links)
    return _Details(
        title=_text(component, "SUMMARY"),
        status=status,
        visibility=visibility,
        transparency=transparency,
        organizer=organizer,
        organizer_is_self=organizer_is_self,
        meeting_link=link,
        legacy=is_legacy(link, organizer, ctx.links),
        declined=_declined(component, {_address(a) for a in ctx.own_addresses}),
    )


# -- occurrences ----------------------------------------------------------------------------------


def _original_start(key: datetime | date) -> str:
    return key.isoformat()


def _occurrence(
    ctx: ParseContext,
    uid: str,
    span: _Span,
    timing: _Timing,
    details: _Details,
    *,
    original: datetime | date | None,
    cancelled: bool = False,
) -> Occurrence:
    recurring = original is not None
    times: dict[str, Any]
    if isinstance(span.start, datetime):
        times = {"start": span.start, "end": span.end, "time_zone": timing.zone_name}
    else:
        times = {"start_date": span.start, "end_date": span.end}
    return Occurrence(
        provider=Provider.CALDAV,
        account_id=ctx.account_id,
        calendar_id=ctx.calendar_id,
        event_id=uid,
        title=details.title,
        series_id=uid if recurring else None,
        original_start=_original_start(original) if original is not None else None,
        updatable=ctx.calendar_writable and (details.organizer is None or details.organizer_is_self),
        organizer_is_self=details.organizer_is_self,
        organizer=details.organizer,
        visibility=details.visibility,
        meeting_link=details.meeting_link,
        legacy=details.legacy,
        status=Status.CANCELLED if cancelled else details.status,
        recurring=recurring,
        transparency=details.transparency,
        declined=details.declined,
        etag=ctx.etag,
        **times,
    )


def _overlaps(occ: Occurrence, start: datetime, end: datetime) -> bool:
    """Whether ``occ`` lies in ``[start, end)``; a zero-length event counts at its start."""
    first, last = widest_instants(occ)
    if first == last:
        return start <= first < end
    return first < end and last > start


@dataclass(slots=True)
class _Override:
    component: Component
    key: datetime | date
    sequence: int


def _sequence(component: Component) -> int:
    try:
        return int(_single(component, "SEQUENCE") or 0)
    except (TypeError, ValueError):
        return 0


def _newest(components: list[Component]) -> Component:
    """The component with the highest SEQUENCE (the first of those on a tie)."""
    best = components[0]
    for component in components[1:]:
        if _sequence(component) > _sequence(best):
            best = component
    return best


class _Series:
    """A UID: its master (maybe absent: an invitation to one occurrence) and its overrides."""

    def __init__(self, uid: str, ctx: ParseContext) -> None:
        self.uid = uid
        self.ctx = ctx
        self.masters: list[Component] = []
        self.overrides: list[Component] = []


def _recur(prop: Any) -> vRecur:
    """An RRULE value; leniency: whitespace inside it (``BYDAY=MO, TU``) is ignored."""
    if isinstance(prop, vRecur):
        return prop
    if isinstance(prop, vBroken):
        try:
            recur: vRecur = vRecur.from_ical("".join(str(prop).split()))
            return recur
        except (ValueError, TypeError, KeyError, IndexError):
            pass
    raise EventError("RRULE cannot be read")


def _rules(master: Component) -> list[Rule]:
    rules: list[Rule] = []
    value = master.get("RRULE")
    for raw in value if isinstance(value, list) else [] if value is None else [value]:
        prop = _recur(raw)
        if not prop:
            continue  # leniency: an empty ``RRULE:`` adds nothing (a single event)
        rules.append(parse_rule(prop))
    return rules


def _expand_master(
    *,
    master: Component,
    timing: _Timing,
    horizon: tuple[datetime, datetime],
    budget: Budget,
    errors: list[str],
    uid: str,
    widen: timedelta = timedelta(0),
) -> tuple[dict[datetime | date, _Span], bool]:
    """The instances of the master's recurrence set near the horizon, by original start
    (``widen``: also those that far before or after it, which a RANGE=THISANDFUTURE override
    may move into it)."""
    unreadable = False
    try:
        rules = _rules(master)
    except (EventError, RecurrenceError) as exc:
        # leniency: a rule that cannot be read (or is not supported) leaves the event's first
        # instance, DTSTART, and is reported
        errors.append(f"VEVENT {uid!r}: {exc}; only its first occurrence is shown")
        rules, unreadable = [], True
    try:
        # leniency: RDATE;VALUE=TIME (a time without a day, invalid) adds nothing
        rdates = [v for v in _date_values(master, "RDATE") if not isinstance(v, time)]
    except EventError as exc:
        errors.append(f"VEVENT {uid!r}: {exc}; its RDATEs are left out")  # leniency: the rest stays
        rdates = []
    try:
        exdates = [v for v in _date_values(master, "EXDATE") if not isinstance(v, time)]
    except EventError as exc:
        errors.append(f"VEVENT {uid!r}: {exc}; its EXDATEs are left out")  # leniency: the rest stays
        exdates = []
    recurring = bool(rules or rdates or unreadable)
    instances: dict[datetime | date, _Span] = {}
    start_key = timing.key_of_wall(timing.wall)
    instances[start_key] = timing.span_at(start_key)

    if rules:
        zone = UTC if timing.all_day else timing.zone
        longest = timedelta(days=abs(timing.days))
        if not timing.all_day:
            longest = abs(timing.exact if timing.exact is not None else timing.nominal or timedelta(0))
        window_start = horizon[0].astimezone(zone).replace(tzinfo=None) - longest - _SLACK - widen
        window_end = horizon[1].astimezone(zone).replace(tzinfo=None) + longest + _SLACK + widen
        for rule in rules:
            until = rule.until

            def within(wall: datetime, until: date | datetime | None = until) -> bool:
                return until is None or timing.within(timing.key_of_wall(wall), until)

            expansion = expand(
                rule, timing.wall, window_start, window_end, within_until=within, budget=budget
            )
            if expansion.truncated:
                errors.append(f"VEVENT {uid!r}: {expansion.truncated}")
            for wall in expansion.starts:
                key = timing.key_of_wall(wall)
                instances.setdefault(key, timing.span_at(key))

    for value in rdates:
        if isinstance(value, tuple):  # PERIOD: start/end or start/duration
            first, second = value
            key = timing.key(first)
            if isinstance(key, datetime):
                end = second if isinstance(second, timedelta) else None
                stop = key + end if end is not None else timing.key(second)
                assert isinstance(stop, datetime)
                instances[key] = _Span(key, max(stop, key))
            else:
                instances.setdefault(key, timing.span_at(key))
        else:
            key = timing.key(value)
            instances.setdefault(key, timing.span_at(key))

    excluded_days: set[date] = set()
    for value in exdates:
        if isinstance(value, tuple):
            raise EventError("EXDATE cannot be a period")
        if not timing.all_day and not isinstance(value, datetime):
            excluded_days.add(value)  # a DATE EXDATE on a timed series: that local day
            continue
        instances.pop(timing.key(value), None)
    if excluded_days:
        for key in list(instances):
            if isinstance(key, datetime) and key.astimezone(timing.zone).date() in excluded_days:
                del instances[key]
    return instances, recurring


def _problem(exc: Exception) -> str:
    """An error text for ``exc``: our own messages as they are, never a raw library message."""
    if isinstance(exc, EventError | RecurrenceError):
        return str(exc)
    return "a date, time or rule value cannot be read"


def _is_future_range(component: Component) -> bool:
    """RFC 5545 §3.8.4.4: ``RECURRENCE-ID;RANGE=THISANDFUTURE`` (THISANDPRIOR is deprecated and
    must not be created, RFC 5546: read as a single-instance override)."""
    params = getattr(component.get("RECURRENCE-ID"), "params", None)
    return str(params.get("RANGE", "") if params is not None else "").strip().upper() == "THISANDFUTURE"


@dataclass(slots=True)
class _Change:
    """A readable override: its timing and details, and for RANGE=THISANDFUTURE the shift of
    every later instance (its DTSTART minus its RECURRENCE-ID)."""

    key: datetime | date
    sequence: int
    timing: _Timing
    details: _Details
    span: _Span
    shift: timedelta | None = None  # None: this instance only


def _read_override(
    override: _Override, ctx: ParseContext, master_timing: _Timing | None, uid: str, errors: list[str]
) -> _Change | None:
    key = override.key
    try:
        timing = _timing(override.component, ctx, key)
        details = _details(override.component, ctx)
        span = timing.span_at(timing.key_of_wall(timing.wall))
    except (EventError, ValueError, TypeError, OverflowError) as exc:
        # the master's instance stays (the override is left out, not the occurrence)
        errors.append(f"VEVENT {uid!r} (RECURRENCE-ID {_original_start(key)}): {_problem(exc)}")
        return None
    shift: timedelta | None = None
    if _is_future_range(override.component) and master_timing is not None:
        if isinstance(key, datetime) and not timing.all_day:
            # in wall-clock time (like recurring-ical-events): "moved from 09:00 to 10:00" stays
            # 10:00 across a daylight-saving change
            shift = timing.wall - key.astimezone(timing.zone).replace(tzinfo=None)
        elif not isinstance(key, datetime) and timing.all_day:
            shift = timing.wall.date() - key
    return _Change(key, override.sequence, timing, details, span, shift)


def _shifted(change: _Change, key: datetime | date) -> datetime | date:
    """Where a RANGE=THISANDFUTURE override moves the instance ``key`` (see _read_override)."""
    assert change.shift is not None
    if isinstance(key, datetime):
        zone = change.timing.zone
        return localize(key.astimezone(zone).replace(tzinfo=None) + change.shift, zone)
    return key + change.shift


def _series_occurrences(
    series: _Series,
    ctx: ParseContext,
    horizon: tuple[datetime, datetime],
    budget: Budget,
    errors: list[str],
) -> Iterator[Occurrence]:
    uid = series.uid
    master = _newest(series.masters) if series.masters else None
    if len(series.masters) > 1:
        errors.append(f"VEVENT {uid!r}: {len(series.masters)} masters; the newest is used")

    master_timing: _Timing | None = None
    master_details: _Details | None = None
    if master is not None:
        try:
            master_timing = _timing(master, ctx, None)
            master_details = _details(master, ctx)
        except (EventError, ValueError, TypeError, OverflowError) as exc:
            errors.append(f"VEVENT {uid!r}: {_problem(exc)}")
            master = master_timing = master_details = None

    # overrides, keyed like the master's instances; the highest SEQUENCE wins per RECURRENCE-ID
    overrides: dict[datetime | date, _Override] = {}
    for component in series.overrides:
        try:
            rid = _when(component, "RECURRENCE-ID")
            assert rid is not None
            key = (master_timing or _timing(component, ctx, rid)).key(rid)
            # an override of an all-day series given as a date-time, or the other way round
        except (EventError, ValueError, TypeError, OverflowError) as exc:
            errors.append(f"VEVENT {uid!r} (RECURRENCE-ID): {_problem(exc)}")
            continue
        known = overrides.get(key)
        if known is None or _sequence(component) > known.sequence:
            overrides[key] = _Override(component, key, _sequence(component))
    changes = [c for o in overrides.values() if (c := _read_override(o, ctx, master_timing, uid, errors))]
    # instances a RANGE=THISANDFUTURE override may move into the horizon are expanded too
    shifts = [abs(c.shift) + _length(c.span) for c in changes if c.shift is not None]
    widen = max(shifts, default=timedelta(0))

    instances: dict[datetime | date, _Span] = {}
    recurring = False
    if master is not None and master_timing is not None:
        try:
            instances, recurring = _expand_master(
                master=master,
                timing=master_timing,
                horizon=horizon,
                budget=budget,
                errors=errors,
                uid=uid,
                widen=widen,
            )
        except (EventError, RecurrenceError, ValueError, TypeError, OverflowError) as exc:
            errors.append(f"VEVENT {uid!r}: {_problem(exc)}")
            master = master_timing = master_details = None
            instances = {}

    if master is not None and master_timing is not None:
        changes = [
            c
            for c in changes
            if not _stale(c, master=master, timing=master_timing, instances=instances, budget=budget, uid=uid)
        ]
    ranges = sorted((c for c in changes if c.shift is not None), key=lambda c: _sort_key(c.key))

    by_key = {c.key: c for c in changes}
    master_cancelled = master_details is not None and master_details.status is Status.CANCELLED
    if master is not None and master_timing is not None and master_details is not None:
        for key, planned in instances.items():
            if key in by_key:
                continue
            span, timing, details = planned, master_timing, master_details
            governing = _governing_range(ranges, key)
            if governing is not None and governing.shift is not None:
                # RFC 5545 §3.8.4.4: this and all later instances are moved by the same
                # difference and take the override's duration and other properties
                timing, details = governing.timing, governing.details
                span = timing.span_at(_shifted(governing, key))
            yield _occurrence(
                ctx,
                uid,
                span,
                timing,
                details,
                original=key if recurring or overrides else None,
                cancelled=master_cancelled,  # a cancelled series cancels range-moved instances too
            )
    for change in changes:
        yield _occurrence(
            ctx,
            uid,
            change.span,
            change.timing,
            change.details,
            original=change.key,
            cancelled=master_cancelled,
        )


def _length(span: _Span) -> timedelta:
    if isinstance(span.start, datetime) and isinstance(span.end, datetime):
        return span.end - span.start
    return _sort_key(span.end) - _sort_key(span.start)


def _sort_key(key: datetime | date) -> datetime:
    return key if isinstance(key, datetime) else datetime.combine(key, time(), UTC)


def _governing_range(ranges: list[_Change], key: datetime | date) -> _Change | None:
    """The RANGE=THISANDFUTURE override with the latest RECURRENCE-ID not after ``key``."""
    found: _Change | None = None
    for change in ranges:
        if _sort_key(change.key) <= _sort_key(key):
            found = change
    return found


def _stale(
    change: _Change,
    *,
    master: Component,
    timing: _Timing,
    instances: dict[datetime | date, _Span],
    budget: Budget,
    uid: str,
) -> bool:
    """An override older than the master (lower SEQUENCE) for an instance that master no longer
    has (EXDATE, or no longer generated, e.g. an earlier UNTIL): a leftover, not shown.

    An override with the master's SEQUENCE or a higher one is kept even then (a client may add an
    instance that way, like an RDATE)."""
    if change.sequence >= _sequence(master) or change.key in instances:
        return False
    anchor = change.key if isinstance(change.key, datetime) else _sort_key(change.key)
    around = (anchor - timedelta(seconds=1), anchor + timedelta(seconds=1))
    try:
        near, _ = _expand_master(
            master=master, timing=timing, horizon=around, budget=budget, errors=[], uid=uid
        )
    except (EventError, RecurrenceError, ValueError, TypeError, OverflowError):
        return False
    return change.key not in near


def _floating_zone(calendar: Component, ctx: ParseContext) -> ParseContext:
    """Leniency: floating times are read in the calendar's ``X-WR-TIMEZONE`` (Google's and Apple's
    exports), when it names a known zone; else in the CalDAV calendar's zone."""
    if calendar.name != "VCALENDAR":
        return ctx
    name = str(calendar.get("X-WR-TIMEZONE") or "").strip()
    if not name or name == ctx.calendar_time_zone.key:
        return ctx
    try:
        zone = ZoneInfo(name)
    except (ValueError, OSError, KeyError):  # unknown (ZoneInfoNotFoundError is a KeyError) or malformed
        return ctx
    return replace(ctx, calendar_time_zone=zone)


#: what names a VEVENT without UID (the properties that place it and its title)
_IDENTITY: Final = ("DTSTART", "DTEND", "DURATION", "RECURRENCE-ID", "RRULE", "SUMMARY")


def _identity(component: Component) -> bytes:
    parts = [
        name.encode() + b"=" + (value.to_ical() if hasattr(value, "to_ical") else str(value).encode())
        for name in _IDENTITY
        if (value := component.get(name)) is not None and not isinstance(value, list)
    ]
    return b"\n".join(parts)


def _events(calendars: Iterable[Component], ctx: ParseContext, errors: list[str]) -> dict[str, _Series]:
    groups: dict[str, _Series] = {}
    for calendar in calendars:
        calendar_ctx = _floating_zone(calendar, ctx)
        # leniency: a VEVENT outside any VCALENDAR is read as if it were inside one
        components = [calendar] if calendar.name == "VEVENT" else calendar.subcomponents
        for component in components:
            if component.name != "VEVENT":
                continue
            try:
                uid = _text(component, "UID")
            except EventError as exc:
                errors.append(f"VEVENT: {exc}")
                continue
            if not uid or not uid.strip():
                # leniency: a VEVENT without UID (RFC 5545 requires one) is an event of its own,
                # named by its content so that the name stays the same while it does
                digest = hashlib.sha256(_identity(component)).hexdigest()[:24]
                uid = f"no-uid-{digest}"
            series = groups.setdefault(uid, _Series(uid, calendar_ctx))
            if component.get("RECURRENCE-ID") is not None:
                series.overrides.append(component)
            else:
                series.masters.append(component)
    return groups


def parse_resource(
    text: str, ctx: ParseContext, horizon_start: datetime, horizon_end: datetime, *, prescan: bool = True
) -> ParseResult:
    """The occurrences of the VEVENTs in ``text`` that overlap ``[horizon_start, horizon_end)``;
    ``prescan``: leave out first what cannot reach the horizon (issue 12; only a saving of work)."""
    if horizon_start.tzinfo is None or horizon_end.tzinfo is None:
        raise ValueError("the horizon must be given as aware datetimes")
    horizon = (horizon_start.astimezone(UTC), horizon_end.astimezone(UTC))
    result = ParseResult()
    reduced = relevant_text(text, *horizon) if prescan else None  # issue 12: what may reach it
    if reduced == "":
        return result
    try:
        parsed = Calendar.from_ical(text if reduced is None else reduced, multiple=True)
    except (ValueError, TypeError, KeyError, IndexError):
        result.errors.append("not an iCalendar resource: it cannot be parsed")
        return result
    calendars = [
        c for c in (parsed if isinstance(parsed, list) else [parsed]) if c.name in ("VCALENDAR", "VEVENT")
    ]
    if not calendars:
        result.errors.append("not an iCalendar resource: no VCALENDAR")
        return result
    budget = Budget()
    for series in _events(calendars, ctx, result.errors).values():
        occurrences = sorted(
            (o for o in _series_occurrences(series, series.ctx, horizon, budget, result.errors)),
            key=lambda o: (widest_instants(o), o.original_start or ""),
        )
        result.occurrences.extend(o for o in occurrences if _overlaps(o, *horizon))
    return result


__all__ = [
    "STRUCTURED_LINK_PROPERTIES",
    "TEXT_LINK_PROPERTIES",
    "EventError",
    "ParseContext",
    "ParseResult",
    "parse_resource",
]
