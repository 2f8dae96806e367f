"""Every DynamoDB key of calsync is built here, and only here. See the comment above the table
in template.yaml for the item types and access patterns."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from calsync.domain.models import UTC, OwnerKind

INDEX_CHUNK = timedelta(hours=24)  # an occurrence is indexed once per started 24 h
CLEANUP_SHARDS = 16
_ISO = "%Y-%m-%dT%H:%M:%SZ"

PROFILE = "PROFILE"
ROOM = "ROOM"
CALENDAR = "CALENDAR"
EV_PREFIX = "EV#"
CLEANUP_CURSOR = {"pk": "SYS#cleanup", "sk": "CURSOR"}  # where the cleanup function resumes
OCC_PREFIX = "OCC#"


def iso(instant: datetime) -> str:
    """A fixed-width, sortable UTC timestamp (seconds)."""
    return instant.astimezone(UTC).strftime(_ISO)


def parse_iso(text: str) -> datetime:
    """The inverse of ``iso`` (``fromisoformat`` reads the trailing Z and is far cheaper than strptime)."""
    return datetime.fromisoformat(text).astimezone(UTC)


def user_pk(user_id: str) -> str:
    return f"USER#{user_id}"


def room_pk(room_id: str) -> str:
    return f"ROOM#{room_id}"


def owner_pk(kind: OwnerKind, owner_id: str) -> str:
    return user_pk(owner_id) if kind is OwnerKind.USER else room_pk(owner_id)


def location_pk(location_id: str) -> str:
    return f"LOC#{location_id}"


def location_room_sk(room_id: str) -> str:
    return f"ROOM#{room_id}"


def calendar_pk(calendar_id: str) -> str:
    return f"CAL#{calendar_id}"


def occurrence_index_sk(occ_id: str) -> str:
    return f"{OCC_PREFIX}{occ_id}"


def event_sk(index_start: datetime, occ_id: str, n: int) -> str:
    return f"{EV_PREFIX}{iso(index_start)}#{occ_id}#{n}"


def event_sks(start: datetime, end: datetime, occ_id: str) -> list[str]:
    """The sort keys of one occurrence copy: one per started 24 h of [start, end)."""
    keys = [event_sk(start, occ_id, 0)]
    cursor, n = start + INDEX_CHUNK, 1
    while cursor < end:
        keys.append(event_sk(cursor, occ_id, n))
        cursor, n = cursor + INDEX_CHUNK, n + 1
    return keys


def event_range(window_start: datetime, window_end: datetime) -> tuple[str, str]:
    """The sk range that holds every occurrence overlapping [window_start, window_end).

    Each index entry covers at most 24 h from its index start, so an occurrence that overlaps the
    window has an entry that starts after window_start - 24 h and before window_end.
    """
    low = f"{EV_PREFIX}{iso(window_start - INDEX_CHUNK)}"
    high = f"{EV_PREFIX}{iso(window_end)}#\U0010ffff"
    return low, high


def cleanup_shard(pk: str) -> int:
    return int.from_bytes(hashlib.blake2b(pk.encode(), digest_size=2).digest(), "big") % CLEANUP_SHARDS


def end_bucket(end: datetime, shard: int) -> str:
    return f"END#{end.astimezone(UTC).strftime('%Y-%m-%dT%H')}#{shard:02d}"


def end_sort(end: datetime, pk: str, sk: str) -> str:
    return f"{iso(end)}#{pk}#{sk}"
