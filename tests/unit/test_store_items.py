"""The stored items' own checks (calsync.store.items)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from calsync.store.items import Profile, Room

ROOM = {"room_id": "board", "location_id": "hq", "name": "Board", "account_id": "a1", "calendar_id": "c1"}


def test_a_person_and_a_room_keep_a_time_zone_the_runtime_knows() -> None:
    assert Profile(user_id="alice", time_zone="Europe/Berlin").zone.key == "Europe/Berlin"
    assert Room(**ROOM, time_zone="America/New_York").zone.key == "America/New_York"
    assert Profile(user_id="alice").time_zone == Room(**ROOM).time_zone == "UTC"


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "../etc/passwd", "/UTC"])
def test_a_person_or_a_room_with_an_unknown_time_zone_is_refused(zone: str) -> None:
    with pytest.raises(ValidationError, match="unknown time zone"):
        Profile(user_id="alice", time_zone=zone)
    with pytest.raises(ValidationError, match="unknown time zone"):
        Room(**ROOM, time_zone=zone)
