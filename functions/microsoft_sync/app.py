"""Microsoft sync worker: the MicrosoftSyncQueue (SQS FIFO, group = mailbox) event source.

A handler only (docs/adr/0023): the shared ``calsync.sync.queue_worker.QueueWorker`` runs each
record: it parses the mailbox job and hands it to ``calsync_microsoft.worker.MicrosoftSyncWorker``;
the answer lists the records that failed (``ReportBatchItemFailures``). With ``skip_group_on_error``
a failed record fails only the later records of its own mailbox, not the batch. The group being the
mailbox, one worker at a time talks to a mailbox (S8: at most 4 concurrent Graph requests per
mailbox; the worker's are sequential, and an in-process semaphore caps any client of the process at
4).

A record fails when the job must be retried (S8): before failing it, its visibility timeout is
set to the server's Retry-After, or to an exponential backoff by receive count; after the queue's
maxReceiveCount it goes to the dead-letter queue. A malformed message is logged and dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from calsync.observability import logger, metrics
from calsync.sync.queue_worker import backoff
from calsync.wiring import Wiring
from calsync.wiring.sync import SyncWorkerDeps, queue_worker
from calsync_microsoft.jobs import MailboxJob
from calsync_microsoft.wiring import sync_deps

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

__all__ = ["backoff", "lambda_handler", "record_handler", "wiring"]

wiring: Wiring[SyncWorkerDeps] = Wiring(sync_deps)  # tests: ``with wiring.use(deps):``
queue = queue_worker(
    "MicrosoftSync", MailboxJob, wiring, lambda job: {"account_id": job.account_id, "reason": job.reason}
)
record_handler = queue.record_handler


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return queue.handle(event, context)
