"""Bodies nobody can read, sent to every route of template.yaml that reads a JSON body (those with a
``requestBody`` in the OpenAPI document): never a 5xx, always a problem answer, nothing written (rule
X5; issue 13 point 3).

What used to give 500: a body that is not UTF-8 (API Gateway hands it over base64-encoded), a
``multipart/form-data`` content type without its boundary, and JSON nested deeper than Python's stack.
"""

from __future__ import annotations

import base64
import importlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local.template import TEMPLATE, functions, load
from tests.support import apigw
from tests.support.apigw import snapshot

FUNCTIONS = functions(load(TEMPLATE))
_DOC = json.loads((TEMPLATE.parent / "functions" / "api" / "openapi.json").read_text())
_WITH_BODY = {
    (method.upper(), path)
    for path, operations in _DOC["paths"].items()
    for method, operation in operations.items()
    if isinstance(operation, dict) and "requestBody" in operation
}
ROUTES = [
    (fn.logical_id, f"functions.{fn.dir_name}.app", route.method, route.path)
    for fn in FUNCTIONS.values()
    for route in fn.routes
    if (route.method, route.path) in _WITH_BODY
]
CLAIMS = apigw.claims("alice", ["hq"], admin_of=["hq"])


def _path(template: str) -> str:
    out, depth = [], 0
    for ch in template:
        if ch == "{":
            depth += 1
            out.append("x1")
        elif ch == "}":
            depth -= 1
        elif depth == 0:
            out.append(ch)
    return "".join(out)


def _send(module: str, method: str, path: str, body: bytes, content_type: str) -> dict[str, Any]:
    event = apigw.event(method if method != "ANY" else "POST", _path(path), body="{}", claims=CLAIMS)
    event["body"] = base64.b64encode(body).decode()
    event["isBase64Encoded"] = True
    event["headers"]["content-type"] = content_type
    answer: dict[str, Any] = importlib.import_module(module).lambda_handler(
        event, apigw.LambdaContext(function_name="calsync-test")
    )
    return answer


@pytest.fixture
def table(moto_table: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("TABLE_NAME", moto_table.name)
    yield moto_table


UNREADABLE = [
    pytest.param(b'{"status": "\xff\xfe"}', "application/json", id="not-utf-8"),
    pytest.param(b"--x\r\n\r\n", "multipart/form-data", id="form-without-boundary"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, "application/json", id="nested-deeper-than-the-stack"),
]


@pytest.mark.parametrize(
    ("logical_id", "module", "method", "path"), ROUTES, ids=[f"{r[0]}:{r[2]} {r[3]}" for r in ROUTES]
)
@pytest.mark.parametrize(("body", "content_type"), UNREADABLE)
def test_an_unreadable_body_is_a_4xx_problem_and_changes_nothing(  # noqa: PLR0917
    table: Any, logical_id: str, module: str, method: str, path: str, body: bytes, content_type: str
) -> None:
    assert len(ROUTES) == len(_WITH_BODY) == 10  # every documented body route is served and sent
    before = snapshot(table)
    got = _send(module, method, path, body, content_type)
    assert 400 <= got["statusCode"] < 500, (logical_id, got)
    assert got["headers"]["Content-Type"] == "application/problem+json", got
    assert snapshot(table) == before


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    route=st.sampled_from(ROUTES),
    body=st.binary(max_size=300),
    content_type=st.sampled_from(
        ["application/json", "multipart/form-data", "application/x-www-form-urlencoded", "text/plain", ""]
    )
    | st.text(max_size=40),
)
def test_arbitrary_bytes_and_content_types_never_give_a_5xx(
    table: Any, route: tuple[str, str, str, str], body: bytes, content_type: str
) -> None:
    # rule X5: whatever a caller sends, a clear 4xx (or the route's answer), never a 5xx
    logical_id, module, method, path = route
    got = _send(module, method, path, body, content_type)
    assert got["statusCode"] < 500, (logical_id, content_type, body, got)
