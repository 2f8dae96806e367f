"""The cost model of ``make bench`` (bench/cost.py, docs/adr/0026): what it charges for, from given
measurements (the bench measures them on moto; here they are fixed, so the arithmetic is checked)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bench import cost
from bench.cost import Measured

MEASURED = Measured(
    full_reads=3,
    full_calls=2,
    nm_reads=1,
    nm_calls=1,
    presence_reads=3,
    presence_nm_reads=1,
    change_writes=2,
    change_publishes=1,
    change_look_reads=4,
    change_look_writes=1,
    presence_writes=2,
    presence_reads_on_write=3,
    presence_publishes=1,
    presence_event_has_answer=True,
    presence_event_bytes=250,
    day_runs=600,
    day_time_presence=8,
    day_time_meetings=5,
    day_handled=14,
    day_reads=42,
    day_writes=41,
    run_reads=50,
    run_writes=16,
    run_tasks=0,
)


def _parts(m: Measured) -> dict[str, float]:
    _, _, parts, _ = cost.model(m)
    return {what: float(amount.lstrip("$")) for what, _, amount in parts}


def _live(m: Measured) -> list[float]:
    rows, _, _, _ = cost.model(m)
    [live] = [r for r in rows if r[0] == "live channel (AppSync Events)"]
    return [float(c.lstrip("$").replace(",", "")) for c in live[1:]]


def test_appsync_alone_is_what_the_usage_publishes_and_delivers_and_exceeds_the_target() -> None:
    person_days = cost.PEOPLE * cost.DAYS
    per_day = (
        (1 + cost.SUBSCRIPTIONS)  # connect and subscriptions
        + (cost.CAL_CHANGES + 5) * 2  # own meetings events: publish + delivery
        + 1  # midnight's publish
        + (cost.PRESENCE_CHANGES + 8) * (1 + cost.WATCHERS)  # presence: publish + each watcher
    )
    expected = person_days * cost.OPEN_MINUTES * 0.08 / 1e6 + person_days * per_day / 1e6
    alone = _parts(MEASURED)["AppSync Events alone (what the usage makes it publish and deliver)"]
    assert alone == pytest.approx(expected, abs=0.005)
    assert alone > cost.TARGET  # whatever the rest of the stack costs
    assert _live(MEASURED)[3] == pytest.approx(expected, abs=0.005)


def test_a_presence_event_without_the_answer_costs_each_watcher_a_read() -> None:
    events = cost.PEOPLE * cost.DAYS * (cost.PRESENCE_CHANGES + 8)
    with_answer = _live(MEASURED)[0]
    without = _live(replace(MEASURED, presence_event_has_answer=False))[0]
    assert without - with_answer == pytest.approx(events * cost.WATCHERS * cost.HTTP_PER_M / 1e6, abs=0.01)


def test_an_event_over_one_size_increment_is_charged_as_two_operations_per_delivery() -> None:
    small = _parts(MEASURED)["presence events: publish + 5 deliveries"]
    large = _parts(replace(MEASURED, presence_event_bytes=cost.EVENT_OP_BYTES + 1))[
        "presence events: publish + 5 deliveries"
    ]
    assert large == pytest.approx(2 * small, abs=0.01)


def test_the_schedule_s_fixed_cost_is_shared_at_scale() -> None:
    rows, _, parts, _ = cost.model(MEASURED)
    totals = {r[0]: float(r[-1].lstrip("$").replace(",", "")) for r in rows}
    by_part = {what: float(amount.lstrip("$")) for what, _, amount in parts}
    fixed = by_part["the schedule's fixed cost (every minute, all month)"]
    fanout = by_part["minutes with more people due than a run handles itself: fanned out (at most)"]
    at_scale = totals[f"live, per 1,000 of {cost.AT_SCALE:,} people"]
    saved = fixed * (1 - cost.PEOPLE / cost.AT_SCALE)
    # 100,000 people fill every minute with more than a run handles itself: every run fans out,
    # shared by 100 thousands
    fanout_at_scale = cost._fanout(cost.AT_SCALE, MEASURED) * cost.PEOPLE / cost.AT_SCALE
    assert totals["live channel (AppSync Events)"] - at_scale == pytest.approx(
        saved + fanout - fanout_at_scale, abs=0.02
    )


def test_a_run_that_hands_tasks_to_the_queue_costs_their_invocations_and_requests() -> None:
    # docs/adr/0026: an idle run handles its minute itself; were it to hand its 16 shards to the
    # queue (as before), the fixed cost would grow by 16 invocations and 34 SQS requests a run
    fixed = "the schedule's fixed cost (every minute, all month)"
    itself, fanned = _parts(MEASURED)[fixed], _parts(replace(MEASURED, run_tasks=16))[fixed]
    per_run = cost._lambda(16, cost.SCHEDULE_RUN_MS) + (2 + 2 * 16) * cost.SQS_PER_M / 1e6
    assert fanned - itself == pytest.approx(cost.SCHEDULE_RUNS * per_run, abs=0.01)
    assert fanned - itself > 0.7


def test_the_fan_out_is_charged_at_most_once_a_run() -> None:
    few, many = cost._fanout(1_000, MEASURED), cost._fanout(10_000_000, MEASURED)
    assert 0 < few < many
    assert many == pytest.approx(cost._fanout(cost.SCHEDULE_RUNS * 1_000, MEASURED))  # the bound
