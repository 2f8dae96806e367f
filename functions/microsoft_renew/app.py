"""Microsoft schedules (S4, S5, S7): renew subscriptions at half-life at the latest, reconcile.

Each run lists the mailboxes (the subscription registry, one Query per shard) and queues mailbox
jobs on the MicrosoftSyncQueue; the sync worker does the Graph calls:

- ``renew`` (every hour): mailboxes whose subscription expires within half the configured lifetime
  get a ``renew`` job (PATCH, or a new subscription when Graph removed it). Renewing uses the
  refresh token every ~35 h at the latest, which also keeps rarely used refresh tokens alive (they
  expire after 90 days unused).
- ``reconcile`` (daily, event ``{"task": "reconcile"}``): every mailbox gets a full resync: push is
  not fully reliable (S5), and the calendarView horizon moves forward (the delta link is re-based).
- ``poll`` (every 5 minutes, event ``{"task": "poll"}``): the calendars shared with a mailbox by
  someone else get no change notification from Graph (docs/providers/microsoft.md M10): each
  mailbox with such calendars gets a ``sync`` job for them (one delta request when nothing changed).
- ``renew`` and ``reconcile`` jobs also read the mailbox's ``me/calendars`` once (every page): Graph
  notifies no new calendar (docs/providers/microsoft.md M15), so a calendar created at Microsoft or
  shared with the mailbox after the connect becomes selectable within a day (R8;
  ``calsync_microsoft.calendars.refresh_listing``). ``poll`` jobs (every 5 minutes) do not list.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from calsync.observability import logger
from calsync_microsoft import wiring
from calsync_microsoft.jobs import MailboxJob, enqueue_many
from calsync_microsoft.registry import MicrosoftRegistry
from calsync_microsoft.subscriptions import renew_before

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

_overrides: dict[str, Any] = {}


def utc_now() -> datetime:
    return datetime.now(UTC)


clock: Callable[[], datetime] = utc_now


def set_dependencies(**overrides: Any) -> None:
    """Tests: ``table``, ``sqs``, ``queue_url``, ``settings``."""
    _overrides.clear()
    _overrides.update(overrides)
    _wired.cache_clear()


@functools.cache
def _wired() -> tuple[Any, Any, str, Any]:
    sqs, url = wiring.sqs_of(_overrides)
    return MicrosoftRegistry(wiring.table_of(_overrides)), sqs, url, wiring.settings_of(_overrides)


def run(task: str, now: datetime) -> int:
    registry, sqs, url, settings = _wired()
    if task == "poll":
        jobs = [
            MailboxJob(user_id=u, account_id=a, calendar_ids=cals, reason="poll")
            for u, a, cals in registry.polled_mailboxes()
        ]
    elif task == "reconcile":
        due = list(registry.mailboxes_due(datetime.max.replace(tzinfo=UTC)))
        jobs = [
            MailboxJob(
                user_id=u, account_id=a, action="renew", full=True, list_calendars=True, reason="reconcile"
            )
            for u, a, _ in due
        ]
    else:
        due = list(registry.mailboxes_due(renew_before(now, settings.subscription_lifetime)))
        jobs = [
            MailboxJob(user_id=u, account_id=a, action="renew", list_calendars=True, reason="renew")
            for u, a, _ in due
        ]
    failed = enqueue_many(sqs, url, jobs)
    logger.info("microsoft schedule", extra={"task": task, "queued": len(jobs) - failed, "failed": failed})
    return len(jobs) - failed


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = str((event or {}).get("task") or "renew")
    return {"task": task, "queued": run(task, clock())}
