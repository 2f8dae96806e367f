"""The sync functions' dependencies (docs/adr/0023): the provider's worker, the sync queue (for
visibility timeouts and hand-backs) and the clock; and the ``QueueWorker`` that reads them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from calsync.sync.queue_worker import QueueWorker
from calsync.wiring import Clock, Wiring, utc_now

JobT = TypeVar("JobT", bound=BaseModel)


class Worker(Protocol):
    def run(self, job: Any, now: datetime) -> Any: ...


@dataclass(frozen=True)
class SyncWorkerDeps:
    worker: Worker
    sqs: Any
    queue_url: str | None
    clock: Clock = utc_now


def queue_worker(
    name: str,
    job_model: type[JobT],
    wiring: Wiring[SyncWorkerDeps],
    log_keys: Callable[[JobT], dict[str, str]],
) -> QueueWorker[JobT]:
    """A sync function's ``QueueWorker``: every record reads the function's current deps."""
    return QueueWorker(
        name=name,
        job_model=job_model,
        run=lambda job, now: wiring().worker.run(job, now),  # noqa: PLW0108 - read at each record
        clock=lambda: wiring().clock(),
        sqs=lambda: wiring().sqs,
        queue_url=lambda: wiring().queue_url,
        log_keys=log_keys,
    )
