"""(g) Full-sync throughput: events per second of the first (full) sync of a large calendar (S12).

The in-memory ``FakeSource`` (pages of 100 resources, as a CalDAV multiget or a Google page) holds
N one-occurrence events; the sync engine stores them in a table built from template.yaml, on moto
and (when installed, ``make ddb-local``) on DynamoDB Local. Measured: wall time of the full sync,
events per second, and DynamoDB requests per event (the count is exact and does not depend on the
machine; the time does, and moto's time is mostly moto's own Python).
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

SIZES = (1000, 5000)
NOW = datetime(2026, 11, 20, 8, 0)
REGION = "eu-west-1"


def _backends() -> Iterator[tuple[str, Callable[[], Any]]]:
    """(back end, a fresh-table factory): moto, then DynamoDB Local when it is installed."""
    import boto3
    from moto import mock_aws

    from tests.support.dynamodb_local import dynamodb_local, find_jar
    from tests.support.template import table_create_kwargs

    def factory(resource: Any) -> Callable[[], Any]:
        def make() -> Any:
            table = resource.create_table(**table_create_kwargs(f"calsync-bench-{uuid.uuid4().hex[:6]}"))
            table.wait_until_exists()
            return table

        return make

    with mock_aws():
        yield "moto", factory(boto3.resource("dynamodb", region_name=REGION))
    if find_jar() is None:
        return
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    with dynamodb_local() as endpoint:
        yield "dynamodb-local", factory(boto3.resource("dynamodb", region_name=REGION, endpoint_url=endpoint))


def bench_fullsync(sizes: tuple[int, ...] = SIZES) -> int:
    from bench import table as render
    from calsync.domain.models import UTC, Occurrence, Provider
    from calsync.store.items import Calendar
    from calsync.store.repository import Repository
    from calsync.store.sync_state import SyncStateStore
    from calsync.sync.engine import SyncEngine
    from calsync.sync.fake import FakeSource

    now = NOW.replace(tzinfo=UTC)
    rows: list[list[str]] = []
    for backend, make_table in _backends():
        tbl = make_table()
        calls: Counter[str] = Counter()

        def count(event_name: str, calls: Counter[str] = calls, **_: Any) -> None:
            calls[event_name.rsplit(".", 1)[-1]] += 1

        tbl.meta.client.meta.events.register("before-call.dynamodb", count)
        engine = SyncEngine(Repository(tbl), SyncStateStore(tbl))
        for size in sizes:
            cal = Calendar(
                calendar_id=f"bench-full-{size}",
                account_id="bench",
                owner_user_id="bench",
                provider=Provider.CALDAV,
                subscribers={"USER#bench": "primary"},
            )
            engine.repository.put_calendar(cal)
            source = FakeSource(page_size=100)
            for i in range(size):
                start = now + timedelta(hours=i % 1000, minutes=(i // 1000) * 5)
                source.put(
                    f"e{i}",
                    [
                        Occurrence(
                            provider=Provider.CALDAV,
                            account_id="bench",
                            calendar_id=cal.calendar_id,
                            event_id=f"e{i}",
                            title=f"Event {i}",
                            start=start,
                            end=start + timedelta(minutes=30),
                        )
                    ],
                )
            calls.clear()
            t0 = time.perf_counter()
            outcome = engine.sync(cal, source, now=now)
            elapsed = time.perf_counter() - t0
            requests = sum(calls.values())
            rows.append(
                [
                    backend,
                    str(size),
                    outcome.status,
                    f"{elapsed:7.2f} s",
                    f"{size / elapsed:8.0f}",
                    f"{requests / size:5.2f}",
                    ", ".join(f"{k} {v}" for k, v in calls.most_common(4)),
                ]
            )
    print("(g) full-sync throughput (FakeSource, pages of 100, sync engine, one subscriber)")
    print(render(["DynamoDB", "events", "outcome", "time", "events/s", "requests/event", "requests"], rows))
    print()
    return 0
