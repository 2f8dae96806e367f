"""GET /v1/me/meetings, /v1/users/{userId}/meetings, /v1/rooms/{roomId}/meetings through the API
function, on moto and on DynamoDB Local (the ``table`` fixture)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from calsync.api.service import Caps
from calsync.domain.models import Provider, Status, Visibility
from calsync.store.items import Room
from calsync.store.repository import Repository
from tests.support import apigw
from tests.support.apigw import Api, api_on, calendar, dynamodb_calls, occurrence

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)  # a Friday; Berlin is UTC+1 in November
LINK = "https://meet.calsync.test/abc"
ALICE = apigw.claims("alice", ["hq"])


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def repo(table: Any) -> Repository:
    return Repository(table)


@pytest.fixture
def api(table: Any) -> Iterator[Api]:
    with api_on(table, NOW) as api:
        yield api


def seed_alice(repo: Repository) -> None:
    """Three calendars from two accounts (Google primary + conflict, Microsoft conflict)."""
    repo.update_profile("alice", time_zone="Europe/Berlin")
    a1 = calendar(repo, "cal-a1", "acc-a", "alice", subscribers={"USER#alice": "primary"})
    a2 = calendar(repo, "cal-a2", "acc-a", "alice", subscribers={"USER#alice": "conflict"})
    b1 = calendar(
        repo, "cal-b1", "acc-b", "alice", provider=Provider.MICROSOFT, subscribers={"USER#alice": "conflict"}
    )
    repo.store_occurrences(
        a1,
        [
            # began before the window (window starts 2026-11-19T23:00Z), ended 30 min ago: listed
            occurrence(a1, "night", "Night shift", at(19, 20), at(20, 9, 30)),
            occurrence(a1, "attendee", "Not mine", at(20, 15), at(20, 16), updatable=False),
            occurrence(a1, "cancelled", "Called off", at(20, 16), at(20, 17), status=Status.CANCELLED),
            occurrence(a1, "allday", "Offsite", date(2026, 11, 21), date(2026, 11, 22)),
            occurrence(a1, "later", "Next week", at(25, 9), at(25, 10)),
            occurrence(a1, "ended", "Standup", at(20, 8), at(20, 8, 30)),
        ],
    )
    repo.store_occurrences(
        a2,
        [
            occurrence(a2, "sync", "Weekly sync", at(20, 13), at(20, 14), meeting_link=LINK, recurring=True),
            occurrence(a2, "series", "Lunch", at(21, 11), at(21, 12), recurring=True),
        ],
    )
    repo.store_occurrences(
        b1,
        [
            # the same meeting as "sync" seen through another account, ending earlier: U8
            occurrence(b1, "sync-copy", "Weekly sync", at(20, 13), at(20, 13, 30), meeting_link=LINK),
            occurrence(b1, "review", "Review", at(21, 9), at(21, 10)),
            # began three days before the window: found through its later index entries, U3
            occurrence(b1, "conference", "Conference", at(17, 8), at(21, 8)),
        ],
    )


def test_my_meetings_is_one_query_over_three_calendars_of_two_accounts(
    table: Any, repo: Repository, api: Api
) -> None:
    # rule U1 (window, in progress), U9 (order), U10 (canAddMeetingLink); ARCHITECTURE: one Query
    seed_alice(repo)
    api.get("/v1/me/meetings", claims=ALICE)  # first call remembers alice's locations

    with dynamodb_calls(table) as calls:
        got = api.get("/v1/me/meetings", claims=ALICE)

    assert got.status == 200, got.body
    assert got.content_type == "application/json"
    assert calls.count("Query") == 1
    assert calls.calls == ["GetItem", "Query"]  # the profile, then the one Query; nothing written
    body = got.json()
    assert body["timeZone"] == "Europe/Berlin"
    assert body["window"] == {"start": "2026-11-20T00:00:00+01:00", "end": "2026-11-23T00:00:00+01:00"}
    assert "excluded" not in body
    assert [m["title"] for m in body["meetings"]] == ["Night shift", "Weekly sync", "Offsite", "Review"]
    night, sync, offsite, review = body["meetings"]
    assert night["start"] == "2026-11-19T21:00:00+01:00"  # began before the window, still listed
    assert night["end"] == "2026-11-20T10:30:00+01:00"
    assert sync == {
        "id": sync["id"],
        "title": "Weekly sync",
        "start": "2026-11-20T14:00:00+01:00",
        "end": "2026-11-20T15:00:00+01:00",
        "allDay": False,
        "startDate": None,
        "endDate": None,
        "meetingLink": LINK,
        "recurring": True,
        "private": False,
        "canAddMeetingLink": False,
        "calendarId": "cal-a2",
        "accountId": "acc-a",
        "provider": "google",
    }
    assert offsite["allDay"] is True
    assert (offsite["startDate"], offsite["endDate"]) == ("2026-11-21", "2026-11-22")
    assert (offsite["start"], offsite["end"]) == ("2026-11-21T00:00:00+01:00", "2026-11-22T00:00:00+01:00")
    assert review["provider"] == "microsoft"
    assert review["meetingLink"] is None
    assert review["canAddMeetingLink"] is True


def test_explain_lists_what_was_left_out_with_rule_ids(table: Any, repo: Repository, api: Api) -> None:
    # rule U11 (explain) with U2, U3, U4, U5, U7, U8
    seed_alice(repo)
    api.get("/v1/me/meetings", claims=ALICE)

    with dynamodb_calls(table) as calls:
        got = api.get("/v1/me/meetings", query={"explain": "true"}, claims=ALICE)

    assert got.status == 200, got.body
    assert calls.count("Query") == 1
    excluded = {e["title"]: e["rules"] for e in got.json()["excluded"]}
    assert excluded == {
        "Standup": ["U2"],
        "Conference": ["U3"],
        "Not mine": ["U4"],
        "Lunch": ["U5"],
        "Called off": ["U7"],
        "Weekly sync": ["U8"],
    }
    conference = next(e for e in got.json()["excluded"] if e["title"] == "Conference")
    assert conference["start"] == "2026-11-17T09:00:00+01:00"
    assert "Next week" not in excluded  # outside the window: neither listed nor excluded (U1)


def test_explain_false_is_the_plain_answer(repo: Repository, api: Api) -> None:
    # rule U11: excluded is present only with explain=true
    seed_alice(repo)
    got = api.get("/v1/me/meetings", query={"explain": "false"}, claims=ALICE)
    assert got.status == 200
    assert "excluded" not in got.json()


def test_default_time_zone_is_utc(repo: Repository, api: Api) -> None:
    # rule U1: the person's time zone; UTC without a profile
    got = api.get("/v1/me/meetings", claims=apigw.claims("nobody"))
    assert got.status == 200
    assert got.json() == {
        "timeZone": "UTC",
        "window": {"start": "2026-11-20T00:00:00Z", "end": "2026-11-23T00:00:00Z"},
        "meetings": [],
        "truncated": False,
    }


def test_one_query_whatever_the_number_of_calendars(table: Any, repo: Repository, api: Api) -> None:
    # ARCHITECTURE: the read API does one DynamoDB Query per request (here 12 calendars, 4 accounts)
    for n in range(12):
        cal = calendar(repo, f"c{n}", f"acc{n % 4}", "erin", subscribers={"USER#erin": "conflict"})
        repo.store_occurrences(cal, [occurrence(cal, f"e{n}", f"Meeting {n:02d}", at(20, 11), at(20, 12))])
    erin = apigw.claims("erin")
    api.get("/v1/me/meetings", claims=erin)
    with dynamodb_calls(table) as calls:
        got = api.get("/v1/me/meetings", claims=erin)
    assert calls.count("Query") == 1
    assert len(got.json()["meetings"]) == 12


# ---- the answer's caps (API.md "list cap"; docs/limits.md) ---------------------------------
def test_lists_are_capped_in_u9_order_and_say_so(repo: Repository, api: Api) -> None:
    # a person's list and `excluded` keep their first items in U9 order, each with its own flag
    seed_alice(repo)
    full = api.get("/v1/me/meetings", query={"explain": "true"}, claims=ALICE).json()
    assert (full["truncated"], full["excludedTruncated"]) == (False, False)
    assert len(full["meetings"]) == 4 and len(full["excluded"]) == 6

    with api_on(repo.table, NOW, caps=Caps(meetings=3, excluded=2)) as capped_api:
        capped = capped_api.get("/v1/me/meetings", query={"explain": "true"}, claims=ALICE).json()
        plain = capped_api.get("/v1/me/meetings", claims=ALICE).json()
    assert capped["meetings"] == full["meetings"][:3]
    assert capped["excluded"] == full["excluded"][:2]
    assert (capped["truncated"], capped["excludedTruncated"]) == (True, True)
    assert plain["truncated"] is True and "excludedTruncated" not in plain

    with api_on(repo.table, NOW, caps=Caps(meetings=4)) as exact:  # as many as there are: not truncated
        assert exact.get("/v1/me/meetings", claims=ALICE).json()["truncated"] is False


def test_answer_stays_small_whatever_the_stored_titles(repo: Repository, api: Api) -> None:
    # Lambda answers at most 6 MB: titles as long as a whole DynamoDB item (400 KB) of the characters
    # that cost most in JSON (an emoji is 4 bytes stored, 12 bytes as "\ud83d\ude00") are bounded
    # when stored (S11, docs/limits.md); the list's own caps (500 / 2 MiB) are in tests/unit/
    # test_api_caps.py, with the worst case of maximal stored fields
    from calsync.domain.limits import MAX_TITLE

    repo.update_profile("alice", time_zone="Europe/Berlin")
    cal = calendar(repo, "cal-big", "acc-a", "alice", subscribers={"USER#alice": "primary"})
    huge = "\U0001f600" * 95_000  # 380,000 bytes of UTF-8
    repo.store_occurrences(
        cal, [occurrence(cal, f"big{n}", huge, at(20, 11, n), at(20, 12)) for n in range(6)]
    )
    got = api.get("/v1/me/meetings", query={"explain": "true"}, claims=ALICE)
    assert got.status == 200, got.body[:300]
    body = got.json()
    assert len(got.body.encode()) < 64 * 1024
    assert body["truncated"] is False and len(body["meetings"]) == 6
    titles = {m["title"] for m in body["meetings"]}
    assert len(titles) == 1 and len(title := titles.pop()) == MAX_TITLE and huge.startswith(title[:-1])


# ---- another person's meetings (X1) ---------------------------------------------------------------
def test_admin_sees_a_member_of_their_location(table: Any, repo: Repository, api: Api) -> None:
    # rule X1: admins of a location read its members' meetings
    seed_alice(repo)
    api.get("/v1/me/profile", claims=ALICE)  # alice's token said she is in hq: remembered
    admin = apigw.claims("carol", ["hq"], admin_of=["hq"])

    with dynamodb_calls(table) as calls:
        got = api.get("/v1/users/alice/meetings", claims=admin)

    assert got.status == 200, got.body
    assert calls.count("Query") == 1
    assert got.json()["timeZone"] == "Europe/Berlin"  # the member's zone, not the admin's
    assert [m["title"] for m in got.json()["meetings"]] == ["Night shift", "Weekly sync", "Offsite", "Review"]


@pytest.mark.parametrize(
    ("caller", "target"),
    [
        (apigw.claims("bob", ["hq"]), "alice"),  # a member, not an admin
        (apigw.claims("dave", ["lon"], admin_of=["lon"]), "alice"),  # admin of another location
        (apigw.claims("carol", ["hq"], admin_of=["hq"]), "ghost"),  # unknown person: not a leak
        (apigw.claims("carol", ["hq"], admin_of=["hq"]), "frank"),  # profile, but never signed in
    ],
    ids=["member", "admin-elsewhere", "unknown", "no-locations"],
)
def test_others_meetings_are_forbidden(
    table: Any, repo: Repository, api: Api, caller: dict[str, Any], target: str
) -> None:
    # rule X1: anything else is 403, never a leak (and nothing is read or written)
    seed_alice(repo)
    api.get("/v1/me/profile", claims=ALICE)
    repo.update_profile("frank", time_zone="UTC")
    before = apigw.snapshot(table)

    with dynamodb_calls(table) as calls:
        got = api.get(f"/v1/users/{target}/meetings", claims=caller)

    assert got.status == 403
    assert got.content_type == "application/problem+json"
    assert got.json()["type"] == "https://calsync.dev/errors/forbidden"
    assert calls.count("Query") == 0
    assert apigw.snapshot(table) == before


def test_my_own_user_id_is_my_meetings(repo: Repository, api: Api) -> None:
    # rule X1: a person reads their own data
    seed_alice(repo)
    got = api.get("/v1/users/alice/meetings", claims=ALICE)
    assert got.status == 200
    assert len(got.json()["meetings"]) == 4


# ---- rooms (R1-R7) -------------------------------------------------------------------------------
def seed_room(repo: Repository) -> None:
    cal = calendar(repo, "room-cal", "acc-admin", "hank", access_role="reader")
    repo.put_room(
        Room(
            room_id="board",
            location_id="hq",
            name="Board room",
            time_zone="Europe/London",
            account_id="acc-admin",
            calendar_id="room-cal",
        )
    )
    cal = repo.get_calendar("room-cal") or cal
    repo.store_occurrences(
        cal,
        [
            occurrence(cal, "r1", "Planning", at(20, 11), at(20, 12)),
            occurrence(
                cal, "r2", "Secret", at(20, 12), at(20, 13), meeting_link=LINK, visibility=Visibility.PRIVATE
            ),
            occurrence(cal, "r3", "Board", at(20, 14), at(20, 15), meeting_link=LINK + "2"),
            occurrence(cal, "r4", "Retro", at(20, 9), at(20, 9, 30)),
            occurrence(cal, "r5", "Offsite", at(21, 9), at(21, 17)),
        ],
    )


def test_room_panel_three_links_first_private_without_title(table: Any, repo: Repository, api: Api) -> None:
    # rules R1 (room zone), R4 (private: no title; no link for a reader), R6 (three, links first)
    seed_room(repo)
    member = apigw.claims("alice", ["hq"])

    with dynamodb_calls(table) as calls:
        got = api.get("/v1/rooms/board/meetings", query={"explain": "true"}, claims=member)

    assert got.status == 200, got.body
    assert calls.count("Query") == 1
    assert calls.count("BatchGetItem") == 1  # the room, looked for in the caller's locations (0012)
    body = got.json()
    assert body["timeZone"] == "Europe/London"
    assert body["window"] == {"start": "2026-11-20T00:00:00Z", "end": "2026-11-23T00:00:00Z"}
    meetings = body["meetings"]
    assert len(meetings) <= 3
    assert [(m["title"], m["meetingLink"]) for m in meetings] == [
        ("Board", LINK + "2"),  # the only link left: the private one lost its link (reader access)
        ("Retro", None),
        ("Planning", None),
    ]
    secret = next(e for e in body["excluded"] if e["rules"] == ["R6"] and e["title"] is None)
    assert secret["start"] == "2026-11-20T12:00:00Z"
    assert [e["title"] for e in body["excluded"] if e["rules"] == ["R6"]] == [None, "Offsite"]


def test_room_private_meeting_listed_without_title(repo: Repository, api: Api) -> None:
    # rule R4: listed, title null, private true
    cal = calendar(repo, "room-cal", "acc-admin", "hank", access_role="writer")
    repo.put_room(
        Room(
            room_id="huddle", location_id="hq", name="Huddle", account_id="acc-admin", calendar_id="room-cal"
        )
    )
    cal = repo.get_calendar("room-cal") or cal
    repo.store_occurrences(
        cal,
        [
            occurrence(
                cal,
                "p",
                "Salary talk",
                at(20, 12),
                at(20, 13),
                visibility=Visibility.CONFIDENTIAL,
                meeting_link=LINK,
            )
        ],
    )
    got = api.get("/v1/rooms/huddle/meetings", claims=ALICE)
    assert got.status == 200
    [meeting] = got.json()["meetings"]
    assert meeting["title"] is None
    assert meeting["private"] is True
    assert meeting["meetingLink"] == LINK  # writer access keeps the link (R4)
    assert "Salary" not in got.body


def test_room_of_another_location_is_not_found(table: Any, repo: Repository, api: Api) -> None:
    # rule X1: members of a location read its rooms; others get 404 (as for no room: docs/adr/0012)
    # and nothing is read
    seed_room(repo)
    before = apigw.snapshot(table)
    with dynamodb_calls(table) as calls:
        got = api.get("/v1/rooms/board/meetings", claims=apigw.claims("lena", ["lon"], admin_of=["lon"]))
    assert got.status == 404
    assert got.content_type == "application/problem+json"
    assert calls.count("Query") == 0
    assert apigw.snapshot(table) == before


def test_unknown_room_is_not_found(api: Api) -> None:
    # rule X5: a clear 4xx problem
    got = api.get("/v1/rooms/nowhere/meetings", claims=ALICE)
    assert got.status == 404
    assert got.json()["type"] == "https://calsync.dev/errors/not-found"


def test_window_follows_the_clock(repo: Repository, table: Any) -> None:
    # rule U1: the window moves with now (the clock is injected, never the wall clock)
    repo.update_profile("alice", time_zone="America/New_York")
    with api_on(table, NOW + timedelta(days=1, hours=-4)) as api:  # 2026-11-21T06:00Z = 01:00 in New York
        got = api.get("/v1/me/meetings", claims=ALICE)
    assert got.json()["window"] == {"start": "2026-11-21T00:00:00-05:00", "end": "2026-11-24T00:00:00-05:00"}


def test_identity_provider_ids_with_a_pipe_work_end_to_end(repo: Repository, api: Api) -> None:
    # rule X1: Auth0-style subjects ("auth0|123") are ordinary person ids (keys never split on "|")
    user = "auth0|5f1c"
    repo.update_profile(user, time_zone="Europe/Berlin")
    cal = calendar(repo, "cal-auth0", "acc-auth0", user, subscribers={f"USER#{user}": "primary"})
    repo.store_occurrences(cal, [occurrence(cal, "kickoff", "Kickoff", at(20, 14), at(20, 15))])
    got = api.get("/v1/me/meetings", claims=apigw.claims(user, ["hq"]))
    assert got.status == 200, got.body
    assert [m["title"] for m in got.json()["meetings"]] == ["Kickoff"]
    repo.unsubscribe("cal-auth0", f"USER#{user}")  # the copy references round-trip through the index
    assert api.get("/v1/me/meetings", claims=apigw.claims(user, ["hq"])).json()["meetings"] == []
