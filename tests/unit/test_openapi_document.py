"""The OpenAPI document tells the truth about the webhooks and about 401s (issue 13 point 7): the
webhooks take no bearer token and list what they answer; a route behind the JWT authorizer documents
API Gateway's own 401 ({"message": "Unauthorized"} + www-authenticate) and its throttling 429.
The committed document is the generated one (tests/integration/test_api_errors.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local.openapi import OUTPUT
from local.template import functions, load

WEBHOOKS = {
    ("post", "/v1/webhooks/google"): {"200", "400", "401", "503"},
    ("post", "/v1/webhooks/microsoft"): {"200", "202", "400", "403", "413", "503"},
    ("post", "/v1/webhooks/microsoft/lifecycle"): {"200", "202", "400", "403", "413", "503"},
}


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(OUTPUT.read_text())
    return data


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, p, op) for p, ops in doc["paths"].items() for m, op in ops.items()]


@pytest.mark.parametrize(("key", "statuses"), WEBHOOKS.items())
def test_webhooks_take_no_token_and_list_their_answers(
    doc: dict[str, Any], key: tuple[str, str], statuses: set[str]
) -> None:
    method, path = key
    op = doc["paths"][path][method]
    assert op["security"] == []  # no bearer token: the provider's own means (X2)
    assert statuses <= set(op["responses"])
    assert "401" not in op["responses"] or path.endswith("/google")  # no authorizer in front


def test_google_webhook_answers_have_no_body(doc: dict[str, Any]) -> None:
    for status in ("200", "400", "401", "503"):
        assert "content" not in doc["paths"]["/v1/webhooks/google"]["post"]["responses"][status]


def test_authenticated_routes_document_the_gateways_401_and_429(doc: dict[str, Any]) -> None:
    public = {r.route_key for fn in functions(load()).values() for r in fn.routes if not r.auth}
    gateway = {"$ref": "#/components/schemas/GatewayMessage"}
    assert doc["components"]["schemas"]["GatewayMessage"]["required"] == ["message"]
    checked = 0
    for method, path, op in _operations(doc):
        answers = op["responses"]
        assert answers["429"]["content"]["application/json"]["schema"] == gateway
        if f"{method.upper()} {path}" in public:
            continue
        checked += 1
        assert op.get("security") is None  # the document's bearerAuth
        assert answers["401"]["content"]["application/json"]["schema"] == gateway, (method, path)
        assert "www-authenticate" in answers["401"]["headers"], (method, path)
    assert checked >= 25
    assert doc["security"] == [{"bearerAuth": []}]


def test_no_content_answers_have_no_body_and_path_ids_may_be_unknown(doc: dict[str, Any]) -> None:
    # found by schemathesis (tests/e2e/test_local_fuzz.py): a 204 was documented with a JSON body, and
    # a path parameter no route matches (e.g. a control character in {userId}) answers 404
    for method, path, op in _operations(doc):
        if "204" in op["responses"]:
            assert "content" not in op["responses"]["204"], (method, path)
        if any(p["in"] == "path" for p in op.get("parameters", [])):
            assert "404" in op["responses"], (method, path)
