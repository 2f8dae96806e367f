"""Settings, validated once from the environment and read lazily (never at import time)."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, field_validator

from calsync.domain.links import LinkSettings


def _split(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [part.strip() for part in value.split(",") if part.strip()]


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    table_name: str = Field(min_length=3, max_length=255)
    meeting_hosts: list[str] = Field(default_factory=list)
    legacy_hosts: list[str] = Field(default_factory=list)
    legacy_organizers: list[str] = Field(default_factory=list)

    @field_validator("meeting_hosts", "legacy_hosts", "legacy_organizers", mode="before")
    @classmethod
    def _comma_separated(cls, value: str | list[str] | None) -> list[str]:
        return _split(value)

    @property
    def links(self) -> LinkSettings:
        return LinkSettings.of(self.meeting_hosts, self.legacy_hosts, self.legacy_organizers)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    env = os.environ
    return Settings(
        table_name=env.get("TABLE_NAME", ""),
        meeting_hosts=env.get("MEETING_HOSTS", ""),
        legacy_hosts=env.get("LEGACY_HOSTS", ""),
        legacy_organizers=env.get("LEGACY_ORGANIZERS", ""),
    )
