"""Request and response models of the HTTP API (API.md), camelCase on the wire.

One model per boundary: these are mapped explicitly from the domain (``service``), never shared
with the stored items.
"""

from __future__ import annotations

import unicodedata
from datetime import date
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic.alias_generators import to_camel

from calsync.api.auth import ID_PATTERN
from calsync.store.items import valid_zone

# provider ids of accounts and calendars are longer and richer than ours (Graph ids end in "=")
EXTERNAL_ID_PATTERN = r"^[A-Za-z0-9._:@=+/~-]{1,512}$"
CALENDAR_ID_PATTERN = r"^[A-Za-z0-9._:@=+~-]{1,512}$"  # an external id that fits in a path segment


def _no_control_characters(value: str) -> str:
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in value):
        raise ValueError("must not contain control characters")
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _zone(value: str) -> str:
    try:
        return valid_zone(value)
    except ValueError:
        raise ValueError("unknown time zone: use an IANA name such as Europe/Berlin") from None


DisplayName = Annotated[
    str, StringConstraints(min_length=1, max_length=100), AfterValidator(_no_control_characters)
]
TimeZone = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_zone)]
Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
ExternalId = Annotated[str, StringConstraints(pattern=EXTERNAL_ID_PATTERN)]


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, defer_build=True)


class _Request(_Wire):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=False, frozen=True, extra="forbid", defer_build=True
    )


# ---- meetings --------------------------------------------------------------------------------
class Window(_Wire):
    start: AwareDatetime
    end: AwareDatetime


class Meeting(_Wire):
    id: str
    title: str | None
    start: AwareDatetime
    end: AwareDatetime
    all_day: bool
    start_date: date | None = Field(description="all-day events: the first day; otherwise null")
    end_date: date | None = Field(description="all-day events: the day after the last; otherwise null")
    meeting_link: str | None
    recurring: bool
    private: bool
    can_add_meeting_link: bool
    calendar_id: str
    account_id: str
    provider: str


class ExcludedMeeting(_Wire):
    id: str
    title: str | None
    start: AwareDatetime
    end: AwareDatetime
    rules: list[str] = Field(description="ids of the rules that left it out (PRODUCT.md)")


class Meetings(_Wire):
    time_zone: str = Field(examples=["Europe/Berlin"])
    window: Window
    meetings: list[Meeting] = Field(
        description="in U9 order; at most 500 meetings and about 2 MiB of JSON (docs/limits.md)"
    )
    truncated: bool = Field(
        description="true when more meetings matched than the list holds (the first are kept)"
    )


class ExplainedMeetings(Meetings):
    """With ``explain=true`` (U11): also the events left out in the window, and why."""

    excluded: list[ExcludedMeeting] = Field(
        description="in U9 order; at most 500 events and about 1 MiB of JSON (docs/limits.md)"
    )
    excluded_truncated: bool = Field(
        description="true when more events were left out than ``excluded`` holds"
    )


# ---- profile ---------------------------------------------------------------------------------
class ProfileOut(_Wire):
    user_id: str
    display_name: str | None
    phone_number: str | None
    extension: str | None
    photo_url: str | None
    time_zone: str


class ProfilePatch(_Request):
    """Fields to change; omit a field to keep it (null is not a value)."""

    time_zone: TimeZone | None = Field(default=None, examples=["Europe/Berlin"])
    display_name: DisplayName | None = Field(default=None, examples=["Alice Example"])

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            nulls = [k for k, v in data.items() if v is None and k in ("timeZone", "displayName")]
            if nulls:
                raise ValueError(f"{', '.join(nulls)} cannot be null: omit the field to keep its value")
        return data


# ---- rooms -----------------------------------------------------------------------------------
class RoomIn(_Request):
    name: DisplayName
    time_zone: TimeZone
    account_id: ExternalId
    calendar_id: ExternalId


class RoomOut(_Wire):
    id: str
    location_id: str
    name: str
    time_zone: str
    account_id: str
    calendar_id: str
