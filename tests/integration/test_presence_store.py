"""Sessions in the store (calsync.store.presence, P5): their conditional writes, on moto and on
DynamoDB Local."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from calsync.domain.errors import Conflict, NotFound
from calsync.store.presence import PresenceRepository

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_a_session_id_is_used_once(table: Any) -> None:
    presence = PresenceRepository(table)
    presence.create_session("alice", "s1", NOW, HOUR)
    with pytest.raises(Conflict, match="this session id is taken"):
        presence.create_session("alice", "s1", NOW, HOUR)


def test_only_a_live_session_is_renewed(table: Any) -> None:
    presence = PresenceRepository(table)
    presence.create_session("alice", "s1", NOW, HOUR)
    renewed = presence.renew_session("alice", "s1", NOW + HOUR / 2, HOUR)
    assert renewed.expires_at == NOW + HOUR * 3 / 2
    with pytest.raises(NotFound, match="no live session"):
        presence.renew_session("alice", "unknown", NOW, HOUR)
    with pytest.raises(NotFound, match="no live session"):
        presence.renew_session("alice", "s1", NOW + HOUR * 2, HOUR)  # expired meanwhile
