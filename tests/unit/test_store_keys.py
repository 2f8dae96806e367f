"""The shards of calsync.store.keys: items are stored under them, so a key's shard never changes."""

from __future__ import annotations

from calsync.store import keys

KEYS = ["alice", "USER#alice", "ROOM#l1#board", "c1", "acc-1", "cal-1#ch"]


def test_a_keys_shard_is_the_same_in_every_release() -> None:
    """The 16-bit blake2b of the key (what every shard was computed from before shard_of)."""
    assert [keys.shard_of(k, 1 << 16) for k in KEYS] == [49202, 44180, 5852, 28034, 45943, 50490]


def test_each_kind_of_shard_is_the_key_hashed_over_its_own_count() -> None:
    sixteen, four = [2, 4, 12, 2, 7, 10], [2, 0, 0, 2, 3, 2]
    assert [keys.cleanup_shard(k) for k in KEYS] == sixteen
    assert [keys.due_shard(k) for k in KEYS] == sixteen
    assert [keys.poll_shard(k) for k in KEYS] == sixteen
    assert [keys.ms_subscription_shard(k) for k in KEYS] == four
    assert [keys.channel_shard(k) for k in KEYS] == four
