"""GET and PATCH /v1/me/profile, and the membership the API remembers from the caller's token."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from calsync.store import keys
from calsync.store.repository import Repository
from tests.support import apigw
from tests.support.apigw import Api, api_on, dynamodb_calls

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture
def repo(table: Any) -> Repository:
    return Repository(table)


@pytest.fixture
def api(table: Any) -> Iterator[Api]:
    with api_on(table, NOW) as api:
        yield api


def test_profile_defaults(api: Api) -> None:
    # API.md: GET /v1/me/profile, default time zone UTC (U1)
    got = api.get("/v1/me/profile", claims=apigw.claims("alice"))
    assert got.status == 200
    assert got.content_type == "application/json"
    assert got.json() == {
        "userId": "alice",
        "displayName": None,
        "phoneNumber": None,
        "extension": None,
        "photoUrl": None,
        "timeZone": "UTC",
    }


def test_patch_profile_changes_only_what_is_given(repo: Repository, api: Api) -> None:
    # API.md: PATCH /v1/me/profile body {timeZone?, displayName?}
    alice = apigw.claims("alice")
    got = api.patch("/v1/me/profile", body={"timeZone": "Europe/Berlin"}, claims=alice)
    assert got.status == 200, got.body
    assert got.json()["timeZone"] == "Europe/Berlin"
    got = api.patch("/v1/me/profile", body={"displayName": "Alice Ä. Example"}, claims=alice)
    assert got.json()["timeZone"] == "Europe/Berlin"
    assert got.json()["displayName"] == "Alice Ä. Example"
    stored = repo.get_profile("alice")
    assert stored is not None
    assert (stored.time_zone, stored.display_name) == ("Europe/Berlin", "Alice Ä. Example")
    # the meetings follow the new zone (U1)
    assert api.get("/v1/me/meetings", claims=alice).json()["window"]["start"] == "2026-11-20T00:00:00+01:00"


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"timeZone": "Mars/Olympus_Mons"}, ["body", "timeZone"]),
        ({"timeZone": "../../etc/passwd"}, ["body", "timeZone"]),
        ({"timeZone": ""}, ["body", "timeZone"]),
        ({"timeZone": 3}, ["body", "timeZone"]),
        ({"displayName": ""}, ["body", "displayName"]),
        ({"displayName": "x" * 101}, ["body", "displayName"]),
        ({"displayName": "Bell\u0007"}, ["body", "displayName"]),
        ({"displayName": "Two\nlines"}, ["body", "displayName"]),
        ({"displayName": "   "}, ["body", "displayName"]),
        ({"displayName": None}, ["body"]),
        ({"role": "admin"}, ["body", "role"]),
        ({"timeZone": "UTC", "locations": ["lon"]}, ["body", "locations"]),
        ([], ["body"]),
        ("not json", ["body"]),
    ],
    ids=[
        "unknown-zone",
        "path-zone",
        "empty-zone",
        "number-zone",
        "empty-name",
        "long-name",
        "control-char",
        "newline",
        "blank-name",
        "null",
        "extra-field",
        "extra-locations",
        "array",
        "not-json",
    ],
)
def test_bad_patch_is_a_problem_and_writes_nothing(
    table: Any, repo: Repository, api: Api, body: Any, where: list[str]
) -> None:
    # rule X5: bad input gets a 400 problem, never a 500, and nothing is written
    alice = apigw.claims("alice")
    api.patch("/v1/me/profile", body={"timeZone": "Europe/Berlin", "displayName": "Alice"}, claims=alice)
    before = apigw.snapshot(table)

    got = api.patch("/v1/me/profile", body=body, claims=alice)

    assert got.status == 400, got.body
    assert got.content_type == "application/problem+json"
    problem = got.json()
    assert problem["type"] == "https://calsync.dev/errors/invalid-input"
    assert problem["status"] == 400
    assert problem["title"] and problem["detail"]
    assert where in [e["loc"] for e in problem["errors"]]
    assert all(set(e) == {"loc", "msg"} for e in problem["errors"])
    assert apigw.snapshot(table) == before


def test_problem_does_not_reflect_the_input(api: Api) -> None:
    # rule X5 / X3: errors say where and what, without echoing what was sent
    secret = "hunter2-" + "s" * 40
    got = api.patch("/v1/me/profile", body={"timeZone": secret, "password": secret}, claims=apigw.claims())
    assert got.status == 400
    assert secret not in got.body


def test_locations_are_remembered_only_when_they_change(table: Any, repo: Repository, api: Api) -> None:
    # rule X1 / C2: membership comes from the token; stored for admins' checks, written only on change
    claims = apigw.claims("alice", ["hq", "lon"])
    with dynamodb_calls(table) as first:
        api.get("/v1/me/profile", claims=claims)
    assert first.count("UpdateItem") == 1
    assert repo.get_member("alice")[1] == frozenset({"hq", "lon"})

    with dynamodb_calls(table) as again:
        api.get("/v1/me/profile", claims=apigw.claims("alice", ["lon", "hq"], style="json"))
        api.get("/v1/me/meetings", claims=apigw.claims("alice", ["hq", "lon"], style="list"))
    assert again.count("UpdateItem") == 0

    with dynamodb_calls(table) as changed:
        api.get("/v1/me/meetings", claims=apigw.claims("alice", ["hq"]))
    assert changed.count("UpdateItem") == 1
    assert repo.get_member("alice")[1] == frozenset({"hq"})
    item = table.get_item(Key={"pk": keys.user_pk("alice"), "sk": keys.PROFILE})["Item"]
    assert item["locations"] == ["hq"]
