"""CalDAV sync worker: the CaldavSyncQueue (SQS FIFO, group = calendar) event source.

Thin: the shared ``calsync.sync.queue_worker.QueueWorker`` runs each record (partial batch failures,
Retry-After / backoff, dead-letter queue after maxReceiveCount) through
``calsync_caldav.worker.CalDAVSyncWorker``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3

from calsync.config import get_settings
from calsync.crypto import CredentialBox
from calsync.observability import logger, metrics
from calsync.store.hosts import configured_rate
from calsync.sync.jobs import SyncJob
from calsync.sync.queue_worker import QueueWorker, backoff
from calsync_caldav.worker import CalDAVSyncWorker, guarded_client_factory

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

__all__ = ["backoff", "lambda_handler", "record_handler", "set_dependencies"]


def utc_now() -> datetime:
    return datetime.now(UTC)


clock: Callable[[], datetime] = utc_now  # tests freeze it
_overrides: dict[str, Any] = {}


def set_dependencies(**overrides: Any) -> None:
    """Tests: ``table``, ``kms``, ``sqs``, ``key_id``, ``queue_url``, ``client_factory``, ``links``,
    ``allow_local``, ``resolve`` (the X6 guard's, for the default client factory); no arguments
    restores the defaults."""
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
def worker() -> CalDAVSyncWorker:
    o = _overrides
    table = o.get("table") or boto3.resource("dynamodb").Table(get_settings().table_name)
    box = CredentialBox(
        o.get("kms") or boto3.client("kms"), o.get("key_id") or get_settings().credentials_key_id
    )
    # rule X6 on every connection of a poll or sync, as at connect (the local stack allows loopback)
    clients = o.get("client_factory") or guarded_client_factory(
        allow_local=bool(o["allow_local"] if "allow_local" in o else get_settings().local),
        resolve=o.get("resolve"),
    )
    return CalDAVSyncWorker(
        table,
        box,
        links=o.get("links") or get_settings().links,
        client_factory=clients,
        host_jobs_per_minute=int(o.get("host_jobs_per_minute") or configured_rate()),
    )


def _queue_url() -> str | None:
    return _overrides.get("queue_url") or get_settings().caldav_sync_queue_url


queue = QueueWorker(
    name="CaldavSync",
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
