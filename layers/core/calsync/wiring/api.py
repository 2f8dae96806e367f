"""ApiFunction's dependencies (docs/adr/0023): the table's repository, the profile photos' bucket
(P8), each provider's sync queue (R8, reached on a room's first PUT or DELETE), the clock."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from calsync.api.calendar_sync import CalendarSync, Enqueue
from calsync.api.service import CAPS, ApiService, Caps
from calsync.config import get_presence_settings
from calsync.domain.models import Provider
from calsync.store.photos import PhotoStore
from calsync.store.repository import Repository
from calsync.wiring import Clock, table_from_settings, utc_now
from calsync.wiring.queues import sync_queues

RESERVE_MS = 3_000  # R8: a room's copy from the store stops this long before the function's timeout


@dataclass(frozen=True)
class ApiFunctionDeps:
    repository: Repository
    photos: PhotoStore | None
    queues: Callable[[], Mapping[Provider, Enqueue]]
    clock: Clock = utc_now
    caps: Caps = CAPS  # the lists' caps (docs/limits.md)

    def service(self, lambda_context: Any = None) -> ApiService:
        """The service of one request; a room's copy from the store stops ``RESERVE_MS`` before the
        function's timeout (the rest is left to the full sync that registering the room queues)."""

        def in_time() -> bool:
            return lambda_context is None or int(lambda_context.get_remaining_time_in_millis()) > RESERVE_MS

        return ApiService(
            self.repository,
            self.photos,
            CalendarSync(self.repository, self.queues(), in_time=in_time),
            caps=self.caps,
        )


def api_deps(
    table: Any = None,
    *,
    queues: Mapping[Provider, Enqueue] | None = None,
    clock: Clock = utc_now,
    caps: Caps = CAPS,
) -> ApiFunctionDeps:
    """From the settings (TABLE_NAME, PHOTO_BUCKET, *_SYNC_QUEUE_URL); a test passes its table,
    what receives the rooms' sync jobs (``queues``), its clock and the lists' ``caps``."""
    bucket = get_presence_settings().photo_bucket
    return ApiFunctionDeps(
        repository=Repository(table if table is not None else table_from_settings()),
        photos=None if bucket is None else PhotoStore(None, bucket),  # S3 client: on the first photo route
        queues=(lambda: queues) if queues is not None else functools.cache(sync_queues),
        clock=clock,
        caps=caps,
    )
