"""Google channel renewal fanned out (S4; issue 16, docs/adr/0020), on moto and the fake Google.

The hourly schedule dispatches one ``google-channels`` task per shard of the channel-expiry index
to the GoogleRenewQueue; each invocation renews at most a page of one shard (50 deployed, 3 here:
the same code path) under its time budget and hands the rest back. 13 channels over 4 shards: one
shard holds at least 4, so a hand-back always happens. Every channel is renewed exactly once (one
``events.watch`` per calendar), also when every task is delivered twice.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import timedelta

from calsync.store import keys
from calsync.store.accounts import AccountRepository
from calsync.store.channels import Channel, ChannelStore, new_channel_id, token_digest
from functions.google_renew import app as renew_app
from tests.integration.test_google import NOW, World, connected, world  # noqa: F401
from tests.support.apigw import LambdaContext

N = 13  # channels; > 3 x CHANNEL_SHARDS, so some shard holds more than one page of 3
LATER = NOW + timedelta(days=1)  # when the schedule runs: every channel expires within 4 days


def channels_near_expiry(w: World, n: int = N) -> dict[str, Channel]:
    """``n`` calendars of the account, each with a channel in the store expiring in 2 days: by
    Google calendar id."""
    for i in range(n):
        w.fake.add_calendar(w.email, f"c{i:02d}@group.calendar.google.com", f"C{i}", "writer")
    connected(w)
    [account] = AccountRepository(w.table).list_accounts(w.user)
    store = ChannelStore(w.table)
    out = {}
    for listing in AccountRepository(w.table).list_calendars_of_account(account.account_id):
        if not listing.href.startswith("c"):
            continue
        channel = Channel(
            channel_id=new_channel_id(listing.calendar_id),
            calendar_id=listing.calendar_id,
            user_id=w.user,
            account_id=account.account_id,
            resource_id=f"res-{listing.calendar_id}",
            token_sha256=token_digest("t"),
            expires_at=LATER + timedelta(days=2),
        )
        store.put(channel)
        out[listing.href] = channel
    assert len(out) == n
    return out


def watches(w: World) -> Counter[str]:
    """The channels opened at Google, by Google calendar id."""
    return Counter(c.cal_id for c in w.fake.channels.values() if c.cal_id.startswith("c"))


def schedule(w: World, limit: int | None = None) -> None:
    """The schedule's run at ``LATER``; ``limit``: channels per task, for the rest of the test."""
    w.renew_now = LATER
    w.wired.enter_context(renew_app.wiring.use(replace(renew_app.wiring(), limit=limit)))
    got = renew_app.lambda_handler({}, LambdaContext(function_name="google-renew"))
    assert got["renewTasks"] == keys.CHANNEL_SHARDS and got["renewTasksFailed"] == 0


def renewed_once(w: World, old: dict[str, Channel]) -> None:
    assert watches(w) == Counter(dict.fromkeys(old, 1))
    store = ChannelStore(w.table)
    for cal, channel in old.items():
        assert store.get(channel.channel_id) is None  # the old one is stopped and forgotten
        [new] = store.of_calendar(channel.calendar_id)
        assert new.expires_at > LATER + timedelta(days=4)
        assert [c.channel_id for c in w.fake.live_channels(cal)] == [new.channel_id]


def test_no_invocation_renews_more_than_a_page(world: World) -> None:  # noqa: F811
    old = channels_near_expiry(world)
    schedule(world, limit=3)
    per_invocation = world.renewals.run(measure=lambda: watches(world).total())
    assert max(per_invocation) <= 3
    assert sum(per_invocation) == N
    assert len(per_invocation) > keys.CHANNEL_SHARDS  # pages were handed back
    assert any('"after"' in body for body in world.renewals.bodies)
    assert all('"kind":"google-channels"' in body for body in world.renewals.bodies)
    renewed_once(world, old)


def test_a_redelivered_task_renews_nothing_twice(world: World) -> None:  # noqa: F811
    old = channels_near_expiry(world)
    schedule(world, limit=3)
    per_invocation = world.renewals.run(measure=lambda: watches(world).total(), redeliver=True)
    # a second delivery finds the channels the first renewed gone from the index: it goes on with
    # the next ones (or finds nothing), and opens no second channel for any calendar
    assert max(per_invocation) <= 3 and sum(per_invocation) == N
    renewed_once(world, old)
    # and the next hourly run finds nothing to renew
    schedule(world, limit=3)
    assert sum(world.renewals.run(measure=lambda: watches(world).total())) == 0


@dataclass
class Ticking(LambdaContext):
    """An invocation whose remaining time drops by 60 s each time it is read (no wall clock): its
    budget (a quarter kept back) allows two channels, then the rest is handed back."""

    left: int = 300_000

    def get_remaining_time_in_millis(self) -> int:
        self.left -= 60_000
        return self.left + 60_000


def test_the_rest_is_handed_back_when_the_time_is_spent(world: World) -> None:  # noqa: F811
    old = channels_near_expiry(world)
    schedule(world)  # the deployed page of 50: only the budget stops an invocation
    per_invocation = world.renewals.run(
        lambda: Ticking(function_name="google-renew"), measure=lambda: watches(world).total()
    )
    assert max(per_invocation) <= 2
    assert sum(per_invocation) == N
    assert any('"after"' in body for body in world.renewals.bodies)
    renewed_once(world, old)


def test_a_renewal_is_claimed_once_and_only_while_the_channel_is_the_one_read(world: World) -> None:  # noqa: F811
    old = channels_near_expiry(world, 1)
    [channel] = old.values()
    store = ChannelStore(world.table)
    first = store.claim_renewal(channel, LATER)
    assert first is not None
    assert store.claim_renewal(channel, LATER + timedelta(minutes=1)) is None  # a parallel delivery
    store.release_renewal(channel, first)  # a failed renewal gives it back
    assert store.claim_renewal(channel, LATER) is not None
    # a sync renewed it meanwhile: the item read is not there any more (or another expiry)
    moved = channel.model_copy(update={"expires_at": channel.expires_at + timedelta(days=5)})
    assert store.claim_renewal(moved, LATER + timedelta(hours=1)) is None
    store.delete(channel)
    assert store.claim_renewal(channel, LATER + timedelta(hours=1)) is None


def test_a_channel_claimed_by_a_parallel_delivery_is_left_to_it(world: World) -> None:  # noqa: F811
    # a task redelivered while its first delivery still runs (or a second schedule run): the first
    # holds the claim of the channel it renews; the second opens no channel for that calendar
    old = channels_near_expiry(world, 2)
    (busy_cal, busy), (free_cal, _free) = sorted(old.items())
    assert ChannelStore(world.table).claim_renewal(busy, LATER) is not None
    schedule(world, limit=3)
    world.renewals.run()
    assert watches(world) == Counter({free_cal: 1})
    assert ChannelStore(world.table).get(busy.channel_id) is not None  # still the first delivery's
    assert busy_cal not in watches(world)
