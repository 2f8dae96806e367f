"""When a person's answers change by themselves (docs/adr/0018): per-minute buckets of people due.

A presence or meetings answer changes without a write at instants the rules know (``next_change``:
a meeting starting or ending, the last live session expiring, midnight). The live channel publishes
those changes from a schedule (functions/live_due) that reads, every minute, the buckets of the
minutes gone by; so each such instant is written down ahead, in the bucket of its minute:

- ``DUE#<YYYY-MM-DDTHH:MM>`` / ``USER#<id>``: ``at`` (epoch seconds), ``expiresAt`` (the TTL: a day
  later; the schedule deletes the items it handled, TTL only drops what a stopped schedule left).
  The bucket is the minute the instant rounds UP to, so that a run in that minute comes after it.
  One item per person and minute (a person armed twice for one minute is one item).
- ``DUE#SOON`` / ``USER#<id>``: "look again at the next run" (the person's meetings were written:
  when they next change by time is not known to the writer, which reads none of them).
- ``DUE#CURSOR`` / ``CURSOR``: ``minute``, the first bucket not yet read to its end.

Writing down an instant is one PutItem; reading a bucket one Query (no Scan, no index): the cost is
per instant, never per person and minute.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from calsync.domain.models import UTC
from calsync.store import keys

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

PREFIX = "DUE#"
SOON = f"{PREFIX}SOON"
CURSOR_PK, CURSOR_SK = f"{PREFIX}CURSOR", "CURSOR"
KEEP = timedelta(days=1)
MINUTE = timedelta(minutes=1)


def floor_minute(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(second=0, microsecond=0)


def bucket_of(instant: datetime) -> datetime:
    """The minute whose bucket holds ``instant``: the minute it rounds up to."""
    floor = floor_minute(instant)
    return floor if floor == instant else floor + MINUTE


def bucket_pk(minute: datetime) -> str:
    return f"{PREFIX}{minute.astimezone(UTC):%Y-%m-%dT%H:%M}"


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
                "pk": bucket_pk(bucket_of(at)),
                "sk": keys.user_pk(user_id),
                "at": int(at.timestamp()),
                "expiresAt": int((at + KEEP).timestamp()),
            }
        )

    def arm_soon(self, user_id: str) -> None:
        """``user_id``'s meetings were written: the next run looks at them again."""
        self._table.put_item(Item={"pk": SOON, "sk": keys.user_pk(user_id)})

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

    def done(self, pk: str, user_id: str) -> None:
        self._table.delete_item(Key={"pk": pk, "sk": keys.user_pk(user_id)})

    def cursor(self) -> datetime | None:
        item: dict[str, Any] | None = self._table.get_item(
            Key={"pk": CURSOR_PK, "sk": CURSOR_SK}, ConsistentRead=True
        ).get("Item")
        return datetime.fromtimestamp(int(item["minute"]), UTC) if item else None

    def set_cursor(self, minute: datetime) -> None:
        self._table.put_item(
            Item={"pk": CURSOR_PK, "sk": CURSOR_SK, "type": "cursor", "minute": int(minute.timestamp())}
        )
