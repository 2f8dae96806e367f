"""The webhooks' dependencies (docs/adr/0023): the table (the channel or subscription records),
the provider's sync queue and the clock. A webhook answers within the provider's budget (Graph:
3 s), so its AWS clients may be given short timeouts (``client_config``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import boto3

from calsync.config import get_settings
from calsync.wiring import Clock, utc_now


@dataclass(frozen=True)
class WebhookDeps:
    table: Any
    sqs: Any
    queue_url: str
    clock: Clock = utc_now


def webhook_deps(
    table: Any = None,
    *,
    sqs: Any = None,
    queue_url: str | None = None,
    queue_env: str = "",
    client_config: Any = None,
    clock: Clock = utc_now,
) -> WebhookDeps:
    """From the settings (TABLE_NAME, the queue URL in ``queue_env``); a test passes its own."""
    if table is None:
        table = boto3.resource("dynamodb", config=client_config).Table(get_settings().table_name)
    return WebhookDeps(
        table=table,
        sqs=sqs if sqs is not None else boto3.client("sqs", config=client_config),
        queue_url=queue_url or os.environ.get(queue_env, ""),
        clock=clock,
    )
