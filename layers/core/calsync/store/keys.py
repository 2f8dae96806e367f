"""Every DynamoDB key of calsync is built here, and only here. See the comment above the table
in template.yaml for the item types and access patterns."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from calsync.domain.models import UTC, OwnerKind

INDEX_CHUNK = timedelta(hours=24)  # an occurrence is indexed once per started 24 h
CLEANUP_SHARDS = 16
DUE_SHARDS = 16  # the live schedule's buckets (calsync.store.due)
_ISO = "%Y-%m-%dT%H:%M:%SZ"

PROFILE = "PROFILE"
ROOM = "ROOM"
CALENDAR = "CALENDAR"
EV_PREFIX = "EV#"
# where the cleanup of one shard resumes (docs/cleanup-scaling.md); the single cursor of the
# cleanup before its fan-out (docs/adr/0020) is read as the fallback of a shard without one
CLEANUP_CURSOR = {"pk": "SYS#cleanup", "sk": "CURSOR"}
OCC_PREFIX = "OCC#"


def iso(instant: datetime) -> str:
    """A fixed-width, sortable UTC timestamp (seconds)."""
    return instant.astimezone(UTC).strftime(_ISO)


def parse_iso(text: str) -> datetime:
    """The inverse of ``iso`` (``fromisoformat`` reads the trailing Z and is far cheaper than strptime)."""
    return datetime.fromisoformat(text).astimezone(UTC)


def user_pk(user_id: str) -> str:
    return f"USER#{user_id}"


def room_owner_id(location_id: str, room_id: str) -> str:
    """A room's owner id: room ids are scoped by their location (docs/adr/0012), so that two
    locations may each have a room "board" and neither learns of the other's."""
    return f"{location_id}#{room_id}"


def room_pk(location_id: str, room_id: str) -> str:
    """``ROOM#<locationId>#<roomId>``: the room's partition (its ``ROOM`` item and its copies)."""
    return f"ROOM#{room_owner_id(location_id, room_id)}"


def legacy_room_pk(room_id: str) -> str:
    """``ROOM#<roomId>``: where rooms were kept before 0012 (one id for every location); only ever
    read to retire such a room."""
    return f"ROOM#{room_id}"


def room_of_pk(pk: str) -> tuple[str | None, str] | None:
    """(locationId, roomId) of a room's partition key; locationId ``None`` for a ``legacy_room_pk``;
    ``None`` for any other key."""
    if not pk.startswith("ROOM#"):
        return None
    location_id, _, room_id = pk.removeprefix("ROOM#").rpartition("#")
    return (location_id or None), room_id


def owner_pk(kind: OwnerKind, owner_id: str) -> str:
    """``USER#<id>``, or ``ROOM#<id>`` for a room's owner id (``room_owner_id``)."""
    return user_pk(owner_id) if kind is OwnerKind.USER else f"ROOM#{owner_id}"


def location_pk(location_id: str) -> str:
    return f"LOC#{location_id}"


def location_room_sk(room_id: str) -> str:
    return f"ROOM#{room_id}"


def calendar_pk(calendar_id: str) -> str:
    return f"CAL#{calendar_id}"


# ---- wide calendars (docs/adr/0021) -------------------------------------------------------------
# WIDE#<calendarId> / EV#…       the occurrences of a wide calendar, whole: what its people read
# WIDEROOM#<calendarId> / EV#…   the same with R4 applied (privacy.for_room): what its rooms read
# WIDE#<calendarId> / VERSION    the calendar's version: part of its subscribers' ETags
WIDE_PREFIX = "WIDE#"
WIDE_ROOM_PREFIX = "WIDEROOM#"
VERSION = "VERSION"


def wide_pk(calendar_id: str) -> str:
    return f"{WIDE_PREFIX}{calendar_id}"


def wide_room_pk(calendar_id: str) -> str:
    return f"{WIDE_ROOM_PREFIX}{calendar_id}"


def wide_read_pk(calendar_id: str, role: str) -> str:
    """The partition a subscriber of this role reads a wide calendar from."""
    return wide_room_pk(calendar_id) if role == "room" else wide_pk(calendar_id)


def wide_calendar_of_pk(pk: str) -> str | None:
    """The calendar of a wide partition key; ``None`` for any other key."""
    for prefix in (WIDE_ROOM_PREFIX, WIDE_PREFIX):
        if pk.startswith(prefix):
            return pk.removeprefix(prefix)
    return None


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


def shard_of(key: str, shards: int) -> int:
    """The shard (0 to shards - 1) of a key: a stable hash, the same in every process and release."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=2).digest(), "big") % shards


def cleanup_shard(pk: str) -> int:
    return shard_of(pk, CLEANUP_SHARDS)


def due_shard(user_id: str) -> int:
    """The shard of a person's DUE buckets (docs/adr/0018): a stable hash of the user id."""
    return shard_of(user_id, DUE_SHARDS)


def cleanup_cursor(shard: int) -> dict[str, str]:
    return {"pk": f"SYS#cleanup#{shard:02d}", "sk": "CURSOR"}


def end_bucket(end: datetime, shard: int) -> str:
    return f"END#{end.astimezone(UTC).strftime('%Y-%m-%dT%H')}#{shard:02d}"


def end_sort(end: datetime, pk: str, sk: str) -> str:
    return f"{iso(end)}#{pk}#{sk}"


# ---- accounts, calendar listings, claims and calendar configuration (accounts engineer) ---------
ACCOUNT_PREFIX = "ACCOUNT#"
CONFIG_PREFIX = "CONFIG#"
LISTING_CAL_PREFIX = "CAL#"
OWNER = "OWNER"


def account_sk(account_id: str) -> str:
    """``USER#<userId> / ACCOUNT#<accountId>``: one connected account of a person."""
    return f"{ACCOUNT_PREFIX}{account_id}"


def account_pk(account_id: str) -> str:
    """``ACC#<accountId>``: the partition that lists an account's calendars."""
    return f"ACC#{account_id}"


def account_calendar_sk(calendar_id: str) -> str:
    """``ACC#<accountId> / CAL#<calendarId>``: one calendar of an account (listing item)."""
    return f"{LISTING_CAL_PREFIX}{calendar_id}"


def external_claim_pk(provider: str, external_id: str) -> str:
    """``EXT#<provider>#<externalId> / OWNER``: the one person an external account belongs to (C4)."""
    return f"EXT#{provider}#{external_id}"


def location_provider_sk(location_id: str, provider: str) -> str:
    """``USER#<userId> / LOCPROV#<locationId>#<provider>``: the person's one account of a provider in
    a location (C3)."""
    return f"LOCPROV#{location_id}#{provider}"


def config_sk(location_id: str) -> str:
    """``USER#<userId> / CONFIG#<locationId>``: primary and conflict calendars in a location (C6)."""
    return f"{CONFIG_PREFIX}{location_id}"


# ---- presence and sessions (issue 8; P1-P7) ------------------------------------------------------
# USER#<userId> / PRESENCE             the person's chosen status, custom message, updatedAt
# USER#<userId> / SESSION#<sessionId>  one app session: expiresAt (epoch seconds, also the TTL)
# Both sort after EV#… and around PROFILE, so one Query (sk BETWEEN PRESENCE AND SESSION#…) reads
# the presence, the profile and the sessions of a person together.
PRESENCE = "PRESENCE"
SESSION_PREFIX = "SESSION#"


def session_sk(session_id: str) -> str:
    return f"{SESSION_PREFIX}{session_id}"


def presence_range() -> tuple[str, str]:
    """The sk range holding a person's PRESENCE, PROFILE and SESSION#… items (nothing else is used)."""
    return PRESENCE, f"{SESSION_PREFIX}\U0010ffff"


# ---- sync state (issue 4, sync engine: calsync.sync, calsync.store.sync_state) ----------------
# CAL#<calendarId> / SYNC              cursor, generation, lease, dirty counter (S6)
# CAL#<calendarId> / RES#<hash>        one provider resource: etag, generation, its occurrence ids
# POLL#<provider>#<shard> / CAL#<id>   the calendars the poll schedule enqueues (one Query per shard)
SYNC = "SYNC"
RES_PREFIX = "RES#"
POLL_SHARDS = 16


def resource_sk(resource_key: str) -> str:
    """A resource's index sk: hashed, since provider keys (CalDAV hrefs) may be long or odd."""
    digest = hashlib.blake2b(resource_key.encode("utf-8"), digest_size=16).hexdigest()
    return f"{RES_PREFIX}{digest}"


def poll_shard(calendar_id: str) -> int:
    return shard_of(calendar_id, POLL_SHARDS)


def poll_pk(provider: str, shard: int) -> str:
    return f"POLL#{provider}#{shard:02d}"


def poll_sk(calendar_id: str) -> str:
    return f"CAL#{calendar_id}"


# ---- Microsoft (issue 6: calsync_microsoft.registry) -----------------------------------------------
# OAUTH#microsoft#<state> / FLOW       a started sign-in: the sealed msal flow (PKCE verifier), TTL
# MSSUB#<subscriptionId> / SUB         a Graph subscription: user, account, hash of its clientState
# MSSUBS#<shard> / ACC#<accountId>     the mailbox's one subscription (id, expiry): renewal (S4) reads
#                                      one shard per Query
FLOW = "FLOW"
SUB = "SUB"
MS_SUB_SHARDS = 4


def oauth_flow_pk(provider: str, state: str) -> str:
    return f"OAUTH#{provider}#{state}"


def ms_subscription_pk(subscription_id: str) -> str:
    return f"MSSUB#{subscription_id}"


def ms_subscription_shard(account_id: str) -> int:
    return shard_of(account_id, MS_SUB_SHARDS)


def ms_mailbox_pk(shard: int) -> str:
    return f"MSSUBS#{shard:02d}"


def ms_mailbox_sk(account_id: str) -> str:
    return f"ACC#{account_id}"


# ---- Google push channels and OAuth state (issue 5; S1, S4, X2) ---------------------------------
# CAL#<calendarId> / GCHAN#<channelId>     one push channel: token hash, resourceId, expiry, state.
#   The channel id starts with the calendar id, so the webhook finds the item with ONE GetItem, and
#   deleting a calendar's partition (C9) drops its channels too (the webhook then answers "unknown").
# GCHANEXP#<shard> / <expiry>#<channelId>  the renewal schedule's index (Query sk <= now + margin).
# CAL#<calendarId> / GPUSHQ                 a push sync job of the calendar is queued and has not
#   started (written by the webhook with a condition, deleted when the job starts; TTL backstop):
#   notifications meanwhile are coalesced into that job (issue 13 point 5).
# OAUTH#<sha256(state)> / STATE            a pending authorization (PKCE verifier), TTL 15 min.
GCHAN_PREFIX = "GCHAN#"
GPUSH_QUEUED = "GPUSHQ"
CHANNEL_SHARDS = 4
OAUTH_STATE = "STATE"


def google_channel_sk(channel_id: str) -> str:
    return f"{GCHAN_PREFIX}{channel_id}"


def channel_expiry_pk(shard: int) -> str:
    return f"GCHANEXP#{shard:02d}"


def channel_expiry_sk(expires: datetime, channel_id: str) -> str:
    return f"{iso(expires)}#{channel_id}"


def channel_shard(channel_id: str) -> int:
    return shard_of(channel_id, CHANNEL_SHARDS)


def oauth_state_pk(state: str) -> str:
    return f"OAUTH#{hashlib.sha256(state.encode('utf-8')).hexdigest()}"


# ---- scheduling (issue 7; C7): Powertools idempotency records of POST …/appointments -----------
# IDEM#scheduling / <hash of (caller, userId, locationId, Idempotency-Key)>: status, the answer,
# the body's hash, and expiresAt (the table's TTL attribute).
IDEMPOTENCY_PK = "IDEM#scheduling"
