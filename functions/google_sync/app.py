"""Google sync worker: ``calsync_google.worker.GoogleSyncWorker`` runs the GoogleSyncQueue's jobs
(SQS FIFO, one group per calendar; retries, backoff and hand-backs: ``calsync.wiring.sync``)."""

from calsync.sync.jobs import SyncJob
from calsync.wiring.sync import calendar_keys, sync_function
from calsync_google.worker import sync_deps

function = sync_function("GoogleSync", sync_deps, SyncJob, calendar_keys)
wiring = function.wiring  # tests: ``with wiring.use(deps):``
lambda_handler = function.lambda_handler
