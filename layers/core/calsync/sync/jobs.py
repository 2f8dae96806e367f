"""Sync jobs: one message per "sync this calendar" on a provider's SQS FIFO queue.

``MessageGroupId`` = the calendar: SQS hands a group's messages out one at a time, in order, so one
calendar is never synced twice at once while different calendars sync in parallel.

``MessageDeduplicationId`` is fresh for every enqueue (a random id), never derived from the
message body: a job sent while a sync of the same calendar runs must not be taken for a duplicate
of the job that started that sync — it has to lead to another sync (S6). Content-based
deduplication would collapse two identical "sync calendar X" bodies sent within 5 minutes and lose
the second change. The poll schedule is the one exception: it passes ``poll-<calendar>-<slot>``,
so a schedule that fires twice in the same 5-minute slot enqueues the calendar once (any other job
has a different id and is never collapsed with a poll). The Google webhook passes
``push-<marker>``, the id of the calendar's "queued" marker (calsync.store.channels), fresh for
every job it queues.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Reason = Literal["poll", "reconcile", "config", "connect", "resync", "push"]
_GROUP_ID = r"^[\x21-\x7e]{1,128}$"  # what SQS accepts as MessageGroupId
_ID = r"^[^\x00-\x1f\x7f]{1,256}$"


class SyncJob(BaseModel):
    """The message body (JSON, camelCase)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore", defer_build=True)

    calendar_id: str = Field(alias="calendarId", pattern=_GROUP_ID)
    user_id: str = Field(alias="userId", pattern=_ID)
    account_id: str = Field(alias="accountId", pattern=_ID)
    reason: Reason = "poll"
    full: bool = False

    def body(self) -> str:
        return self.model_dump_json(by_alias=True)


def _entry(job: SyncJob, dedup_id: str | None) -> dict[str, str]:
    return {
        "MessageBody": job.body(),
        "MessageGroupId": job.calendar_id,
        "MessageDeduplicationId": dedup_id or uuid.uuid4().hex,
    }


def enqueue_sync(sqs_client: Any, queue_url: str, job: SyncJob, *, dedup_id: str | None = None) -> str:
    """Send one job; returns the SQS message id. ``dedup_id``: see the module docstring."""
    resp = sqs_client.send_message(QueueUrl=queue_url, **_entry(job, dedup_id))
    return str(resp["MessageId"])


def enqueue_many(sqs_client: Any, queue_url: str, jobs: Sequence[tuple[SyncJob, str | None]]) -> list[str]:
    """Send jobs (with their dedup ids) 10 per call; returns the calendar ids that could not be
    sent (the caller logs them: the next poll sends them again)."""
    failed: list[str] = []
    for start in range(0, len(jobs), 10):
        chunk = jobs[start : start + 10]
        entries = [{"Id": str(i), **_entry(job, dedup)} for i, (job, dedup) in enumerate(chunk)]
        resp = sqs_client.send_message_batch(QueueUrl=queue_url, Entries=entries)
        failed += [chunk[int(f["Id"])][0].calendar_id for f in resp.get("Failed", [])]
    return failed
