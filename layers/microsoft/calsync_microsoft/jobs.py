"""Microsoft sync jobs: one message per mailbox on the MicrosoftSyncQueue (SQS FIFO).

``MessageGroupId`` = the account (the mailbox), not the calendar: Graph throttles per mailbox
(S8), and one subscription covers the whole mailbox (S2). SQS hands a group's messages out one at a
time, so at most one worker talks to a mailbox at once (its Graph requests are sequential, well under
the 4 Graph allows per mailbox), a calendar is never synced twice at once, and a notification that
arrives during a sync is the group's next message: another sync follows (S6). Dedup ids are fresh
for every message (see ``calsync.sync.jobs``). Free of msal: the webhook imports it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from calsync.sync.jobs import SyncJob

Action = Literal["sync", "renew", "recreate"]
_ID = r"^[\x21-\x7e]{1,128}$"


class MailboxJob(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore", defer_build=True)

    user_id: str = Field(alias="userId", pattern=r"^[^\x00-\x1f\x7f]{1,256}$")
    account_id: str = Field(alias="accountId", pattern=_ID)
    action: Action = "sync"
    calendar_ids: list[str] | None = Field(default=None, alias="calendarIds")  # None: every calendar
    full: bool = False
    # R8: read me/calendars again first (new calendars become selectable); the schedules set it
    list_calendars: bool = Field(default=False, alias="listCalendars")
    reason: str = Field(default="notification", max_length=32)

    def body(self) -> str:
        return self.model_dump_json(by_alias=True)


def from_sync_job(job: SyncJob) -> MailboxJob:
    """A job of the accounts service (connect, config: one calendar) as a mailbox job."""
    return MailboxJob(
        user_id=job.user_id,
        account_id=job.account_id,
        calendar_ids=[job.calendar_id],
        full=job.full,
        reason=job.reason,
    )


def _entry(job: MailboxJob, dedup: str | None = None) -> dict[str, str]:
    return {
        "MessageBody": job.body(),
        "MessageGroupId": job.account_id,
        "MessageDeduplicationId": dedup or uuid.uuid4().hex,
    }


def enqueue(sqs_client: Any, queue_url: str, job: MailboxJob) -> None:
    sqs_client.send_message(QueueUrl=queue_url, **_entry(job))


def enqueue_many(
    sqs_client: Any, queue_url: str, jobs: Sequence[MailboxJob], dedup_ids: Sequence[str] | None = None
) -> int:
    """Send jobs 10 per call; the number that could not be sent. ``dedup_ids`` (one per job): a
    schedule's, so that a shard task delivered twice sends each job once (FIFO deduplication,
    5 minutes); otherwise each message is fresh."""
    failed = 0
    for start in range(0, len(jobs), 10):
        chunk = jobs[start : start + 10]
        ids = dedup_ids[start : start + 10] if dedup_ids is not None else [None] * len(chunk)
        entries = [
            {"Id": str(i), **_entry(job, d)} for i, (job, d) in enumerate(zip(chunk, ids, strict=True))
        ]
        failed += len(sqs_client.send_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed", []))
    return failed
