"""Google sync worker: the GoogleSyncQueue (SQS FIFO, group = calendar) event source.

Thin: Powertools' ``SqsFifoPartialProcessor`` runs each record through ``record_handler``, which
parses the job and hands it to ``calsync_google.worker.GoogleSyncWorker``; the answer lists the
records that failed (``ReportBatchItemFailures``). With ``skip_group_on_error`` a failed record
fails only the later records of its own calendar (FIFO order per calendar), not the batch.

A record fails when the job must be retried (S8): before failing it, its visibility timeout is
set to the server's Retry-After, or to an exponential backoff by receive count; after the queue's
maxReceiveCount it goes to the dead-letter queue. A malformed message is logged and dropped.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import ValidationError

from calsync.observability import logger, metrics, tracer
from calsync.sync.jobs import SyncJob

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from calsync_google.worker import GoogleSyncWorker

BACKOFF_BASE = 30  # seconds before the 2nd attempt; doubled each time
BACKOFF_MAX = 900

processor = SqsFifoPartialProcessor(skip_group_on_error=True)
# report every failed record, also when all failed (instead of raising): each one carries the
# visibility timeout set for it, and the answer says exactly which ones come back
processor.raise_on_entire_batch_failure = False


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
    import boto3  # noqa: PLC0415

    return boto3.client("sqs")


@functools.cache
def worker() -> GoogleSyncWorker:
    from calsync_google.worker import from_environment  # noqa: PLC0415

    return from_environment(**{k: v for k, v in _overrides.items() if k not in ("sqs", "queue_url")})


def backoff(receive_count: int) -> int:
    return min(BACKOFF_MAX, BACKOFF_BASE * 2 ** max(0, receive_count - 1))


def _queue_url(record: SQSRecord) -> str:
    from calsync_google.settings import get_google_settings  # noqa: PLC0415

    url = _overrides.get("queue_url") or get_google_settings().sync_queue_url
    if url:
        return str(url)
    _, _, _, region, account, name = record.event_source_arn.split(":", 5)
    return f"https://sqs.{region}.amazonaws.com/{account}/{name}"


def _retry_after(record: SQSRecord, delay: int) -> None:
    """Make the record come back after ``delay`` seconds (it fails right after)."""
    try:
        _sqs().change_message_visibility(
            QueueUrl=_queue_url(record), ReceiptHandle=record.receipt_handle, VisibilityTimeout=delay
        )
    except Exception:  # the queue's own visibility timeout applies then
        logger.exception("cannot delay the retry", extra={"message_id": record.message_id})


def record_handler(record: SQSRecord) -> str:
    from calsync_google.worker import RetryLater  # noqa: PLC0415

    try:
        job = SyncJob.model_validate_json(record.body)
    except ValidationError as exc:
        logger.error(
            "malformed sync job dropped", extra={"message_id": record.message_id, "errors": exc.errors()}
        )
        metrics.add_metric(name="GoogleSyncMalformedJob", unit=MetricUnit.Count, value=1)
        return "dropped"
    logger.append_keys(calendar_id=job.calendar_id, reason=job.reason)
    try:
        result = worker().run(job, clock())
    except RetryLater as exc:
        count = int(record.attributes.approximate_receive_count or 1)
        delay = exc.delay or backoff(count)
        logger.warning("sync retried later", extra={"delay": delay, "attempt": count, "why": str(exc)})
        metrics.add_metric(name="GoogleSyncRetried", unit=MetricUnit.Count, value=1)
        _retry_after(record, delay)
        raise
    finally:
        logger.remove_keys(["calendar_id", "reason"])
    metrics.add_metric(name=f"GoogleSync_{result.status}", unit=MetricUnit.Count, value=1)
    return result.status


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return dict(
        process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    )
