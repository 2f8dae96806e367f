"""The Google functions' settings (read lazily, once) and the OAuth client from Secrets Manager
(X3: Powertools parameters, cached 5 minutes; the secret is JSON ``{"client_id", "client_secret"}``)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities import parameters
from pydantic import BaseModel, ConfigDict

from calsync.config import from_env
from calsync_google.client import ClientSecret, GoogleEndpoints


class GoogleSettings(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    sync_queue_url: str = ""
    webhook_url: str = ""
    oauth_secret_name: str = ""
    endpoints: GoogleEndpoints


@lru_cache(maxsize=1)
def get_google_settings() -> GoogleSettings:
    """GOOGLE_SYNC_QUEUE_URL, GOOGLE_WEBHOOK_URL, GOOGLE_OAUTH_SECRET_NAME and the endpoints."""
    return from_env(GoogleSettings, "google_", endpoints=GoogleEndpoints.from_env())


def client_secret(name: str | None = None, *, provider: Any = None) -> ClientSecret:
    """The OAuth client, from Secrets Manager through Powertools (cached between invocations)."""
    name = name or get_google_settings().oauth_secret_name
    if provider is not None:
        data: Any = provider.get(name, transform="json", max_age=300)
    else:
        data = parameters.get_secret(name, transform="json", max_age=300)
    return ClientSecret(str(data["client_id"]), str(data.get("client_secret", "")))
