"""When a person's answers change by themselves (docs/adr/0018): per-minute buckets of people due.

A presence or meetings answer changes without a write at instants the rules know (``next_change``:
a meeting starting or ending, the last live session expiring, midnight). The live channel publishes
those changes from a schedule (functions/live_due) that reads, every minute, the buckets of the
minutes gone by; so each such instant is written down ahead, in the bucket of its minute:

The buckets are sharded by a stable hash of the user id (``keys.due_shard``, 16 shards), so that
a minute everyone's meetings start in is 16 partitions read in parallel, one task each
(functions/live_due):

- ``DUE#<YYYY-MM-DDTHH:MM>#<shard>`` / ``USER#<id>``: ``at`` (epoch seconds), ``expiresAt`` (the
  TTL: a day later; the schedule deletes the items it handles, TTL only drops what a stopped
  schedule left). The bucket is the minute the instant rounds UP to, so that a run in that minute
  comes after it. One item per person and minute (a person armed twice for one minute is one item).
- ``DUE#SOON#<shard>`` / ``USER#<id>``: "look again at the next run" (the person's meetings were
  written: when they next change by time is not known to the writer, which reads none of them).
- ``DUE#CURSOR#<shard>`` / ``CURSOR``: ``minute``, the shard's first bucket not yet read to its end
  (it only moves forward).

Before the shards (one transition): ``DUE#<minute>``, ``DUE#SOON`` and ``DUE#CURSOR``, written by the
deployed code until it is replaced. Shard 0's task reads them too (``LEGACY``), and a shard without
a cursor starts at the old one; nothing writes them any more, so after a day (``KEEP``) they are
gone and the legacy reads can be removed.

Writing down an instant is one PutItem; reading a bucket one Query (no Scan, no index): the cost is
per instant, never per person and minute.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from calsync.domain.models import UTC
from calsync.store import keys

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

PREFIX = "DUE#"
SOON = f"{PREFIX}SOON"  # the unsharded "look again" bucket (before the shards; read, never written)
CURSOR_PK, CURSOR_SK = f"{PREFIX}CURSOR", "CURSOR"  # the unsharded cursor (the same)
LEGACY_SHARD = 0  # the shard whose task also reads the unsharded buckets
KEEP = timedelta(days=1)
MINUTE = timedelta(minutes=1)


def floor_minute(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(second=0, microsecond=0)


def bucket_of(instant: datetime) -> datetime:
    """The minute whose bucket holds ``instant``: the minute it rounds up to."""
    floor = floor_minute(instant)
    return floor if floor == instant else floor + MINUTE


def bucket_pk(minute: datetime, shard: int | None = None) -> str:
    """``DUE#<minute>#<shard>``; without a shard the unsharded bucket of before the shards."""
    name = f"{PREFIX}{minute.astimezone(UTC):%Y-%m-%dT%H:%M}"
    return name if shard is None else f"{name}#{shard:02d}"


def soon_pk(shard: int) -> str:
    return f"{SOON}#{shard:02d}"


def cursor_key(shard: int) -> dict[str, str]:
    return {"pk": f"{CURSOR_PK}#{shard:02d}", "sk": CURSOR_SK}


def soon_pks(shard: int) -> list[str]:
    """The "look again" buckets a shard's task reads (shard 0: the unsharded one too)."""
    return [soon_pk(shard)] + ([SOON] if shard == LEGACY_SHARD else [])


def bucket_pks(minute: datetime, shard: int) -> list[str]:
    """The buckets of ``minute`` a shard's task reads (shard 0: the unsharded one too)."""
    return [bucket_pk(minute, shard)] + ([bucket_pk(minute)] if shard == LEGACY_SHARD else [])


@dataclass(frozen=True, slots=True)
class Due:
    user_id: str
    at: datetime | None  # None: "look again" (DUE#SOON)


class DueStore:
    def __init__(self, table: Table) -> None:
        self._table = table

    def arm(self, user_id: str, at: datetime) -> None:
        """Write down that ``user_id``'s answers may change by themselves at ``at``."""
        self._table.put_item(
            Item={
                "pk": bucket_pk(bucket_of(at), keys.due_shard(user_id)),
                "sk": keys.user_pk(user_id),
                "at": int(at.timestamp()),
                "expiresAt": int((at + KEEP).timestamp()),
            }
        )

    def arm_once(self, user_id: str, at: datetime) -> bool:
        """``arm``, unless ``user_id`` is armed at ``at`` already (one strongly consistent GetItem,
        a fifth of a PutItem's price, docs/adr/0026): what a "look again" usually finds, since a
        calendar change seldom moves the next instant. ``True`` when it wrote. An item read here
        and claimed meanwhile is being handled by a run that reads the person's data after this
        look again's write, so it arms what this one would have."""
        key = {"pk": bucket_pk(bucket_of(at), keys.due_shard(user_id)), "sk": keys.user_pk(user_id)}
        item = self._table.get_item(Key=key, ConsistentRead=True).get("Item")
        if item is not None and int(str(item.get("at"))) == int(at.timestamp()):
            return False
        self.arm(user_id, at)
        return True

    def arm_soon(self, user_id: str) -> None:
        """``user_id``'s meetings were written: the next run looks at them again."""
        self._table.put_item(Item={"pk": soon_pk(keys.due_shard(user_id)), "sk": keys.user_pk(user_id)})

    def page(self, pk: str, limit: int) -> list[Due]:
        """Up to ``limit`` people of one bucket (``bucket_pk`` or ``SOON``): handled ones are deleted
        (``done``), so the next page is simply the next Query."""
        resp = self._table.query(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": pk},
            ConsistentRead=True,
            Limit=limit,
        )
        out = []
        for item in resp.get("Items", []):
            at = item.get("at")
            user_id = str(item["sk"]).removeprefix(keys.user_pk(""))
            out.append(Due(user_id, datetime.fromtimestamp(int(str(at)), UTC) if at is not None else None))
        return out

    def claim(self, pk: str, user_id: str) -> bool:
        """Take ``user_id`` out of bucket ``pk`` (one DeleteItem): ``True`` for the one caller whose
        delete removed the item, so that two tasks reading one bucket (a task redelivered, or a
        shard's rest running while the next minute's task starts) never handle a person twice."""
        resp = self._table.delete_item(Key={"pk": pk, "sk": keys.user_pk(user_id)}, ReturnValues="ALL_OLD")
        return "Attributes" in resp

    def cursor(self, shard: int) -> datetime | None:
        """The shard's cursor; a shard without one starts at the unsharded cursor (the transition)."""
        for key in (cursor_key(shard), {"pk": CURSOR_PK, "sk": CURSOR_SK}):
            item: dict[str, Any] | None = self._table.get_item(Key=key, ConsistentRead=True).get("Item")
            if item:
                return datetime.fromtimestamp(int(item["minute"]), UTC)
        return None

    def set_cursor(self, minute: datetime, shard: int | None = None) -> None:
        """Move the shard's cursor to ``minute``, never back (tasks of a shard may finish in any
        order); without a shard the unsharded cursor (tests: a schedule that ran before the shards)."""
        key = {"pk": CURSOR_PK, "sk": CURSOR_SK} if shard is None else cursor_key(shard)
        # a later task of the shard may have moved it further: then it stays
        with contextlib.suppress(self._table.meta.client.exceptions.ConditionalCheckFailedException):
            self._table.put_item(
                Item={**key, "type": "cursor", "minute": int(minute.timestamp())},
                ConditionExpression="attribute_not_exists(pk) OR #m < :m",
                ExpressionAttributeNames={"#m": "minute"},
                ExpressionAttributeValues={":m": int(minute.timestamp())},
            )
