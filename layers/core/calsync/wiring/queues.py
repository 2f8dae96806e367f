"""Each provider's sync queue, as the functions that queue sync jobs see it (the API function for
rooms, R8; the accounts function, C2-C4): CALDAV_SYNC_QUEUE_URL, GOOGLE_SYNC_QUEUE_URL,
MICROSOFT_SYNC_QUEUE_URL. CalDAV and Google take calendar jobs; Microsoft takes mailbox jobs
(``calsync_microsoft.jobs``, MicrosoftLayer: group = the mailbox). A provider without a queue URL,
or whose layer the function lacks, is not routed."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from typing import Any

import boto3

from calsync.api.calendar_sync import Enqueue
from calsync.domain.models import Provider
from calsync.observability import logger
from calsync.sync.jobs import SyncJob, enqueue_sync


def queue_urls_from_environment() -> dict[Provider, str]:
    urls = {p: os.environ.get(f"{p.value.upper()}_SYNC_QUEUE_URL", "") for p in Provider}
    return {p: url for p, url in urls.items() if url}


@functools.cache
def sqs_client() -> Any:
    return boto3.client("sqs")


def enqueue_via(sqs: Callable[[], Any], url: str) -> Enqueue:
    """Sync jobs on a calendar sync queue (FIFO, group = calendar, fresh dedup id: S6)."""

    def enqueue(job: SyncJob) -> None:
        enqueue_sync(sqs(), url, job)

    return enqueue


def sync_queues(
    urls: Mapping[Provider, str] | None = None, sqs: Callable[[], Any] = sqs_client
) -> dict[Provider, Enqueue]:
    """{provider: enqueue} for the providers with a queue URL (``urls``; else the environment's)."""
    urls = queue_urls_from_environment() if urls is None else urls
    out: dict[Provider, Enqueue] = {
        p: enqueue_via(sqs, urls[p]) for p in (Provider.CALDAV, Provider.GOOGLE) if p in urls
    }
    microsoft = urls.get(Provider.MICROSOFT)
    if microsoft:
        try:
            from calsync_microsoft import jobs as ms_jobs  # noqa: PLC0415 - MicrosoftLayer
        except ImportError:
            logger.warning("no MicrosoftLayer: calendars on Microsoft are not queued for sync")
            return out

        def enqueue_mailbox(job: SyncJob) -> None:
            ms_jobs.enqueue(sqs(), microsoft, ms_jobs.from_sync_job(job))

        out[Provider.MICROSOFT] = enqueue_mailbox
    return out
