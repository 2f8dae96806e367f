"""The sample events of SchedulingFunction (events/scheduling-*.json, the files `sam local invoke -e`
uses) are answered as they are: with no calendars configured, availability is empty, an appointment
has no primary calendar to go to (C7) and an unknown meeting is not found — problems, never 5xx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from calsync.config import get_settings
from calsync.store.repository import Repository
from calsync.wiring.scheduling import scheduling_deps
from functions.scheduling import app as scheduling_app
from tests.support.apigw import LambdaContext

EVENTS = Path(__file__).resolve().parents[2] / "events"
NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
EXPECTED = {
    "scheduling-availability": (200, "application/json"),
    "scheduling-appointment": (409, "application/problem+json"),
    "scheduling-meeting-link": (404, "application/problem+json"),
}


@pytest.fixture
def scheduling(table: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("TABLE_NAME", table.name)
    monkeypatch.setenv("CREDENTIALS_KEY_ID", "alias/calsync-credentials")  # as the template sets it
    get_settings.cache_clear()
    repo = Repository(table)
    repo.update_profile("alice", time_zone="Europe/Berlin")
    repo.set_member_locations("alice", ["hq"])
    with scheduling_app.wiring.use(scheduling_deps(table, clock=lambda: NOW)):
        yield scheduling_app
    get_settings.cache_clear()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_event_is_answered(scheduling: Any, name: str) -> None:
    # rules C7, C11, C12, X5: the samples work as they are
    event = json.loads((EVENTS / f"{name}.json").read_text())
    answer = scheduling.lambda_handler(event, LambdaContext(function_name="scheduling"))
    status, content_type = EXPECTED[name]
    assert answer["statusCode"] == status, answer.get("body")
    assert answer["headers"]["Content-Type"] == content_type
    body = json.loads(answer["body"])
    if status == 200:
        assert body["busy"] == [] and body["timeZone"] == "Europe/Berlin"
    else:
        assert body["status"] == status and body["detail"]
