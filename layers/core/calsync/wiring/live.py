"""LiveDueFunction's dependencies (docs/adr/0023, docs/adr/0018): a fanned-out schedule's
(``calsync.wiring.tasks.TaskDeps``: SQS, the LiveDueQueue, the table, the clock, a test's bound of
people per task) and the presence service whose answers it compares and publishes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from calsync.api.presence_service import PresenceService
from calsync.config import get_settings
from calsync.store.due import DueStore
from calsync.wiring.presence import presence_service
from calsync.wiring.tasks import TaskDeps, task_deps


@dataclass(frozen=True, kw_only=True)
class LiveDueDeps(TaskDeps):
    due: DueStore  # the DUE buckets of the table (``calsync.store.due``)
    service: PresenceService  # writes the next instants down in ``due``


def live_due_deps(table: Any = None, *, task_queue_url: str | None = None, **options: Any) -> LiveDueDeps:
    """From the settings (TABLE_NAME, LIVE_DUE_QUEUE_URL, SESSION_TTL_SECONDS); a test passes its
    table, task queue and ``task_deps``'s ``options``: its SQS client, clock, ``limit`` (people per
    task)."""
    tasks = task_deps(task_queue_url or get_settings().live_due_queue_url, table, **options)
    due = DueStore(tasks.table)
    return LiveDueDeps(**vars(tasks), due=due, service=presence_service(tasks.table, due=due))
