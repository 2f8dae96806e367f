"""One OpenAPI document for the whole HTTP API, merged from each HTTP function's own resolver.

calsync's routes are served by several functions (each with its own least-privilege role), each with
its own Powertools resolver. ``merge`` builds the single document API.md promises from their
generated schemas; ``local/openapi.py`` writes it next to ApiFunction, which serves it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from calsync.api.problems import PROBLEM_JSON

TITLE = "calsync API"
VERSION = "1.0.0"
DESCRIPTION = (
    "calsync: people's and rooms' calendars from Google, Microsoft 365 and CalDAV, in sync. "
    "Errors are RFC 9457 problem details."
)
_UNUSED = ("HTTPValidationError", "ValidationError", "ResponseValidationError")

# What API Gateway itself answers, before any function runs (HTTP API gateway responses):
# - 401 from the JWT authorizer: {"message":"Unauthorized"} with a `www-authenticate: Bearer ...
#   error="invalid_token" error_description="..."` header (AWS, "Troubleshooting issues with HTTP API
#   JWT authorizers": https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-troubleshooting-jwt.html);
# - 429 Too Many Requests when a route's throttling (template.yaml DefaultRouteSettings) is exceeded
#   (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-throttling.html), its body a
#   {"message": ...} like the gateway's other answers.
GATEWAY_MESSAGE = {
    "type": "object",
    "title": "GatewayMessage",
    "description": "An answer of API Gateway itself (no function ran)",
    "properties": {"message": {"type": "string", "examples": ["Unauthorized"]}},
    "required": ["message"],
}
_GATEWAY_REF = {"$ref": "#/components/schemas/GatewayMessage"}
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
UNAUTHORIZED = {
    "description": (
        'Missing or invalid token. API Gateway\'s JWT authorizer answers {"message": "Unauthorized"} '
        "and says why in www-authenticate (the function answers a problem if the token names no subject)"
    ),
    "headers": {
        "www-authenticate": {
            "description": 'e.g. Bearer scope="" error="invalid_token" error_description="..."',
            "schema": {"type": "string"},
        }
    },
    "content": {"application/json": {"schema": _GATEWAY_REF}, PROBLEM_JSON: {"schema": _PROBLEM_REF}},
}
NOT_FOUND = {
    "description": "Not found (or a path parameter no id can have: no route matches the path)",
    "content": {PROBLEM_JSON: {"schema": _PROBLEM_REF}},
}
TOO_MANY_REQUESTS = {
    "description": "The route's throttling limit is exceeded (API Gateway); retry later",
    "content": {"application/json": {"schema": _GATEWAY_REF}},
}


def schema_of(resolver: Any) -> dict[str, Any]:
    """The OpenAPI document one Powertools resolver generates from its routes."""
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer  # noqa: PLC0415 - rare

    document: dict[str, Any] = resolver.get_openapi_schema(
        title=TITLE,
        version=VERSION,
        description=DESCRIPTION,
        security_schemes={"bearerAuth": HTTPBearer(bearerFormat="JWT")},
        security=[{"bearerAuth": []}],
    ).model_dump(mode="json", by_alias=True, exclude_none=True)
    return document


def merge(documents: Iterable[Mapping[str, Any]], public_routes: Iterable[str] = ()) -> dict[str, Any]:
    """Merge documents into one; ``public_routes`` ("POST /v1/webhooks/google") need no token."""
    public = {f"{method.upper()} {path}" for method, _, path in (r.partition(" ") for r in public_routes)}
    merged: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {}
    for document in documents:
        if not merged:
            merged = {k: v for k, v in document.items() if k not in ("paths", "components")}
            merged["components"] = {k: v for k, v in document.get("components", {}).items() if k != "schemas"}
        for path, operations in document.get("paths", {}).items():
            for method, operation in operations.items():
                if method in paths.get(path, {}):
                    raise ValueError(f"{method.upper()} {path} is served by two functions")
                paths.setdefault(path, {})[method] = operation
        for name, schema in document.get("components", {}).get("schemas", {}).items():
            if name in schemas and schemas[name] != schema:
                raise ValueError(f"two different schemas are both named {name!r}: rename one")
            schemas[name] = schema
    for path, operations in paths.items():
        for method, operation in operations.items():
            answers = operation.setdefault("responses", {})
            # bad input is a 400 problem, never Powertools' default 422 shape
            answers.pop("422", None)
            answers["429"] = TOO_MANY_REQUESTS
            answers["500"] = {
                "description": "Internal error",
                "content": {PROBLEM_JSON: {"schema": _PROBLEM_REF}},
            }
            if f"{method.upper()} {path}" in public:
                operation["security"] = []  # authenticated by the provider's own means (X2)
            else:
                answers["401"] = UNAUTHORIZED
            for status, answer in answers.items():
                # a 204 has no body (RFC 9110 15.3.5); "content": {} documents an answer without one
                if status == "204" or answer.get("content") == {}:
                    answer.pop("content", None)
            if "404" not in answers and any(p.get("in") == "path" for p in operation.get("parameters", [])):
                # a path parameter outside the characters an id may have matches no route: 404
                answers["404"] = NOT_FOUND
            operation["responses"] = dict(sorted(answers.items()))
    for unused in _UNUSED:
        schemas.pop(unused, None)
    merged["paths"] = dict(sorted(paths.items()))
    schemas["GatewayMessage"] = GATEWAY_MESSAGE
    merged.setdefault("components", {})["schemas"] = dict(sorted(schemas.items()))
    return merged
