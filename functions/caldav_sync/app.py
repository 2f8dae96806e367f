"""CalDAV sync worker: the CaldavSyncQueue (SQS FIFO, group = calendar) event source.

A handler only (docs/adr/0023): the shared ``calsync.sync.queue_worker.QueueWorker`` runs each
record (partial batch failures, Retry-After / backoff, dead-letter queue after maxReceiveCount)
through ``calsync_caldav.worker.CalDAVSyncWorker``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from calsync.observability import logger, metrics
from calsync.sync.jobs import SyncJob
from calsync.sync.queue_worker import backoff
from calsync.wiring import Wiring
from calsync.wiring.sync import SyncWorkerDeps, queue_worker
from calsync_caldav.worker import sync_deps

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

__all__ = ["backoff", "lambda_handler", "record_handler", "wiring"]

wiring: Wiring[SyncWorkerDeps] = Wiring(sync_deps)  # tests: ``with wiring.use(deps):``
queue = queue_worker(
    "CaldavSync", SyncJob, wiring, lambda job: {"calendar_id": job.calendar_id, "reason": job.reason}
)
record_handler = queue.record_handler


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return queue.handle(event, context)
