"""Google schedule (S4, S5, R8): renews push channels well before they expire, refreshes each
account's calendar list (a calendar created at Google later becomes selectable), and enqueues every
registered Google calendar (an incremental sync: one ``events.list`` and no write when nothing
changed; the engine makes it a full pass every 12 h — the reconcile that catches what push missed).

Two event sources, one function (docs/adr/0020):
- the hourly schedule *dispatches* the renewal: one ``GoogleChannelsTask`` per shard of the
  channel-expiry index to the GoogleRenewQueue (``calsync_google.renewal``); then the poll: one task
  per shard of the poll registry to the PollQueue (PollShardFunction sends the jobs,
  ``calsync.sync.poll``); then the listings, in the time left;
- the GoogleRenewQueue (``BatchSize: 1``) runs one task per invocation: at most ``RENEW_PAGE`` = 50
  channels of one shard renewed under the time budget, the rest handed back.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from calsync.config import get_settings
from calsync.observability import logger, metrics
from calsync.store.keys import CHANNEL_SHARDS
from calsync.sync import budget as budgets
from calsync.sync.poll import dispatch
from calsync.sync.tasks import handle_record
from calsync_google import renewal
from calsync_google.renewal import GoogleChannelsTask
from calsync_google.worker import from_environment

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext


def utc_now() -> datetime:
    return datetime.now(UTC)


clock: Callable[[], datetime] = utc_now


_overrides: dict[str, Any] = {}
_OWN = ("sqs", "poll_queue_url", "renew_queue_url", "limit")
processor = BatchProcessor(event_type=EventType.SQS)


def set_dependencies(**overrides: Any) -> None:
    """Tests: the worker's overrides (``table``, ``kms``, ``key_id``, ``services``, ``webhook_url``…)
    and ``sqs``, ``poll_queue_url``, ``renew_queue_url`` (the GoogleRenewQueue), ``limit``
    (channels per task)."""
    _overrides.clear()
    _overrides.update(overrides)


def _worker() -> Any:
    return from_environment(**{k: v for k, v in _overrides.items() if k not in _OWN})


def _sqs() -> Any:
    return _overrides.get("sqs") or boto3.client("sqs")


def _renew_queue_url() -> str:
    return str(_overrides.get("renew_queue_url") or get_settings().google_renew_queue_url)


def _run(task: GoogleChannelsTask, budget: budgets.LambdaBudget | None) -> GoogleChannelsTask | None:
    kwargs = {"limit": _overrides["limit"]} if "limit" in _overrides else {}
    summary = renewal.renew_shard(_worker(), task, clock(), budget=budget, **kwargs)
    logger.info(
        "google renewal shard done" if summary.rest is None else "google renewal: the rest is handed back",
        extra={"shard": task.shard, "run": task.run, "read": summary.read, **summary.counts},
    )
    metrics.add_metric(name="GoogleChannelsRenewed", unit=MetricUnit.Count, value=summary.counts["renewed"])
    return summary.rest


def _hand_back(rest: GoogleChannelsTask) -> None:
    _sqs().send_message(QueueUrl=_renew_queue_url(), MessageBody=rest.body())


def record_handler(record: SQSRecord) -> None:
    handle_record(record.body, GoogleChannelsTask, _run, _hand_back)


def _schedule(context: LambdaContext) -> dict[str, Any]:
    now = clock()
    sqs = _sqs()
    # renewal before the poll: the sync jobs the poll queues would otherwise find a channel that is
    # about to expire and open one of their own at the same time (the renewal's claim and the
    # sync's keep-one settle a race that is left). Then the poll (two SendMessageBatch calls),
    # before the listings that may use the time left.
    renew_failed = renewal.dispatch(sqs, _renew_queue_url(), now)
    if renew_failed:
        logger.error(
            "renewal tasks not sent; their shards wait for the next run", extra={"shards": renew_failed}
        )
        metrics.add_metric(name="RenewTasksNotSent", unit=MetricUnit.Count, value=len(renew_failed))
    queue_url = _overrides.get("poll_queue_url") or get_settings().poll_queue_url
    failed = dispatch(sqs, queue_url, "google", now, adaptive=False)
    if failed:
        logger.error("poll tasks not sent; their shards wait for the next run", extra={"shards": failed})
        metrics.add_metric(name="PollTasksNotSent", unit=MetricUnit.Count, value=len(failed))
    listed = _worker().refresh_listings(now, context.get_remaining_time_in_millis)
    out = {
        "renewTasks": CHANNEL_SHARDS - len(renew_failed),
        "renewTasksFailed": len(renew_failed),
        **listed,
        "pollTasksFailed": len(failed),
    }
    logger.info("google schedule", extra=out)
    return out


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "Records" not in (event or {}):  # the schedule (an EventBridge scheduled event)
        return _schedule(context)
    with budgets.running(budgets.LambdaBudget.of(context)):
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
