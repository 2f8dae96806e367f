"""The meetings answer's caps (API.md list cap, docs/limits.md): the first 500 in U9 order,
``truncated``; ``excluded`` likewise with ``excludedTruncated``; and never more than its JSON budget."""

from __future__ import annotations

import json
import random
from datetime import timedelta

from calsync.api import service
from calsync.api.schemas import ExplainedMeetings
from calsync.domain.models import OwnerSettings, Status
from calsync.domain.rules import select_for_person
from tests.support.builders import at, timed

NOW = at("2026-06-10T06:00:00Z")


def _answer(occurrences: list, explain: bool = True) -> ExplainedMeetings:  # type: ignore[type-arg]
    selection = select_for_person(occurrences, NOW, OwnerSettings())
    answer = service._meetings(selection, OwnerSettings().time_zone, explain=explain)
    assert isinstance(answer, ExplainedMeetings)
    return answer


def test_first_500_in_u9_order_then_truncated() -> None:
    rng = random.Random(12)
    occs = [
        timed(NOW + timedelta(minutes=rng.randrange(0, 60 * 60)), event_id=f"e{n}", title=f"M{n:04d}")
        for n in range(1_200)
    ]
    occs += [
        timed(NOW + timedelta(hours=1, minutes=n), event_id=f"c{n}", status=Status.CANCELLED)
        for n in range(700)
    ]
    rng.shuffle(occs)
    answer = _answer(occs)
    everything = select_for_person(occs, NOW, OwnerSettings())
    assert len(everything.listed) == 1_200 and len(everything.excluded) == 700
    assert [m.id for m in answer.meetings] == [i.occurrence.id for i in everything.listed[:500]]
    assert answer.truncated is True
    assert [e.id for e in answer.excluded] == [e.occurrence.id for e in everything.excluded[:500]]
    assert answer.excluded_truncated is True


def test_worst_case_answer_stays_well_under_6_mb() -> None:
    # 500 events whose every text field is as large as one DynamoDB item can hold (400 KB), in the
    # characters that cost most in JSON: the answer is bounded by its budgets, not by the data
    worst = "\U0001f600" * 100_000
    occs = [
        timed(
            NOW + timedelta(minutes=n),
            event_id=f"w{n}",
            title=worst,
            meeting_link="https://meet.calsync.test/" + "a" * 399_000,
        )
        for n in range(500)
    ] + [
        timed(NOW + timedelta(minutes=n), event_id=f"x{n}", title=worst, status=Status.CANCELLED)
        for n in range(500)
    ]
    answer = _answer(occs)
    body = json.dumps(answer.model_dump(mode="json", by_alias=True), separators=(",", ":"))
    assert len(body.encode()) < service.MEETINGS_BUDGET + service.EXCLUDED_BUDGET + 4_096
    assert len(body.encode()) < 6 * 1000 * 1000 / 2
    assert answer.truncated and answer.excluded_truncated


def test_small_lists_are_whole() -> None:
    answer = _answer([timed(NOW + timedelta(hours=1), event_id="a", title="A")])
    assert (len(answer.meetings), answer.truncated, answer.excluded_truncated) == (1, False, False)
