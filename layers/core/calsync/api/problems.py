"""RFC 9457 problem details: the one shape of every error answer of the API (rule X5)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from calsync.domain.errors import CalsyncError

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://calsync.dev/errors/"
_MAX_MSG = 200
_MAX_ERRORS = 20


class ProblemError(BaseModel):
    """One validation error: where (``["query", "explain"]``) and what."""

    model_config = ConfigDict(defer_build=True)  # built on first use (docs/adr/0022)

    loc: list[str | int]
    msg: str


class Problem(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    type: str = Field(examples=[TYPE_BASE + "invalid-input"])
    title: str
    status: int
    detail: str
    errors: list[ProblemError] | None = None

    def body(self) -> str:
        return self.model_dump_json(exclude_none=True)


def problem(
    status: int, slug: str, title: str, detail: str, errors: list[ProblemError] | None = None
) -> Problem:
    return Problem(type=TYPE_BASE + slug, title=title, status=status, detail=detail, errors=errors)


def from_error(error: CalsyncError) -> Problem:
    """A domain error, as its own status, type, title and detail (never matched on message text)."""
    return problem(error.status, error.type_slug, error.title, error.detail)


def _loc(loc: Any) -> list[str | int]:
    parts = loc if isinstance(loc, (list, tuple)) else [loc]
    return [p if isinstance(p, int) else str(p) for p in parts]


def _error(error: Mapping[str, Any]) -> ProblemError:
    if error.get("type") == "json_invalid":
        return ProblemError(loc=["body"], msg="the body is not valid JSON")
    msg = str(error.get("msg") or error.get("type") or "invalid")
    return ProblemError(loc=_loc(error.get("loc", ())), msg=msg[:_MAX_MSG])


def from_validation(errors: Iterable[Mapping[str, Any]]) -> Problem:
    """Request validation errors (query, path, body): where and what, never the input itself."""
    items = [_error(e) for e in list(errors)[:_MAX_ERRORS]]
    where = ", ".join(".".join(str(p) for p in i.loc) for i in items) or "the request"
    return problem(400, "invalid-input", "Invalid input", f"the request is not valid: {where}", items)


def route_not_found() -> Problem:
    return problem(404, "not-found", "Not found", "no such resource")


def unsupported_media_type() -> Problem:
    return problem(415, "unsupported-media-type", "Unsupported media type", "send application/json")


def malformed_body() -> Problem:
    return problem(
        400,
        "malformed-body",
        "Malformed body",
        "the body cannot be read: send JSON in UTF-8 (or a form with its boundary)",
    )


def internal() -> Problem:
    return problem(500, "internal", "Internal error", "something went wrong on our side")


# OpenAPI: the problem answers every route may give
def responses(*statuses: int, described: Mapping[int, str] | None = None) -> dict[int, OpenAPIResponse]:
    """The OpenAPI answers of these problem statuses; ``described``: a route's own descriptions."""
    descriptions = {
        400: "Invalid input",
        401: "Missing or invalid token",
        403: "Not allowed",
        404: "Not found",
        409: "Conflict",
        503: "Store unavailable, retry",
        **(described or {}),
    }
    return {
        s: {"description": descriptions[s], "content": {PROBLEM_JSON: {"model": Problem}}} for s in statuses
    }


def answers(
    *statuses: int, ok: str | None = "OK", described: Mapping[int, str] | None = None
) -> dict[int, OpenAPIResponse]:
    """OpenAPI answers of a route: 200 (the return type's schema) and the problems it may give."""
    out: dict[int, OpenAPIResponse] = {200: {"description": ok}} if ok else {}
    out.update(responses(*statuses, described=described))
    return out


def conditional(*statuses: int) -> dict[int, OpenAPIResponse]:
    """The answers of a GET with an ``ETag``: also 304 for a current ``If-None-Match``."""
    return {
        **answers(*statuses, ok="OK (the ETag header tags this answer)"),
        304: {"description": "Not Modified: the If-None-Match tag is current (no body)", "content": {}},
    }
