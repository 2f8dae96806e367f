"""CalDAV sync worker: the CaldavSyncQueue's event source (SQS FIFO, group = calendar). Each job
runs through ``calsync_caldav.worker.CalDAVSyncWorker`` (the handler: ``calsync.wiring.sync``)."""

from calsync.sync.jobs import SyncJob
from calsync.wiring.sync import calendar_keys, sync_function
from calsync_caldav.worker import sync_deps

function = sync_function("CaldavSync", sync_deps, SyncJob, calendar_keys)
wiring = function.wiring  # tests: ``with wiring.use(deps):``
lambda_handler = function.lambda_handler
