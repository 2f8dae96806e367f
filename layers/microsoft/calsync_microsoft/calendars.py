"""A mailbox's calendars: ``me/calendars`` read (connect) and read again later (R8).

- ``list_calendars``: every calendar of ``me/calendars``, page after page (``@odata.nextLink``,
  docs/providers/microsoft.md M6), bounded by ``MAX_CALENDAR_PAGES``.
- ``refresh_listing``: Graph sends no change notification when a calendar is created in (or shared
  with) a mailbox (M15), so the schedules that already talk to Graph per mailbox (the ``renew`` and
  ``reconcile`` jobs of ``functions/microsoft_renew``) read the list again, once per job: a new
  calendar is added to the account's listing (selectable in ``GET /v1/me/calendars``), a calendar
  shared by someone else is recorded as polled (M10), a known one gets its new name and role.
  Nothing is removed here: a calendar no longer listed stays (a configured one must never vanish
  from a configuration on a passing answer; a reconnect removes what is really gone).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from calsync.domain.models import Provider
from calsync.observability import logger
from calsync.store.accounts import Account, AccountRepository, CalendarListing, calendar_id_for
from calsync.store.items import AccessRole
from calsync.store.repository import Repository
from calsync_microsoft.graph import GraphClient, GraphError
from calsync_microsoft.registry import MicrosoftRegistry

MAX_CALENDAR_PAGES: Final = 50  # 50 pages of calendars (Graph's default page: 10): a hostile loop ends


@dataclass(frozen=True, slots=True)
class GraphCalendar:
    href: str  # the Graph calendar id
    name: str
    access_role: AccessRole
    time_zone: str | None = None
    default: bool = False
    shared: bool = False  # shared with the mailbox by someone else: no change notifications (M10)


def _calendar(item: Any, own_address: str) -> GraphCalendar | None:
    if not isinstance(item, dict) or not item.get("id"):
        return None
    owner = item.get("owner")
    owner_address = str(owner.get("address") or "").lower() if isinstance(owner, dict) else ""
    return GraphCalendar(
        href=str(item["id"]),
        name=str(item.get("name") or "")[:256],
        access_role="owner" if item.get("canEdit") else "reader",
        default=bool(item.get("isDefaultCalendar")),
        shared=bool(owner_address and own_address and owner_address != own_address)
        or item.get("canShare") is False,
    )


def list_calendars(client: GraphClient, own_address: str) -> list[GraphCalendar]:
    """Every calendar of ``me/calendars``, page after page (``@odata.nextLink``, M6), the default
    calendar first (C6 makes the first writable calendar primary)."""
    out: list[GraphCalendar] = []
    url = "me/calendars"
    for _ in range(MAX_CALENDAR_PAGES):
        resp = client.get(url)
        if resp.status != 200 or not isinstance(resp.body, dict):
            raise GraphError(resp.status, resp.error_code() or "no calendar list")
        for item in resp.body.get("value") or []:
            found = _calendar(item, own_address.lower())
            if found is not None and found.href not in {c.href for c in out}:
                out.append(found)
        next_link = resp.body.get("@odata.nextLink")
        if not isinstance(next_link, str) or not next_link:
            break
        url = next_link
    else:
        logger.warning("me/calendars paged past the limit", extra={"pages": MAX_CALENDAR_PAGES})
    return [c for c in out if c.default] + [c for c in out if not c.default]


def own_address_of(account: Account) -> str:
    return account.email or next(iter(account.own_addresses), "")


def refresh_listing(
    client: GraphClient,
    account: Account,
    accounts: AccountRepository,
    repository: Repository,
    registry: MicrosoftRegistry,
) -> int:
    """Reads ``me/calendars`` once (every page) and stores what changed: new calendars, new names
    and roles; the polled set gains the shared ones. Never deletes. The number of listings written.
    Graph's errors propagate (the caller decides: the worker logs them and syncs on)."""
    found = list_calendars(client, own_address_of(account))
    account_id = account.account_id
    known = {c.calendar_id: c for c in accounts.list_calendars_of_account(account_id)}
    written = 0
    shared: set[str] = set()
    for cal in found:
        listing = CalendarListing.of(account_id, Provider.MICROSOFT, cal)
        if cal.shared:
            shared.add(listing.calendar_id)
        if known.get(listing.calendar_id) == listing:
            continue
        repository.put_calendar(listing.calendar(account.user_id))  # keeps its subscribers
        accounts.put_calendar_listing(listing)
        written += 1
    listed = {calendar_id_for(account_id, c.href) for c in found}
    before = set(registry.polled_calendar_ids(account_id))
    polled = shared | {c for c in before if c not in listed}  # not listed now: kept, like its listing
    if polled != before:
        registry.put_polled(account.user_id, account_id, sorted(polled))
    if written:
        logger.info(
            "calendar listing refreshed",
            extra={
                "account_id": account_id,
                "provider": Provider.MICROSOFT.value,
                "added": len(listed - set(known)),
                "written": written,
            },
        )
    return written
