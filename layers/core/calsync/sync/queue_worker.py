"""The SQS plumbing every provider's sync function shares (S6, S8).

Each sync function (CalDAV, Google, Microsoft) is an SQS FIFO event source: Powertools'
``SqsFifoPartialProcessor`` runs each record through ``QueueWorker.record_handler``, which parses
the job and hands it to the provider's worker; the answer lists the records that failed
(``ReportBatchItemFailures``). With ``skip_group_on_error`` a failed record fails only the later
records of its own message group (calendar or mailbox), not the batch.

A record fails when its job must be retried: before it fails, its visibility timeout is set to the
provider's Retry-After, or to an exponential backoff by receive count; after the queue's
maxReceiveCount it goes to the dead-letter queue. A malformed message is logged and dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import BaseModel, ValidationError

from calsync.observability import logger, metrics
from calsync.sync import budget as budgets
from calsync.sync.budget import LambdaBudget, OutOfTime
from calsync.sync.failures import describe

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

BACKOFF_BASE = 30  # seconds before the 2nd attempt; doubled each time
BACKOFF_MAX = 900


class RetryLater(Exception):
    """Fail the record; SQS hands it out again after ``delay`` seconds (None: the backoff)."""

    def __init__(self, reason: str, delay: int | None = None) -> None:
        super().__init__(reason)
        self.delay = delay


def backoff(receive_count: int) -> int:
    return int(min(BACKOFF_MAX, BACKOFF_BASE * 2 ** max(0, receive_count - 1)))


class _Result(Protocol):
    @property
    def status(self) -> str: ...


JobT = TypeVar("JobT", bound=BaseModel)


@dataclass
class QueueWorker(Generic[JobT]):
    """One provider's sync queue: how to read a job, run it, and where its queue is.

    Every dependency is a callable, looked up at each record, so that what a test hands over with
    ``wiring.use`` (``calsync.wiring.sync.queue_worker``) is what the next record reads.
    """

    name: str  # metric prefix: "CaldavSync", "GoogleSync", "MicrosoftSync"
    job_model: type[JobT]
    run: Callable[[JobT, datetime], _Result]
    clock: Callable[[], datetime]
    sqs: Callable[[], Any]
    queue_url: Callable[[], str | None]
    log_keys: Callable[[JobT], dict[str, str]]

    def __post_init__(self) -> None:
        self._budget: LambdaBudget | None = None
        self.processor = SqsFifoPartialProcessor(skip_group_on_error=True)
        # report every failed record, also when all failed (instead of raising): each one carries
        # the visibility timeout set for it, and the answer says exactly which ones come back
        self.processor.raise_on_entire_batch_failure = False

    def record_handler(self, record: SQSRecord) -> str:
        budget = self._budget
        if budget is not None and budget.exhausted():  # S12: not started, handed back as it is
            self._hand_back(record, "no time left in this invocation")
            return "handed_back"
        try:
            job = self.job_model.model_validate_json(record.body)
        except ValidationError as exc:
            logger.error(
                "malformed sync job dropped",
                extra={"message_id": record.message_id, "errors": exc.errors()},
            )
            metrics.add_metric(name=f"{self.name}MalformedJob", unit=MetricUnit.Count, value=1)
            return "dropped"
        keys = self.log_keys(job)
        logger.append_keys(**keys)
        try:
            with budgets.running(budget):
                result = self.run(job, self.clock())
        except OutOfTime as exc:  # S12: its progress is stored; the next invocation continues
            self._hand_back(record, str(exc))
            return "handed_back"
        except RetryLater as exc:
            count = int(record.attributes.approximate_receive_count or 1)
            delay = exc.delay or backoff(count)
            self._failed(job, exc, logging.WARNING, retry_in=delay, attempt=count)
            metrics.add_metric(name=f"{self.name}Retried", unit=MetricUnit.Count, value=1)
            self._retry_after(record, delay)
            raise
        except Exception as exc:  # a store error, a parse error, a bug: the record fails, visibly
            count = int(record.attributes.approximate_receive_count or 1)
            self._failed(job, exc, logging.ERROR, attempt=count)
            raise
        finally:
            logger.remove_keys(list(keys))
        if result.status == "failed":  # the provider worker logged why; counted here
            metrics.add_metric(name=f"{self.name}Failed", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name=f"{self.name}_{result.status}", unit=MetricUnit.Count, value=1)
        return str(result.status)

    def _failed(self, job: JobT, exc: BaseException, level: int, **extra: int) -> None:
        """S13: ONE structured line per failed sync (calendar or mailbox, account, provider, error
        class, a short text) and a metric. Never the raw exception text (a provider's answer may
        carry anything); the traceback only at DEBUG."""
        error_class, text = describe(exc)
        fields: dict[str, Any] = {
            **self.log_keys(job),
            "account_id": getattr(job, "account_id", None),
            "provider": self.provider,
            "error_class": error_class,
            "error": text,
            **extra,
        }
        (logger.error if level >= logging.ERROR else logger.warning)("sync failed", extra=fields)
        logger.debug("sync failure details", exc_info=exc)
        metrics.add_metric(name=f"{self.name}Failed", unit=MetricUnit.Count, value=1)

    @property
    def provider(self) -> str:
        return self.name.removesuffix("Sync").lower()  # "CaldavSync" -> "caldav"

    def handle(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        self._budget = LambdaBudget.of(context) if context is not None else None
        try:
            return dict(
                process_partial_response(
                    event=event, record_handler=self.record_handler, processor=self.processor, context=context
                )
            )
        finally:
            self._budget = None

    def _hand_back(self, record: SQSRecord, why: str) -> None:
        """S12 (docs/adr/0009-sync-time-budget.md): send the job again as a new message of the same
        group, and let this record succeed. A new message, not a failed record: a calendar that
        needs ten invocations must not reach the queue's maxReceiveCount and the dead-letter queue.
        The deduplication id is derived from this record: a redelivery of it is not sent twice."""
        group = record.attributes.message_group_id
        extra = {} if group is None else {"MessageGroupId": group}
        if group is not None:
            extra["MessageDeduplicationId"] = f"more-{record.message_id}"
        self.sqs().send_message(QueueUrl=self._url(record), MessageBody=record.body, **extra)
        logger.info("job handed back to the queue", extra={"message_id": record.message_id, "why": why})
        metrics.add_metric(name=f"{self.name}HandedBack", unit=MetricUnit.Count, value=1)

    def _url(self, record: SQSRecord) -> str:
        url = self.queue_url()
        if url:
            return str(url)
        _, _, _, region, account, name = record.event_source_arn.split(":", 5)
        return f"https://sqs.{region}.amazonaws.com/{account}/{name}"

    def _retry_after(self, record: SQSRecord, delay: int) -> None:
        """Make the record come back after ``delay`` seconds (it fails right after)."""
        try:
            self.sqs().change_message_visibility(
                QueueUrl=self._url(record), ReceiptHandle=record.receipt_handle, VisibilityTimeout=delay
            )
        except Exception:  # the queue's own visibility timeout applies then
            logger.exception("cannot delay the retry", extra={"message_id": record.message_id})
