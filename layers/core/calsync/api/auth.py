"""Who is calling (rule X1): the verified JWT claims API Gateway's JWT authorizer hands over.

API Gateway HTTP API (payload 2.0) passes every claim as a string: an array claim such as
``locations: ["hq", "lon"]`` arrives as ``"[hq lon]"``. A real list (local stack, tests), a JSON
array string, the bracketed space-separated form and a comma-separated string are all accepted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from calsync.domain.errors import Unauthorized

# Ids of people, locations, rooms (path parameters and claims). No "#" (the key separator), no
# spaces, no control characters. "|" is allowed: identity providers use it (Auth0's "auth0|123").
ID_PATTERN = r"^[A-Za-z0-9._:@|-]{1,128}$"
_ID = re.compile(ID_PATTERN)
_SEPARATORS = re.compile(r"[\s,]+")
_MAX_CLAIM_ITEMS = 200


def is_id(value: object) -> bool:
    return isinstance(value, str) and _ID.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: their id, the locations they belong to and the locations they administer."""

    user_id: str
    locations: frozenset[str]
    admin_of: frozenset[str]

    def is_member_of(self, location_id: str) -> bool:
        return location_id in self.locations

    def administers(self, location_id: str) -> bool:
        return location_id in self.admin_of


def list_claim(value: Any) -> frozenset[str]:
    """The ids in an array claim, in any of the forms it may arrive in; invalid entries are dropped
    (they could never match a location anyway, and must not be stored)."""
    items: Iterable[Any]
    if value is None:
        return frozenset()
    if isinstance(value, (list, tuple)):
        items = value
    elif isinstance(value, str):
        text = value.strip()
        items = _split(text)
    else:
        return frozenset()
    ids = [item.strip() for item in items if isinstance(item, str)]
    return frozenset(i for i in ids[:_MAX_CLAIM_ITEMS] if is_id(i))


def _split(text: str) -> list[Any]:
    if text.startswith("[") and text.endswith("]"):
        try:
            parsed = json.loads(text)
        except ValueError:
            text = text[1:-1]  # API Gateway's "[a b]"
        else:
            return parsed if isinstance(parsed, list) else []
    return [part for part in _SEPARATORS.split(text) if part]


def claims_of(event: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """``requestContext.authorizer.jwt.claims`` of a payload 2.0 event, if there are any."""
    node: Any = event
    for key in ("requestContext", "authorizer", "jwt", "claims"):
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node if isinstance(node, Mapping) else None


def principal_from_claims(claims: Mapping[str, Any] | None) -> Principal:
    """The caller, or ``Unauthorized`` (401) when there are no usable claims."""
    if not claims:
        raise Unauthorized("a bearer token is required")
    sub = claims.get("sub")
    if not is_id(sub):
        raise Unauthorized("the token does not name a valid subject")
    assert isinstance(sub, str)
    return Principal(
        user_id=sub,
        locations=list_claim(claims.get("locations")),
        admin_of=list_claim(claims.get("admin_of")),
    )


def principal_from_event(event: Mapping[str, Any]) -> Principal:
    return principal_from_claims(claims_of(event))
