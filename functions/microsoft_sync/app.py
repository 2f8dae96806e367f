"""Microsoft sync worker: the MicrosoftSyncQueue (SQS FIFO, group = mailbox) event source.

Thin: the shared ``calsync.sync.queue_worker.QueueWorker`` runs each record: it parses the
mailbox job and hands it to ``calsync_microsoft.worker.MicrosoftSyncWorker``; the answer lists
the records that failed (``ReportBatchItemFailures``). With ``skip_group_on_error`` a failed record
fails only the later records of its own mailbox, not the batch. The group being the mailbox,
one worker at a time talks to a mailbox (S8: at most 4 concurrent Graph requests per mailbox; the
worker's are sequential, and an in-process semaphore caps any client of the process at 4).

A record fails when the job must be retried (S8): before failing it, its visibility timeout is
set to the server's Retry-After, or to an exponential backoff by receive count; after the queue's
maxReceiveCount it goes to the dead-letter queue. A malformed message is logged and dropped.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3

from calsync.observability import logger, metrics
from calsync.sync.queue_worker import QueueWorker, backoff
from calsync_microsoft.jobs import MailboxJob
from calsync_microsoft.settings import get_microsoft_settings
from calsync_microsoft.wiring import worker_of

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from calsync_microsoft.worker import MicrosoftSyncWorker

__all__ = ["backoff", "lambda_handler", "record_handler", "set_dependencies"]


def utc_now() -> datetime:
    return datetime.now(UTC)


clock: Callable[[], datetime] = utc_now  # tests freeze it
_overrides: dict[str, Any] = {}


def set_dependencies(**overrides: Any) -> None:
    """Tests: see ``calsync_microsoft.wiring``; no arguments restores the defaults."""
    _overrides.clear()
    _overrides.update(overrides)
    worker.cache_clear()
    _sqs.cache_clear()


@functools.cache
def _sqs() -> Any:
    if "sqs" in _overrides:
        return _overrides["sqs"]

    return boto3.client("sqs")


@functools.cache
def worker() -> MicrosoftSyncWorker:
    return worker_of(_overrides)


def _queue_url() -> str | None:
    return _overrides.get("queue_url") or get_microsoft_settings().sync_queue_url


queue = QueueWorker(
    name="MicrosoftSync",
    job_model=MailboxJob,
    run=lambda job, now: worker().run(job, now),
    clock=lambda: clock(),  # noqa: PLW0108 - looked up late: tests rebind the module's clock
    sqs=_sqs,
    queue_url=_queue_url,
    log_keys=lambda job: {"account_id": job.account_id, "reason": job.reason},
)
record_handler = queue.record_handler


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return queue.handle(event, context)
