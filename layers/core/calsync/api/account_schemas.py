"""Request and response models of the accounts, calendars and calendar-configuration routes
(API.md "Accounts", "Calendars and configuration"), camelCase on the wire.

Never in any answer: the password or the sealed credentials. The password is a ``SecretStr``, so it
is masked in reprs and validation errors carry only where and what, never the input (problems.py).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, Field, SecretStr, StringConstraints

from calsync.api.schemas import ExternalId, Id, _no_control_characters, _Request, _Wire

ICLOUD_CALDAV_URL = "https://caldav.icloud.com/"
MAX_PASSWORD = 1024
MAX_CONFLICT_CALENDARS = 50

Username = Annotated[
    str,
    StringConstraints(min_length=1, max_length=256, strip_whitespace=True),
    AfterValidator(_no_control_characters),
]
ServerUrl = Annotated[str, StringConstraints(min_length=8, max_length=2048, strip_whitespace=True)]


class CaldavConnectIn(_Request):
    location_id: Id = Field(description="the location to use the account in (you must be a member)")
    server_url: ServerUrl = Field(
        default=ICLOUD_CALDAV_URL, description="https only (X6)", examples=[ICLOUD_CALDAV_URL]
    )
    username: Username = Field(examples=["alice@icloud.com"])
    password: SecretStr = Field(
        min_length=1, max_length=MAX_PASSWORD, description="an app-specific password; stored encrypted"
    )


class MicrosoftAuthorizeIn(_Request):
    location_id: Id = Field(description="the location to use the account in (you must be a member)")
    redirect_uri: str = Field(
        min_length=8, max_length=2048, pattern=r"^https://[^\s]+$|^http://(localhost|127\.0\.0\.1)[:/][^\s]*$"
    )


class AuthorizeOut(_Wire):
    """An OAuth sign-in (Google, Microsoft): where to send the person, and the state that the
    redirect URI receives with the code and hands to the callback."""

    authorization_url: str
    state: str


class AccountOut(_Wire):
    id: str
    provider: Literal["google", "microsoft", "caldav"]
    email: str | None
    status: Literal["active", "reauth_required", "syncing", "error"] = Field(
        description="error: the last sync of one of its calendars failed (see lastError)"
    )
    locations: list[str]
    last_synced_at: AwareDatetime | None
    last_error: str | None = Field(
        default=None,
        description="a short reason when the last sync of one of its calendars failed, or events of it "
        "could not be read or stored in full; else null. Never a secret or a raw error text",
    )


class CalendarSyncOut(_Wire):
    """How the calendar's last sync went (S11, S13)."""

    status: Literal["never", "ok", "syncing", "error"]
    last_synced_at: AwareDatetime | None
    last_error: str | None = Field(description="a short reason when the last sync failed, else null")
    skipped_events: int = Field(
        description="events of the last sync that could not be read or stored in full (docs/limits.md)"
    )


class AccountsOut(_Wire):
    accounts: list[AccountOut]


class CalendarOut(_Wire):
    id: str
    account_id: str
    provider: Literal["google", "microsoft", "caldav"]
    name: str
    access_role: Literal["owner", "writer", "reader", "freeBusyReader"]
    time_zone: str | None
    sync: CalendarSyncOut = Field(description="the calendar's sync state (never: not synced yet)")
    room_calendar: bool = Field(
        description="R9: you marked it as a room calendar (PUT /v1/me/calendars/{calendarId}/room-consent): "
        "an admin of one of your locations may make it a room there"
    )


class CalendarsOut(_Wire):
    calendars: list[CalendarOut]


class CalendarConfigIn(_Request):
    primary_calendar_id: ExternalId | None = Field(description="a writable calendar, or null")
    conflict_calendar_ids: list[ExternalId] = Field(default_factory=list, max_length=MAX_CONFLICT_CALENDARS)


class CalendarConfigOut(_Wire):
    primary_calendar_id: str | None
    conflict_calendar_ids: list[str]
