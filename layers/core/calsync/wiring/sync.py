"""The sync functions' dependencies (docs/adr/0023): the provider's worker, the sync queue (for
visibility timeouts and hand-backs) and the clock; and ``sync_function``, the one handler of them all.

Each sync function is its provider's SQS FIFO queue's event source: the shared
``calsync.sync.queue_worker.QueueWorker`` parses each record's job and hands it to the provider's
worker, reports the records that failed (``ReportBatchItemFailures``; with ``skip_group_on_error`` a
failed record fails only the later records of its own group), sets a retried record's visibility
timeout to the provider's Retry-After or to a backoff by receive count (S8; the dead-letter queue
after maxReceiveCount), and hands a job that ran out of time back to the queue (S12).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pydantic import BaseModel

from calsync.observability import observed
from calsync.sync.jobs import SyncJob
from calsync.sync.queue_worker import QueueWorker
from calsync.wiring import Clock, Wiring, utc_now

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

JobT = TypeVar("JobT", bound=BaseModel)
Handler = Callable[[dict[str, Any], "LambdaContext"], dict[str, Any]]


class Worker(Protocol):
    def run(self, job: Any, now: datetime) -> Any: ...


@dataclass(frozen=True)
class SyncWorkerDeps:
    worker: Worker
    sqs: Any
    queue_url: str | None
    clock: Clock = utc_now


def calendar_keys(job: SyncJob) -> dict[str, str]:
    """The log keys of a calendar's sync job (CalDAV, Google)."""
    return {"calendar_id": job.calendar_id, "reason": job.reason}


@dataclass(frozen=True)
class SyncFunction:
    """A sync function: its ``wiring`` (tests: ``with wiring.use(deps):``) and its Lambda handler."""

    wiring: Wiring[SyncWorkerDeps]
    lambda_handler: Handler


def sync_function(
    name: str,
    build: Callable[[], SyncWorkerDeps],
    job_model: type[JobT],
    log_keys: Callable[[JobT], dict[str, str]],
) -> SyncFunction:
    """The handler of the sync function ``name`` ("GoogleSync": its metrics' prefix), whose deps
    ``build`` makes on the first record; every record reads the deps current then."""
    wiring: Wiring[SyncWorkerDeps] = Wiring(build)
    queue = QueueWorker(
        name=name,
        job_model=job_model,
        run=lambda job, now: wiring().worker.run(job, now),  # noqa: PLW0108 - read at each record
        clock=lambda: wiring().clock(),
        sqs=lambda: wiring().sqs,
        queue_url=lambda: wiring().queue_url,
        log_keys=log_keys,
    )
    return SyncFunction(wiring, observed(queue.handle))
