"""Microsoft sync worker: the MicrosoftSyncQueue (SQS FIFO, group = mailbox) event source.

A handler only (docs/adr/0023): ``calsync.wiring.sync.sync_function`` runs each record through
``calsync_microsoft.worker.MicrosoftSyncWorker`` (partial batch failures, Retry-After / backoff,
dead-letter queue after maxReceiveCount; a malformed message is logged and dropped). The group being
the mailbox, one worker at a time talks to a mailbox (S8: at most 4 concurrent Graph requests per
mailbox; the worker's are sequential, and an in-process semaphore caps any client of the process at
4), and a failed record fails only the later records of its own mailbox, not the batch.
"""

from calsync.wiring.sync import sync_function
from calsync_microsoft.jobs import MailboxJob
from calsync_microsoft.wiring import sync_deps

function = sync_function(
    "MicrosoftSync", sync_deps, MailboxJob, lambda job: {"account_id": job.account_id, "reason": job.reason}
)
wiring = function.wiring  # tests: ``with wiring.use(deps):``
lambda_handler = function.lambda_handler
