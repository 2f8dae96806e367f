"""Where Microsoft sign-ins and Graph subscriptions are kept (keys from ``calsync.store.keys``).

Free of msal and requests on purpose: the webhook function imports this module only.

- Sign-in flows: ``OAUTH#microsoft#<state> / FLOW`` holds the msal flow sealed (it carries the PKCE
  verifier), who started it and for which location; read once (deleted when read) and valid for
  ``FLOW_TTL``; ``expiresAt`` lets DynamoDB's TTL drop abandoned ones.
- Subscriptions (S2): ``MSSUB#<id> / SUB`` maps a subscription to its account and holds the SHA-256
  of its ``clientState`` (the secret itself is never stored: a notification's ``clientState`` is
  hashed and compared in constant time, X2). ``MSSUBS#<shard> / ACC#<accountId>`` is the mailbox's
  one subscription and its expiry, which the renewal schedule reads (S4).
- Polled calendars: ``MSPOLL#<shard> / ACC#<accountId>`` lists the calendars of a mailbox that
  Graph sends no change notification for (calendars other people shared with it:
  docs/providers/microsoft.md M10); the poll schedule reads it and queues their syncs.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from calsync.domain.errors import Conflict
from calsync.store import keys
from calsync.store.repository import _mapped_errors, batch_get

FLOW_TTL = timedelta(minutes=10)
PROVIDER = "microsoft"
POLL_PREFIX = "MSPOLL#"
MAX_SUBSCRIPTION_ID = 200


def client_state_hash(client_state: str) -> str:
    return hashlib.sha256(client_state.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class SubscriptionRecord:
    subscription_id: str
    user_id: str
    account_id: str
    state_hash: str
    expires_at: datetime

    def accepts(self, client_state: object) -> bool:
        """X2: the notification's clientState, compared in constant time (as hashes)."""
        if not isinstance(client_state, str) or len(client_state) > 256:
            return False
        return hmac.compare_digest(client_state_hash(client_state), self.state_hash)


@dataclass(frozen=True, slots=True)
class PendingFlow:
    user_id: str
    location_id: str
    sealed_flow: dict[str, str]


class MicrosoftRegistry:
    def __init__(self, table: Any) -> None:
        self._table = table

    # ---- sign-in flows ------------------------------------------------------------------------
    def put_flow(self, state: str, flow: PendingFlow, now: datetime) -> None:
        with _mapped_errors("store sign-in"):
            self._table.put_item(
                Item={
                    "pk": keys.oauth_flow_pk(PROVIDER, state),
                    "sk": keys.FLOW,
                    "type": "oauthFlow",
                    "userId": flow.user_id,
                    "locationId": flow.location_id,
                    "flow": flow.sealed_flow,
                    "notAfter": keys.iso(now + FLOW_TTL),
                    "expiresAt": int((now + FLOW_TTL).timestamp()),
                }
            )

    def take_flow(self, state: str, now: datetime) -> PendingFlow | None:
        """The flow of ``state``, once: it is deleted as it is read (a replayed callback finds none)."""
        with _mapped_errors("read sign-in"):
            item = self._table.delete_item(
                Key={"pk": keys.oauth_flow_pk(PROVIDER, state), "sk": keys.FLOW}, ReturnValues="ALL_OLD"
            ).get("Attributes")
        if not item or keys.parse_iso(str(item["notAfter"])) < now:
            return None
        return PendingFlow(str(item["userId"]), str(item["locationId"]), dict(item["flow"]))

    # ---- subscriptions ------------------------------------------------------------------------
    def get_subscription(self, subscription_id: str) -> SubscriptionRecord | None:
        if not subscription_id or len(subscription_id) > MAX_SUBSCRIPTION_ID:
            return None
        with _mapped_errors("read subscription"):
            item = self._table.get_item(
                Key={"pk": keys.ms_subscription_pk(subscription_id), "sk": keys.SUB}
            ).get("Item")
        return None if item is None else _subscription(subscription_id, item)

    def get_subscriptions(self, subscription_ids: Iterable[str]) -> dict[str, SubscriptionRecord]:
        """The known subscriptions among ``subscription_ids``: each distinct id read once, with
        BatchGetItem (100 keys per request; unprocessed keys asked at most twice more, so that the
        webhook answers within Graph's 3 s: docs/providers/microsoft.md M13)."""
        wanted = [s for s in dict.fromkeys(subscription_ids) if s and len(s) <= MAX_SUBSCRIPTION_ID]
        found = batch_get(
            self._table,
            [{"pk": keys.ms_subscription_pk(s), "sk": keys.SUB} for s in wanted],
            "read subscriptions",
            attempts=3,
        )
        return {
            s: _subscription(s, item)
            for s in wanted
            if (item := found.get((keys.ms_subscription_pk(s), keys.SUB))) is not None
        }

    def put_subscription(self, record: SubscriptionRecord) -> None:
        """The subscription and the mailbox's pointer to it (replacing an older one's pointer)."""
        with _mapped_errors("store subscription"):
            self._table.put_item(
                Item={
                    "pk": keys.ms_subscription_pk(record.subscription_id),
                    "sk": keys.SUB,
                    "type": "msSubscription",
                    "userId": record.user_id,
                    "accountId": record.account_id,
                    "stateHash": record.state_hash,
                    "subExpiresAt": keys.iso(record.expires_at),
                }
            )
            self._table.put_item(
                Item={
                    **self._mailbox_key(record.account_id),
                    "type": "msMailbox",
                    "userId": record.user_id,
                    "accountId": record.account_id,
                    "subscriptionId": record.subscription_id,
                    "subExpiresAt": keys.iso(record.expires_at),
                }
            )

    def mark_unsubscribed(self, user_id: str, account_id: str, now: datetime) -> None:
        """A mailbox whose subscription could not be created: a pointer to no subscription, due
        now, so that the renewal schedule (and the reconcile) keep listing it. An existing pointer
        is left as it is (its subscription may still deliver)."""
        with contextlib.suppress(Conflict), _mapped_errors("store subscription"):
            self._table.put_item(
                Item={
                    **self._mailbox_key(account_id),
                    "type": "msMailbox",
                    "userId": user_id,
                    "accountId": account_id,
                    "subscriptionId": "",
                    "subExpiresAt": keys.iso(now),
                },
                ConditionExpression="attribute_not_exists(pk)",
            )

    def set_expiry(self, record: SubscriptionRecord, expires_at: datetime) -> SubscriptionRecord:
        renewed = SubscriptionRecord(
            record.subscription_id, record.user_id, record.account_id, record.state_hash, expires_at
        )
        self.put_subscription(renewed)
        return renewed

    @staticmethod
    def _mailbox_key(account_id: str) -> dict[str, str]:
        """The mailbox's pointer to its one subscription."""
        return {
            "pk": keys.ms_mailbox_pk(keys.ms_subscription_shard(account_id)),
            "sk": keys.ms_mailbox_sk(account_id),
        }

    def mailbox_subscription(self, account_id: str) -> SubscriptionRecord | None:
        subscription_id = self.mailbox_subscription_id(account_id)
        return None if subscription_id is None else self.get_subscription(subscription_id)

    def mailbox_subscription_id(self, account_id: str) -> str | None:
        """The id the mailbox's pointer names (also when the subscription item itself is gone)."""
        with _mapped_errors("read subscription"):
            item = self._table.get_item(Key=self._mailbox_key(account_id)).get("Item")
        return None if item is None else str(item["subscriptionId"])

    def forget_subscription(self, subscription_id: str, account_id: str | None = None) -> None:
        with _mapped_errors("delete subscription"):
            self._table.delete_item(Key={"pk": keys.ms_subscription_pk(subscription_id), "sk": keys.SUB})
            if account_id is not None:
                self._table.delete_item(
                    Key=self._mailbox_key(account_id),
                    ConditionExpression="attribute_not_exists(pk) OR subscriptionId = :s",
                    ExpressionAttributeValues={":s": subscription_id},
                )

    # ---- calendars without push (polled) ----------------------------------------------------------
    @staticmethod
    def _poll_key(account_id: str) -> dict[str, str]:
        return {
            "pk": f"{POLL_PREFIX}{keys.ms_subscription_shard(account_id):02d}",
            "sk": keys.ms_mailbox_sk(account_id),
        }

    def put_polled(self, user_id: str, account_id: str, calendar_ids: list[str]) -> None:
        """The mailbox's calendars that get no change notification; none: the record goes."""
        with _mapped_errors("store polled calendars"):
            if not calendar_ids:
                self._table.delete_item(Key=self._poll_key(account_id))
                return
            self._table.put_item(
                Item={
                    **self._poll_key(account_id),
                    "type": "msPolled",
                    "userId": user_id,
                    "accountId": account_id,
                    "calendarIds": sorted(calendar_ids),
                }
            )

    def polled_calendar_ids(self, account_id: str) -> list[str]:
        """The mailbox's polled calendars (none: an empty list)."""
        with _mapped_errors("read polled calendars"):
            item = self._table.get_item(Key=self._poll_key(account_id)).get("Item")
        return [] if item is None else [str(c) for c in item.get("calendarIds", [])]

    def forget_polled(self, account_id: str) -> None:
        with _mapped_errors("delete polled calendars"):
            self._table.delete_item(Key=self._poll_key(account_id))

    def polled_mailboxes(self) -> Iterator[tuple[str, str, list[str]]]:
        """(user id, account id, calendar ids) of every mailbox with calendars to poll."""
        for shard in range(keys.MS_SUB_SHARDS):
            kwargs: dict[str, Any] = {
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": {":pk": f"{POLL_PREFIX}{shard:02d}"},
            }
            while True:
                with _mapped_errors("list polled calendars"):
                    resp = self._table.query(**kwargs)
                for item in resp.get("Items", []):
                    yield str(item["userId"]), str(item["accountId"]), [str(c) for c in item["calendarIds"]]
                if "LastEvaluatedKey" not in resp:
                    break
                kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def mailbox_page(
        self, polled: bool, shard: int, *, after: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One Query of a shard of the subscription registry (``MSSUBS#``) or of the polled
        mailboxes (``MSPOLL#``): at most ``limit`` items after the sort key ``after``, with the sort
        key to continue from (None: the shard is read to its end). The schedules' fan-out
        (docs/adr/0020) reads the registry this way, a bounded page per invocation."""
        pk = f"{POLL_PREFIX}{shard:02d}" if polled else keys.ms_mailbox_pk(shard)
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": pk},
            "Limit": limit,
        }
        if after is not None:
            kwargs["ExclusiveStartKey"] = {"pk": pk, "sk": after}
        with _mapped_errors("list mailboxes"):
            resp = self._table.query(**kwargs)
        last = resp.get("LastEvaluatedKey")
        return list(resp.get("Items", [])), (str(last["sk"]) if last else None)

    def mailboxes_due(self, before: datetime) -> Iterator[tuple[str, str, str]]:
        """(user id, account id, subscription id) of every mailbox whose subscription expires before
        ``before`` (S4: the schedule passes now + half the lifetime)."""
        cutoff = keys.iso(before)
        for shard in range(keys.MS_SUB_SHARDS):
            kwargs: dict[str, Any] = {
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": {":pk": keys.ms_mailbox_pk(shard)},
            }
            while True:
                with _mapped_errors("list subscriptions"):
                    resp = self._table.query(**kwargs)
                for item in resp.get("Items", []):
                    if str(item["subExpiresAt"]) < cutoff:
                        yield str(item["userId"]), str(item["accountId"]), str(item["subscriptionId"])
                if "LastEvaluatedKey" not in resp:
                    break
                kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


def _subscription(subscription_id: str, item: dict[str, Any]) -> SubscriptionRecord:
    return SubscriptionRecord(
        subscription_id,
        str(item["userId"]),
        str(item["accountId"]),
        str(item["stateHash"]),
        keys.parse_iso(str(item["subExpiresAt"])),
    )
