"""Pins what bench/google.py reports (rules S1, S6): one changed event, one push notification ->
exactly one Google API call (events.list with the sync token) and exactly the DynamoDB writes of
that one change. A regression (a second list, a channel re-opened, a rewrite of unchanged
events) fails here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bench.google import per_notification
from calsync.domain.models import UTC

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def test_one_changed_event_costs_one_list_call_and_twelve_writes(moto_table: Any) -> None:  # S1, S6
    calls, which, writes = per_notification(moto_table, NOW, events=20)
    assert calls == 1 and which[0].startswith("GET /calendar/v3/calendars/") and which[0].endswith("/events")
    # the webhook: the message number taken (UpdateItem) + the calendar's push job marked queued
    # (PutItem), cleared when the job starts (DeleteItem) — issue 13 point 5; the sync: the lease +
    # the copy of the changed occurrence (old index entry out, new one in) + the resource index (a
    # page's index entries go in one batch) + the cursor commit + the person's version (the ETag and
    # the live channel, issue 15) + the person's "look again" for the live schedule (PutItem,
    # docs/adr/0018): nothing for the 19 unchanged events
    assert writes == {"PutItem": 3, "UpdateItem": 5, "DeleteItem": 1, "BatchWriteItem": 3}
    assert sum(writes.values()) == 3 + 9  # the webhook's 3, the sync's 9
