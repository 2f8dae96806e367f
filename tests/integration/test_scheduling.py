"""Scheduling end to end (functions/scheduling) against a REAL Radicale server: availability from
the store, appointments written to the primary calendar, meeting links (C5-C8, C11, C12, U10).

A person has a CalDAV primary calendar (account A, connected in "hq"), the calendar of a second
CalDAV account as a conflict calendar (account B, connected in "lon"), and a Google calendar whose
occurrences are seeded through the repository (C5: two providers at once). CalDAV calendars are
synced by the real sync worker; the clock is frozen (``now`` passed everywhere).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urljoin
from xml.etree import ElementTree

import boto3
import pytest
import requests

from calsync.config import get_settings
from calsync.crypto import CredentialBox, seal_login
from calsync.domain.links import LinkSettings
from calsync.domain.models import UTC, Occurrence, Provider, Transparency
from calsync.store.accounts import (
    Account,
    AccountRepository,
    CalendarConfig,
    CalendarListing,
    account_id_for,
    calendar_id_for,
)
from calsync.store.items import Calendar
from calsync.store.repository import Repository
from calsync.sync.jobs import SyncJob
from calsync.wiring.scheduling import SchedulingFunctionDeps, scheduling_deps
from calsync_caldav.client import CalDAVClient
from calsync_caldav.worker import CalDAVSyncWorker
from functions.scheduling import app as scheduling_app
from tests.support import apigw
from tests.support.apigw import Answer, Api, api_on, dynamodb_calls, snapshot
from tests.support.caldav_server import RadicaleServer, ics, radicale

REGION = "eu-west-1"
NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)  # a Friday
LINKS = LinkSettings.of(["meet.calsync.test"], [], [])
MEET = "https://meet.calsync.test/{id}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RadicaleServer]:
    with radicale(tmp_path_factory.mktemp("radicale")) as srv:
        yield srv


@dataclass
class CalDAVCal:
    user: str
    password: str
    url: str  # on Radicale
    account_id: str
    calendar_id: str

    @property
    def auth(self) -> tuple[str, str]:
        return self.user, self.password


@dataclass
class World:
    table: Any
    server: RadicaleServer
    box: CredentialBox
    person: str
    primary: CalDAVCal
    conflict: CalDAVCal
    google_calendar_id: str
    worker: CalDAVSyncWorker
    kms: Any
    key_id: str

    def wired(self, **options: Any) -> AbstractContextManager[SchedulingFunctionDeps]:
        """The scheduling function on this world's table, KMS key, Radicale and frozen clock;
        ``options``: more of ``scheduling_deps``'s (a provider's fakes)."""
        deps = scheduling_deps(
            self.table,
            kms=self.kms,
            key_id=self.key_id,
            allow_local=True,
            links=LINKS,
            link_generator=lambda _id: MEET.format(id="r1"),
            clock=lambda: NOW,
            **options,
        )
        return scheduling_app.wiring.use(deps)

    def sync(self, cal: CalDAVCal, now: datetime = NOW) -> None:
        job = SyncJob(
            calendar_id=cal.calendar_id, user_id=self.person, account_id=cal.account_id, reason="connect"
        )
        result = self.worker.run(job, now)
        assert result.status in ("synced", "unchanged"), result

    def put(self, cal: CalDAVCal, name: str, text: str) -> None:
        self.server.put(cal.url, name, text, cal.auth)

    def server_events(self, cal: CalDAVCal) -> list[str]:
        """The .ics resources on the server (PROPFIND Depth 1)."""
        resp = requests.request("PROPFIND", cal.url, headers={"Depth": "1"}, auth=cal.auth, timeout=10)
        assert resp.status_code == 207
        root = ElementTree.fromstring(resp.content)
        return sorted(h.text or "" for h in root.iter("{DAV:}href") if (h.text or "").endswith(".ics"))

    def api(self) -> Api:
        return Api(scheduling_app)

    def availability(self, start: datetime, end: datetime, sub: str | None = None, **kw: Any) -> Answer:
        return self.api().get(
            f"/v1/locations/hq/users/{self.person}/availability",
            query={"start": start.isoformat(), "end": end.isoformat()},
            claims=apigw.claims(sub or self.person, ["hq", "lon"], **kw),
        )

    def book(self, body: dict[str, Any], key: str | None = None, sub: str | None = None, **kw: Any) -> Answer:
        return self.api().call(
            "POST",
            f"/v1/locations/hq/users/{self.person}/appointments",
            body=body,
            headers={"idempotency-key": key} if key else None,
            claims=apigw.claims(sub or self.person, ["hq", "lon"], **kw),
        )


def _caldav_account(
    table: Any, server: RadicaleServer, box: CredentialBox, person: str, location: str
) -> CalDAVCal:
    user, password = f"u{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    server.add_user(user, password)
    url = server.make_calendar(user, password)
    href = url.removeprefix(server.base_url)
    account_id = account_id_for(person, Provider.CALDAV, f"{user}@127.0.0.1")
    AccountRepository(table).connect(
        Account(
            account_id=account_id,
            user_id=person,
            provider=Provider.CALDAV,
            external_id=f"{user}@127.0.0.1",
            server_url=server.base_url,
            own_addresses=[f"{user}@example.com"],
            credentials=seal_login(box, user, password, {"userId": person, "accountId": account_id}),
        ),
        location,
    )
    calendar_id = calendar_id_for(account_id, href)
    AccountRepository(table).put_calendar_listing(
        CalendarListing(calendar_id=calendar_id, account_id=account_id, provider=Provider.CALDAV, href=href)
    )
    Repository(table).put_calendar(
        Calendar(
            calendar_id=calendar_id, account_id=account_id, owner_user_id=person, provider=Provider.CALDAV
        )
    )
    return CalDAVCal(user, password, url, account_id, calendar_id)


def make_world(
    table: Any, server: RadicaleServer, monkeypatch: pytest.MonkeyPatch, *, time_zone: str = "Europe/Berlin"
) -> World:
    monkeypatch.setenv("TABLE_NAME", table.name)
    get_settings.cache_clear()
    kms = boto3.client("kms", region_name=REGION)
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    box = CredentialBox(kms, key_id)
    person = f"p{uuid.uuid4().hex[:8]}"
    repo = Repository(table)
    repo.set_member_locations(person, ["hq", "lon"])
    repo.update_profile(person, time_zone=time_zone)
    primary = _caldav_account(table, server, box, person, "hq")
    conflict = _caldav_account(table, server, box, person, "lon")  # C3: one CalDAV account per location
    google_cal = f"g{uuid.uuid4().hex[:8]}"
    repo.put_calendar(
        Calendar(calendar_id=google_cal, account_id="gacc", owner_user_id=person, provider=Provider.GOOGLE)
    )
    AccountRepository(table).put_config(
        person,
        CalendarConfig(
            location_id="hq",
            primary_calendar_id=primary.calendar_id,
            conflict_calendar_ids=[conflict.calendar_id, google_cal],
        ),
    )
    repo.subscribe(primary.calendar_id, f"USER#{person}", "primary")
    repo.subscribe(conflict.calendar_id, f"USER#{person}", "conflict")
    repo.subscribe(google_cal, f"USER#{person}", "conflict")

    def client_factory(username: str, pw: str, base_url: str) -> CalDAVClient:
        return CalDAVClient(username, pw, base_url=base_url, allow_local=True)  # loopback test server

    worker = CalDAVSyncWorker(table, box, links=LINKS, client_factory=client_factory)
    return World(table, server, box, person, primary, conflict, google_cal, worker, kms, key_id)


@pytest.fixture
def world(moto_table: Any, server: RadicaleServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    world = make_world(moto_table, server, monkeypatch)
    with world.wired():
        yield world
    get_settings.cache_clear()


def at(hour: float, days: int = 0) -> datetime:
    return NOW.replace(hour=0) + timedelta(days=days, hours=hour)


def iv(answer: Answer) -> list[tuple[datetime, datetime]]:
    assert answer.status == 200, answer.body
    return [
        (datetime.fromisoformat(b["start"]), datetime.fromisoformat(b["end"])) for b in answer.json()["busy"]
    ]


def google(world: World, event_id: str, start: datetime, end: datetime, **kw: Any) -> None:
    cal = Repository(world.table).get_calendar(world.google_calendar_id)
    assert cal is not None
    occ = Occurrence(
        provider=Provider.GOOGLE, account_id="gacc", calendar_id=cal.calendar_id, event_id=event_id,
        title=event_id, start=start, end=end, **kw,
    )  # fmt: skip
    Repository(world.table).store_occurrences(cal, [occ])


# ---- availability (C11, C5) ------------------------------------------------------------------------
def test_availability_merges_primary_and_conflict_calendars_of_two_accounts_and_providers(
    world: World,
) -> None:
    # rule C11 + C5: CalDAV primary (account A), CalDAV conflict (account B), Google conflict
    world.put(world.primary, "a", ics("a", "A", at(9), at(10)))
    world.put(world.primary, "free", ics("free", "Free", at(12), at(13), extra="TRANSP:TRANSPARENT"))
    world.put(world.primary, "gone", ics("gone", "Gone", at(14), at(15), extra="STATUS:CANCELLED"))
    own = f"{world.primary.user}@example.com"
    world.put(
        world.primary,
        "declined",
        ics(
            "declined",
            "No",
            at(16),
            at(17),
            extra=f"ORGANIZER:mailto:boss@example.com\nATTENDEE;PARTSTAT=DECLINED:mailto:{own}",
        ),
    )
    world.put(world.conflict, "b", ics("b", "B", at(9, 0) + timedelta(minutes=30), at(11)))
    google(world, "g1", at(11), at(11.5))  # touches B: merged
    google(world, "g2", at(18), at(19), transparency=Transparency.TRANSPARENT)
    world.sync(world.primary)
    world.sync(world.conflict)

    with dynamodb_calls(world.table) as calls:
        busy = iv(world.availability(at(0), at(0, days=1)))
    assert busy == [(at(9), at(11.5))]
    assert calls.count("Query") == 1  # one Query of the person's partition, no provider call


def test_availability_only_counts_the_calendars_of_that_location(world: World) -> None:
    # rule C11/C6: the calendars configured in "hq" only
    other = f"x{uuid.uuid4().hex[:6]}"
    repo = Repository(world.table)
    repo.put_calendar(
        Calendar(calendar_id=other, account_id="gacc", owner_user_id=world.person, provider=Provider.GOOGLE)
    )
    AccountRepository(world.table).put_config(
        world.person, CalendarConfig(location_id="lon", conflict_calendar_ids=[other])
    )
    repo.subscribe(other, f"USER#{world.person}", "conflict")
    cal = repo.get_calendar(other)
    assert cal is not None
    repo.store_occurrences(
        cal,
        [
            Occurrence(
                provider=Provider.GOOGLE,
                account_id="gacc",
                calendar_id=other,
                event_id="l",
                title="L",
                start=at(9),
                end=at(10),
            )
        ],
    )
    assert iv(world.availability(at(0), at(0, days=1))) == []


def test_availability_validates_range_and_who_may(world: World) -> None:
    # rules C11 (range), C8 + X1 (the person or an admin of the location; nobody else)
    assert world.availability(at(0), at(0, days=63)).status == 400
    assert world.availability(at(0, 1), at(0)).status == 400
    naive = world.api().get(
        f"/v1/locations/hq/users/{world.person}/availability",
        query={"start": "2026-11-20T00:00:00", "end": "2026-11-21T00:00:00"},
        claims=apigw.claims(world.person, ["hq", "lon"]),
    )
    assert naive.status == 400
    assert world.availability(at(0), at(0, days=62)).status == 200
    assert world.availability(at(0), at(1), sub="stranger").status == 403
    assert world.availability(at(0), at(1), sub="admin", admin_of=["lon2"]).status == 403
    assert world.availability(at(0), at(1), sub="admin", admin_of=["hq"]).status == 200
    anonymous = world.api().get(
        f"/v1/locations/hq/users/{world.person}/availability",
        query={"start": at(0).isoformat(), "end": at(1).isoformat()},
    )
    assert anonymous.status == 401


# ---- appointments (C7) -------------------------------------------------------------------------------
def test_conflicting_appointment_is_refused_and_nothing_is_written(world: World) -> None:
    # rule C7: 409 when it overlaps busy time (here: the conflict calendar of account B)
    world.put(world.conflict, "b", ics("b", "B", at(9), at(10)))
    world.sync(world.conflict)
    before_server = world.server_events(world.primary)
    before_store = snapshot(world.table)
    got = world.book({"title": "Dentist", "start": at(9.5).isoformat(), "end": at(10.5).isoformat()})
    assert got.status == 409, got.body
    assert got.json()["type"].endswith("/appointment-conflict")
    assert world.server_events(world.primary) == before_server
    assert snapshot(world.table) == before_store


def test_appointment_is_written_to_the_primary_and_blocks_availability(world: World) -> None:
    # rule C7: written to the primary calendar only, stored at once, and the next sync adds nothing
    got = world.book(
        {
            "title": "Dentist",
            "start": at(14).isoformat(),
            "end": at(15).isoformat(),
            "attendees": ["bob@example.com"],
        }
    )
    assert got.status == 201, got.body
    body = got.json()
    assert body["calendarId"] == world.primary.calendar_id and body["provider"] == "caldav"
    assert len(world.server_events(world.primary)) == 1
    assert world.server_events(world.conflict) == []
    assert iv(world.availability(at(0), at(0, days=1))) == [(at(14), at(15))]  # no sync needed

    world.sync(world.primary, NOW + timedelta(minutes=5))
    events = Repository(world.table).read_owner_events(apigw_user(), world.person, at(0), at(0, days=1))
    assert [o.title for o in events.occurrences] == ["Dentist"]
    assert [o.id for o in events.occurrences] == [body["id"]]


def apigw_user() -> Any:
    from calsync.domain.models import OwnerKind

    return OwnerKind.USER


def test_allow_conflict_books_over_busy_time(world: World) -> None:
    # rule C7: allowConflict
    google(world, "g", at(9), at(10))
    got = world.book(
        {"title": "Anyway", "start": at(9).isoformat(), "end": at(10).isoformat(), "allowConflict": True}
    )
    assert got.status == 201, got.body


def test_no_primary_calendar_is_409(world: World) -> None:
    # rule C7/C6: no primary calendar in the location
    AccountRepository(world.table).put_config(
        world.person, CalendarConfig(location_id="hq", conflict_calendar_ids=[])
    )
    got = world.book({"title": "X", "start": at(9).isoformat(), "end": at(10).isoformat()})
    assert got.status == 409 and got.json()["type"].endswith("/no-primary-calendar")


def test_retried_request_with_the_same_idempotency_key_creates_one_event(world: World) -> None:
    # rule C7: Idempotency-Key (Powertools idempotency on the calsync table)
    body = {"title": "Once", "start": at(11).isoformat(), "end": at(12).isoformat()}
    first = world.book(body, key="key-0001-abcdef")
    second = world.book(body, key="key-0001-abcdef")
    assert first.status == second.status == 201, (first.body, second.body)
    assert first.json() == second.json()
    assert len(world.server_events(world.primary)) == 1
    other = world.book({**body, "title": "Other"}, key="key-0001-abcdef")
    assert other.status == 422 and other.json()["type"].endswith("/idempotency-key-reused")
    assert len(world.server_events(world.primary)) == 1


def test_appointment_validation_and_who_may(world: World) -> None:
    # rules C7 (validated input), C8 + X1
    assert world.book({"title": "", "start": at(9).isoformat(), "end": at(10).isoformat()}).status == 400
    assert world.book({"title": "T", "start": at(10).isoformat(), "end": at(9).isoformat()}).status == 400
    assert (
        world.book({"title": "T", "start": at(9).isoformat(), "end": at(10).isoformat(), "x": 1}).status
        == 400
    )
    assert (
        world.book({"title": "T", "start": at(9).isoformat(), "end": at(10).isoformat()}, sub="eve").status
        == 403
    )
    admin = world.book(
        {"title": "By admin", "start": at(9).isoformat(), "end": at(10).isoformat()},
        sub="adm",
        admin_of=["hq"],
    )
    assert admin.status == 201, admin.body


def test_provider_write_failures_answer_clearly_and_leave_the_store_unchanged(world: World) -> None:
    # rule C7: revoked credentials -> 409 reauth-required (account marked), store unchanged
    world.server.users_file.write_text(
        world.server.users_file.read_text().replace(
            f"{world.primary.user}:{world.primary.password}", f"{world.primary.user}:changed"
        )
    )
    before = [
        i
        for i in snapshot(world.table)
        if not str(i["pk"]).startswith("USER#") or "ACCOUNT#" not in str(i["sk"])
    ]
    got = world.book({"title": "X", "start": at(9).isoformat(), "end": at(10).isoformat()})
    assert got.status == 409 and got.json()["type"].endswith("/reauth-required"), got.body
    after = [
        i
        for i in snapshot(world.table)
        if not str(i["pk"]).startswith("USER#") or "ACCOUNT#" not in str(i["sk"])
    ]
    assert after == before
    account = AccountRepository(world.table).get_account(world.person, world.primary.account_id)
    assert account is not None and account.status == "reauth_required"


# ---- time zones (C11) --------------------------------------------------------------------------------
def test_availability_across_a_daylight_saving_change(world: World) -> None:
    # rule C11: Europe/Berlin leaves summer time on Sun 2026-10-25 (03:00 CEST -> 02:00 CET):
    # an all-day event on that day blocks 25 hours; a timed event across the change keeps its instants
    day = date(2026, 10, 25)
    world.put(world.primary, "allday", ics_all_day("allday", day, day + timedelta(days=1)))
    world.put(
        world.conflict,
        "night",
        ics(
            "night",
            "Night",
            datetime(2026, 10, 24, 23, 30, tzinfo=UTC),
            datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
        ),
    )
    now = datetime(2026, 10, 20, 8, 0, tzinfo=UTC)
    world.sync(world.primary, now)
    world.sync(world.conflict, now)
    busy = iv(world.availability(datetime(2026, 10, 24, tzinfo=UTC), datetime(2026, 10, 27, tzinfo=UTC)))
    assert busy == [(datetime(2026, 10, 24, 22, 0, tzinfo=UTC), datetime(2026, 10, 25, 23, 0, tzinfo=UTC))]
    assert busy[0][1] - busy[0][0] == timedelta(hours=25)


@pytest.mark.parametrize(
    ("zone", "start", "end"),
    [
        # UTC+14: the day starts at 10:00 UTC the day before
        (
            "Pacific/Kiritimati",
            datetime(2026, 11, 20, 10, tzinfo=UTC),
            datetime(2026, 11, 21, 10, tzinfo=UTC),
        ),
        # UTC-11: the day starts at 11:00 UTC
        ("Pacific/Pago_Pago", datetime(2026, 11, 21, 11, tzinfo=UTC), datetime(2026, 11, 22, 11, tzinfo=UTC)),
    ],
)
def test_all_day_events_block_the_whole_day_in_the_persons_time_zone(
    *,
    moto_table: Any,
    server: RadicaleServer,
    monkeypatch: pytest.MonkeyPatch,
    zone: str,
    start: datetime,
    end: datetime,
) -> None:
    # rule C11: an all-day event on Nov 21 in the person's own zone
    world = make_world(moto_table, server, monkeypatch, time_zone=zone)
    with world.wired():
        world.put(world.primary, "allday", ics_all_day("allday", date(2026, 11, 21), date(2026, 11, 22)))
        world.sync(world.primary)
        busy = iv(world.availability(datetime(2026, 11, 19, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC)))
        assert busy == [(start, end)]
        assert world.availability(at(0), at(1)).json()["timeZone"] == zone


def ics_all_day(uid: str, first: date, end: date) -> str:
    return "\r\n".join(
        [
            "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//calsync//tests//EN", "BEGIN:VEVENT",
            f"UID:{uid}", "DTSTAMP:20260101T000000Z", f"DTSTART;VALUE=DATE:{first:%Y%m%d}",
            f"DTEND;VALUE=DATE:{end:%Y%m%d}", "SUMMARY:Away", "END:VEVENT", "END:VCALENDAR", "",
        ]
    )  # fmt: skip


# ---- meeting links (C12, U10) ------------------------------------------------------------------------
def test_meeting_link_is_written_to_radicale_and_listed(world: World) -> None:
    # rule C12/U10: a listed, non-recurring event without a link gets one; recurring/linked -> 409
    world.put(world.primary, "plain", ics("plain", "Plain", at(13), at(14), extra="LOCATION:Room 1"))
    world.put(
        world.primary,
        "weekly",
        ics("weekly", "Weekly", at(15), at(16), rrule="FREQ=WEEKLY", extra="URL:https://meet.calsync.test/w"),
    )
    world.sync(world.primary)
    claims = apigw.claims(world.person, ["hq", "lon"])
    with api_on(world.table, NOW) as api:
        listed = {m["title"]: m for m in api.get("/v1/me/meetings", claims=claims).json()["meetings"]}
    assert listed["Plain"]["canAddMeetingLink"] is True
    got = world.api().call("POST", f"/v1/me/meetings/{listed['Plain']['id']}/meeting-link", claims=claims)
    assert got.status == 200, got.body
    assert got.json()["meetingLink"] == "https://meet.calsync.test/r1"
    assert got.json()["canAddMeetingLink"] is False

    text = requests.get(urljoin(world.primary.url, "plain.ics"), auth=world.primary.auth, timeout=10).text
    assert "https://meet.calsync.test/r1" in text and "Room 1" in text
    with api_on(world.table, NOW) as api:
        listed = {m["title"]: m for m in api.get("/v1/me/meetings", claims=claims).json()["meetings"]}
    assert listed["Plain"]["meetingLink"] == "https://meet.calsync.test/r1"
    again = world.api().call("POST", f"/v1/me/meetings/{listed['Plain']['id']}/meeting-link", claims=claims)
    assert again.status == 409 and again.json()["type"].endswith("/meeting-link-not-allowed")
    weekly = world.api().call("POST", f"/v1/me/meetings/{listed['Weekly']['id']}/meeting-link", claims=claims)
    assert weekly.status == 409
    unknown = world.api().call("POST", f"/v1/me/meetings/{'0' * 32}/meeting-link", claims=claims)
    assert unknown.status == 404
    world.sync(world.primary, NOW + timedelta(minutes=5))  # the next sync agrees: one "Plain"
    with api_on(world.table, NOW) as api:
        titles = [m["title"] for m in api.get("/v1/me/meetings", claims=claims).json()["meetings"]]
    assert titles.count("Plain") == 1


def test_meeting_link_conflict_when_the_event_changed_meanwhile(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # rule C12: If-Match: an event changed on the server between GET and PUT -> 409, store unchanged
    world.put(world.primary, "plain", ics("plain", "Plain", at(13), at(14)))
    world.sync(world.primary)
    claims = apigw.claims(world.person, ["hq", "lon"])
    with api_on(world.table, NOW) as api:
        meeting = api.get("/v1/me/meetings", claims=claims).json()["meetings"][0]

    from calsync_caldav import writer as writer_module

    original = writer_module.CalDAVWriter._get

    def get_then_change(self: Any, url: str) -> tuple[str, str]:
        got = original(self, url)
        world.put(world.primary, "plain", ics("plain", "Plain moved", at(13), at(14)))
        return got

    monkeypatch.setattr(writer_module.CalDAVWriter, "_get", get_then_change)
    before = snapshot(world.table)
    got = world.api().call("POST", f"/v1/me/meetings/{meeting['id']}/meeting-link", claims=claims)
    assert got.status == 409 and got.json()["type"].endswith("/provider-write-conflict"), got.body
    assert snapshot(world.table) == before


# ---- Google primary calendar (issue 5: GoogleWriter through the scheduling function) ------------
def test_appointment_on_a_google_primary_calendar_is_written_once_and_blocks_availability(
    world: World,
) -> None:
    # rules C7 (primary only, Idempotency-Key), C11; the fake Google server, the real client
    from calsync_google.client import ClientSecret, GoogleEndpoints
    from calsync_google.worker import seal_refresh_token, service_factory
    from tests.support.fake_google import fake_google

    with fake_google(page_size=50, deliver=lambda _a, _h: 200) as fake:
        email = f"{world.person}@example.com"
        fake.add_calendar(email, email, "Work", "owner", primary=True)
        account_id = account_id_for(world.person, Provider.GOOGLE, email)
        calendar_id = calendar_id_for(account_id, email)
        sealed = seal_refresh_token(
            world.box, fake.grant(email), {"userId": world.person, "accountId": account_id}
        )
        accounts = AccountRepository(world.table)
        accounts.connect(
            Account(
                account_id=account_id, user_id=world.person, provider=Provider.GOOGLE, external_id=email,
                email=email, status="active", own_addresses=[email], credentials=sealed,
            ),
            "hq",
        )  # fmt: skip
        accounts.put_calendar_listing(
            CalendarListing(
                calendar_id=calendar_id, account_id=account_id, provider=Provider.GOOGLE, href=email
            )
        )
        Repository(world.table).put_calendar(
            Calendar(calendar_id=calendar_id, account_id=account_id, owner_user_id=world.person,
                     provider=Provider.GOOGLE)
        )  # fmt: skip
        accounts.put_config(world.person, CalendarConfig(location_id="hq", primary_calendar_id=calendar_id))
        Repository(world.table).subscribe(calendar_id, f"USER#{world.person}", "primary")
        endpoints = GoogleEndpoints(fake.auth_uri, fake.token_uri, fake.api_endpoint)
        secret = ClientSecret(fake.client_id, fake.client_secret)
        google_fake = {Provider.GOOGLE: {"services": service_factory(lambda: secret, endpoints)}}
        body = {"title": "On Google", "start": at(16).isoformat(), "end": at(17).isoformat()}
        with world.wired(providers=google_fake):
            first = world.book(body, key="key-google-0001")
            second = world.book(body, key="key-google-0001")
        assert first.status == second.status == 201, (first.body, second.body)
        assert first.json() == second.json()
        assert first.json()["provider"] == "google" and first.json()["calendarId"] == calendar_id
        events = fake.calendars[email][email].events
        assert [e["summary"] for e in events.values()] == ["On Google"]  # one event, not two
        assert iv(world.availability(at(0), at(0, days=1))) == [(at(16), at(17))]  # no sync needed


# ---- Microsoft primary calendar (issue 6: MicrosoftWriter through the scheduling function) -------
@pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended")
def test_appointment_on_a_microsoft_primary_is_written_once_and_merges_with_other_providers(
    world: World,
) -> None:
    # rules C7 (primary only, Idempotency-Key), C11 + C5 (a Microsoft primary with a CalDAV and a
    # Google conflict calendar at once); the fake Graph, real msal, the cache sealed with KMS
    from calsync_microsoft.auth import MicrosoftAppConfig, MicrosoftIdentity, TokenCacheBox
    from calsync_microsoft.settings import MicrosoftSettings
    from tests.support.fake_graph import LoopbackHttp, fake_graph

    with fake_graph(page_size=50) as fake, ExitStack() as stack:
        upn = f"{world.person}@contoso.test"
        fake.add_mailbox(upn, {"cal-main": ("Calendar", True)})
        identity = MicrosoftIdentity(
            MicrosoftAppConfig("calsync-client-id", "ms-secret", fake.authority, LoopbackHttp(fake.port))
        )
        flow = identity.start("https://app.calsync.test/oauth/microsoft")
        cache, _ = identity.finish(flow, fake.sign_in(flow["auth_uri"], upn))
        account_id = account_id_for(world.person, Provider.MICROSOFT, upn)
        calendar_id = calendar_id_for(account_id, "cal-main")
        context = {"userId": world.person, "accountId": account_id}
        accounts = AccountRepository(world.table)
        accounts.connect(
            Account(
                account_id=account_id, user_id=world.person, provider=Provider.MICROSOFT, external_id=upn,
                email=upn, status="active", own_addresses=[upn],
                credentials=TokenCacheBox(world.box, context).seal(cache),
            ),
            "hq",
        )  # fmt: skip
        accounts.put_calendar_listing(
            CalendarListing(
                calendar_id=calendar_id, account_id=account_id, provider=Provider.MICROSOFT, href="cal-main"
            )
        )
        Repository(world.table).put_calendar(
            Calendar(calendar_id=calendar_id, account_id=account_id, owner_user_id=world.person,
                     provider=Provider.MICROSOFT)
        )  # fmt: skip
        accounts.put_config(
            world.person,
            CalendarConfig(
                location_id="hq",
                primary_calendar_id=calendar_id,
                conflict_calendar_ids=[world.conflict.calendar_id, world.google_calendar_id],
            ),
        )
        Repository(world.table).subscribe(calendar_id, f"USER#{world.person}", "primary")
        Repository(world.table).unsubscribe(world.primary.calendar_id, f"USER#{world.person}")
        microsoft = {
            "http_client": LoopbackHttp(fake.port),
            "client_secret": "ms-secret",
            "settings": MicrosoftSettings(
                client_id="calsync-client-id", authority=fake.authority, graph_endpoint=fake.graph_endpoint
            ),
        }
        stack.enter_context(world.wired(providers={Provider.MICROSOFT: microsoft}))
        world.put(world.conflict, "b", ics("b", "B", at(9), at(10)))  # CalDAV conflict (account B)
        world.sync(world.conflict)
        google(world, "g1", at(10), at(10.5))  # Google conflict, touching B: merged

        body = {"title": "On Outlook", "start": at(16).isoformat(), "end": at(17).isoformat()}
        first = world.book(body, key="key-microsoft-0001")
        second = world.book(body, key="key-microsoft-0001")
        assert first.status == second.status == 201, (first.body, second.body)
        assert first.json() == second.json()
        assert first.json()["provider"] == "microsoft" and first.json()["calendarId"] == calendar_id
        events = fake.mailboxes[upn].events["cal-main"]
        assert [e["subject"] for e in events.values()] == ["On Outlook"]  # one event, not two
        # C11 + C5: the Outlook appointment (stored at once, no sync) and both other providers
        assert iv(world.availability(at(0), at(0, days=1))) == [(at(9), at(10.5)), (at(16), at(17))]
        # a conflicting request is refused without a Graph write (C7)
        calls = fake.calls
        clash = world.book({"title": "Clash", "start": at(9.5).isoformat(), "end": at(10).isoformat()})
        assert clash.status == 409, clash.body
        assert fake.calls == calls and len(events) == 1
