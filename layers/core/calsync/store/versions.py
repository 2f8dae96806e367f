"""Per-person and per-room versions: a number that only grows, bumped after every write that changes
what a meetings answer (person or room) or a person's presence answer shows (issue 15).

It lives on the item every read of these answers reads first anyway, so that a conditional read
(``If-None-Match``) costs that one GetItem and nothing else:

- ``USER#<id> / PROFILE``: ``version`` (absent: 0). Bumped by every change of the person's copies
  (sync, backfill, unsubscribe, cleanup), of their time zone, and of their presence (a status set
  or cleared, a sign-in or a logout). The profile item is never deleted.
- ``ROOM#<locationId>#<roomId> / ROOM``: ``version``. A room registered (again) starts at the
  milliseconds since the epoch, so that a room deleted and registered again continues above the
  numbers it had (far fewer bumps than milliseconds pass); a bump of a room that is gone does nothing.

A bump comes AFTER the write it reports, and a reader reads the version BEFORE the data: so an answer
is never tagged with a version newer than its data (the worst case is one needless refetch).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from calsync import live
from calsync.store import due, keys

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

VERSION = "version"
USER_PREFIX = keys.user_pk("")
ROOM_PREFIX = "ROOM#"  # keys.room_pk and keys.legacy_room_pk


def room_start(now: datetime) -> int:
    """The first version of a room registered at ``now``."""
    return int(now.timestamp() * 1000)


def of(item: Mapping[str, Any] | None) -> int:
    """The version stored on a profile or room item (0 when there is none)."""
    value = (item or {}).get(VERSION)
    return int(value) if value is not None else 0


def owners(pks: Iterable[str]) -> list[str]:
    """The people's and rooms' partitions among ``pks`` (calendar partitions and others left out)."""
    return sorted({pk for pk in pks if pk.startswith((USER_PREFIX, ROOM_PREFIX))})


def bump(
    table: Table,
    pks: Iterable[str],
    *kinds: str,
    answer: live.Answer | None = None,
    look_again: bool = True,
) -> dict[str, int]:
    """Add one to the version of each person and room among ``pks``; their new versions. Each new
    version is then published on the live channel (``calsync.live``; ``kinds``: what changed for a
    person, ``meetings`` (the default) and/or ``presence``, whose event carries ``answer``'s fields),
    which never fails the write. A meetings change puts each person bumped in the schedule's "look
    again" bucket (``look_again``; the schedule itself, which arms the next instant from the data it
    just read, passes ``False``: a look again would find the same instant, for 3 writes and 3 read
    units, docs/adr/0026).

    One UpdateItem each (callers pass the distinct owners one write touched). Errors are the
    store's (``ClientError``); callers run this inside their ``_mapped_errors``."""
    out: dict[str, int] = {}
    items: dict[str, tuple[int, dict[str, Any]]] = {}
    for pk in owners(pks):
        if pk.startswith(USER_PREFIX):
            attributes = table.update_item(
                Key={"pk": pk, "sk": keys.PROFILE},
                UpdateExpression="SET #type = if_not_exists(#type, :type) ADD #v :one",
                ExpressionAttributeNames={"#type": "type", "#v": VERSION},
                ExpressionAttributeValues={":type": "profile", ":one": 1},
                ReturnValues="ALL_NEW",  # the locations, for the live channel
            )["Attributes"]
        else:
            try:
                attributes = table.update_item(
                    Key={"pk": pk, "sk": keys.ROOM},
                    UpdateExpression="ADD #v :one",
                    ConditionExpression="attribute_exists(pk)",  # a room that is gone stays gone
                    ExpressionAttributeNames={"#v": VERSION},
                    ExpressionAttributeValues={":one": 1},
                    ReturnValues="ALL_NEW",  # the locations, for the live channel
                )["Attributes"]
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
                continue
        out[pk] = of(attributes)
        items[pk] = (out[pk], dict(attributes))
    kinds = kinds or ("meetings",)
    # when the meetings change next by time is for the schedule to find out
    if look_again and "meetings" in kinds:
        soon = due.DueStore(table)
        for pk in out:
            if pk.startswith(USER_PREFIX):
                soon.arm_soon(pk.removeprefix(USER_PREFIX))
    for kind in kinds:
        live.publish_changes(kind, items, answer if kind == "presence" else None)
    return out


def bump_wide(table: Table, calendar_id: str) -> int:
    """Add one to a wide calendar's version (``WIDE#<calendarId> / VERSION``, docs/adr/0021) and
    return it: its subscribers' meetings ETags include it. The live channel is the caller's."""
    attributes = table.update_item(
        Key={"pk": keys.wide_pk(calendar_id), "sk": keys.VERSION},
        UpdateExpression="SET #type = if_not_exists(#type, :type) ADD #v :one",
        ExpressionAttributeNames={"#type": "type", "#v": VERSION},
        ExpressionAttributeValues={":type": "wideVersion", ":one": 1},
        ReturnValues="UPDATED_NEW",
    )["Attributes"]
    return of(attributes)
