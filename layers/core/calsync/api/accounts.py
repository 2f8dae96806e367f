"""Accounts use-cases: connect a CalDAV account, list accounts and calendars, the calendar
configuration (C6, C8) and disconnect (C9). No HTTP and no CalDAV here: the handler passes in the
principal and the validated input, and injects ``discover`` (calsync_caldav), the credential box
(KMS) and ``enqueue`` (the sync queue).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal, Protocol

from calsync.api.account_schemas import (
    AccountOut,
    AccountsOut,
    CaldavConnectIn,
    CalendarConfigIn,
    CalendarConfigOut,
    CalendarOut,
    CalendarsOut,
    CalendarSyncOut,
)
from calsync.api.auth import Principal
from calsync.api.calendar_sync import CalendarSync
from calsync.crypto import CredentialBox, open_login, seal_login
from calsync.domain.errors import Forbidden, InvalidInput, NotFound
from calsync.domain.limits import cut
from calsync.domain.models import Provider
from calsync.observability import logger
from calsync.store import keys
from calsync.store.accounts import (
    Account,
    AccountRepository,
    CalendarConfig,
    CalendarListing,
    FoundCalendar,
    account_id_for,
    calendar_id_for,
)
from calsync.store.items import SubscriberRole
from calsync.store.sync_state import SyncState, SyncStateStore
from calsync.sync.failures import skipped_text
from calsync.sync.jobs import Reason, SyncJob

if TYPE_CHECKING:
    from calsync.store.repository import Repository


class Discovery(Protocol):
    """What ``calsync_caldav.connect.discover`` finds (credentials checked, X6 applied)."""

    @property
    def server_url(self) -> str: ...
    @property
    def external_id(self) -> str: ...
    @property
    def email(self) -> str: ...
    @property
    def principal_url(self) -> str: ...
    @property
    def own_addresses(self) -> Sequence[str]: ...
    @property
    def calendars(self) -> Sequence[FoundCalendar]: ...


Discover = Callable[[str, str, str], Discovery]  # (server URL, user name, password)
Enqueue = Callable[[SyncJob], None]
StopPush = Callable[[Account], int]  # C9: stops the account's push channels at the provider


@dataclass(frozen=True, slots=True)
class AccountsDeps:
    discover: Discover
    box: CredentialBox
    enqueue: Enqueue
    # per provider; called with the account while its credentials still exist (best effort)
    stop_push: Mapping[Provider, StopPush] = field(default_factory=dict)
    # per provider: the provider's sync queue (CalDAV, Google, Microsoft); ``enqueue`` otherwise
    enqueue_for: Mapping[Provider, Enqueue] = field(default_factory=dict)


def _account_out(account: Account, states: Sequence[tuple[str, SyncState]] = ()) -> AccountOut:
    """S13: the stored status, or ``error`` when the last sync of one of its calendars failed;
    ``lastError`` names the calendar and says why (or how many of its events were skipped, S11)."""
    status: Literal["active", "reauth_required", "syncing", "error"] = account.status
    failed = [(name, s) for name, s in states if s.last_error]
    skipped = [(name, s) for name, s in states if s.skipped_events]
    last_error = None
    if failed:
        name, state = failed[0]
        last_error = f"{cut(name, 80)}: {state.last_error}" if name else state.last_error
        if status != "reauth_required":
            status = "error"
    elif skipped:
        name, state = skipped[0]
        text = skipped_text(state.skipped_events)
        last_error = f"{cut(name, 80)}: {text}" if name else text
    return AccountOut(
        id=account.account_id,
        provider=account.provider.value,
        email=account.email,
        status=status,
        locations=list(account.locations),
        last_synced_at=account.last_synced_at,
        last_error=last_error,
    )


def _sync_out(state: SyncState | None, now: datetime) -> CalendarSyncOut:
    if state is None:
        return CalendarSyncOut(status="never", last_synced_at=None, last_error=None, skipped_events=0)
    status: Literal["never", "ok", "syncing", "error"] = (
        "error"
        if state.last_error
        else "syncing"
        if state.leased(now)
        else "ok"
        if state.last_synced_at
        else "never"
    )
    return CalendarSyncOut(
        status=status,
        last_synced_at=state.last_synced_at,
        last_error=state.last_error,
        skipped_events=state.skipped_events,
    )


def _calendar_out(
    listing: CalendarListing,
    state: SyncState | None = None,
    now: datetime | None = None,
    *,
    room_calendar: bool = False,
) -> CalendarOut:
    return CalendarOut(
        id=listing.calendar_id,
        account_id=listing.account_id,
        provider=listing.provider.value,
        name=listing.name,
        access_role=listing.access_role,
        time_zone=listing.time_zone,
        sync=_sync_out(state, now or datetime.now(UTC)),
        room_calendar=room_calendar,
    )


def _config_out(config: CalendarConfig) -> CalendarConfigOut:
    return CalendarConfigOut(
        primary_calendar_id=config.primary_calendar_id,
        conflict_calendar_ids=list(config.conflict_calendar_ids),
    )


def desired_roles(configs: Iterable[CalendarConfig]) -> dict[str, SubscriberRole]:
    """The role each configured calendar is copied to the person with: primary wins when a calendar
    is primary in some location and a conflict calendar in another."""
    roles: dict[str, SubscriberRole] = {}
    for config in configs:
        for calendar_id in config.conflict_calendar_ids:
            roles.setdefault(calendar_id, "conflict")
        if config.primary_calendar_id:
            roles[config.primary_calendar_id] = "primary"
    return roles


class AccountsService:
    def __init__(self, repository: Repository, accounts: AccountRepository, deps: AccountsDeps) -> None:
        self._repo = repository
        self._accounts = accounts
        self._deps = deps

    # ---- the caller --------------------------------------------------------------------------
    def _remember_member(self, principal: Principal) -> None:
        """Store the token's locations so admins can be checked against them (as ApiService does)."""
        _, locations = self._repo.get_member(principal.user_id)
        if locations != principal.locations:
            self._repo.set_member_locations(principal.user_id, principal.locations)

    # ---- connect (C2, C3, C4, C6, S7) --------------------------------------------------------
    def connect_caldav(self, principal: Principal, body: CaldavConnectIn) -> AccountOut:
        """Check the credentials with the server, then store the account (C3/C4 in one
        transaction), its calendars, C6's primary, and queue the first syncs. Nothing is stored
        when the server refuses, cannot be reached, or is not a CalDAV server."""
        location_id = body.location_id
        if not principal.is_member_of(location_id):  # C2, and C8: only for oneself
            raise Forbidden("you can connect accounts only in the locations you are a member of")
        password = body.password.get_secret_value()
        discovery = self._deps.discover(body.server_url, body.username, password)
        user_id = principal.user_id
        account_id = account_id_for(user_id, Provider.CALDAV, discovery.external_id)
        sealed = seal_login(
            self._deps.box, body.username, password, {"userId": user_id, "accountId": account_id}
        )
        del password
        account = self._accounts.connect(
            Account(
                account_id=account_id,
                user_id=user_id,
                provider=Provider.CALDAV,
                external_id=discovery.external_id,
                email=discovery.email,
                status="active",
                server_url=discovery.server_url,
                principal_url=discovery.principal_url,
                own_addresses=[a.lower() for a in discovery.own_addresses],
                credentials=sealed,
            ),
            location_id,
        )
        self.attach_calendars(principal, account, location_id, discovery.calendars)
        return _account_out(account)

    def attach_calendars(
        self,
        principal: Principal,
        account: Account,
        location_id: str,
        found: Sequence[FoundCalendar],
        *,
        enqueue: Enqueue | None = None,
    ) -> list[CalendarListing]:
        """After a connect (any provider): the account's calendars, C6's primary (the first
        writable one when the location has none), the subscriptions of the configured calendars and
        their first syncs (on ``enqueue``, default: this service's queue)."""
        user_id, account_id = principal.user_id, account.account_id
        self._remember_member(principal)
        listings = self._store_calendars(user_id, account_id, found, account.provider)
        first_writable = next((c for c in listings if c.writable), None)
        if first_writable is not None:
            self._accounts.set_primary_if_unset(user_id, location_id, first_writable.calendar_id)
        self._reconcile_subscriptions(user_id)
        configured = desired_roles(self._accounts.list_configs(user_id))
        for listing in listings:
            if listing.calendar_id in configured:
                self._enqueue(user_id, account_id, listing.calendar_id, "connect", enqueue, account.provider)
        logger.info(
            "account connected",
            extra={
                "provider": account.provider.value,
                "account_id": account_id,
                "location_id": location_id,
                "calendars": len(listings),
            },
        )
        return listings

    def _store_calendars(
        self,
        user_id: str,
        account_id: str,
        found: Sequence[FoundCalendar],
        provider: Provider = Provider.CALDAV,
        *,
        remove_missing: bool = True,
    ) -> list[CalendarListing]:
        listings: list[CalendarListing] = []
        for cal in found:
            # CalDAV: the absolute URL discovery found it at (iCloud serves calendars from a
            # partition host, not the one the person typed); other providers have none
            url = getattr(cal, "url", "") if provider is Provider.CALDAV else ""
            listing = CalendarListing.of(account_id, provider, cal, url)
            self._repo.put_calendar(listing.calendar(user_id))
            self._accounts.put_calendar_listing(listing)
            listings.append(listing)
        if not remove_missing:
            return listings
        # calendars the server no longer has (a reconnect): gone from every configuration
        current = {listing.calendar_id for listing in listings}
        stale = [c.calendar_id for c in self._accounts.list_calendars_of_account(account_id)]
        self._remove_calendars(user_id, account_id, [c for c in stale if c not in current], provider)
        return listings

    def _enqueue(  # noqa: PLR0917
        self,
        user_id: str,
        account_id: str,
        calendar_id: str,
        reason: Reason,
        enqueue: Enqueue | None = None,
        provider: Provider | None = None,
    ) -> None:
        """On ``enqueue``, else on the provider's own sync queue, else on this service's queue."""
        routed = self._deps.enqueue_for.get(provider) if provider is not None else None
        # full: the calendar may be unchanged on the server (ctag) but new to this subscriber
        (enqueue or routed or self._deps.enqueue)(
            SyncJob(calendar_id=calendar_id, user_id=user_id, account_id=account_id, reason=reason, full=True)
        )

    # ---- listing -----------------------------------------------------------------------------
    def list_accounts(self, principal: Principal) -> AccountsOut:
        accounts = sorted(self._accounts.list_accounts(principal.user_id), key=lambda a: a.account_id)
        listings = {a.account_id: self._accounts.list_calendars_of_account(a.account_id) for a in accounts}
        states = self._sync_states([c.calendar_id for cs in listings.values() for c in cs])
        return AccountsOut(
            accounts=[
                _account_out(
                    a,
                    [
                        (c.name, states[c.calendar_id])
                        for c in listings[a.account_id]
                        if c.calendar_id in states
                    ],
                )
                for a in accounts
            ]
        )

    def _sync_states(self, calendar_ids: Sequence[str]) -> dict[str, SyncState]:
        return SyncStateStore(self._repo.table).get_many(calendar_ids) if calendar_ids else {}

    def _calendars_of(self, user_id: str) -> dict[str, CalendarListing]:
        out: dict[str, CalendarListing] = {}
        for account in self._accounts.list_accounts(user_id):
            for listing in self._accounts.list_calendars_of_account(account.account_id):
                out[listing.calendar_id] = listing
        return out

    def list_calendars(self, principal: Principal) -> CalendarsOut:
        self._add_new_caldav_calendars(principal.user_id)
        listings = sorted(
            self._calendars_of(principal.user_id).values(), key=lambda c: (c.account_id, c.name)
        )
        ids = [c.calendar_id for c in listings]
        states = self._sync_states(ids)
        marked = self._repo.room_calendars(ids) if ids else frozenset()
        now = datetime.now(UTC)
        return CalendarsOut(
            calendars=[
                _calendar_out(c, states.get(c.calendar_id), now, room_calendar=c.calendar_id in marked)
                for c in listings
            ]
        )

    def _add_new_caldav_calendars(self, user_id: str) -> None:
        """R8: a calendar created at the server after the connect becomes selectable. Each CalDAV
        account is discovered again with its stored login and new calendars are added to its listing
        (never removed here: a calendar the server stops listing goes on a reconnect). Best effort:
        a server that fails keeps the listing as it was, with one WARNING line (no secret)."""
        for account in self._accounts.list_accounts(user_id):
            if account.provider is not Provider.CALDAV or not account.credentials or not account.server_url:
                continue
            if account.status == "reauth_required":
                continue
            known = {c.calendar_id for c in self._accounts.list_calendars_of_account(account.account_id)}
            context = {"userId": user_id, "accountId": account.account_id}
            try:
                username, password = open_login(self._deps.box, account.credentials, context)
                found = self._deps.discover(account.server_url, username, password).calendars
            except Exception as exc:  # the stored listing is still a good answer
                logger.warning(
                    "calendar listing not refreshed",
                    extra={"account_id": account.account_id, "error_type": type(exc).__name__},
                )
                continue
            new = [c for c in found if calendar_id_for(account.account_id, c.href) not in known]
            if new:
                self._store_calendars(
                    user_id, account.account_id, new, account.provider, remove_missing=False
                )
                logger.info(
                    "new calendars listed", extra={"account_id": account.account_id, "calendars": len(new)}
                )

    # ---- calendar configuration (C6, C8) -----------------------------------------------------
    def _authorize_config(self, principal: Principal, location_id: str, user_id: str) -> None:
        if user_id == principal.user_id:
            if not principal.is_member_of(location_id):
                raise Forbidden("you have a calendar configuration only in the locations you are a member of")
            self._remember_member(principal)
            return
        if principal.administers(location_id):
            _, locations = self._repo.get_member(user_id)
            if locations is not None and location_id in locations:
                return
        # strangers and non-members alike: the answer never tells who exists (X1)
        raise Forbidden("you can set the calendars of members of the locations you administer only")

    def get_config(self, principal: Principal, location_id: str, user_id: str) -> CalendarConfigOut:
        self._authorize_config(principal, location_id, user_id)
        return _config_out(self._accounts.get_config(user_id, location_id))

    def put_config(
        self, principal: Principal, location_id: str, user_id: str, body: CalendarConfigIn
    ) -> CalendarConfigOut:
        self._authorize_config(principal, location_id, user_id)
        calendars = self._calendars_of(user_id)
        primary = body.primary_calendar_id
        conflicts = list(dict.fromkeys(c for c in body.conflict_calendar_ids if c != primary))
        unknown = [c for c in [primary, *conflicts] if c is not None and c not in calendars]
        if unknown:
            raise InvalidInput(
                f"{unknown[0]!r} is not a calendar of this person's connected accounts: "
                "see GET /v1/me/calendars"
            )
        if primary is not None and not calendars[primary].writable:
            raise InvalidInput(
                "the primary calendar must be one calsync can write to (access role owner or writer)"
            )
        config = CalendarConfig(
            location_id=location_id, primary_calendar_id=primary, conflict_calendar_ids=conflicts
        )
        self._accounts.put_config(user_id, config)
        for calendar_id in self._reconcile_subscriptions(user_id):
            listing = calendars[calendar_id]  # each provider's calendars go to its own sync queue
            self._enqueue(user_id, listing.account_id, calendar_id, "config", provider=listing.provider)
        return _config_out(config)

    def _reconcile_subscriptions(self, user_id: str) -> list[str]:
        """Make the calendars' subscribers match the person's configurations in every location:
        subscribe what is configured (with its role), unsubscribe (and so delete the copies of)
        what no location configures any more. Returns the calendars newly subscribed or whose role
        changed: they need a (full) sync to fill the person's partition."""
        desired = desired_roles(self._accounts.list_configs(user_id))
        owner = keys.user_pk(user_id)
        changed: list[str] = []
        for calendar_id in sorted(set(self._calendars_of(user_id)) | set(desired)):
            calendar = self._repo.get_calendar(calendar_id)
            if calendar is None:
                continue
            want, have = desired.get(calendar_id), calendar.subscribers.get(owner)
            if want is not None and want != have:
                self._repo.subscribe(calendar_id, owner, want)
                # R8: what the store holds of it appears at once (a role change rewrites the copies)
                CalendarSync(self._repo, {}).fill(calendar_id, owner, want, restamp=have is not None)
                changed.append(calendar_id)
            elif want is None and have is not None:
                self._repo.unsubscribe(calendar_id, owner)
        return changed

    # ---- disconnect (C8, C9) -----------------------------------------------------------------
    def disconnect(self, principal: Principal, account_id: str) -> None:
        """Only the person (C8). Credentials first (no sync can log in any more), then the
        calendars leave every configuration, every copy of their events and their sync state are
        deleted, then the claims and the account. Safe to repeat after a failure half-way."""
        user_id = principal.user_id
        account = self._accounts.get_account(user_id, account_id)
        if account is None:
            raise NotFound("no such account")
        stop_push = self._deps.stop_push.get(account.provider)
        if stop_push is not None and account.credentials:
            try:  # C9: before the credentials go (the provider's channels expire on their own anyway)
                stop_push(account)
            except Exception:  # best effort: a provider outage does not block a disconnect
                logger.exception("push channels not stopped", extra={"account_id": account_id})
        self._accounts.forget_credentials(user_id, account_id)
        calendar_ids = [c.calendar_id for c in self._accounts.list_calendars_of_account(account_id)]
        self._remove_calendars(user_id, account_id, calendar_ids, account.provider)
        self._accounts.delete_account(account)
        logger.info("account disconnected", extra={"account_id": account_id, "calendars": len(calendar_ids)})

    def _remove_calendars(
        self,
        user_id: str,
        account_id: str,
        calendar_ids: Sequence[str],
        provider: Provider = Provider.CALDAV,
    ) -> None:
        if not calendar_ids:
            return
        gone = set(calendar_ids)
        for config in self._accounts.list_configs(user_id):
            if config.calendar_ids & gone:
                self._accounts.put_config(
                    user_id,
                    CalendarConfig(
                        location_id=config.location_id,
                        primary_calendar_id=None
                        if config.primary_calendar_id in gone
                        else config.primary_calendar_id,
                        conflict_calendar_ids=[c for c in config.conflict_calendar_ids if c not in gone],
                    ),
                )
        for calendar_id in calendar_ids:
            calendar = self._repo.get_calendar(calendar_id)
            subscribers: Mapping[str, SubscriberRole] = calendar.subscribers if calendar else {}
            for owner_pk in subscribers:  # the person and any room: every stored copy goes
                self._repo.unsubscribe(calendar_id, owner_pk)
            SyncStateStore(self._repo.table).forget_calendar(provider.value, calendar_id)
            self._accounts.delete_partition(keys.calendar_pk(calendar_id))  # the calendar and the rest
            self._accounts.delete_calendar_listing(account_id, calendar_id)
