"""Google sync worker: the GoogleSyncQueue (SQS FIFO, group = calendar) event source.

A handler only (docs/adr/0023): ``calsync.wiring.sync.sync_function`` runs each record (partial batch
failures, Retry-After / backoff, dead-letter queue after maxReceiveCount) through
``calsync_google.worker.GoogleSyncWorker``.
"""

from calsync.sync.jobs import SyncJob
from calsync.wiring.sync import calendar_keys, sync_function
from calsync_google.worker import sync_deps

function = sync_function("GoogleSync", sync_deps, SyncJob, calendar_keys)
wiring = function.wiring  # tests: ``with wiring.use(deps):``
lambda_handler = function.lambda_handler
