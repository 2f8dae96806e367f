"""The per-server request budget (issue 16 B; calsync.store.hosts, docs/adr/0020), on moto and on
DynamoDB Local; the concurrent takes on DynamoDB Local only (real conditional writes in parallel).
Clocks are frozen: every instant is passed in."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from calsync.store.hosts import DEFAULT_JOBS_PER_MINUTE, HostBudgets, configured_rate
from tests.support.template import table_create_kwargs

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
HOST = "p42-caldav.icloud.com"


def test_a_bucket_grants_its_rate_then_refills_with_time(table: Any) -> None:
    hosts = HostBudgets(table, rate=6)
    assert hosts.take(HOST, NOW, 4) == 4
    assert hosts.take(HOST, NOW, 4) == 2  # 6 a minute, at most 6 held
    assert hosts.take(HOST, NOW, 1) == 0
    assert hosts.take(HOST, NOW + timedelta(seconds=30), 5) == 3  # half a minute: 3 more
    assert hosts.take(HOST, NOW + timedelta(hours=1), 50) == 6  # never more than a minute's worth
    assert hosts.take("other.example", NOW, 6) == 6  # each host has its own


def test_a_backoff_stops_the_bucket_and_never_moves_earlier(table: Any) -> None:
    hosts = HostBudgets(table, rate=60)
    assert hosts.back_off(HOST, NOW + timedelta(minutes=10))
    assert not hosts.back_off(HOST, NOW + timedelta(minutes=2))  # a shorter one does not shorten it
    assert hosts.state(HOST).backoff_for(NOW) == 600
    assert hosts.take(HOST, NOW + timedelta(minutes=9), 5) == 0
    assert hosts.take(HOST, NOW + timedelta(minutes=10), 5) == 5  # over: the bucket is full again
    assert hosts.back_off(HOST, NOW + timedelta(minutes=20))


def test_the_rate_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CALDAV_HOST_JOBS_PER_MINUTE", raising=False)
    assert configured_rate() == DEFAULT_JOBS_PER_MINUTE == 300
    monkeypatch.setenv("CALDAV_HOST_JOBS_PER_MINUTE", "40")
    assert configured_rate() == 40


@pytest.fixture
def ddb_local_table(ddb_local_endpoint: str) -> Iterator[Any]:
    resource = boto3.resource("dynamodb", region_name="eu-west-1", endpoint_url=ddb_local_endpoint)
    table = resource.create_table(**table_create_kwargs(f"calsync-hosts-{uuid.uuid4().hex[:8]}"))
    table.wait_until_exists()
    try:
        yield table
    finally:
        table.delete()


def test_concurrent_shards_never_take_more_than_the_bucket_holds_on_dynamodb_local(
    ddb_local_table: Any,
) -> None:
    # 8 poll shards of one run want 10 jobs each of a host allowing 50 a minute, at the same time:
    # the conditional takes grant 50 in all, never more (a lost race reads the bucket again)
    barrier = threading.Barrier(8)

    def shard() -> int:
        hosts = HostBudgets(ddb_local_table, rate=50)
        barrier.wait()
        return hosts.take(HOST, NOW, 10)

    with ThreadPoolExecutor(8) as pool:
        granted = [f.result() for f in [pool.submit(shard) for _ in range(8)]]
    # each round of a race has a winner, so none of the 8 loses 8 times: exactly the bucket
    assert sum(granted) == 50
    assert HostBudgets(ddb_local_table, rate=50).take(HOST, NOW, 50) == 50 - sum(granted)


def test_concurrent_backoffs_keep_the_latest_on_dynamodb_local(ddb_local_table: Any) -> None:
    # sync workers of one host answered 429 with different Retry-After at once: the latest wins
    barrier = threading.Barrier(6)

    def worker(minutes: int) -> bool:
        hosts = HostBudgets(ddb_local_table)
        barrier.wait()
        return hosts.back_off(HOST, NOW + timedelta(minutes=minutes))

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(worker, [3, 9, 1, 7, 5, 2]))
    assert HostBudgets(ddb_local_table).state(HOST).backoff_until == NOW + timedelta(minutes=9)
