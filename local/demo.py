"""Demo data of the local stack: people, rooms, calendars and events around today.

Everything is placed relative to ``now`` (the real clock at seed time), so that
``GET /v1/me/meetings?explain=true`` for alice always shows listed meetings and one excluded meeting
per rule (U2-U8), the room hq-aurora shows R4/R6 at work, and some events have ended more than
61 minutes ago so that the cleanup function (S9) visibly deletes them.

Events are written with ``Repository.store_occurrences``, as a provider sync would write them.
(CalDAV sync is a later issue: the Radicale calendars hold similar events, ready for it, but the
table is not filled from them yet.)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from calsync.domain.models import UTC, Occurrence, Provider, Status, Visibility
from calsync.store.items import Calendar, Room
from calsync.store.repository import Repository

LOCATION = "hq"
PEOPLE: dict[str, tuple[str, str]] = {  # id -> (display name, time zone)
    "alice": ("Alice Adler", "Europe/Berlin"),
    "bob": ("Bob Brown", "America/New_York"),
    "carol": ("Carol Chiba", "Asia/Tokyo"),
    "dana": ("Dana Diaz (admin of hq)", "Europe/Berlin"),
}
ADMINS = {"dana": [LOCATION]}
ROOMS = {"hq-aurora": ("Aurora", "Europe/Berlin"), "hq-borealis": ("Borealis", "Europe/London")}
CALDAV_PASSWORDS = {user: f"{user}-demo" for user in PEOPLE}  # Radicale accounts (local only)
MEET = "https://meet.calsync.test"


@dataclass(frozen=True)
class DemoSummary:
    people: int
    rooms: int
    calendars: int
    occurrences: int
    ended: int  # occurrences that ended > 61 min ago (the cleanup function deletes them)


def _calendar(
    cal_id: str, owner: str, provider: Provider, name: str, *, role: str = "owner", tz: str = "Europe/Berlin"
) -> Calendar:
    return Calendar(
        calendar_id=cal_id,
        account_id=f"acc-{owner}-{provider.value}",
        owner_user_id=owner,
        provider=provider,
        name=name,
        access_role=role,
        time_zone=tz,
    )


def _occ(
    cal: Calendar, event_id: str, title: str | None, start: datetime, end: datetime, **kw: Any
) -> Occurrence:
    return Occurrence(
        provider=cal.provider,
        account_id=cal.account_id,
        calendar_id=cal.calendar_id,
        event_id=event_id,
        title=title,
        start=start,
        end=end,
        time_zone=cal.time_zone,
        etag=f"demo-{event_id}",
        **kw,
    )


def _all_day(cal: Calendar, event_id: str, title: str, first: date, days: int, **kw: Any) -> Occurrence:
    return Occurrence(
        provider=cal.provider,
        account_id=cal.account_id,
        calendar_id=cal.calendar_id,
        event_id=event_id,
        title=title,
        start_date=first,
        end_date=first + timedelta(days=days),
        etag=f"demo-{event_id}",
        **kw,
    )


def wipe(repo: Repository) -> int:
    """Delete every item of the table (the local stack only)."""
    table = repo.table
    deleted = 0
    kwargs: dict[str, Any] = {"ProjectionExpression": "pk, sk"}
    while True:
        resp = table.scan(**kwargs)
        with table.batch_writer() as batch:
            for item in resp.get("Items", []):
                batch.delete_item(Key={"pk": item["pk"], "sk": item["sk"]})
                deleted += 1
        if "LastEvaluatedKey" not in resp:
            return deleted
        kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


def seed(repo: Repository, now: datetime) -> DemoSummary:
    """Write the demo data (idempotent: the same ids every time)."""
    now = now.astimezone(UTC).replace(second=0, microsecond=0)
    for user, (name, tz) in PEOPLE.items():
        repo.update_profile(user, time_zone=tz, display_name=name)
        # as if each had signed in once: their token named location hq (admins see members' data, X1)
        repo.set_member_locations(user, [LOCATION])

    berlin = ZoneInfo("Europe/Berlin")
    today = now.astimezone(berlin).date()

    def at(day: int, hh: int, mm: int = 0, zone: ZoneInfo = berlin) -> datetime:
        d = today + timedelta(days=day)
        return datetime(d.year, d.month, d.day, hh, mm, tzinfo=zone)

    m = timedelta(minutes=1)
    h = timedelta(hours=1)

    # ---- alice: a primary Google calendar and a conflict Outlook calendar
    work = _calendar("cal-alice-work", "alice", Provider.GOOGLE, "Alice (work)")
    outlook = _calendar("cal-alice-outlook", "alice", Provider.MICROSOFT, "Alice (Outlook)")
    alice = [
        # listed
        _occ(
            work,
            "standup",
            "Standup",
            now - 15 * m,
            now + 15 * m,
            meeting_link=f"{MEET}/standup",
            recurring=True,
            series_id="standup-series",
            original_start="standup-today",
        ),
        _occ(
            work,
            "coffee",
            "Coffee chat (ended 30 min ago: still listed, U2 grace)",
            now - 90 * m,
            now - 30 * m,
        ),
        _occ(work, "design", "Design review", now + 2 * h, now + 3 * h, meeting_link=f"{MEET}/design-review"),
        _occ(
            work,
            "weekly",
            "Weekly sync",
            at(1, 10),
            at(1, 10, 30),
            meeting_link=f"{MEET}/weekly",
            recurring=True,
            series_id="weekly-series",
            original_start="weekly-tomorrow",
        ),
        _occ(work, "focus", "Focus time (a link can be added, U10)", at(1, 14), at(1, 15)),
        _all_day(work, "offsite-prep", "Offsite prep (one all-day day)", today + timedelta(days=2), 1),
        _occ(outlook, "customer-b", "Customer call", at(1, 16), at(1, 17), meeting_link=f"{MEET}/customer"),
        # excluded, one rule each
        _occ(
            work,
            "breakfast",
            "Breakfast briefing (ended 2 h ago)",
            now - 3 * h,
            now - 2 * h,
            meeting_link=f"{MEET}/breakfast",
        ),  # U2
        _occ(
            work, "conference", "Conference (48 hours)", at(1, 9), at(3, 9), meeting_link=f"{MEET}/conf"
        ),  # U3
        _all_day(work, "team-offsite", "Team offsite (two all-day days)", today + timedelta(days=1), 2),  # U3
        _occ(
            work,
            "partner",
            "Partner meeting (invited, cannot change it)",
            at(1, 11),
            at(1, 12),
            meeting_link=f"{MEET}/partner",
            updatable=False,
            organizer_is_self=False,
            organizer="partner@example.com",
        ),  # U4
        _occ(
            work,
            "retro",
            "Team retro (recurring, no link)",
            at(2, 15),
            at(2, 16),
            recurring=True,
            series_id="retro-series",
            original_start="retro-2",
        ),  # U5
        _occ(
            work,
            "legacy-link",
            "Old platform call",
            at(1, 13),
            at(1, 13, 30),
            meeting_link="https://classic.calsync.test/j/4242",
            legacy=True,
        ),  # U6 (legacy host)
        _occ(
            work,
            "legacy-org",
            "Budget review (organizer still on the legacy platform)",
            at(2, 9),
            at(2, 10),
            meeting_link=f"{MEET}/budget",
            organizer="boss@classic.calsync.test",
            organizer_is_self=False,
            legacy=True,
        ),  # U6 (legacy organizer)
        _occ(
            work,
            "cancelled",
            "Cancelled 1:1",
            at(1, 9),
            at(1, 9, 30),
            meeting_link=f"{MEET}/one-on-one",
            status=Status.CANCELLED,
        ),  # U7
        _occ(
            work, "customer-a", "Customer call", at(1, 16), at(1, 16, 30), meeting_link=f"{MEET}/customer"
        ),  # U8
        # ended long ago: outside the window, only the cleanup function (S9) sees it
        _occ(work, "late-deploy", "Late-night deploy (ended 20 h ago)", now - 21 * h, now - 20 * h),
    ]

    # ---- rooms (registered by the admin dana); aurora: calsync may only read it (R4 removes links)
    aurora_cal = _calendar("cal-room-aurora", "dana", Provider.GOOGLE, "Aurora room", role="reader")
    borealis_cal = _calendar(
        "cal-room-borealis", "dana", Provider.MICROSOFT, "Borealis room", role="writer", tz="Europe/London"
    )
    aurora = [
        _occ(aurora_cal, "board", "Board meeting", now + h, now + 2 * h, meeting_link=f"{MEET}/board"),
        _occ(
            aurora_cal, "all-hands", "All hands", at(1, 9), at(1, 10), meeting_link="https://zoom.us/j/123456"
        ),
        _occ(
            aurora_cal,
            "hr",
            "HR conversation (private)",
            at(1, 11),
            at(1, 12),
            meeting_link=f"{MEET}/hr",
            visibility=Visibility.PRIVATE,
        ),  # R4: no title, no link (reader)
        _occ(aurora_cal, "workshop", "Workshop", at(1, 14), at(1, 16)),  # R6: fourth, not shown
        _occ(aurora_cal, "lunch", "Lunch & learn", at(2, 12), at(2, 13)),  # R6: fifth, not shown
        _occ(aurora_cal, "early", "Early call (ended 2 h ago)", now - 3 * h, now - 2 * h),  # R2
    ]
    london = ZoneInfo("Europe/London")
    borealis = [
        _occ(
            borealis_cal,
            "hackathon",
            "Hackathon (30 h, with a link: R3 keeps it)",
            at(1, 9, zone=london),
            at(1, 9, zone=london) + 30 * h,
            meeting_link=f"{MEET}/hackathon",
        ),
        _occ(
            borealis_cal,
            "interview",
            "Interview (confidential)",
            at(1, 15, zone=london),
            at(1, 16, zone=london),
            meeting_link=f"{MEET}/interview",
            visibility=Visibility.CONFIDENTIAL,
        ),  # R4: no title, link kept (writer)
    ]

    # ---- the other people
    ny, tokyo = ZoneInfo("America/New_York"), ZoneInfo("Asia/Tokyo")
    bob_cal = _calendar("cal-bob-work", "bob", Provider.MICROSOFT, "Bob (work)", tz="America/New_York")
    carol_cal = _calendar("cal-carol-work", "carol", Provider.CALDAV, "Carol (iCloud)", tz="Asia/Tokyo")
    dana_cal = _calendar("cal-dana-work", "dana", Provider.GOOGLE, "Dana (work)")
    bob = [
        _occ(
            bob_cal,
            "bob-1",
            "Sales pipeline",
            at(1, 9, zone=ny),
            at(1, 10, zone=ny),
            meeting_link=f"{MEET}/sales",
        ),
        _occ(bob_cal, "bob-2", "Dentist", at(1, 15, zone=ny), at(1, 16, zone=ny)),
    ]
    carol = [
        _occ(
            carol_cal,
            "carol-1",
            "Tokyo team sync",
            at(1, 10, zone=tokyo),
            at(1, 11, zone=tokyo),
            meeting_link="https://teams.microsoft.com/l/meetup-join/demo",
        ),
        _occ(carol_cal, "carol-2", "Release planning", at(2, 14, zone=tokyo), at(2, 15, zone=tokyo)),
    ]
    dana = [_occ(dana_cal, "dana-1", "Facilities walk-through", at(1, 8), at(1, 9))]

    plan: list[tuple[Calendar, str, str, list[Occurrence]]] = [
        (work, "USER#alice", "primary", [o for o in alice if o.calendar_id == work.calendar_id]),
        (outlook, "USER#alice", "conflict", [o for o in alice if o.calendar_id == outlook.calendar_id]),
        (bob_cal, "USER#bob", "primary", bob),
        (carol_cal, "USER#carol", "primary", carol),
        (dana_cal, "USER#dana", "primary", dana),
    ]
    count = 0
    ended = 0
    for cal, owner_pk, role, occs in plan:
        repo.put_calendar(cal)
        repo.subscribe(cal.calendar_id, owner_pk, role)  # type: ignore[arg-type]
        stored = repo.get_calendar(cal.calendar_id)
        assert stored is not None
        repo.store_occurrences(stored, occs)
        count += len(occs)
        ended += _ended(occs, now)
    for (room_id, (name, tz)), cal, occs in zip(
        ROOMS.items(), (aurora_cal, borealis_cal), (aurora, borealis), strict=True
    ):
        repo.put_calendar(cal)
        repo.put_room(
            Room(
                room_id=room_id,
                location_id=LOCATION,
                name=name,
                time_zone=tz,
                account_id=cal.account_id,
                calendar_id=cal.calendar_id,
                registered_by=cal.owner_user_id,  # R9: dana, admin of hq, registers her own calendars
            )
        )
        stored = repo.get_calendar(cal.calendar_id)
        assert stored is not None
        repo.store_occurrences(stored, occs)
        count += len(occs)
        ended += _ended(occs, now)
    return DemoSummary(
        people=len(PEOPLE), rooms=len(ROOMS), calendars=len(plan) + len(ROOMS), occurrences=count, ended=ended
    )


def _ended(occs: Iterable[Occurrence], now: datetime) -> int:
    return sum(1 for o in occs if o.end is not None and o.end < now - timedelta(minutes=61))


# ---------------------------------------------------------------------------- Radicale


def _ics(uid: str, title: str, start: datetime, end: datetime, stamp: datetime) -> str:
    fmt = "%Y%m%dT%H%M%SZ"
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calsync//local demo//EN\r\n"
        "BEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:{stamp.strftime(fmt)}\r\n"
        f"DTSTART:{start.astimezone(UTC).strftime(fmt)}\r\nDTEND:{end.astimezone(UTC).strftime(fmt)}\r\n"
        f"SUMMARY:{title}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def seed_radicale(base: Path, now: datetime) -> list[str]:
    """Demo accounts (plain htpasswd) and one calendar each with a few events around today, written
    to Radicale's storage folder. Returns the calendar URLs' paths."""
    import json

    base.mkdir(parents=True, exist_ok=True)
    (base / "users").write_text("".join(f"{u}:{p}\n" for u, p in CALDAV_PASSWORDS.items()))
    now = now.astimezone(UTC).replace(second=0, microsecond=0)
    paths = []
    for user, (name, _tz) in PEOPLE.items():
        coll = base / "collections" / "collection-root" / user / "calendar"
        coll.mkdir(parents=True, exist_ok=True)
        for old in coll.glob("*.ics"):
            old.unlink()
        (coll / ".Radicale.props").write_text(
            json.dumps(
                {
                    "tag": "VCALENDAR",
                    "D:displayname": f"{name}",
                    "C:supported-calendar-component-set": "VEVENT",
                }
            )
        )
        events = [
            (f"{user}-1", "Planning", now + timedelta(hours=3), now + timedelta(hours=4)),
            (f"{user}-2", f"1:1 with {user}", now + timedelta(days=1), now + timedelta(days=1, minutes=30)),
            (f"{user}-3", "Retro", now + timedelta(days=2), now + timedelta(days=2, hours=1)),
        ]
        for uid, title, start, end in events:
            (coll / f"{uid}.ics").write_text(_ics(uid, title, start, end, now), newline="")
        paths.append(f"/{user}/calendar/")
    return paths
