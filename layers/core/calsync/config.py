"""Settings, validated once from the environment and read lazily (never at import time)."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from calsync.domain.links import LinkSettings

M = TypeVar("M", bound=BaseModel)


def from_env(model: type[M], prefix: str = "", names: dict[str, str] | None = None, **values: Any) -> M:
    """``model`` validated from the environment: each field from the variable named like it in
    capitals after ``prefix`` (``names``: a field's other variable), stripped; a variable unset or
    empty leaves the field's default. ``values``: fields not read from the environment."""
    names = names or {}
    for field in model.model_fields.keys() - values.keys():
        value = os.environ.get(names.get(field) or (prefix + field).upper(), "").strip()
        if value:
            values[field] = value
    return model(**values)


def _split(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [part.strip() for part in value.split(",") if part.strip()]


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    table_name: str = Field(min_length=3, max_length=255)
    meeting_hosts: list[str] = Field(default_factory=list)
    legacy_hosts: list[str] = Field(default_factory=list)
    legacy_organizers: list[str] = Field(default_factory=list)
    # CalDAV accounts (issue 4): the KMS key that seals credentials, the sync queue, the local stack
    credentials_key_id: str = ""
    caldav_sync_queue_url: str = ""
    # the poll fan-out (calsync.sync.poll): the queue of shard tasks, and Google's sync queue
    poll_queue_url: str = ""
    google_sync_queue_url: str = ""
    # a schedule that fans out to itself (calsync.sync.tasks): the queue of its own shard tasks
    cleanup_queue_url: str = ""  # CleanupFunction's own task queue
    microsoft_renew_queue_url: str = ""  # MicrosoftRenewFunction's own task queue
    google_renew_queue_url: str = ""  # GoogleRenewFunction's own task queue
    live_due_queue_url: str = ""  # LiveDueFunction's own task queue
    local: bool = False  # CALSYNC_LOCAL=1: the local stack (X6 then allows loopback CalDAV servers)

    @field_validator("meeting_hosts", "legacy_hosts", "legacy_organizers", mode="before")
    @classmethod
    def _comma_separated(cls, value: str | list[str] | None) -> list[str]:
        return _split(value)

    @property
    def links(self) -> LinkSettings:
        return LinkSettings.of(self.meeting_hosts, self.legacy_hosts, self.legacy_organizers)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """From the variables named like the fields (TABLE_NAME, MEETING_HOSTS…); CALSYNC_LOCAL=1: local."""
    return from_env(Settings, local=os.environ.get("CALSYNC_LOCAL", "") == "1")


# ---- presence and profile (issue 8): PresenceFunction, and ApiFunction's photo URLs ---------------
class PresenceSettings(BaseModel):
    """SESSION_TTL_SECONDS: how long a session lives unless renewed (P5, default 12 h);
    PHOTO_BUCKET: where profile photos go (P8); PRESENCE_BUS_NAME: the EventBridge bus of presence
    changes. Empty names switch the feature off (the function still answers)."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    session_ttl_seconds: int = Field(default=12 * 3600, ge=60, le=30 * 24 * 3600)
    photo_bucket: str | None = None
    presence_bus_name: str | None = None


@lru_cache(maxsize=1)
def get_presence_settings() -> PresenceSettings:
    return from_env(PresenceSettings)
