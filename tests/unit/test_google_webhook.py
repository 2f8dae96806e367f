"""The Google webhook's decision under random headers (hypothesis): never a 5xx, and a sync job
only when the channel id, its token and its resource id are all right. Rules X2, S1."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calsync.api.google_webhook import decide
from calsync.domain.models import UTC
from calsync.store.channels import Channel, new_channel_id, token_digest

CAL = "a" * 32
CHANNEL_ID = new_channel_id(CAL)
TOKEN = "tok-" + "x" * 40
GOOD = Channel(
    channel_id=CHANNEL_ID,
    calendar_id=CAL,
    user_id="u1",
    account_id="b" * 32,
    resource_id="res-1",
    token_sha256=token_digest(TOKEN),
    expires_at=datetime(2026, 11, 27, tzinfo=UTC),
)


class Store:
    def get(self, channel_id: str) -> Channel | None:
        return GOOD if channel_id == CHANNEL_ID else None


text = st.text(max_size=80) | st.sampled_from(
    [CHANNEL_ID, TOKEN, "res-1", "sync", "exists", "", "1", "7", "0", "-3", "99999999999999999999", "٣"]
)
names = st.sampled_from(
    [
        "x-goog-channel-id",
        "x-goog-channel-token",
        "x-goog-resource-id",
        "x-goog-resource-state",
        "x-goog-message-number",
        "content-type",
        "x-other",
    ]
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(names, text, max_size=7))
def test_random_headers_never_5xx_never_enqueue_unless_authentic(headers: dict[str, Any]) -> None:
    decision = decide(headers, Store())  # type: ignore[arg-type]
    assert decision.status in (200, 400, 401)
    authentic = (
        headers.get("x-goog-channel-id") == CHANNEL_ID
        and headers.get("x-goog-channel-token") == TOKEN
        and headers.get("x-goog-resource-id") == "res-1"
    )
    number = str(headers.get("x-goog-message-number", "")).strip()
    numbered = number.isascii() and number.isdigit() and 1 <= int(number) < 2**63
    if decision.job is not None:
        assert authentic and headers.get("x-goog-resource-state") != "sync" and numbered
        assert decision.job.calendar_id == CAL
        assert decision.number == int(number)
    if decision.status == 400:  # issue 13 point 5: Google always numbers its messages
        assert authentic and not numbered
    if headers.get("x-goog-channel-id") == CHANNEL_ID and not authentic:
        assert decision.status == 401


def test_sync_message_starts_nothing() -> None:  # rule S1
    headers = {"x-goog-channel-id": CHANNEL_ID, "x-goog-channel-token": TOKEN, "x-goog-resource-id": "res-1"}
    assert decide({**headers, "x-goog-resource-state": "sync"}, Store()).job is None  # type: ignore[arg-type]
    exists = {**headers, "x-goog-resource-state": "exists", "x-goog-message-number": "2"}
    assert decide(exists, Store()).job is not None  # type: ignore[arg-type]
