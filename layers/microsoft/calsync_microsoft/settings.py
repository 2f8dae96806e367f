"""Settings of the Microsoft functions, validated once from the environment (read lazily).

MICROSOFT_CLIENT_ID, MICROSOFT_CLIENT_SECRET_NAME (the Secrets Manager secret holding the client
secret: X3, never the secret itself), MICROSOFT_AUTHORITY (default ``…/common``: work/school and
personal accounts, C1), GRAPH_ENDPOINT, MICROSOFT_WEBHOOK_URL (the public URL of
``/v1/webhooks/microsoft``; the lifecycle URL is ``…/lifecycle``), MICROSOFT_SUBSCRIPTION_MINUTES
(S4; Graph has documented 4,230 and 10,080 for events), MICROSOFT_SYNC_QUEUE_URL.
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field

from calsync.config import from_env


class MicrosoftSettings(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    client_id: str = ""
    client_secret_name: str = ""
    authority: str = "https://login.microsoftonline.com/common"
    graph_endpoint: str = "https://graph.microsoft.com/v1.0"
    webhook_url: str = ""
    subscription_minutes: int = Field(default=4230, ge=45, le=10080)
    sync_queue_url: str = ""

    @property
    def lifecycle_url(self) -> str:
        return self.webhook_url.rstrip("/") + "/lifecycle"

    @property
    def subscription_lifetime(self) -> timedelta:
        return timedelta(minutes=self.subscription_minutes)


@lru_cache(maxsize=1)
def get_microsoft_settings() -> MicrosoftSettings:
    return from_env(MicrosoftSettings, "microsoft_", {"graph_endpoint": "GRAPH_ENDPOINT"})
