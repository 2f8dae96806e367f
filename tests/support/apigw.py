"""API Gateway HTTP API (payload format 2.0) events, as the JWT authorizer hands them to a function.

Claims are passed the way API Gateway passes them: every value a string, arrays as ``"[a b]"``
(``claims_style="apigw"``); ``"list"`` keeps real lists (local stack) and ``"json"`` JSON strings.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from types import ModuleType
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, urlencode

from calsync.api.service import CAPS, Caps
from calsync.domain.models import Occurrence, Provider
from calsync.store.items import AccessRole, Calendar, SubscriberRole
from calsync.store.repository import Repository
from calsync.wiring.api import api_deps

ClaimsStyle = Literal["apigw", "list", "json"]
_TIME = "20/Nov/2026:08:00:00 +0000"
_EPOCH = 1795161600000


def claims(
    sub: str = "alice",
    locations: list[str] | None = None,
    admin_of: list[str] | None = None,
    style: ClaimsStyle = "apigw",
    **extra: Any,
) -> dict[str, Any]:
    """The JWT claims of a person (``locations`` defaults to ``["hq"]``)."""

    def array(values: list[str]) -> Any:
        if style == "list":
            return list(values)
        if style == "json":
            return json.dumps(values)
        return "[" + " ".join(values) + "]"

    out: dict[str, Any] = {
        "sub": sub,
        "iss": "https://idp.calsync.test/",
        "aud": "calsync",
        "iat": "1795161000",
        "exp": "1795164600",
        "locations": array(["hq"] if locations is None else locations),
        "admin_of": array(admin_of or []),
    }
    out.update(extra)
    return out


def event(
    method: str,
    path: str,
    *,
    route: str | None = None,
    path_parameters: dict[str, str] | None = None,
    query: dict[str, str] | str | None = None,
    body: Any = None,
    claims: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A payload 2.0 event. ``claims=None`` leaves out the authorizer (an unauthenticated call);
    ``body`` is JSON-encoded unless it is already a string."""
    if isinstance(query, dict):
        raw_query = urlencode(query)
        query_params: dict[str, str] | None = dict(query) or None
    elif isinstance(query, str):
        raw_query = query
        query_params = _parse_query(query)
    else:
        raw_query, query_params = "", None
    hdrs = {
        "accept": "application/json",
        "host": "api.calsync.test",
        "user-agent": "calsync-tests",
        "x-forwarded-proto": "https",
    }
    if claims is not None:
        hdrs["authorization"] = "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2lnbmF0dXJl"  # already verified by API GW
    raw_body: str | None = None
    if body is not None:
        raw_body = body if isinstance(body, str) else json.dumps(body)
        hdrs["content-type"] = "application/json"
    hdrs.update(headers or {})
    route_key = f"{method} {route or path}"
    request_context: dict[str, Any] = {
        "accountId": "123456789012",
        "apiId": "api1234567",
        "domainName": "api.calsync.test",
        "domainPrefix": "api",
        "http": {
            "method": method,
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": "192.0.2.10",
            "userAgent": "calsync-tests",
        },
        "requestId": "req-0001",
        "routeKey": route_key,
        "stage": "$default",
        "time": _TIME,
        "timeEpoch": _EPOCH,
    }
    if claims is not None:
        request_context["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    out: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": hdrs,
        "requestContext": request_context,
        "isBase64Encoded": False,
    }
    if query_params:
        out["queryStringParameters"] = query_params
    if path_parameters:
        out["pathParameters"] = path_parameters
    if raw_body is not None:
        out["body"] = raw_body
    return out


def _parse_query(raw: str) -> dict[str, str] | None:
    """Like API Gateway: repeated keys are joined with commas; values are URL-decoded."""
    merged: dict[str, list[str]] = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        merged.setdefault(key, []).append(value)
    return {k: ",".join(v) for k, v in merged.items()} or None


def seg(value: str) -> str:
    """One path segment, percent-encoded as a client would send it."""
    return quote(value, safe="")


@dataclass
class LambdaContext:
    """The bits of the Lambda context Powertools' Logger reads."""

    function_name: str = "calsync-api"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:calsync-api"
    memory_limit_in_mb: int = 512
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    log_group_name: str = "/aws/lambda/calsync-api"
    log_stream_name: str = "2026/11/20/[$LATEST]0"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: str

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", self.headers.get("content-type", ""))

    def json(self) -> Any:
        return json.loads(self.body)


def answer(result: dict[str, Any]) -> Answer:
    """A payload 2.0 answer of the function, decoded."""
    return Answer(int(result["statusCode"]), dict(result.get("headers") or {}), result.get("body") or "")


# ---- calling the API function in tests -------------------------------------------------------------
def app_module() -> ModuleType:
    """``functions/api/app.py`` (imported once, like Lambda does; tests hand it their deps)."""
    return importlib.import_module("functions.api.app")


class Api:
    """Calls ``app.lambda_handler`` with payload 2.0 events against an injected table."""

    def __init__(self, module: ModuleType) -> None:
        self.module = module
        self.context = LambdaContext()

    def call(self, method: str, path: str, **kwargs: Any) -> Answer:
        return answer(self.module.lambda_handler(event(method, path, **kwargs), self.context))

    def invoke(self, raw_event: dict[str, Any]) -> Answer:
        return answer(self.module.lambda_handler(raw_event, self.context))

    def get(self, path: str, **kwargs: Any) -> Answer:
        return self.call("GET", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Answer:
        return self.call("PATCH", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Answer:
        return self.call("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Answer:
        return self.call("DELETE", path, **kwargs)


@contextmanager
def api_on(table: Any, now: datetime, sync_queues: Any = None, caps: Caps = CAPS) -> Iterator[Api]:
    """The API function using ``table`` and a clock frozen at ``now``; restored afterwards.
    ``sync_queues``: {provider: enqueue} receiving the sync jobs of room calendars (R8); ``caps``:
    the lists' caps."""
    module = app_module()
    with module.wiring.use(api_deps(table, queues=sync_queues, clock=lambda: now, caps=caps)):
        yield Api(module)


class CallCounter:
    """Counts the DynamoDB operations made through one table's client (botocore event hooks)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, event_name: str, **_: Any) -> None:
        self.calls.append(event_name.rsplit(".", 1)[-1])  # before-call.dynamodb.Query -> Query

    def count(self, operation: str) -> int:
        return self.calls.count(operation)


@contextmanager
def dynamodb_calls(table: Any) -> Iterator[CallCounter]:
    counter = CallCounter()
    events = table.meta.client.meta.events
    events.register("before-call.dynamodb", counter, unique_id="calsync-test-counter")
    try:
        yield counter
    finally:
        events.unregister("before-call.dynamodb", counter, unique_id="calsync-test-counter")


def snapshot(table: Any) -> list[dict[str, Any]]:
    """Every item of the table, sorted (to prove that nothing was written)."""
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"ConsistentRead": True}
    while True:
        resp = table.scan(**kwargs)
        items.extend(resp.get("Items", []))
        if "LastEvaluatedKey" not in resp:
            break
        kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
    return sorted(items, key=lambda i: (str(i["pk"]), str(i["sk"])))


# ---- seeding the store through the repository ------------------------------------------------------
def occurrence(
    calendar: Calendar,
    event_id: str,
    title: str | None,
    start: datetime | date,
    end: datetime | date,
    **fields: Any,
) -> Occurrence:
    """An occurrence on ``calendar``: instants for timed events, dates (end exclusive) for all-day."""
    common: dict[str, Any] = {
        "provider": calendar.provider,
        "account_id": calendar.account_id,
        "calendar_id": calendar.calendar_id,
        "event_id": event_id,
        "title": title,
    }
    if isinstance(start, datetime) and isinstance(end, datetime):
        return Occurrence(start=start, end=end, **common, **fields)
    assert not isinstance(start, datetime) and not isinstance(end, datetime)
    return Occurrence(start_date=start, end_date=end, **common, **fields)


def calendar(
    repo: Repository,
    calendar_id: str,
    account_id: str,
    owner: str,
    *,
    provider: Provider = Provider.GOOGLE,
    access_role: AccessRole = "owner",
    subscribers: dict[str, SubscriberRole] | None = None,
) -> Calendar:
    """Store a calendar and subscribe the given partitions (``USER#…`` / ``ROOM#…``) to it."""
    cal = Calendar(
        calendar_id=calendar_id,
        account_id=account_id,
        owner_user_id=owner,
        provider=provider,
        access_role=access_role,
    )
    repo.put_calendar(cal)
    for pk, role in (subscribers or {}).items():
        repo.subscribe(calendar_id, pk, role)
    stored = repo.get_calendar(calendar_id)
    assert stored is not None
    return stored
