"""The Google functions' settings (read lazily, once) and the OAuth client from Secrets Manager
(X3: Powertools parameters, cached 5 minutes; the secret is JSON ``{"client_id", "client_secret"}``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities import parameters

from calsync_google.client import ClientSecret, GoogleEndpoints


@dataclass(frozen=True, slots=True)
class GoogleSettings:
    sync_queue_url: str
    webhook_url: str
    oauth_secret_name: str
    endpoints: GoogleEndpoints


@lru_cache(maxsize=1)
def get_google_settings() -> GoogleSettings:
    env = os.environ
    return GoogleSettings(
        sync_queue_url=env.get("GOOGLE_SYNC_QUEUE_URL", ""),
        webhook_url=env.get("GOOGLE_WEBHOOK_URL", ""),
        oauth_secret_name=env.get("GOOGLE_OAUTH_SECRET_NAME", ""),
        endpoints=GoogleEndpoints.from_env(),
    )


def client_secret(name: str | None = None, *, provider: Any = None) -> ClientSecret:
    """The OAuth client, from Secrets Manager through Powertools (cached between invocations)."""
    name = name or get_google_settings().oauth_secret_name
    if provider is not None:
        data: Any = provider.get(name, transform="json", max_age=300)
    else:
        data = parameters.get_secret(name, transform="json", max_age=300)
    return ClientSecret(str(data["client_id"]), str(data.get("client_secret", "")))
