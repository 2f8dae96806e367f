"""PresenceFunction's dependencies (docs/adr/0023): the presence service over the table, with the
PresenceChanged publisher (PRESENCE_BUS_NAME) and the profile photos' bucket (PHOTO_BUCKET) where
they are configured, and the clock. ``presence_service`` is LiveDueFunction's too
(``calsync.wiring.live``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import boto3

from calsync.api.presence_service import PresenceService
from calsync.config import get_presence_settings
from calsync.events import PresencePublisher
from calsync.store.due import DueStore
from calsync.store.photos import PhotoStore
from calsync.store.presence import PresenceRepository
from calsync.store.repository import Repository
from calsync.wiring import Clock, table_from_settings, utc_now


@dataclass(frozen=True)
class PresenceDeps:
    service: PresenceService
    clock: Clock = utc_now


def presence_service(
    table: Any,
    *,
    publisher: PresencePublisher | None = None,
    photos: PhotoStore | None = None,
    due: DueStore | None = None,
) -> PresenceService:
    """The presence service over ``table``; the live schedule's instants are written down in the
    table's DUE buckets (``due``; docs/adr/0018)."""
    return PresenceService(
        Repository(table),
        PresenceRepository(table),
        session_lifetime=timedelta(seconds=get_presence_settings().session_ttl_seconds),
        publisher=publisher,
        photos=photos,
        due=due if due is not None else DueStore(table),
    )


def presence_deps(
    table: Any = None, *, s3: Any = None, events: Any = None, clock: Clock = utc_now
) -> PresenceDeps:
    """From the settings (TABLE_NAME, SESSION_TTL_SECONDS, PRESENCE_BUS_NAME, PHOTO_BUCKET); a test
    passes its table, S3 and EventBridge clients and its clock."""
    settings = get_presence_settings()
    publisher = None
    if settings.presence_bus_name:
        publisher = PresencePublisher(events or boto3.client("events"), settings.presence_bus_name)
    photos = None if not settings.photo_bucket else PhotoStore(s3, settings.photo_bucket)  # S3: on first use
    table = table if table is not None else table_from_settings()
    return PresenceDeps(presence_service(table, publisher=publisher, photos=photos), clock)
