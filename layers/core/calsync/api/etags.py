"""Conditional reads of the meetings and presence answers (issue 15; API.md: ``ETag``,
``If-None-Match`` answers 304).

An answer is a function of what is stored and of the time. The stored part is summed up by the
owner's version (``calsync.store.versions``, read with the one GetItem every such request makes
first); the time part by the instant up to which the answer cannot change by itself (the rules'
``next_change``: a meeting ending, the window moving at midnight, a session expiring). The ETag
carries both, with the kind of answer (a person's meetings, with or without ``explain``, a room's,
a person's presence as others see it or as they see it themself):

    "<kind>.<version>.<until, epoch seconds, or - for never>.<digest>"

A request's ``If-None-Match`` is answered 304 when one of its tags names this kind of answer of this
owner at the current version and ``now`` is before its ``until``: that needs the version only,
never the partition's Query. The digest (BLAKE2b of the rest and the owner's id) keeps a tag of one
owner or kind from matching another; a tag made up by a client fools that client only.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

NEVER = "-"


class NotModified(Exception):
    """The client's copy is current: answered 304 with this ETag (problem_handlers)."""

    def __init__(self, etag: str) -> None:
        super().__init__(etag)
        self.etag = etag


def _digest(kind: str, owner: str, version: int | str, until: str) -> str:
    text = f"{kind}\n{owner}\n{version}\n{until}".encode()
    return hashlib.blake2b(text, digest_size=8).hexdigest()


def make(kind: str, owner: str, version: int | str, until: datetime | None) -> str:
    """The ETag (quoted, strong) of an answer of ``kind`` about ``owner`` at ``version``, valid by
    time until ``until`` (``None``: only a write changes it). ``version``: the owner's, or with wide
    calendars (docs/adr/0021) the owner's and each wide calendar's, ``-``-joined."""
    end = NEVER if until is None else str(int(until.timestamp()))  # floor: never later than the truth
    return f'"{kind}.{version}.{end}.{_digest(kind, owner, version, end)}"'


def _current(tag: str, kind: str, owner: str, version: int | str, now: datetime) -> bool:
    parts = tag.removeprefix("W/").strip('"').split(".")
    if len(parts) != 4 or parts[0] != kind or parts[1] != str(version):
        return False
    end = parts[2]
    if parts[3] != _digest(kind, owner, version, end):
        return False
    return end == NEVER or (end.isdigit() and now.timestamp() < int(end))


def check(if_none_match: str | None, kind: str, owner: str, version: int | str, now: datetime) -> None:
    """Raise ``NotModified`` when ``if_none_match`` (the header: a list of tags) holds a tag that is
    still current: same kind, owner and version, and ``now`` before its ``until``."""
    for tag in _tags(if_none_match):
        if _current(tag, kind, owner, version, now):
            raise NotModified(tag)


def answer(if_none_match: str | None, etag: str) -> str:
    """After the full read: ``etag``, or ``NotModified`` when the header is ``*`` (any current
    answer matches, RFC 9110 13.1.2) or names this very tag."""
    if any(tag in ("*", etag) for tag in _tags(if_none_match)):
        raise NotModified(etag)
    return etag


def _tags(header: str | None) -> list[str]:
    return [tag.strip() for tag in (header or "").split(",") if tag.strip()]
