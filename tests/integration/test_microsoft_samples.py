"""The sample events of the Microsoft functions (events/microsoft_*.json, the files
`sam local invoke -e` uses) are answered as they are, against the fake Graph, the test table, moto
KMS and SQS: the handshake echoes the token as plain text; a notification or lifecycle event of an
unknown subscription is refused and queues nothing (X2); an authorize starts a sign-in; a callback
with an unknown state is a 400 problem; a job of an unknown account is done ("gone"); the schedules
queue nothing when no mailbox is connected. Never a 5xx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from calsync.domain.models import UTC
from functions.microsoft_accounts import app as accounts_app
from functions.microsoft_renew import app as renew_app
from functions.microsoft_sync import app as sync_app
from functions.microsoft_webhook import app as webhook_app
from tests.support.apigw import LambdaContext
from tests.support.fake_graph import FakeGraph, fake_graph
from tests.support.microsoft import MsWorld, ms_world

pytestmark = pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended")
EVENTS = Path(__file__).resolve().parents[2] / "events"
NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def sample(name: str) -> Any:
    return json.loads((EVENTS / f"{name}.json").read_text())


@pytest.fixture
def world(moto_table: Any) -> Iterator[MsWorld]:
    fake: FakeGraph
    with fake_graph() as fake, ms_world(moto_table, fake, NOW) as w:
        yield w


def test_every_microsoft_function_has_samples() -> None:
    names = {p.stem for p in EVENTS.glob("microsoft_*.json")}
    assert {n.split("-")[0] for n in names} == {
        "microsoft_accounts",
        "microsoft_webhook",
        "microsoft_sync",
        "microsoft_renew",
    }


def test_webhook_samples(world: MsWorld) -> None:  # rules S2, X2
    ctx = LambdaContext(function_name="ms-webhook")
    got = webhook_app.lambda_handler(sample("microsoft_webhook-validation"), ctx)
    assert got["statusCode"] == 200 and got["headers"]["Content-Type"].startswith("text/plain")
    assert got["body"] == sample("microsoft_webhook-validation")["queryStringParameters"]["validationToken"]
    for name in ("microsoft_webhook-notification", "microsoft_webhook-lifecycle"):
        got = webhook_app.lambda_handler(sample(name), ctx)
        # an unknown subscription: 2xx and dropped (Graph retries any other answer for 4 hours, M13)
        assert got["statusCode"] == 202, got["body"]
    assert world.queued() == 0


def test_accounts_samples(world: MsWorld) -> None:  # rules C1, C2
    assert world.now == NOW  # the accounts function's clock
    ctx = LambdaContext(function_name="ms-accounts")
    got = accounts_app.lambda_handler(sample("microsoft_accounts-authorize"), ctx)
    assert got["statusCode"] == 200, got["body"]
    assert json.loads(got["body"])["authorizationUrl"].startswith(world.fake.authority)
    got = accounts_app.lambda_handler(sample("microsoft_accounts-callback"), ctx)
    assert got["statusCode"] == 400 and got["headers"]["Content-Type"] == "application/problem+json"


def test_sync_and_schedule_samples(world: MsWorld) -> None:  # rules S4, S5
    assert world.now == NOW  # the sync and renew functions' clock
    got = sync_app.lambda_handler(sample("microsoft_sync-jobs"), LambdaContext(function_name="ms-sync"))
    assert got == {"batchItemFailures": []}  # the account is unknown: nothing to do, not retried
    for name, task in (
        ("microsoft_renew-schedule", "renew"),
        ("microsoft_renew-reconcile", "reconcile"),
        ("microsoft_renew-poll", "poll"),
    ):
        got = renew_app.lambda_handler(sample(name), LambdaContext(function_name="ms-renew"))
        assert got == {"task": task, "dispatched": 4, "failed": 0}  # one task per shard
        assert world.tasks.run() == [0] * 4  # each shard's task: no mailbox, nothing left
    got = renew_app.lambda_handler(sample("microsoft_renew-task"), LambdaContext(function_name="ms-renew"))
    assert got == {"batchItemFailures": []}
