"""The local API Gateway (local/api.py): route matching, the payload 2.0 event handed to the
function, the JWT authorizer's 401, and how the function's answer becomes the HTTP response."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

from local.api import LocalApi
from local.auth import SigningKey
from local.template import HttpRoute

ISS, AUD, NOW = "https://idp.calsync.local/", "calsync-local", 1_800_000_000.0


class FakeFunctions:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.answer: Any = {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": "{}"}

    def __call__(self, function: str, event: dict[str, Any]) -> Any:
        self.calls.append((function, event))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> SigningKey:
    return SigningKey.load_or_create(tmp_path_factory.mktemp("state"))


@pytest.fixture
def fake() -> FakeFunctions:
    return FakeFunctions()


@pytest.fixture
def client(key: SigningKey, fake: FakeFunctions) -> Client:
    routes = [
        ("Api", HttpRoute("Mine", "GET", "/v1/me/meetings", True)),
        ("Api", HttpRoute("User", "GET", "/v1/users/{userId}/meetings", True)),
        ("Api", HttpRoute("Exact", "GET", "/v1/users/me/meetings", True)),
        ("Api", HttpRoute("Doc", "GET", "/v1/openapi.json", False)),
        ("Hook", HttpRoute("Hook", "POST", "/v1/webhooks/{proxy+}", False)),
    ]
    app = LocalApi(routes, fake, key, ISS, [AUD], clock=lambda: NOW, log=lambda _line: None)
    return Client(app)


def _auth(key: SigningKey, **kw: Any) -> dict[str, str]:
    token = key.issue(issuer=ISS, audience=AUD, user="alice", locations=["hq", "paris"], now=NOW, **kw)
    return {"Authorization": f"Bearer {token}"}


def test_payload_v2_event(client: Client, fake: FakeFunctions, key: SigningKey) -> None:
    client.set_cookie("a", "1")
    client.set_cookie("b", "2")
    resp = client.get(
        "/v1/users/bob/meetings?explain=true&x=1&x=2", headers={**_auth(key), "X-Custom": "One"}
    )
    assert resp.status_code == 200
    function, event = fake.calls[-1]
    assert function == "Api"
    assert event["version"] == "2.0"
    assert event["routeKey"] == event["requestContext"]["routeKey"] == "GET /v1/users/{userId}/meetings"
    assert event["rawPath"] == "/v1/users/bob/meetings"
    assert event["rawQueryString"] == "explain=true&x=1&x=2"
    assert event["queryStringParameters"] == {"explain": "true", "x": "1,2"}
    assert event["pathParameters"] == {"userId": "bob"}
    assert event["headers"]["x-custom"] == "One" and "cookie" not in event["headers"]
    assert event["cookies"] == ["a=1", "b=2"]
    http = event["requestContext"]["http"]
    assert (http["method"], http["path"], http["sourceIp"]) == ("GET", "/v1/users/bob/meetings", "127.0.0.1")
    claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
    assert claims["sub"] == "alice" and claims["locations"] == "[hq paris]"
    assert event["isBase64Encoded"] is False and "body" not in event


def test_most_specific_route_wins(client: Client, fake: FakeFunctions, key: SigningKey) -> None:
    client.get("/v1/users/me/meetings", headers=_auth(key))
    assert fake.calls[-1][1]["routeKey"] == "GET /v1/users/me/meetings"
    client.post(
        "/v1/webhooks/google/x", data=b"\x00\x01", headers={"content-type": "application/octet-stream"}
    )
    event = fake.calls[-1][1]
    assert event["pathParameters"] == {"proxy": "google/x"}
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == b"\x00\x01"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic YWxpY2U6eA=="}],
)
def test_missing_or_invalid_token_is_401_and_not_invoked(
    client: Client, fake: FakeFunctions, headers: dict[str, str]
) -> None:
    # rule X1: every client endpoint needs a valid JWT
    resp = client.get("/v1/me/meetings", headers=headers)
    assert resp.status_code == 401
    assert resp.get_json() == {"message": "Unauthorized"}
    assert fake.calls == []


def test_expired_token_is_401(client: Client, fake: FakeFunctions, key: SigningKey) -> None:
    # rule X1
    assert client.get("/v1/me/meetings", headers=_auth(key, expires_in=-1)).status_code == 401
    assert fake.calls == []


def test_auth_none_route_and_not_found(client: Client, fake: FakeFunctions) -> None:
    assert client.get("/v1/openapi.json").status_code == 200
    assert "authorizer" not in fake.calls[-1][1]["requestContext"]
    resp = client.get("/v1/nowhere")
    assert resp.status_code == 404 and resp.get_json() == {"message": "Not Found"}
    assert client.delete("/v1/openapi.json").status_code == 404


def test_function_answers(client: Client, fake: FakeFunctions) -> None:
    fake.answer = {
        "statusCode": 409,
        "headers": {"content-type": "application/problem+json"},
        "body": json.dumps({"status": 409}),
        "cookies": ["s=1"],
    }
    resp = client.get("/v1/openapi.json")
    assert resp.status_code == 409 and resp.headers["content-type"] == "application/problem+json"
    assert resp.headers.getlist("set-cookie") == ["s=1"]
    fake.answer = {"statusCode": 200, "body": base64.b64encode(b"png").decode(), "isBase64Encoded": True}
    assert client.get("/v1/openapi.json").data == b"png"
    fake.answer = {"hello": "world"}  # no statusCode: API Gateway sends it as a JSON body, 200
    resp = client.get("/v1/openapi.json")
    assert resp.status_code == 200 and resp.get_json() == {"hello": "world"}
    fake.answer = RuntimeError("boom")
    resp = client.get("/v1/openapi.json")
    assert resp.status_code == 500 and resp.get_json() == {"message": "Internal Server Error"}


def test_jwks_and_docs(client: Client, key: SigningKey) -> None:
    assert client.get("/.well-known/jwks.json").get_json() == key.jwks()
    page = client.get("/docs")
    assert page.status_code == 200 and b"/v1/openapi.json" in page.data
    assert b"SwaggerUIBundle" in page.data
    asset = client.get("/docs/assets/swagger-ui-bundle.min.js")
    assert asset.status_code == 200 and len(asset.data) > 100_000  # bundled with Powertools: no internet
    assert client.get("/docs/assets/../../etc/passwd").status_code == 404


def test_web_page_is_served_on_the_api_origin_without_cors(client: Client, fake: FakeFunctions) -> None:
    page = client.get("/app/")
    assert page.status_code == 200 and page.content_type.startswith("text/html")
    assert b'<script src="app.js"></script>' in page.data  # one local script, no CDN
    assert "connect-src 'self' ws: wss:" in page.headers["content-security-policy"]
    script = client.get("/app/app.js")
    assert script.status_code == 200 and script.content_type.startswith("text/javascript")
    assert b"aws-appsync-event-ws" in script.data and b"If-None-Match" in script.data
    assert client.get("/app").headers["location"] == "/app/"
    assert client.get("/app/index.html").data == page.data
    for missing in ("/app/../api.py", "/app/web/app.js", "/app/app.js/"):
        assert client.get(missing).status_code == 404, missing
    # the deployed HTTP API has no CorsConfiguration: the page's origin is the API's, no header added
    assert all("access-control-allow-origin" not in r.headers for r in (page, script))
    assert fake.calls == []


def test_runtime_imports_handlers_by_path_with_their_own_env(tmp_path: Path) -> None:
    from local.runtime import Runtime
    from local.template import Function, Resolver

    def fn(name: str, value: str) -> Function:
        code = tmp_path / name
        code.mkdir()
        (code / "app.py").write_text(
            "import os\n"
            "def lambda_handler(event, context):\n"
            f"    return {{'who': {name!r}, 'mode': os.environ['MODE'], 'fn': context.function_name,\n"
            "            'left': context.get_remaining_time_in_millis() > 0}\n"
        )
        return Function(name, "app.lambda_handler", code, 3, 128, {"MODE": value}, (), (), (), ())

    tpl = {"Resources": {}}
    runtime = Runtime({"A": fn("A", "a"), "B": fn("B", "b")}, Resolver(tpl), {"AWS_REGION": "eu-west-1"})
    assert runtime.conflicts == {"MODE"}  # both are app.py, with different MODE
    assert runtime.invoke("A", {}) == {"who": "A", "mode": "a", "fn": "calsync-local-A", "left": True}
    assert runtime.invoke("B", {}) == {"who": "B", "mode": "b", "fn": "calsync-local-B", "left": True}


def test_functions_with_http_routes_run_one_at_a_time(tmp_path: Path) -> None:
    # issue 17: Powertools keeps the request being resolved at class level (BaseRouter.current_event):
    # two HTTP functions resolving at once in one process read each other's body (seen at start-up,
    # when the demo's people connect side by side); queue and schedule functions keep their own lock
    from local.runtime import Runtime
    from local.template import Function, HttpRoute, Resolver

    route = HttpRoute(event_name="X", method="GET", path="/x", auth=True)
    fns = {
        lid: Function(lid, "app.lambda_handler", tmp_path, 3, 128, {}, (), routes, (), ())
        for lid, routes in (("Api", (route,)), ("Accounts", (route,)), ("Sync", ()), ("Poll", ()))
    }
    runtime = Runtime(fns, Resolver({"Resources": {}}), {"AWS_REGION": "eu-west-1"})
    assert runtime.lock_for("Api") is runtime.lock_for("Accounts")
    assert len({id(runtime.lock_for(lid)) for lid in ("Api", "Sync", "Poll")}) == 3
