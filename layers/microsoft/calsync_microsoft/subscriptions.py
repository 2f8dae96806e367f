"""Graph subscriptions (S2, S4): one per mailbox on ``me/events``, with a random ``clientState`` and
a ``lifecycleNotificationUrl``.

- ``create``: POST /subscriptions (Graph validates both URLs first: the webhook echoes the token);
  the subscription is stored with the hash of its clientState, and the mailbox's previous one is
  deleted (best effort).
- ``renew``: PATCH /subscriptions/{id} with a new expiry; 404 (Graph removed it) → ``create``.
- ``due``: renewal is due at half the lifetime at the latest (S4); the lifetime is configurable
  (Graph documents 4,230 and 10,080 minutes for events; default 4,230).
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from calsync.domain.models import UTC
from calsync_microsoft.graph import GraphClient, GraphError
from calsync_microsoft.registry import MicrosoftRegistry, SubscriptionRecord, client_state_hash

DEFAULT_LIFETIME = timedelta(minutes=4230)
RESOURCE = "me/events"


@dataclass(frozen=True, slots=True)
class SubscriptionSettings:
    notification_url: str
    lifecycle_url: str
    lifetime: timedelta = DEFAULT_LIFETIME


def _graph_iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def renew_before(now: datetime, lifetime: timedelta) -> datetime:
    """Subscriptions expiring before this instant are renewed now: at half-life at the latest."""
    return now + lifetime / 2


class Subscriptions:
    def __init__(self, registry: MicrosoftRegistry, settings: SubscriptionSettings) -> None:
        self.registry = registry
        self.settings = settings

    def create(self, client: GraphClient, user_id: str, account_id: str, now: datetime) -> SubscriptionRecord:
        old = self.registry.mailbox_subscription(account_id)
        client_state = secrets.token_urlsafe(32)
        expires = now + self.settings.lifetime
        resp = client.request(
            "POST",
            "subscriptions",
            json={
                "changeType": "created,updated,deleted",
                "notificationUrl": self.settings.notification_url,
                "lifecycleNotificationUrl": self.settings.lifecycle_url,
                "resource": RESOURCE,
                "expirationDateTime": _graph_iso(expires),
                "clientState": client_state,
            },
        )
        if not isinstance(resp.body, dict) or "id" not in resp.body:
            raise GraphError(resp.status, "no subscription id")
        record = SubscriptionRecord(
            str(resp.body["id"]), user_id, account_id, client_state_hash(client_state), expires
        )
        self.registry.put_subscription(record)
        if old is not None and old.subscription_id != record.subscription_id:
            self.delete(client, old)
        return record

    def renew(self, client: GraphClient, record: SubscriptionRecord, now: datetime) -> SubscriptionRecord:
        expires = now + self.settings.lifetime
        resp = client.request(
            "PATCH",
            f"subscriptions/{record.subscription_id}",
            json={"expirationDateTime": _graph_iso(expires)},
        )
        if resp.status in (404, 410):
            return self.create(client, record.user_id, record.account_id, now)
        return self.registry.set_expiry(record, expires)

    def ensure(
        self, client: GraphClient, user_id: str, account_id: str, now: datetime, *, recreate: bool = False
    ) -> SubscriptionRecord:
        record = self.registry.mailbox_subscription(account_id)
        if record is None or recreate:
            return self.create(client, user_id, account_id, now)
        if record.expires_at <= renew_before(now, self.settings.lifetime):
            return self.renew(client, record, now)
        return record

    def delete(self, client: GraphClient, record: SubscriptionRecord) -> None:
        with contextlib.suppress(GraphError):
            client.request("DELETE", f"subscriptions/{record.subscription_id}")
        self.registry.forget_subscription(record.subscription_id)
