"""Request and response models of presence and profile (API.md "Presence and profile"), camelCase on
the wire. Validation here is rule X5's first line: bad input never reaches the store."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field, StringConstraints

from calsync.api.schemas import _Request, _Wire
from calsync.domain.presence import MAX_MESSAGE, Shown, Status, clean_message
from calsync.store.photos import MAX_PHOTO_BYTES, PhotoType

Message = Annotated[str, StringConstraints(max_length=MAX_MESSAGE), AfterValidator(clean_message)]
# a dialable number: digits with an optional leading +, spaces, dots, dashes, slashes and brackets
PhoneNumber = Annotated[str, StringConstraints(pattern=r"^\+?[0-9][0-9 ()./-]{1,30}[0-9]$")]
Extension = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,10}$")]


class PresenceIn(_Request):
    """Choose a status (P1); ``message``: up to 140 characters (P4), null or "" clears it, leaving it
    out keeps the current one."""

    status: Status
    message: Message | None = Field(default=None, examples=["Back at 14:00"])


class PresenceOut(_Wire):
    """What others see (P2, P3, P5, P6): do_not_disturb is busy with ``acceptsCalls: false``."""

    user_id: str
    status: Shown
    message: str | None
    in_meeting_until: AwareDatetime | None = Field(
        description="while a meeting in progress makes the person busy (P6), in their time zone"
    )
    accepts_calls: bool
    accepts_messages: bool
    updated_at: AwareDatetime


class MyPresenceOut(PresenceOut):
    """What the person sees of themself: also the status they chose (null: automatic)."""

    chosen_status: Status | None


class SessionOut(_Wire):
    session_id: str
    expires_at: AwareDatetime = Field(description="renew before this (PUT /v1/me/sessions/{sessionId})")


class DirectoryEntryIn(_Request):
    """The person's phone number and extension (P8); a field left out or null is removed."""

    phone_number: PhoneNumber | None = Field(default=None, examples=["+49 30 1234567"])
    extension: Extension | None = Field(default=None, examples=["4711"])


class DirectoryEntryOut(_Wire):
    user_id: str
    location_id: str
    phone_number: str | None
    extension: str | None


class PhotoUploadIn(_Request):
    content_type: PhotoType
    size: Annotated[int, Field(strict=True, ge=1, le=MAX_PHOTO_BYTES, description="bytes, at most 5 MiB")]


class PhotoUploadOut(_Wire):
    """POST the file as multipart/form-data to ``uploadUrl`` with every one of ``fields`` first and
    the file last (field ``file``); S3 refuses other content types and sizes itself."""

    upload_url: str
    fields: dict[str, str]
    expires_at: AwareDatetime
