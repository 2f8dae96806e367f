"""Authentication, bad input and failures of the API function: always an RFC 9457 problem, never a
5xx for bad input, never a write (rules X1, X5)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calsync.domain.errors import StoreUnavailable
from calsync.store.items import Room
from calsync.store.repository import Repository
from tests.support import apigw
from tests.support.apigw import Api, api_on, calendar
from tests.support.template import resource

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]
PROBLEM = "application/problem+json"


@pytest.fixture
def repo(table: Any) -> Repository:
    repo = Repository(table)
    calendar(repo, "board@rooms", "acc-hank", "hank")
    repo.put_room(
        Room(
            room_id="board", location_id="hq", name="Board", account_id="acc-hank", calendar_id="board@rooms"
        )
    )
    repo.update_profile("bob", time_zone="Europe/Berlin")
    repo.set_member_locations("bob", ["hq"])
    return repo


@pytest.fixture
def api(table: Any) -> Iterator[Api]:
    with api_on(table, NOW) as api:
        yield api


def assert_problem(got: apigw.Answer, status: int) -> dict[str, Any]:
    assert got.status == status, got.body
    assert got.content_type == PROBLEM
    problem: dict[str, Any] = got.json()
    assert problem["status"] == status
    assert problem["type"].startswith("https://calsync.dev/errors/")
    assert isinstance(problem["title"], str)
    assert isinstance(problem["detail"], str)
    return problem


# ---- authentication (X1) ------------------------------------------------------------------------
ROUTES = [
    ("GET", "/v1/me/meetings", None),
    ("GET", "/v1/users/bob/meetings", None),
    ("GET", "/v1/rooms/board/meetings", None),
    ("GET", "/v1/me/profile", None),
    ("PATCH", "/v1/me/profile", {"timeZone": "UTC"}),
    (
        "PUT",
        "/v1/locations/hq/rooms/board",
        {"name": "B", "timeZone": "UTC", "accountId": "a", "calendarId": "c"},
    ),
    ("DELETE", "/v1/locations/hq/rooms/board", None),
]


@pytest.mark.parametrize(
    "claims",
    [
        None,
        {},
        {"locations": "[hq]"},
        {"sub": ""},
        {"sub": "a#b", "locations": "[hq]"},
        {"sub": 42},
        {"sub": ["alice"]},
        {"sub": "x" * 129},
    ],
    ids=["no-authorizer", "no-claims", "no-sub", "empty-sub", "hash", "number", "list", "long"],
)
@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_missing_or_unusable_claims_are_401(
    table: Any, repo: Repository, api: Api, *, claims: Any, method: str, path: str, body: Any
) -> None:
    # rule X1: every client endpoint needs a valid token; 401 and nothing written
    before = apigw.snapshot(table)
    got = api.call(method, path, body=body, claims=claims)
    assert assert_problem(got, 401)["type"] == "https://calsync.dev/errors/unauthorized"
    assert apigw.snapshot(table) == before


def test_unauthenticated_bad_input_is_still_401(api: Api) -> None:
    # rule X1: who asks comes first; an anonymous caller learns nothing about validation
    assert_problem(api.get("/v1/me/meetings", query={"explain": "maybe"}), 401)
    assert_problem(api.patch("/v1/me/profile", body={"timeZone": "Nowhere"}), 401)


@pytest.mark.parametrize(
    "locations",
    ["[hq lon]", '["hq","lon"]', ["hq", "lon"], "hq,lon", "hq, lon", " [hq  lon] "],
    ids=["apigw", "json", "list", "comma", "comma-space", "padded"],
)
def test_array_claims_in_every_form(repo: Repository, api: Api, locations: Any) -> None:
    # rule X1: API Gateway passes array claims as "[a b]"; lists and JSON arrays are accepted too
    claims = {"sub": "alice", "locations": locations, "admin_of": locations}
    assert api.get("/v1/rooms/board/meetings", claims=claims).status == 200
    assert api.get("/v1/users/bob/meetings", claims=claims).status == 200
    assert repo.get_member("alice")[1] is None  # only /v1/me/* routes remember locations
    api.get("/v1/me/profile", claims=claims)
    assert repo.get_member("alice")[1] == frozenset({"hq", "lon"})


@pytest.mark.parametrize("locations", ["[]", "", None, 7, {"hq": True}, "[h#q]", "[hq|x]"])
def test_empty_or_odd_location_claims_grant_nothing(repo: Repository, api: Api, locations: Any) -> None:
    # rule X1: an unusable claim is no membership (403; a room in no location of the caller: 404, as
    # for no room at all), never an error
    claims = {"sub": "alice", "locations": locations, "admin_of": locations}
    assert_problem(api.get("/v1/rooms/board/meetings", claims=claims), 404)
    assert_problem(api.get("/v1/users/bob/meetings", claims=claims), 403)


# ---- bad input (X5) -----------------------------------------------------------------------------
ALICE = apigw.claims("alice", ["hq"], admin_of=["hq"])


@pytest.mark.parametrize(
    ("method", "path", "query", "where"),
    [
        ("GET", "/v1/me/meetings", "explain=maybe", ["query", "explain"]),
        ("GET", "/v1/me/meetings", "explain=", ["query", "explain"]),
        ("GET", "/v1/me/meetings", "explain=true&explain=false", ["query", "explain"]),
        ("GET", "/v1/users/bob/meetings", "explain=2", ["query", "explain"]),
        ("GET", "/v1/rooms/board/meetings", "explain=%00", ["query", "explain"]),
        ("GET", "/v1/users/b%20ob/meetings", "", ["path", "userId"]),
        ("GET", "/v1/users/bob%23x/meetings", "", ["path", "userId"]),
        ("GET", "/v1/users/%2E%2E%2Fadmin/meetings", "", ["path", "userId"]),
        ("GET", "/v1/users/" + "u" * 129 + "/meetings", "", ["path", "userId"]),
        ("GET", "/v1/rooms/r%C3%BCm/meetings", "", ["path", "roomId"]),
        ("GET", "/v1/rooms/%3Cscript%3E/meetings", "", ["path", "roomId"]),
        ("DELETE", "/v1/locations/%20/rooms/board", "", ["path", "locationId"]),
    ],
)
def test_malformed_parameters_are_400_problems(
    table: Any, repo: Repository, api: Api, *, method: str, path: str, query: str, where: list[str]
) -> None:
    # rule X5: clear 4xx JSON errors, never a 500, and nothing is written
    before = apigw.snapshot(table)
    got = api.call(method, path, query=query, claims=ALICE)
    problem = assert_problem(got, 400)
    assert problem["type"] == "https://calsync.dev/errors/invalid-input"
    assert where in [e["loc"] for e in problem["errors"]]
    assert apigw.snapshot(table) == before


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/nope"),
        ("GET", "/v1/users/bob"),
        ("GET", "/v1/users/bob/meetings/extra"),
        ("POST", "/v1/me/meetings"),
        ("GET", "/v1/locations/hq/rooms/board"),
        ("GET", "/"),
    ],
)
def test_unknown_routes_are_404_problems(api: Api, method: str, path: str) -> None:
    # rule X5: a problem answer for everything
    assert assert_problem(api.call(method, path, claims=ALICE), 404)["type"].endswith("/not-found")


def test_store_unavailable_is_503_with_retry_after(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    # rule S8 / X5: a throttled store is "try again", not a crash
    def throttled(*_: Any, **__: Any) -> Any:
        raise StoreUnavailable("read meetings: the store is busy, try again")

    monkeypatch.setattr(Repository, "read_owner_events", throttled)
    got = api.get("/v1/me/meetings", claims=ALICE)
    assert assert_problem(got, 503)["type"].endswith("/store-unavailable")
    assert got.headers.get("Retry-After") == "1"


def test_unexpected_failure_is_a_500_problem_that_leaks_nothing(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # rule X3 / X5: internals never reach the caller
    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("password=hunter2 at /var/task/app.py")

    monkeypatch.setattr(Repository, "read_owner_events", broken)
    got = api.get("/v1/me/meetings", claims=ALICE)
    assert assert_problem(got, 500)["type"].endswith("/internal")
    assert "hunter2" not in got.body
    assert "app.py" not in got.body


# ---- OpenAPI and sample events ------------------------------------------------------------------
def http_api_routes() -> set[str]:
    """Every HttpApi route of every function in template.yaml."""
    from local.template import functions, load

    return {r.route_key for fn in functions(load()).values() for r in fn.routes}


def test_openapi_is_served_without_a_token_and_lists_every_route(api: Api) -> None:
    # API.md: the OpenAPI document is generated from the code and served at /v1/openapi.json; it
    # covers the whole HTTP API, whichever function serves a route
    got = api.get("/v1/openapi.json")
    assert got.status == 200
    assert got.content_type == "application/json"
    doc = got.json()
    assert doc["openapi"].startswith("3.")
    documented = {f"{m.upper()} {p}" for p, ops in doc["paths"].items() for m in ops}
    assert documented == http_api_routes() - {"GET /v1/openapi.json"}
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    meeting = doc["components"]["schemas"]["Meeting"]["properties"]
    assert {"id", "title", "start", "end", "allDay", "meetingLink", "canAddMeetingLink"} <= set(meeting)
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            assert "422" not in operation["responses"], (method, path)  # bad input is a 400 problem


def test_openapi_document_is_what_the_code_generates() -> None:
    # the committed document is regenerated from every function's resolver: `make openapi`
    from local.openapi import OUTPUT, render

    assert OUTPUT.read_text() == render(), "functions/api/openapi.json is stale: run `make openapi`"


SAMPLES = sorted((ROOT / "events").glob("api-*.json"))
EXPECTED = {
    "api-my-meetings": 200,
    "api-user-meetings": 200,
    "api-room-meetings": 200,
    "api-get-profile": 200,
    "api-patch-profile": 200,
    "api-put-room": 200,
    "api-delete-room": 204,
    "api-give-room-consent": 204,
    "api-withdraw-room-consent": 204,
    "api-openapi": 200,
}


def test_every_route_of_the_template_has_a_sample_event() -> None:
    # LOCAL.md: sample events for every function and route (sam local invoke -e), whichever function
    keys = {json.loads(p.read_text())["routeKey"] for p in SAMPLES}
    api_routes = {
        f"{e['Properties']['Method']} {e['Properties']['Path']}"
        for e in resource("ApiFunction")["Properties"]["Events"].values()
        if e["Type"] == "HttpApi"
    }
    assert keys == api_routes
    assert {p.stem for p in SAMPLES} == set(EXPECTED)
    every_sample = [json.loads(p.read_text()) for p in (ROOT / "events").glob("*.json")]
    sampled = {e.get("routeKey") for e in every_sample if isinstance(e, dict)}
    assert http_api_routes() <= sampled, sorted(http_api_routes() - sampled)


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_sample_events_are_answered(table: Any, sample: Path) -> None:
    # the sample events work as they are (the same files `sam local invoke -e` uses)
    repo = Repository(table)
    calendar(repo, "c_hq-board@resource.calendar.google.com", "acc-alice-google", "alice")
    repo.put_room(
        Room(
            room_id="hq-board",
            location_id="hq",
            name="Board room",
            account_id="acc-alice-google",
            calendar_id="c_hq-board@resource.calendar.google.com",
        )
    )
    repo.set_member_locations("bob", ["hq"])
    with api_on(table, NOW) as api:
        got = api.invoke(json.loads(sample.read_text()))
    assert got.status == EXPECTED[sample.stem], got.body


# ---- fuzz: nothing a caller sends gives a 5xx -----------------------------------------------------
_ids = st.one_of(
    st.sampled_from(["alice", "bob", "board", "hq", "lon", "ghost"]),
    st.from_regex(r"[A-Za-z0-9._:@-]{1,12}", fullmatch=True),
    st.text(min_size=1, max_size=20),
)
_routes = st.one_of(
    st.sampled_from(
        [
            ("GET", "/v1/me/meetings"),
            ("GET", "/v1/users/{a}/meetings"),
            ("GET", "/v1/rooms/{a}/meetings"),
            ("GET", "/v1/me/profile"),
            ("PATCH", "/v1/me/profile"),
            ("PUT", "/v1/locations/{a}/rooms/{b}"),
            ("DELETE", "/v1/locations/{a}/rooms/{b}"),
            ("PUT", "/v1/me/calendars/{a}/room-consent"),
            ("DELETE", "/v1/me/calendars/{a}/room-consent"),
            ("GET", "/v1/openapi.json"),
        ]
    ),
    st.tuples(
        st.sampled_from(["GET", "PATCH", "PUT", "DELETE", "POST"]), st.text(max_size=30).map("/".__add__)
    ),
)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=8,
)
_bodies = st.one_of(
    st.none(),
    st.text(max_size=40),
    _json.map(json.dumps),
    st.fixed_dictionaries(
        {},
        optional={
            "timeZone": st.one_of(
                st.sampled_from(["UTC", "Europe/Berlin", "Nowhere/X", ""]), st.text(max_size=20)
            ),
            "displayName": _json,
            "name": st.text(max_size=5),
            "accountId": _ids,
            "calendarId": _ids,
        },
    ).map(json.dumps),
)
_list_claim = st.one_of(
    st.sampled_from(["[hq]", "[hq lon]", '["hq"]', "hq,lon"]),
    st.lists(_ids, max_size=3),
    _json,
)
_valid_sub = st.sampled_from(["alice", "bob", "hank"])
_claims = st.one_of(
    st.none(),
    # mostly a usable subject, so that the routes themselves are reached
    st.fixed_dictionaries({"sub": _valid_sub}, optional={"locations": _list_claim, "admin_of": _list_claim}),
    st.fixed_dictionaries({"sub": _valid_sub, "locations": _list_claim, "admin_of": _list_claim}),
    st.fixed_dictionaries({}, optional={"sub": _json, "locations": _list_claim, "admin_of": _list_claim}),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    route=_routes,
    a=_ids,
    b=_ids,
    query=st.one_of(st.text(max_size=30), st.sampled_from(["explain=true", "explain=maybe", "explain=%ff"])),
    body=_bodies,
    claims=_claims,
)
def test_nothing_a_caller_sends_gives_a_5xx(
    repo: Repository,
    api: Api,
    *,
    route: tuple[str, str],
    a: str,
    b: str,
    query: str,
    body: str | None,
    claims: Any,
) -> None:
    # rule X5: every input is validated; bad input gets a clear 4xx, never a 500
    method, path = route
    raw_path = path
    with contextlib.suppress(KeyError, IndexError, ValueError):  # random paths may hold braces
        raw_path = path.format(a=apigw.seg(a), b=apigw.seg(b))
    got = api.call(method, raw_path, query=query, body=body, claims=claims)
    assert got.status < 500, got.body
    if got.status >= 400:
        assert got.content_type == PROBLEM
        assert got.json()["status"] == got.status
