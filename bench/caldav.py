"""(c) CalDAV polls: requests and DynamoDB writes per poll, by calendar size (rule S3).

A Radicale server (started here, as the local stack starts it) holds one calendar of N events;
the sync engine with the CalDAV source stores it in a table on moto (built from template.yaml).
Then, per size:

- a poll of the unchanged calendar: target 1 CalDAV request (the ctag PROPFIND) and 0 writes;
- a poll after one event changed: target a constant, independent of N (ctag, sync-collection,
  one multiget; the writes of one resource).

Counts, not times: they are exact and do not depend on the machine.
"""

from __future__ import annotations

import tempfile
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

SIZES = (10, 100, 500)
WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
NOW = datetime(2026, 11, 20, 8, 0)


def _ics(uid: str, title: str, start: datetime) -> str:
    fmt = "%Y%m%dT%H%M%SZ"
    end = start + timedelta(minutes=30)
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calsync//bench//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{start.strftime(fmt)}\r\n"
        f"DTEND:{end.strftime(fmt)}\r\nSUMMARY:{title}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


class _Counter:
    def __init__(self) -> None:
        self.writes = 0

    def __call__(self, event_name: str, **_: Any) -> None:
        if event_name.rsplit(".", 1)[-1] in WRITES:
            self.writes += 1


def _poll(
    engine: Any, cal: Any, source: Any, counter: _Counter, seen: list[str], *, at: datetime
) -> tuple[int, int, str]:
    """One poll: (CalDAV requests, DynamoDB writes, outcome)."""
    seen.clear()
    counter.writes = 0
    outcome = engine.sync(cal, source, now=at)
    return len(seen), counter.writes, outcome.status


def bench_caldav() -> int:
    import boto3
    from moto import mock_aws

    from bench import table as render
    from calsync.domain.models import UTC, Provider
    from calsync.store.items import Calendar
    from calsync.store.repository import Repository
    from calsync.store.sync_state import SyncStateStore
    from calsync.sync.engine import SyncEngine
    from calsync_caldav.client import CalDAVClient
    from calsync_caldav.ical import ParseContext
    from calsync_caldav.source import CalDAVSource
    from tests.support.caldav_server import radicale
    from tests.support.template import table_create_kwargs

    now = NOW.replace(tzinfo=UTC)
    rows: list[list[str]] = []
    missed = 0
    changed_costs: set[tuple[int, int]] = set()
    with tempfile.TemporaryDirectory() as tmp, radicale(Path(tmp)) as server, mock_aws():
        ddb = boto3.resource("dynamodb", region_name="eu-west-1")
        tbl = ddb.create_table(**table_create_kwargs("calsync-bench"))
        repo, state = Repository(tbl), SyncStateStore(tbl)
        engine = SyncEngine(repo, state)
        counter = _Counter()
        tbl.meta.client.meta.events.register("before-call.dynamodb", counter)
        for size in SIZES:
            user, password = f"b{uuid.uuid4().hex[:6]}", "bench"
            server.add_user(user, password)
            url = server.make_calendar(user, password)
            for i in range(size):
                start = now + timedelta(hours=i % 72, minutes=(i // 72) * 5)
                server.put(url, f"e{i}", _ics(f"e{i}", f"Event {i}", start), (user, password))
            cal = Calendar(
                calendar_id=f"bench-{size}",
                account_id="bench",
                owner_user_id=user,
                provider=Provider.CALDAV,
                subscribers={f"USER#{user}": "primary"},
            )
            repo.put_calendar(cal)
            requests_seen: list[str] = []
            client = CalDAVClient(
                user,
                password,
                base_url=server.base_url,
                allow_local=True,  # X6: the bench's Radicale is on loopback
                on_response=lambda r, seen=requests_seen: seen.append(r.request.method),
            )
            source = CalDAVSource(client, url, ParseContext(account_id="bench", calendar_id=cal.calendar_id))
            engine.sync(cal, source, now=now)  # first sync (full): not measured

            n_req, n_wr, status = _poll(
                engine, cal, source, counter, requests_seen, at=now + timedelta(minutes=5)
            )
            ok = n_req <= 1 and n_wr == 0
            missed += not ok
            rows.append(
                [str(size), "unchanged", status, str(n_req), str(n_wr), "met" if ok else "NOT met (1, 0)"]
            )

            server.put(url, "e0", _ics("e0", "Event 0 moved", now + timedelta(hours=30)), (user, password))
            n_req, n_wr, status = _poll(
                engine, cal, source, counter, requests_seen, at=now + timedelta(minutes=10)
            )
            changed_costs.add((n_req, n_wr))
            rows.append([str(size), "1 event changed", status, str(n_req), str(n_wr), ""])
            client.close()
    constant = len(changed_costs) == 1
    missed += not constant
    for row in rows:
        if row[1] == "1 event changed":
            row[5] = "met (same for every size)" if constant else "NOT met (grows with size)"
    print("(c) CalDAV poll cost by calendar size (Radicale + sync engine, DynamoDB on moto)")
    print(render(["events", "poll of", "outcome", "CalDAV requests", "DynamoDB writes", "target"], rows))
    print()
    return missed
