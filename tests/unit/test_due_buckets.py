"""The per-minute buckets of the live schedule (calsync.store.due, docs/adr/0018): an instant goes to
the minute it rounds UP to, so the run of that minute (at or after its start) comes after it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from calsync.store import due


def test_an_instant_on_the_minute_is_in_its_own_bucket() -> None:
    at = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    assert due.bucket_of(at) == at
    assert due.bucket_pk(at) == "DUE#2026-11-20T09:00"


def test_an_instant_within_a_minute_is_in_the_next_one() -> None:
    at = datetime(2026, 11, 20, 8, 59, 59, tzinfo=UTC)
    assert due.bucket_pk(due.bucket_of(at)) == "DUE#2026-11-20T09:00"
    assert due.bucket_of(at + timedelta(microseconds=500_001)) == datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def test_buckets_are_named_in_utc() -> None:
    berlin = datetime(2026, 11, 21, 0, 0, tzinfo=ZoneInfo("Europe/Berlin"))  # midnight there
    assert due.bucket_pk(due.bucket_of(berlin)) == "DUE#2026-11-20T23:00"
