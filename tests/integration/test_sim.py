"""`make sim` at a tiny size on DynamoDB Local (issue 16): its invariants and its report's sections.

200 people, a sample of 10, and PollShardFunction's page lowered to 5 entries so that every shard
(~12 entries) needs several invocations that hand the rest back — the path a 100,000-calendar poll
takes with SHARD_BATCH = 1,000. Checked from the figures the simulation returns: every registry
entry enqueued in the 30-minute cycle, none twice in a run, no invocation above the page, each
run's invocations more than one per shard, and every section of the report printed.
"""

from __future__ import annotations

from typing import Any

import pytest

from bench import sim
from calsync.sync import poll

pytestmark = pytest.mark.dynamodb_local

PEOPLE, PAGE = 200, 5
DUE_EVERY = 2  # half the Google channels due at the renew run (the day's steady state: 1 in 72)


@pytest.fixture(scope="module")
def simulated(ddb_local_endpoint: str) -> tuple[str, dict[str, Any]]:
    return sim.simulate(
        PEOPLE,
        endpoint=ddb_local_endpoint,
        threads=2,
        sample=10,
        shard_limit=PAGE,
        google_due_every=DUE_EVERY,
    )


def test_the_poll_of_every_registered_calendar_is_shared_by_bounded_invocations(
    simulated: tuple[str, dict[str, Any]],
) -> None:
    _, figures = simulated
    polled = figures["poll"]
    assert polled["missed"] == 0  # every calendar enqueued within MAX_STALENESS
    assert polled["twice"] == 0  # never twice in one run
    assert polled["bound"] == PAGE
    assert 0 < polled["largest"] <= PAGE
    assert len(polled["jobs_per_run"]) == poll.QUIET_EVERY
    # the shards did not fit one page: invocations handed the rest back
    assert all(n > 16 for n in polled["invocations_per_run"])
    # every calendar is polled at least once in the cycle, and quiet ones not in every run
    assert PEOPLE <= sum(polled["jobs_per_run"]) < PEOPLE * poll.QUIET_EVERY


def test_the_report_has_each_section_and_says_what_is_measured(simulated: tuple[str, dict[str, Any]]) -> None:
    text, figures = simulated
    for section in (
        "== measured: each kind of work",
        "== measured: the poll of all 200 registered calendars",
        "== measured: the busiest partitions",
        "== extrapolated: each component's ceiling at the template's settings ==",
        "== extrapolated: the day at 200 people ==",
        "== extrapolated: cost per 1,000 people per month",
    ):
        assert section in text, section
    for component in ("CalDAV poll fan-out", "CalDAV sync workers", "API meetings reads", "Cleanup"):
        assert component in text
        assert figures["ceilings"][component_key(component)] > 0
    assert figures["cost_per_1000"] > 0
    assert figures["busiest"]["requests"] > 0
    phases = figures["phases"]
    assert phases["API: meetings read (200)"]["ops"] == 10
    assert phases["API: conditional read (304)"]["rcu"] > 0
    assert phases["sync: one event moved"]["wcu"] > 0
    assert phases["cleanup (CleanupFunction)"]["ops"] > 0  # the sample's ended events were deleted


def test_the_microsoft_renew_run_queues_each_due_mailbox_once_within_the_bound(
    simulated: tuple[str, dict[str, Any]],
) -> None:
    # issue 16: renewal fans out like the poll (docs/adr/0020); 100 mailboxes, half of them due
    _, figures = simulated
    renew = figures["renew"]
    assert renew["mailboxes"] == PEOPLE // sim.MS_EVERY
    assert renew["jobs"] == renew["mailboxes"] // sim.MS_DUE_EVERY  # each due one, once (FIFO dedup aside)
    assert renew["bound"] == PAGE and 0 < renew["largest"] <= PAGE
    assert renew["invocations"] > 4  # 4 shards that did not fit one page each
    assert figures["ceilings"]["microsoft_renew"] > 0


def test_the_google_renew_run_renews_each_due_channel_once_within_the_bound(
    simulated: tuple[str, dict[str, Any]],
) -> None:
    # issue 16: Google's channel renewal fans out like the poll (docs/adr/0020): 100 channels, half
    # of them due, 1 in GOOGLE_HELD_EVERY of those claimed by a parallel delivery; renewed at the
    # Google fake over HTTP, checked there (one new channel per calendar, the old one stopped)
    text, figures = simulated
    google = figures["google_renew"]
    assert google["channels"] == PEOPLE // sim.GOOGLE_EVERY
    assert google["due"] == google["channels"] // DUE_EVERY
    assert google["held"] == -(-google["due"] // sim.GOOGLE_HELD_EVERY) > 1
    assert google["renewed"] == google["due"] - google["held"]  # each due one, its old one stopped
    assert google["twice"] == 0 and google["unexpected"] == 0  # none twice, none not due or held
    assert google["google_calls"]["events.watch"] == google["renewed"]
    assert google["bound"] == PAGE and 0 < google["largest"] <= PAGE
    assert google["invocations"] > 4  # 4 shards that did not fit one page each
    assert figures["ceilings"]["google_renew"] > 0
    assert "Google channel renewal" in text


def component_key(component: str) -> str:
    return {
        "CalDAV poll fan-out": "poll",
        "CalDAV sync workers": "sync",
        "API meetings reads": "api",
        "Cleanup": "cleanup",
    }[component]


def test_a_queue_keeps_sqs_batch_semantics() -> None:
    q = sim.Queue("jobs.fifo")
    sqs = sim.Sqs(q)
    entry = {"MessageBody": "{}", "MessageGroupId": "c1", "MessageDeduplicationId": "d1"}
    with pytest.raises(ValueError, match="1 to 10"):
        sqs.send_message_batch(QueueUrl=q.url, Entries=[{"Id": str(i), **entry} for i in range(11)])
    sqs.send_message_batch(QueueUrl=q.url, Entries=[{"Id": "0", **entry}])
    sqs.send_message(QueueUrl=q.url, **entry)  # the same deduplication id: accepted, not delivered
    assert (q.sent, q.duplicates) == (1, 1)
    with pytest.raises(ValueError, match="FIFO"):
        sqs.send_message(QueueUrl=q.url, MessageBody="{}")
    [msg] = q.receive(10)
    assert q.receive(10) == []
    q.release()  # not deleted: it comes back
    assert [m["MessageId"] for m in q.receive(10)] == [msg["MessageId"]]
