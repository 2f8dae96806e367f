"""Request and response models of the scheduling routes (API.md: availability, appointments,
meeting links), camelCase on the wire."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field, StringConstraints, model_validator

from calsync.api.schemas import Meeting, _no_control_characters, _Request, _Wire

MAX_RANGE = timedelta(days=62)  # C11: availability ranges up to 62 days
MAX_APPOINTMENT = timedelta(days=1)

Title = Annotated[
    str, StringConstraints(min_length=1, max_length=200), AfterValidator(_no_control_characters)
]
Description = Annotated[str, StringConstraints(max_length=8000)]
Email = Annotated[
    str, StringConstraints(pattern=r"^[^@\s<>:;,]+@[^@\s<>:;,]+\.[^@\s<>:;,]+$", max_length=254)
]


class BusyInterval(_Wire):
    start: AwareDatetime
    end: AwareDatetime


class Availability(_Wire):
    time_zone: str = Field(description="the person's time zone (all-day events block its whole days)")
    start: AwareDatetime
    end: AwareDatetime
    busy: list[BusyInterval] = Field(description="merged busy intervals, sorted, clipped to the range")


class AppointmentIn(_Request):
    title: Title
    start: AwareDatetime
    end: AwareDatetime
    description: Description | None = None
    attendees: list[Email] = Field(default_factory=list, max_length=50)
    allow_conflict: bool = False

    @model_validator(mode="after")
    def _order(self) -> AppointmentIn:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if self.end - self.start > MAX_APPOINTMENT:
            raise ValueError("an appointment lasts at most 24 hours")
        return self


class AppointmentOut(Meeting):
    """The appointment as stored (its ``id`` is the meeting id of GET /v1/me/meetings)."""


__all__ = ["MAX_RANGE", "AppointmentIn", "AppointmentOut", "Availability", "BusyInterval", "Meeting"]
