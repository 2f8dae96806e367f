"""Poll fan-out (S3, S5): runs one shard task of the poll queue per record (``calsync.sync.poll``).

The schedules (CaldavPollFunction, GoogleRenewFunction) send one ``PollTask`` per shard of the poll
registry to the PollQueue; this function, many invocations in parallel, reads at most
``SHARD_BATCH`` entries of the task's shard (one Query) and sends their sync jobs to the
provider's sync queue. What is left of the shard — more entries, or the time budget ran short —
goes back to the PollQueue as a new task, so no invocation does more than a bounded share of a poll
(docs/adr/0016-poll-fan-out-and-shared-calendars.md).

Thin, and free of provider layers: it only reads the registry and sends SQS messages.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from calsync.config import get_settings
from calsync.observability import logger, metrics
from calsync.store.hosts import HostBudgets, configured_rate
from calsync.store.sync_state import SyncStateStore
from calsync.sync import budget as budgets
from calsync.sync.poll import PollTask, poll_shard
from calsync.sync.tasks import handle_record

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext


def utc_now() -> datetime:
    return datetime.now(UTC)


clock: Callable[[], datetime] = utc_now  # tests freeze it
_overrides: dict[str, Any] = {}
processor = BatchProcessor(event_type=EventType.SQS)


def set_dependencies(**overrides: Any) -> None:
    """Tests: ``table``, ``sqs``, ``poll_queue_url``, ``sync_queue_urls`` ({provider: url}),
    ``limit`` (entries per task); no arguments restores the defaults."""
    _overrides.clear()
    _overrides.update(overrides)
    _state.cache_clear()
    _hosts.cache_clear()
    _sqs.cache_clear()


@functools.cache
def _state() -> SyncStateStore:
    return SyncStateStore(
        _overrides.get("table") or boto3.resource("dynamodb").Table(get_settings().table_name)
    )


@functools.cache
def _hosts() -> HostBudgets:
    table = _overrides.get("table") or boto3.resource("dynamodb").Table(get_settings().table_name)
    return HostBudgets(table, configured_rate())


@functools.cache
def _sqs() -> Any:
    if "sqs" in _overrides:
        return _overrides["sqs"]
    return boto3.client("sqs")


def _sync_queue_url(provider: str) -> str:
    urls = _overrides.get("sync_queue_urls") or {
        "caldav": get_settings().caldav_sync_queue_url,
        "google": get_settings().google_sync_queue_url,
    }
    return str(urls[provider])


def _poll_queue_url() -> str:
    return str(_overrides.get("poll_queue_url") or get_settings().poll_queue_url)


def _run(task: PollTask, budget: budgets.LambdaBudget | None) -> PollTask | None:
    extra: dict[str, Any] = {"provider": task.provider, "shard": task.shard, "run": task.run}
    kwargs = {"limit": _overrides["limit"]} if "limit" in _overrides else {}
    hosts = _hosts() if task.provider == "caldav" else None  # the per-server budget (docs/adr/0020)
    summary = poll_shard(
        _state(), _sqs(), _sync_queue_url(task.provider), task, clock(), budget=budget, hosts=hosts, **kwargs
    )
    if summary.failed:
        logger.warning(
            "jobs not sent; the next poll sends them", extra={**extra, "calendars": summary.failed}
        )
        metrics.add_metric(name="PollJobsNotSent", unit=MetricUnit.Count, value=len(summary.failed))
    if summary.deferred:
        logger.info(
            "calendars deferred: their server is backing off or over budget",
            extra={**extra, "deferred": summary.deferred, "hosts": summary.throttled_hosts},
        )
        metrics.add_metric(name="PollDeferred", unit=MetricUnit.Count, value=summary.deferred)
    logger.info(
        "poll shard done" if summary.rest is None else "poll shard: the rest is handed back",
        extra={**extra, "read": summary.read, "enqueued": summary.enqueued, "resting": summary.resting},
    )
    metrics.add_metric(name="PollEnqueued", unit=MetricUnit.Count, value=summary.enqueued)
    metrics.add_metric(name="PollReconciles", unit=MetricUnit.Count, value=summary.reconciles)
    return summary.rest


def _hand_back(rest: PollTask) -> None:
    _sqs().send_message(QueueUrl=_poll_queue_url(), MessageBody=rest.body())


def record_handler(record: SQSRecord) -> None:
    # the generic shard-task loop (calsync.sync.tasks): malformed tasks dropped, budget, hand-back
    handle_record(record.body, PollTask, _run, _hand_back)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    with budgets.running(budgets.LambdaBudget.of(context)):
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
