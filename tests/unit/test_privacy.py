"""Rule R4: what a room panel may show of a private or confidential event (``privacy.for_room``)."""

from __future__ import annotations

import pytest

from calsync.domain.models import Visibility
from calsync.domain.privacy import for_room
from tests.support.builders import LINK_A, timed


@pytest.mark.parametrize("visibility", [Visibility.PRIVATE, Visibility.CONFIDENTIAL])
@pytest.mark.parametrize(
    ("access_role", "link_kept"),
    [
        ("owner", True),
        ("writer", True),
        ("reader", False),
        ("freeBusyReader", False),
        (None, False),
    ],
)
def test_private_event_loses_title_and_link_unless_writer(
    visibility: Visibility, access_role: str | None, link_kept: bool
) -> None:
    # rule R4: no title; the link only when access includes "make changes to events"
    occ = timed(
        "2026-06-10T14:00:00Z",
        title="Board: layoffs",
        visibility=visibility,
        meeting_link=LINK_A,
        organizer="ceo@example.com",
    )
    stored = for_room(occ, access_role)
    assert stored.title is None
    assert stored.meeting_link == (LINK_A if link_kept else None)
    assert stored.organizer is None
    # the rest of the occurrence, its identity included, is unchanged
    assert (stored.id, stored.start, stored.end, stored.visibility) == (
        occ.id,
        occ.start,
        occ.end,
        visibility,
    )


@pytest.mark.parametrize("visibility", [Visibility.DEFAULT, Visibility.PUBLIC])
@pytest.mark.parametrize("access_role", ["owner", "reader", None])
def test_non_private_event_is_stored_as_is(visibility: Visibility, access_role: str | None) -> None:
    # rule R4: only private and confidential events are redacted
    occ = timed("2026-06-10T14:00:00Z", title="Team lunch", visibility=visibility, meeting_link=LINK_A)
    assert for_room(occ, access_role) == occ
