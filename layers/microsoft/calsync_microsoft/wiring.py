"""Builds the Microsoft services from settings, with test overrides (``table``, ``kms``, ``key_id``,
``sqs``, ``queue_url``, ``http_client`` (msal), ``session_factory`` (Graph), ``client_secret``,
``settings``, ``links``). Used by the accounts, sync and renewal functions (not by the webhook)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from calsync.config import get_settings
from calsync.crypto import CredentialBox
from calsync.sync.jobs import SyncJob
from calsync_microsoft import jobs
from calsync_microsoft.auth import MicrosoftAppConfig, MicrosoftIdentity, client_secret_from
from calsync_microsoft.registry import MicrosoftRegistry
from calsync_microsoft.settings import MicrosoftSettings, get_microsoft_settings
from calsync_microsoft.subscriptions import Subscriptions, SubscriptionSettings
from calsync_microsoft.worker import MicrosoftSyncWorker


def _client(name: str) -> Any:
    import boto3  # noqa: PLC0415

    return boto3.client(name)  # type: ignore[call-overload]


def settings_of(o: Mapping[str, Any]) -> MicrosoftSettings:
    value = o.get("settings")
    return value if isinstance(value, MicrosoftSettings) else get_microsoft_settings()


def table_of(o: Mapping[str, Any]) -> Any:
    if o.get("table") is not None:
        return o["table"]
    import boto3  # noqa: PLC0415

    return boto3.resource("dynamodb").Table(get_settings().table_name)


def box_of(o: Mapping[str, Any]) -> CredentialBox:
    return CredentialBox(o.get("kms") or _client("kms"), o.get("key_id") or get_settings().credentials_key_id)


def sqs_of(o: Mapping[str, Any]) -> tuple[Any, str]:
    return o.get("sqs") or _client("sqs"), str(o.get("queue_url") or settings_of(o).sync_queue_url)


def identity_of(o: Mapping[str, Any]) -> MicrosoftIdentity:
    s = settings_of(o)
    secret = o.get("client_secret") or client_secret_from(s.client_secret_name)
    return MicrosoftIdentity(MicrosoftAppConfig(s.client_id, str(secret), s.authority, o.get("http_client")))


def worker_of(o: Mapping[str, Any]) -> MicrosoftSyncWorker:
    s = settings_of(o)
    table = table_of(o)
    subs = Subscriptions(
        MicrosoftRegistry(table),
        SubscriptionSettings(s.webhook_url, s.lifecycle_url, s.subscription_lifetime),
    )
    return MicrosoftSyncWorker(
        table,
        box_of(o),
        identity_of(o),
        subs,
        graph_endpoint=s.graph_endpoint,
        links=o.get("links") or get_settings().links,
        session_factory=o.get("session_factory"),
    )


def enqueue_of(o: Mapping[str, Any]) -> Any:
    """The accounts service's ``Enqueue`` (one calendar) as mailbox jobs on the Microsoft queue."""
    sqs, url = sqs_of(o)

    def enqueue(job: SyncJob) -> None:
        jobs.enqueue(sqs, url, jobs.from_sync_job(job))

    return enqueue
