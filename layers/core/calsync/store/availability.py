"""The store read behind availability (C11): ONE Query of the person's partition over a range,
filtered by the calendars of one location's configuration. No provider is asked.

The partition holds the copies of every calendar configured for the person in any location; the
``FilterExpression`` keeps only the calendars of the asked location, so that what travels back is
what the answer needs (the Query still reads the range's index entries: it is bounded by the
range, at most 62 days). Past 1 MB DynamoDB pages; the loop follows ``LastEvaluatedKey``.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import TYPE_CHECKING, Any

from calsync.domain.models import UTC, Occurrence
from calsync.store import keys
from calsync.store.items import item_to_occurrence
from calsync.store.repository import _mapped_errors

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

MAX_FILTER_VALUES = 100  # DynamoDB's limit on the operands of IN


def read_calendar_events(
    table: Table,
    user_id: str,
    calendar_ids: Collection[str],
    start: datetime,
    end: datetime,
    *,
    wide_calendars: Collection[str] = (),
) -> list[Occurrence]:
    """The occurrences of ``calendar_ids`` in the person's partition that may overlap ``[start, end)``
    (all-day events included wherever they may fall; the caller places them in the person's zone),
    and those of the wide calendars among them the person reads from the calendars' own partitions
    (``wide_calendars``: one Query each, docs/adr/0021)."""
    ids = sorted(set(calendar_ids))
    if not ids:
        return []
    low, high = keys.event_range(start.astimezone(UTC), end.astimezone(UTC))
    partitions = [keys.user_pk(user_id), *(keys.wide_pk(c) for c in sorted(set(wide_calendars)))]
    values: dict[str, Any] = {":pk": partitions[0], ":lo": low, ":hi": high}
    kwargs: dict[str, Any] = {
        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :lo AND :hi",
        "ExpressionAttributeValues": values,
    }
    if len(ids) <= MAX_FILTER_VALUES:
        names = [f":c{i}" for i in range(len(ids))]
        values.update(dict(zip(names, ids, strict=True)))
        kwargs["FilterExpression"] = f"#cal IN ({', '.join(names)})"
        kwargs["ExpressionAttributeNames"] = {"#cal": "calendarId"}
    wanted = set(ids)
    seen: set[str] = set()
    out: list[Occurrence] = []
    for pk in partitions:
        values[":pk"] = pk
        kwargs.pop("ExclusiveStartKey", None)
        while True:
            with _mapped_errors("read availability"):
                resp = table.query(**kwargs)
            for item in resp.get("Items", []):
                occ_id = str(item["occId"])
                if occ_id in seen or str(item.get("calendarId")) not in wanted:
                    continue
                seen.add(occ_id)
                out.append(item_to_occurrence(item))
            if "LastEvaluatedKey" not in resp:
                break
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
    return out
