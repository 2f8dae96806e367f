"""Connected accounts, their calendars' listing, the C3/C4 claims and the calendar configuration.

Items (keys from ``calsync.store.keys`` only):

- ``USER#<userId> / ACCOUNT#<accountId>``: the account (sealed credentials included: they are read
  only through ``get_account`` and never leave it in a listing or an answer).
- ``EXT#<provider>#<externalId> / OWNER``: who owns an external account (C4).
- ``USER#<userId> / LOCPROV#<locationId>#<provider>``: the person's one account of a provider in a
  location (C3).
- ``ACC#<accountId> / CAL#<calendarId>``: one calendar of the account (name, access role, time
  zone, remote href); the ``CAL#<calendarId> / CALENDAR`` item is ``Repository``'s.
- ``USER#<userId> / CONFIG#<locationId>``: primary and conflict calendars in a location (C6).

C3 and C4 are enforced by the database: connecting is ONE ``TransactWriteItems`` whose claims are
conditional ("not claimed yet, or claimed by this very person/account"), never read-then-write.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from calsync.domain.errors import (
    AccountLimitPerLocation,
    AccountOwnedByAnotherUser,
    Conflict,
    StoreUnavailable,
)
from calsync.domain.models import Provider
from calsync.store import keys
from calsync.store.items import AccessRole, Calendar
from calsync.store.repository import _mapped_errors

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

AccountStatus = Literal["active", "reauth_required", "syncing"]
_TRANSACTION_ATTEMPTS = 5

C4_DETAIL = (
    "this {provider} account is already connected to calsync by another person, and an account can "
    "belong to one person only. Connect your own account instead, and ask the other person to share "
    "their calendar with it."
)
C3_DETAIL = (
    "you already connected a {provider} account in this location, and a person can use one account "
    "of each provider per location. Disconnect it first, or share the other account's calendars with "
    "the one you connected."
)


def account_id_for(user_id: str, provider: Provider, external_id: str) -> str:
    """The id of a person's account: stable, so reconnecting (or connecting in another location)
    reaches the same item."""
    raw = "\x1f".join((user_id, provider.value, external_id))
    return hashlib.blake2b(raw.encode("utf-8"), digest_size=16).hexdigest()


def calendar_id_for(account_id: str, remote_id: str) -> str:
    """The id of a calendar: the account and the provider's id (CalDAV: the calendar's URL)."""
    raw = f"{account_id}\x1f{remote_id}"
    return hashlib.blake2b(raw.encode("utf-8"), digest_size=16).hexdigest()


class Account(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    account_id: str
    user_id: str
    provider: Provider
    external_id: str  # CalDAV: lowercased "username@serverhost"; Google/Microsoft: the mailbox
    email: str | None = None
    status: AccountStatus = "active"
    locations: list[str] = Field(default_factory=list)
    last_synced_at: datetime | None = None
    server_url: str | None = None
    principal_url: str | None = None
    own_addresses: list[str] = Field(default_factory=list)  # lowercased calendar-user addresses (U4)
    # sealed by calsync.crypto.CredentialBox; excluded from dumps and repr so it cannot leak by accident
    credentials: dict[str, str] = Field(default_factory=dict, exclude=True, repr=False)


class FoundCalendar(Protocol):
    """A calendar as its provider lists it (CalDAV discovery, Google's calendarList, Graph's calendars)."""

    @property
    def href(self) -> str: ...  # the provider's id of the calendar
    @property
    def name(self) -> str: ...
    @property
    def access_role(self) -> AccessRole: ...
    @property
    def time_zone(self) -> str | None: ...


class CalendarListing(BaseModel):
    """One calendar of an account, as listed to its owner (``GET /v1/me/calendars``)."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    calendar_id: str
    account_id: str
    provider: Provider
    name: str = ""
    access_role: AccessRole = "owner"
    time_zone: str | None = None
    href: str = ""  # the provider's id of the calendar (CalDAV: the collection's path)
    # CalDAV: the absolute collection URL found by discovery, on the host that serves it (iCloud: a
    # partition host, not the one typed); "" on listings stored before: href against the server URL
    url: str = ""

    @classmethod
    def of(cls, account_id: str, provider: Provider, found: FoundCalendar, url: str = "") -> CalendarListing:
        return cls(
            calendar_id=calendar_id_for(account_id, found.href),
            account_id=account_id,
            provider=provider,
            name=found.name,
            access_role=found.access_role,
            time_zone=found.time_zone,
            href=found.href,
            url=url,
        )

    def calendar(self, owner_user_id: str) -> Calendar:
        """The calendar item the listing shows (``Repository.put_calendar`` keeps its subscribers)."""
        return Calendar(
            calendar_id=self.calendar_id,
            account_id=self.account_id,
            owner_user_id=owner_user_id,
            provider=self.provider,
            name=self.name,
            access_role=self.access_role,
            time_zone=self.time_zone,
        )

    @property
    def writable(self) -> bool:
        return self.access_role in ("owner", "writer")


class CalendarConfig(BaseModel):
    """C6: a person's primary and conflict calendars in one location."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    location_id: str
    primary_calendar_id: str | None = None
    conflict_calendar_ids: list[str] = Field(default_factory=list)

    @property
    def calendar_ids(self) -> set[str]:
        ids = set(self.conflict_calendar_ids)
        if self.primary_calendar_id:
            ids.add(self.primary_calendar_id)
        return ids


def _reasons(exc: ClientError) -> list[str]:
    return [str(r.get("Code") or "None") for r in exc.response.get("CancellationReasons", [])]


class AccountRepository:
    def __init__(self, table: Table) -> None:
        self._table = table

    # ---- connect: the account and its claims, in ONE transaction (C3, C4) ----------------------
    def connect(self, account: Account, location_id: str) -> Account:
        """Store the account for ``location_id`` (or add the location to it), claiming the external
        account for its person (C4) and the provider slot of the location (C3) in the same
        transaction. Refusals: ``AccountOwnedByAnotherUser``, ``AccountLimitPerLocation``."""
        name = self._table.name
        provider = account.provider.value
        user_pk = keys.user_pk(account.user_id)
        values: dict[str, Any] = {
            ":type": "account",
            ":prov": provider,
            ":ext": account.external_id,
            ":status": account.status,
            ":loc": {location_id},
            ":creds": dict(account.credentials),
            ":addr": list(account.own_addresses),
        }
        sets = ["#type = :type", "#prov = :prov", "#ext = :ext", "#status = :status", "#creds = :creds"]
        sets.append("#addr = :addr")
        names = {
            "#type": "type",
            "#prov": "provider",
            "#ext": "externalId",
            "#status": "status",
            "#loc": "locations",
            "#creds": "credentials",
            "#addr": "ownAddresses",
        }
        for attr, value in (
            ("email", account.email),
            ("serverUrl", account.server_url),
            ("principalUrl", account.principal_url),
        ):
            if value is not None:
                names[f"#{attr}"] = attr
                values[f":{attr}"] = value
                sets.append(f"#{attr} = :{attr}")
        transaction: Any = [
            {  # C4: the external account is unclaimed, or this person's (and this account's)
                "Update": {
                    "TableName": name,
                    "Key": {"pk": keys.external_claim_pk(provider, account.external_id), "sk": keys.OWNER},
                    "UpdateExpression": "SET #type = :type, #user = :user, #acc = :acc",
                    "ConditionExpression": "attribute_not_exists(pk) OR (#user = :user AND #acc = :acc)",
                    "ExpressionAttributeNames": {"#type": "type", "#user": "userId", "#acc": "accountId"},
                    "ExpressionAttributeValues": {
                        ":type": "externalClaim",
                        ":user": account.user_id,
                        ":acc": account.account_id,
                    },
                }
            },
            {  # C3: the person's provider slot in this location is free, or holds this account
                "Update": {
                    "TableName": name,
                    "Key": {"pk": user_pk, "sk": keys.location_provider_sk(location_id, provider)},
                    "UpdateExpression": "SET #type = :type, #acc = :acc",
                    "ConditionExpression": "attribute_not_exists(pk) OR #acc = :acc",
                    "ExpressionAttributeNames": {"#type": "type", "#acc": "accountId"},
                    "ExpressionAttributeValues": {":type": "locationClaim", ":acc": account.account_id},
                }
            },
            {
                "Update": {
                    "TableName": name,
                    "Key": {"pk": user_pk, "sk": keys.account_sk(account.account_id)},
                    "UpdateExpression": "SET " + ", ".join(sets) + " ADD #loc :loc",
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values,
                }
            },
        ]
        client = self._table.meta.client
        for attempt in range(_TRANSACTION_ATTEMPTS):
            try:
                client.transact_write_items(TransactItems=transaction)
                break
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    with _mapped_errors("connect account"):
                        raise
                reasons = _reasons(exc)
                if reasons[:1] == ["ConditionalCheckFailed"]:
                    raise AccountOwnedByAnotherUser(C4_DETAIL.format(provider=provider)) from exc
                if reasons[1:2] == ["ConditionalCheckFailed"]:
                    raise AccountLimitPerLocation(C3_DETAIL.format(provider=provider)) from exc
                if "TransactionConflict" not in reasons or attempt == _TRANSACTION_ATTEMPTS - 1:
                    raise StoreUnavailable("connect account: the store is busy, try again") from exc
                # another connect touched the same claims at the same moment: decide again, on the
                # state it left (the conditions then refuse or accept)
                time.sleep(0.05 * (attempt + 1))
        stored = self.get_account(account.user_id, account.account_id)
        assert stored is not None
        return stored

    # ---- accounts ----------------------------------------------------------------------------
    def get_account(self, user_id: str, account_id: str) -> Account | None:
        with _mapped_errors("read account"):
            item = self._table.get_item(
                Key={"pk": keys.user_pk(user_id), "sk": keys.account_sk(account_id)}, ConsistentRead=True
            ).get("Item")
        return None if item is None else _account(user_id, account_id, item)

    def list_accounts(self, user_id: str) -> list[Account]:
        items = self._query(keys.user_pk(user_id), keys.ACCOUNT_PREFIX)
        return [
            _account(user_id, str(i["sk"]).removeprefix(keys.ACCOUNT_PREFIX), i)
            for i in items
            if i.get("type") == "account"
        ]

    def set_status(self, user_id: str, account_id: str, status: AccountStatus) -> bool:
        """``False`` when the account is gone (disconnected meanwhile): nothing is re-created."""
        return self._update_existing(user_id, account_id, "status", status)

    def set_last_synced(self, user_id: str, account_id: str, when: datetime) -> bool:
        return self._update_existing(user_id, account_id, "lastSyncedAt", keys.iso(when))

    def replace_credentials(self, user_id: str, account_id: str, sealed: dict[str, str]) -> bool:
        """New sealed credentials of a connected account (a provider's fresh access token kept
        with the refresh token); ``False`` when the account is gone or a disconnect has already
        forgotten its credentials — those are never brought back."""
        return self._update_existing(user_id, account_id, "credentials", dict(sealed), replace_only=True)

    def _update_existing(
        self, user_id: str, account_id: str, attr: str, value: Any, *, replace_only: bool = False
    ) -> bool:
        """Set one attribute of the account; ``False`` when the account does not exist (or, with
        ``replace_only``, has no such attribute): nothing is created."""
        try:
            with _mapped_errors("update account"):
                self._table.update_item(
                    Key={"pk": keys.user_pk(user_id), "sk": keys.account_sk(account_id)},
                    UpdateExpression="SET #a = :v",
                    ConditionExpression="attribute_exists(#a)" if replace_only else "attribute_exists(pk)",
                    ExpressionAttributeNames={"#a": attr},
                    ExpressionAttributeValues={":v": value},
                )
        except Conflict:  # the condition failed
            return False
        return True

    def forget_credentials(self, user_id: str, account_id: str) -> None:
        """C9, first step of a disconnect: no sync can open the account's credentials any more."""
        with _mapped_errors("update account"):
            self._table.update_item(
                Key={"pk": keys.user_pk(user_id), "sk": keys.account_sk(account_id)},
                UpdateExpression="REMOVE #c",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#c": "credentials"},
            )

    def delete_account(self, account: Account) -> None:
        """The account, its claims (only where they still name it) and its calendar listing."""
        provider = account.provider.value
        client = self._table.meta.client
        name = self._table.name
        claims: list[dict[str, Any]] = [
            {"pk": keys.external_claim_pk(provider, account.external_id), "sk": keys.OWNER},
            *(
                {"pk": keys.user_pk(account.user_id), "sk": keys.location_provider_sk(loc, provider)}
                for loc in account.locations
            ),
        ]
        for key in claims:
            try:
                with _mapped_errors("delete account claim"):
                    client.delete_item(
                        TableName=name,
                        Key=key,
                        ConditionExpression="attribute_not_exists(pk) OR #acc = :acc",
                        ExpressionAttributeNames={"#acc": "accountId"},
                        ExpressionAttributeValues={":acc": account.account_id},
                    )
            except Conflict:  # claimed by another account since: not ours to delete
                continue
        self.delete_partition(keys.account_pk(account.account_id))
        with _mapped_errors("delete account"):
            self._table.delete_item(
                Key={"pk": keys.user_pk(account.user_id), "sk": keys.account_sk(account.account_id)}
            )

    # ---- calendar listing --------------------------------------------------------------------
    def put_calendar_listing(self, listing: CalendarListing) -> None:
        item: dict[str, Any] = {
            "pk": keys.account_pk(listing.account_id),
            "sk": keys.account_calendar_sk(listing.calendar_id),
            "type": "accountCalendar",
            "calendarId": listing.calendar_id,
            "accountId": listing.account_id,
            "provider": listing.provider.value,
            "name": listing.name,
            "accessRole": listing.access_role,
            "href": listing.href,
        }
        if listing.time_zone:
            item["timeZone"] = listing.time_zone
        if listing.url:
            item["url"] = listing.url
        with _mapped_errors("store calendar listing"):
            self._table.put_item(Item=item)

    def delete_calendar_listing(self, account_id: str, calendar_id: str) -> None:
        with _mapped_errors("delete calendar listing"):
            self._table.delete_item(
                Key={"pk": keys.account_pk(account_id), "sk": keys.account_calendar_sk(calendar_id)}
            )

    def list_calendars_of_account(self, account_id: str) -> list[CalendarListing]:
        return [
            CalendarListing(
                calendar_id=str(i["calendarId"]),
                account_id=account_id,
                provider=Provider(str(i["provider"])),
                name=str(i.get("name", "")),
                access_role=i.get("accessRole", "owner"),
                time_zone=_str_or_none(i.get("timeZone")),
                href=str(i.get("href", "")),
                url=str(i.get("url", "")),
            )
            for i in self._query(keys.account_pk(account_id), keys.LISTING_CAL_PREFIX)
        ]

    # ---- calendar configuration (C6) ---------------------------------------------------------
    def get_config(self, user_id: str, location_id: str) -> CalendarConfig:
        with _mapped_errors("read calendar configuration"):
            item = self._table.get_item(
                Key={"pk": keys.user_pk(user_id), "sk": keys.config_sk(location_id)}, ConsistentRead=True
            ).get("Item")
        return _config(location_id, item or {})

    def list_configs(self, user_id: str) -> list[CalendarConfig]:
        return [
            _config(str(i["sk"]).removeprefix(keys.CONFIG_PREFIX), i)
            for i in self._query(keys.user_pk(user_id), keys.CONFIG_PREFIX)
        ]

    def put_config(self, user_id: str, config: CalendarConfig) -> None:
        item: dict[str, Any] = {
            "pk": keys.user_pk(user_id),
            "sk": keys.config_sk(config.location_id),
            "type": "calendarConfig",
            "conflictCalendarIds": list(config.conflict_calendar_ids),
        }
        if config.primary_calendar_id:
            item["primaryCalendarId"] = config.primary_calendar_id
        with _mapped_errors("store calendar configuration"):
            self._table.put_item(Item=item)

    def set_primary_if_unset(self, user_id: str, location_id: str, calendar_id: str) -> bool:
        """C6 on connect: make ``calendar_id`` primary unless the location already has a primary
        (conditional: a primary set meanwhile is never overwritten). ``True`` when it was set."""
        try:
            with _mapped_errors("store calendar configuration"):
                self._table.update_item(
                    Key={"pk": keys.user_pk(user_id), "sk": keys.config_sk(location_id)},
                    UpdateExpression=("SET #type = :type, #p = :p, #c = if_not_exists(#c, :empty)"),
                    ConditionExpression="attribute_not_exists(#p)",
                    ExpressionAttributeNames={
                        "#type": "type",
                        "#p": "primaryCalendarId",
                        "#c": "conflictCalendarIds",
                    },
                    ExpressionAttributeValues={":type": "calendarConfig", ":p": calendar_id, ":empty": []},
                )
        except Conflict:  # a primary is set already
            return False
        return True

    # ---- helpers -----------------------------------------------------------------------------
    def delete_partition(self, pk: str) -> int:
        """Delete every item of a partition (an account's listing, a calendar's state)."""
        deleted = 0
        for batch_items in _chunks(self._query(pk, ""), 25):
            with _mapped_errors("delete items"), self._table.batch_writer() as batch:
                for item in batch_items:
                    batch.delete_item(Key={"pk": item["pk"], "sk": item["sk"]})
            deleted += len(batch_items)
        return deleted

    def _query(self, pk: str, prefix: str) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {"ConsistentRead": True}
        if prefix:
            kwargs["KeyConditionExpression"] = "pk = :pk AND begins_with(sk, :p)"
            kwargs["ExpressionAttributeValues"] = {":pk": pk, ":p": prefix}
        else:
            kwargs["KeyConditionExpression"] = "pk = :pk"
            kwargs["ExpressionAttributeValues"] = {":pk": pk}
        items: list[dict[str, Any]] = []
        while True:
            with _mapped_errors("read items"):
                resp = self._table.query(**kwargs)
            items.extend(resp.get("Items", []))
            if "LastEvaluatedKey" not in resp:
                return items
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


def _chunks(items: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _account(user_id: str, account_id: str, item: dict[str, Any]) -> Account:
    synced = item.get("lastSyncedAt")
    creds = item.get("credentials")
    return Account(
        account_id=account_id,
        user_id=user_id,
        provider=Provider(str(item["provider"])),
        external_id=str(item["externalId"]),
        email=_str_or_none(item.get("email")),
        status=item.get("status", "active"),
        locations=sorted(str(loc) for loc in (item.get("locations") or ())),
        last_synced_at=keys.parse_iso(str(synced)) if synced else None,
        server_url=_str_or_none(item.get("serverUrl")),
        principal_url=_str_or_none(item.get("principalUrl")),
        own_addresses=[str(a) for a in (item.get("ownAddresses") or [])],
        credentials={str(k): str(v) for k, v in creds.items()} if isinstance(creds, dict) else {},
    )


def _config(location_id: str, item: dict[str, Any]) -> CalendarConfig:
    return CalendarConfig(
        location_id=location_id,
        primary_calendar_id=_str_or_none(item.get("primaryCalendarId")),
        conflict_calendar_ids=[str(c) for c in (item.get("conflictCalendarIds") or [])],
    )
