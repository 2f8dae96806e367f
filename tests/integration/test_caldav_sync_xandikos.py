"""The core CalDAV sync flow against a REAL xandikos server started by the tests (issue 4).

Same world as ``test_caldav_sync`` (moto's SQS/KMS/DynamoDB, the poll, sync and API handlers, a
frozen clock), only the CalDAV server differs. Xandikos keeps each collection in a git repository:
its ``CS:getctag`` and ``DAV:sync-token`` are both the commit id, and a token it does not know is
refused with ``412 Precondition Failed`` + ``DAV:valid-sync-token`` (Radicale: 403). It has no
authentication of its own here: the client's Basic auth is sent and ignored.

Rules: S3 (ctag, sync-collection, ETag comparison), C10, U5, U7.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from calsync.store.sync_state import SyncStateStore
from calsync_caldav.source import dump_cursor, load_cursor
from tests.integration import test_caldav_sync as core
from tests.integration.test_caldav_sync import NOW, World, at, make_world
from tests.support.caldav_server import XandikosServer, ics, xandikos


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[XandikosServer]:
    with xandikos(tmp_path_factory.mktemp("xandikos")) as srv:
        yield srv


@pytest.fixture
def world(moto_table: Any, server: XandikosServer) -> Iterator[World]:
    w = make_world(moto_table, server)
    yield w
    w.close()


def test_xandikos_connect_first_sync_then_add_move_cancel_delete(world: World) -> None:
    # rules S3, C10, U5, U7: the very same steps and API checks as on Radicale
    core.test_connect_first_sync_then_add_move_cancel_delete(world)


def test_xandikos_unchanged_ctag_costs_one_request_and_no_write(world: World) -> None:
    # rule S3: xandikos has CS:getctag (the collection's git commit id): one PROPFIND, no write
    core.test_unchanged_ctag_costs_one_request_and_no_write(world)


def test_xandikos_rejected_sync_token_full_resync_loses_nothing(world: World) -> None:
    # rule S3: an unknown token -> 412 valid-sync-token on xandikos -> full comparison by ETag
    for i in range(4):
        world.put(f"e{i}", ics(f"e{i}", f"Event {i}", at(i + 1), at(i + 2)))
    world.enqueue()
    world.drain(NOW)
    state = SyncStateStore(world.table)
    stored = load_cursor(state.get(world.calendar_id).cursor)
    assert stored is not None and stored[1]
    forgotten = "0" * 40  # shaped like xandikos' tokens (a commit id), but no commit of this calendar
    world.table.update_item(
        Key={"pk": f"CAL#{world.calendar_id}", "sk": "SYNC"},
        UpdateExpression="SET #c = :c",
        ExpressionAttributeNames={"#c": "cursor"},
        ExpressionAttributeValues={":c": dump_cursor("stale-ctag", forgotten)},
    )
    world.put("e4", ics("e4", "Event 4", at(6), at(7)))
    world.delete("e0")
    t1 = NOW + timedelta(minutes=5)
    world.requests.clear()
    world.enqueue("poll")
    world.drain(t1)
    assert "REPORT 412" in world.requests  # the refused token (Radicale answers 403)
    titles = sorted(t for t, _ in world.listed(t1))
    assert titles == ["Event 1", "Event 2", "Event 3", "Event 4"]
    new_cursor = load_cursor(state.get(world.calendar_id).cursor)
    assert new_cursor is not None and new_cursor[1] not in (None, forgotten)
    # only the new event was fetched: one multiget with one href after the calendar-query
    assert world.requests.count("REPORT 207") == 2
