"""Rule R4: what a room panel may show of a private or confidential event.

Applied when an occurrence is stored for a room, so that what may not be shown is never written.
"""

from __future__ import annotations

import dataclasses

from calsync.domain.models import Occurrence

WRITE_ROLES = frozenset({"owner", "writer"})


def for_room(occ: Occurrence, access_role: str | None) -> Occurrence:
    """The room's copy of ``occ``: a private event loses its title, and its meeting link too unless
    calsync's access to the room calendar includes making changes to events (writer or owner)."""
    if not occ.private:
        return occ
    link = occ.meeting_link if access_role in WRITE_ROLES else None
    return dataclasses.replace(occ, title=None, meeting_link=link, organizer=None)
