"""Google sync worker: the GoogleSyncQueue (SQS FIFO, group = calendar) event source.

Thin: the shared ``calsync.sync.queue_worker.QueueWorker`` runs each record (partial batch failures,
Retry-After / backoff, dead-letter queue after maxReceiveCount) through
``calsync_google.worker.GoogleSyncWorker``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3

from calsync.observability import logger, metrics
from calsync.sync.jobs import SyncJob
from calsync.sync.queue_worker import QueueWorker, backoff
from calsync_google.settings import get_google_settings
from calsync_google.worker import from_environment

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from calsync_google.worker import GoogleSyncWorker

__all__ = ["backoff", "lambda_handler", "record_handler", "set_dependencies"]


def utc_now() -> datetime:
    return datetime.now(UTC)


clock: Callable[[], datetime] = utc_now  # tests freeze it
_overrides: dict[str, Any] = {}


def set_dependencies(**overrides: Any) -> None:
    """Tests: ``table``, ``kms``, ``sqs``, ``key_id``, ``queue_url``, ``services``, ``client``,
    ``webhook_url``, ``links``, ``caller``;
    no arguments restores the defaults."""
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
def worker() -> GoogleSyncWorker:
    return from_environment(**{k: v for k, v in _overrides.items() if k not in ("sqs", "queue_url")})


def _queue_url() -> str | None:
    return _overrides.get("queue_url") or get_google_settings().sync_queue_url


queue = QueueWorker(
    name="GoogleSync",
    job_model=SyncJob,
    run=lambda job, now: worker().run(job, now),
    clock=lambda: clock(),  # noqa: PLW0108 - looked up late: tests rebind the module's clock
    sqs=_sqs,
    queue_url=_queue_url,
    log_keys=lambda job: {"calendar_id": job.calendar_id, "reason": job.reason},
)
record_handler = queue.record_handler


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return queue.handle(event, context)
