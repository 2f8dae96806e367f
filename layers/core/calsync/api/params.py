"""The request parameters the HTTP functions share (Powertools ``Annotated`` path and query
parameters: validated, and described in the OpenAPI document)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from calsync.api.auth import ID_PATTERN
from calsync.api.schemas import CALENDAR_ID_PATTERN

HEX_ID_PATTERN = r"^[a-f0-9]{32}$"  # accounts and meetings: a hash

UserId = Annotated[str, Path(pattern=ID_PATTERN, description="the person's id (JWT sub)")]
LocationId = Annotated[str, Path(pattern=ID_PATTERN)]
RoomId = Annotated[str, Path(pattern=ID_PATTERN)]
AccountId = Annotated[str, Path(pattern=HEX_ID_PATTERN)]
MeetingId = Annotated[str, Path(pattern=HEX_ID_PATTERN)]
SessionId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
CalendarId = Annotated[
    str, Path(pattern=CALENDAR_ID_PATTERN, description="one of your calendars (GET /v1/me/calendars)")
]
RoomLocation = Annotated[
    str | None,
    Query(pattern=ID_PATTERN, description="the room's location, when several of yours have this room id"),
]
Explain = Annotated[
    bool, Query(description="also list the events left out in the window, with rule ids (U11)")
]
