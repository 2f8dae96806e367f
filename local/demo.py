"""Demo data of the local stack: people, rooms and their calendars in the stack's Radicale, connected
through the API at start, so that what a newcomer sees came through the CalDAV sync.

``seed_radicale`` writes the demo accounts and their calendars (events placed relative to ``now``)
into Radicale's storage folder before Radicale starts. ``connect`` then does, over HTTP, what each
person would do in an app: set their profile, connect their CalDAV account (``POST
/v1/me/accounts/caldav``), choose their primary and conflict calendars; the owner of the room
calendars (an admin with a dedicated room account, rule R9: the owner registers them) registers the
rooms. The accounts function and the rooms API queue the sync jobs; the stack's SQS poller runs the
CaldavSyncFunction, which fills the table.

What the demo shows: ``GET /v1/me/meetings?explain=true`` for alice lists meetings and leaves out one
per rule (U2-U8), the room hq-aurora shows R4 / R6 at work, and events that ended more than 61 minutes
ago are there for the cleanup function (S9). carol's account is left for you to connect (README).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import requests

LOCATION = "hq"
PEOPLE: dict[str, tuple[str, str]] = {  # id -> (display name, time zone)
    "alice": ("Alice Adler", "Europe/Berlin"),
    "bob": ("Bob Brown", "America/New_York"),
    "carol": ("Carol Chiba", "Asia/Tokyo"),
    "dana": ("Dana Diaz (admin of hq)", "Europe/Berlin"),
    "facilities": ("HQ facilities (owns the room calendars)", "Europe/Berlin"),
}
ADMINS = {"dana": [LOCATION], "facilities": [LOCATION]}
ROOM_OWNERS = ("facilities",)  # an account, not a colleague (the web page leaves it out)
#: people whose account the demo connects at start; carol's is left for you (README: "Connect a
#: real CalDAV account")
CONNECTED = ("alice", "bob", "dana", "facilities")
CALDAV_PASSWORDS = {user: f"{user}-demo" for user in PEOPLE}  # Radicale accounts (local only)
ROOMS = {  # room id -> (name, time zone, calendar slug in the facilities account)
    "hq-aurora": ("Aurora", "Europe/Berlin", "aurora"),
    "hq-borealis": ("Borealis", "Europe/London", "borealis"),
}
MEET = "https://meet.calsync.test"


@dataclass(frozen=True)
class DemoEvent:
    uid: str
    title: str
    start: datetime | date
    end: datetime | date
    lines: tuple[str, ...] = ()  # further iCalendar properties (URL, RRULE, ORGANIZER, STATUS, CLASS)

    def ics(self, stamp: datetime) -> str:
        def when(name: str, value: datetime | date) -> str:
            if isinstance(value, datetime):
                return f"{name}:{value.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}"
            return f"{name};VALUE=DATE:{value.strftime('%Y%m%d')}"

        body = [
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:-//calsync//local demo//EN",
            "BEGIN:VEVENT",
            f"UID:{self.uid}",
            f"DTSTAMP:{stamp.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}",
            when("DTSTART", self.start),
            when("DTEND", self.end),
            f"SUMMARY:{_text(self.title)}",
            *self.lines,
            "END:VEVENT",
            "END:VCALENDAR",
            "",
        ]
        return "\r\n".join(body)


def _text(value: str) -> str:
    """An iCalendar TEXT value (RFC 5545 3.3.11): backslash, semicolon, comma and newline escaped.
    Unescaped, Radicale (vobject) keeps a SUMMARY only up to its first comma."""
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


@dataclass(frozen=True)
class DemoCalendar:
    owner: str  # the Radicale user (and calsync person) whose account holds it
    slug: str  # the collection's name: /<owner>/<slug>/
    name: str
    events: list[DemoEvent]
    use: str = ""  # "primary" | "conflict" for the owner's configuration, or a room id


@dataclass
class DemoSummary:
    people: int
    rooms: int
    calendars: int
    occurrences: int  # events written to Radicale
    ended: int  # events that ended > 61 min ago (the cleanup function deletes them once synced)
    connected: list[str] = field(default_factory=list)  # the people whose account is connected


def calendars(now: datetime) -> list[DemoCalendar]:
    """Every demo calendar with its events, relative to ``now``."""
    now = now.astimezone(UTC).replace(second=0, microsecond=0)
    berlin = ZoneInfo("Europe/Berlin")
    today = now.astimezone(berlin).date()

    def at(day: int, hh: int, mm: int = 0, zone: ZoneInfo = berlin) -> datetime:
        d = today + timedelta(days=day)
        return datetime(d.year, d.month, d.day, hh, mm, tzinfo=zone)

    def link(path: str) -> str:
        return f"URL:{MEET}/{path}"

    m, h, d = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
    ev = DemoEvent
    alice_work = [
        # listed
        ev("standup", "Standup", now - 15 * m, now + 15 * m, (link("standup"), "RRULE:FREQ=DAILY;COUNT=5")),
        ev("coffee", "Coffee chat (ended 30 min ago: still listed, U2 grace)", now - 90 * m, now - 30 * m),
        ev("design", "Design review", now + 2 * h, now + 3 * h, (link("design-review"),)),
        ev("weekly", "Weekly sync", at(1, 10), at(1, 10, 30), (link("weekly"), "RRULE:FREQ=WEEKLY;COUNT=4")),
        ev("focus", "Focus time (a link can be added, U10)", at(1, 14), at(1, 15)),
        ev("offsite-prep", "Offsite prep (one all-day day)", today + 2 * d, today + 3 * d),
        # excluded, one rule each
        ev("breakfast", "Breakfast briefing (ended 2 h ago)", now - 3 * h, now - 2 * h, (link("breakfast"),)),
        ev("conference", "Conference (48 hours)", at(1, 9), at(3, 9), (link("conf"),)),  # U3
        ev("team-offsite", "Team offsite (two all-day days)", today + d, today + 3 * d),  # U3
        ev(
            "partner",
            "Partner meeting (invited, cannot change it)",
            at(1, 11),
            at(1, 12),
            (link("partner"), "ORGANIZER:mailto:partner@example.com"),
        ),  # U4
        ev(
            "retro", "Team retro (recurring, no link)", at(2, 15), at(2, 16), ("RRULE:FREQ=WEEKLY;COUNT=4",)
        ),  # U5
        ev(
            "legacy-link",
            "Old platform call",
            at(1, 13),
            at(1, 13, 30),
            ("URL:https://classic.calsync.test/j/4242",),
        ),  # U6 (legacy host)
        ev(
            "cancelled", "Cancelled 1:1", at(1, 9), at(1, 9, 30), (link("one-on-one"), "STATUS:CANCELLED")
        ),  # U7
        ev("customer-a", "Customer call", at(1, 16), at(1, 16, 30), (link("customer"),)),  # U8
    ]
    alice_second = [ev("customer-b", "Customer call", at(1, 16), at(1, 17), (link("customer"),))]
    ny, tokyo, london = ZoneInfo("America/New_York"), ZoneInfo("Asia/Tokyo"), ZoneInfo("Europe/London")
    aurora = [
        ev("board", "Board meeting", now + h, now + 2 * h, (link("board"),)),
        ev("all-hands", "All hands", at(1, 9), at(1, 10), ("URL:https://zoom.us/j/123456",)),
        ev("hr", "HR conversation (private)", at(1, 11), at(1, 12), (link("hr"), "CLASS:PRIVATE")),  # R4
        ev("workshop", "Workshop", at(1, 14), at(1, 16)),  # R6: fourth, not shown
        ev("lunch", "Lunch & learn", at(2, 12), at(2, 13)),  # R6: fifth, not shown
        ev("early", "Early call (ended 2 h ago)", now - 3 * h, now - 2 * h),  # R2
    ]
    borealis = [
        ev(
            "hackathon",
            "Hackathon (30 h, with a link: R3 keeps it)",
            at(1, 9, zone=london),
            at(1, 9, zone=london) + 30 * h,
            (link("hackathon"),),
        ),
        ev(
            "interview",
            "Interview (confidential)",
            at(1, 15, zone=london),
            at(1, 16, zone=london),
            (link("interview"), "CLASS:CONFIDENTIAL"),
        ),  # R4: no title
    ]
    bob = [
        ev("bob-1", "Sales pipeline", at(1, 9, zone=ny), at(1, 10, zone=ny), (link("sales"),)),
        ev("bob-2", "Dentist", at(1, 15, zone=ny), at(1, 16, zone=ny)),
    ]
    carol = [  # what tests/e2e/test_local_rooms.py finds in carol's calendar once she connects it
        ev("carol-1", "Planning", now + 3 * h, now + 4 * h),
        ev("carol-2", "1:1 with carol", now + d, now + d + 30 * m),
        ev(
            "carol-3",
            "Tokyo team sync",
            at(1, 10, zone=tokyo),
            at(1, 11, zone=tokyo),
            ("URL:https://teams.microsoft.com/l/meetup-join/demo",),
        ),
    ]
    dana = [ev("dana-1", "Facilities walk-through", at(1, 8), at(1, 9))]
    return [
        DemoCalendar("alice", "calendar", "Alice (work)", alice_work, "primary"),
        DemoCalendar("alice", "second", "Alice (second calendar)", alice_second, "conflict"),
        DemoCalendar("bob", "calendar", "Bob (work)", bob, "primary"),
        DemoCalendar("carol", "calendar", "Carol Chiba", carol),
        DemoCalendar("dana", "calendar", "Dana (work)", dana, "primary"),
        *(
            DemoCalendar("facilities", slug, f"{name} room", events, room_id)
            for (room_id, (name, _tz, slug)), events in zip(ROOMS.items(), (aurora, borealis), strict=True)
        ),
    ]


def seed_radicale(base: Path, now: datetime) -> DemoSummary:
    """The demo accounts (plain htpasswd) and their calendars, written to Radicale's storage folder
    (replacing what the demo wrote before)."""
    base.mkdir(parents=True, exist_ok=True)
    (base / "users").write_text("".join(f"{u}:{p}\n" for u, p in CALDAV_PASSWORDS.items()))
    stamp = now.astimezone(UTC)
    cutoff = stamp - timedelta(minutes=61)
    cals = calendars(now)
    count = ended = 0
    for cal in cals:
        coll = base / "collections" / "collection-root" / cal.owner / cal.slug
        coll.mkdir(parents=True, exist_ok=True)
        for old in coll.glob("*.ics"):
            old.unlink()
        props = {
            "tag": "VCALENDAR",
            "D:displayname": cal.name,
            "C:supported-calendar-component-set": "VEVENT",
        }
        (coll / ".Radicale.props").write_text(json.dumps(props))
        for event in cal.events:
            (coll / f"{event.uid}.ics").write_text(event.ics(stamp), newline="")
            count += 1
            ended += isinstance(event.end, datetime) and event.end < cutoff and not _recurring(event)
    return DemoSummary(
        people=len(PEOPLE), rooms=len(ROOMS), calendars=len(cals), occurrences=count, ended=ended
    )


def _recurring(event: DemoEvent) -> bool:
    return any(line.startswith("RRULE") for line in event.lines)


class DemoError(RuntimeError):
    """The API refused a step of the demo's set-up (the message names the step and the answer)."""


def connect(
    api: str,
    caldav_url: str,
    token: Callable[[str, list[str]], str],
    summary: DemoSummary,
    now: datetime,
) -> DemoSummary:
    """Through the API, as each person would: CalDAV account, profile, calendar configuration where
    the default (C6) is not what the demo shows, and the room calendars' owner registers the rooms.
    ``token(user, admin_of)`` issues a token for location hq. Returns ``summary`` with the people
    connected; the connects and registrations queued the first syncs."""

    def call(user: str, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        headers = {"Authorization": f"Bearer {token(user, ADMINS.get(user, []))}"}
        got = requests.request(method, f"{api}{path}", json=body, headers=headers, timeout=60)
        if got.status_code != expect:
            raise DemoError(f"{method} {path} as {user}: {got.status_code} {got.text[:300]}")
        return got.json() if got.content else None

    by_owner: dict[str, list[DemoCalendar]] = {}
    for cal in calendars(now):
        by_owner.setdefault(cal.owner, []).append(cal)

    def first_sync_done(user: str, listed: list[dict[str, Any]], timeout: float = 60) -> list[dict[str, Any]]:
        """The listing once the connect's first sync (of the C6 primary) has ended. A room registered
        while its calendar's sync runs stays empty: the room is filled from the store before that
        sync stored anything, and the sync it queues skips what is unchanged (a race in R8 the demo
        steps around; see the issue 17 report)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = [c["sync"]["status"] for c in listed]
            if "syncing" not in states and any(state in ("ok", "error") for state in states):
                return listed
            time.sleep(0.2)
            listed = call(user, "GET", "/v1/me/calendars")["calendars"]
        raise DemoError(f"the first sync of {user}'s calendars did not end within {timeout:.0f} s: {listed}")

    def person(user: str) -> None:
        """The person's steps, in order."""
        account = None
        if user in CONNECTED:  # the account's first writable calendar becomes primary (C6)
            account = call(
                user,
                "POST",
                "/v1/me/accounts/caldav",
                {
                    "locationId": LOCATION,
                    "serverUrl": caldav_url,
                    "username": user,
                    "password": CALDAV_PASSWORDS[user],
                },
                expect=201,
            )
        name, tz = PEOPLE[user]
        call(user, "PATCH", "/v1/me/profile", {"timeZone": tz, "displayName": name})
        own = by_owner.get(user, [])
        if account is None or all(c.use in ("", "primary") for c in own):
            return
        listed = call(user, "GET", "/v1/me/calendars")["calendars"]
        if any(c.use in ROOMS for c in own):
            listed = first_sync_done(user, listed)
        ids = {c["name"]: c["id"] for c in listed if c["accountId"] == account["id"]}
        if missing := [c.name for c in own if c.name not in ids]:
            raise DemoError(f"GET /v1/me/calendars as {user} does not list {missing}: {listed}")
        conflicts = [ids[c.name] for c in own if c.use == "conflict"]
        if conflicts:
            primary = next(ids[c.name] for c in own if c.use == "primary")
            config = {"primaryCalendarId": primary, "conflictCalendarIds": conflicts}
            call(user, "PUT", f"/v1/locations/{LOCATION}/users/{user}/calendar-config", config)
        for cal in own:
            if cal.use in ROOMS:  # R9: the owner of the room calendar registers the room
                room_name, room_tz, _slug = ROOMS[cal.use]
                room = {
                    "name": room_name,
                    "timeZone": room_tz,
                    "accountId": account["id"],
                    "calendarId": ids[cal.name],
                }
                call(user, "PUT", f"/v1/locations/{LOCATION}/rooms/{cal.use}", room, expect=201)

    # the people side by side, as they would be (each one's steps in order)
    with ThreadPoolExecutor(max_workers=len(PEOPLE)) as pool:
        list(pool.map(person, PEOPLE))
    summary.connected = [user for user in PEOPLE if user in CONNECTED]
    return summary
