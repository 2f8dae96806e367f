"""Webhook fuzzing (X2, X5; hypothesis): whatever arrives, no 5xx, no enqueue without a valid
clientState, and a validation token — markup included — is echoed only as text/plain (nosniff)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calsync.domain.models import UTC
from calsync.wiring.webhook import webhook_deps
from calsync_microsoft.registry import MicrosoftRegistry, SubscriptionRecord, client_state_hash
from functions.microsoft_webhook import app as webhook_app
from tests.support.apigw import Api

NOW = datetime(2026, 11, 20, 8, tzinfo=UTC)
SECRET = "the-right-client-state-4c1f"
SUB = "sub-1"


@pytest.fixture(scope="module")
def env() -> Iterator[tuple[Api, Any, str]]:
    from moto import mock_aws

    from tests.conftest import _create

    with mock_aws():
        table = _create(boto3.resource("dynamodb", region_name="eu-west-1"), "calsync-fuzz")
        MicrosoftRegistry(table).put_subscription(
            SubscriptionRecord(SUB, "ann", "acc1", client_state_hash(SECRET), NOW + timedelta(days=2))
        )
        sqs = boto3.client("sqs", region_name="eu-west-1")
        url = sqs.create_queue(QueueName="ms-fuzz.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
        with webhook_app.wiring.use(webhook_deps(table, sqs=sqs, queue_url=url)):
            yield Api(webhook_app), sqs, url


def queued(sqs: Any, url: str) -> int:
    n = 0
    while msgs := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for m in msgs:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            n += 1
    return n


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=10,
)
items = st.fixed_dictionaries(
    {},
    optional={
        "subscriptionId": st.sampled_from([SUB, "sub-unknown", ""]) | st.text(max_size=30),
        "clientState": st.sampled_from(["", "wrong", SECRET[:-1], SECRET + "x"]) | st.text(max_size=40),
        "changeType": st.sampled_from(["created", "updated", "deleted"]),
        "lifecycleEvent": st.sampled_from(["missed", "subscriptionRemoved", "reauthorizationRequired", "x"]),
        "resource": st.text(max_size=30),
    },
)
bodies = (
    st.builds(lambda v: json.dumps({"value": v}), st.lists(items, max_size=5))
    | st.builds(json.dumps, json_values)
    | st.text(max_size=50)
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, lifecycle=st.booleans())
def test_no_5xx_and_no_enqueue_without_the_client_state(
    env: tuple[Api, Any, str], body: str, lifecycle: bool
) -> None:
    # rule X2: only a notification carrying its subscription's clientState queues anything
    api, sqs, url = env
    path = "/v1/webhooks/microsoft/lifecycle" if lifecycle else "/v1/webhooks/microsoft"
    got = api.call("POST", path, body=body)
    assert got.status < 500
    assert queued(sqs, url) == 0
    assert got.status in (202, 400, 403)


@pytest.mark.parametrize("lifecycle", [False, True])
def test_json_nested_deeper_than_the_stack_is_a_400_not_a_retry(
    env: tuple[Api, Any, str], lifecycle: bool
) -> None:
    # rule X2/X5: a 503 would invite Graph to retry a forged body for hours; it is refused for good
    api, sqs, url = env
    path = "/v1/webhooks/microsoft/lifecycle" if lifecycle else "/v1/webhooks/microsoft"
    got = api.call("POST", path, body="[" * 100_000 + "]" * 100_000)
    assert got.status == 400, got.body[:200]
    assert queued(sqs, url) == 0


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    token=st.text(min_size=1, max_size=200).filter(lambda t: "\x00" not in t)
    | st.just("<script>alert(1)</script>")
)
def test_validation_token_is_echoed_only_as_plain_text(env: tuple[Api, Any, str], token: str) -> None:
    # rule X2: the handshake answers the decoded token as text/plain, nothing else reflected
    api, sqs, url = env
    got = api.call("POST", "/v1/webhooks/microsoft", query={"validationToken": token})
    assert got.status == 200
    assert got.body == token
    assert got.headers["Content-Type"].startswith("text/plain")
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert queued(sqs, url) == 0


def test_valid_client_state_enqueues_one_job_per_mailbox(env: tuple[Api, Any, str]) -> None:
    # rule S2: many notifications of one mailbox in one POST → one mailbox job (group = mailbox)
    api, sqs, url = env
    item = {
        "subscriptionId": SUB,
        "clientState": SECRET,
        "changeType": "updated",
        "resource": "Users/x/Events/y",
    }
    got = api.call(
        "POST", "/v1/webhooks/microsoft", body={"value": [item, item, {**item, "clientState": "bad"}]}
    )
    assert got.status == 202
    assert queued(sqs, url) == 1


def test_webhook_imports_no_msal() -> None:
    # S2 / ARCHITECTURE: the webhook only authenticates, parses and enqueues; no provider SDK
    import subprocess
    import sys

    code = (
        "import sys; sys.path[:0] = ['layers/core', 'layers/microsoft', '.']; "
        "import functions.microsoft_webhook.app; print('msal' in sys.modules, 'requests' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[0] == "False"


@pytest.mark.parametrize("path", ["/v1/webhooks/microsoft", "/v1/webhooks/microsoft/lifecycle"])
def test_unknown_subscription_is_answered_2xx_and_dropped(env: tuple[Api, Any, str], path: str) -> None:
    # issue 11 point 9 [M13]: Graph retries every non-2xx delivery for up to 4 hours; a
    # subscription calsync no longer knows (a disconnect whose DELETE failed) is answered 202,
    # and nothing is queued
    api, sqs, url = env
    item = {"subscriptionId": "sub-forgotten", "clientState": "whatever", "changeType": "updated"}
    got = api.call("POST", path, body={"value": [item, {**item, "lifecycleEvent": "missed"}]})
    assert got.status == 202, got.body
    assert queued(sqs, url) == 0


def test_wrong_client_state_on_a_known_subscription_stays_refused(env: tuple[Api, Any, str]) -> None:
    # X2, issue 11 point 9: a known subscription with a wrong clientState is refused, also when
    # the collection carries unknown subscriptions too
    api, sqs, url = env
    forged = {"subscriptionId": SUB, "clientState": "forged", "changeType": "updated"}
    unknown = {"subscriptionId": "sub-forgotten", "clientState": "whatever", "changeType": "updated"}
    assert api.call("POST", "/v1/webhooks/microsoft", body={"value": [forged]}).status == 403
    assert api.call("POST", "/v1/webhooks/microsoft", body={"value": [unknown, forged]}).status == 403
    assert queued(sqs, url) == 0


def _collection(sub_ids: list[str], pad: int = 0) -> dict[str, Any]:
    return {
        "value": [
            {"subscriptionId": s, "clientState": "whatever", "changeType": "updated", "resource": "x" * pad}
            for s in sub_ids
        ]
    }


@pytest.mark.parametrize("path", ["/v1/webhooks/microsoft", "/v1/webhooks/microsoft/lifecycle"])
def test_a_thousand_unknown_subscriptions_cost_a_bounded_number_of_reads(
    env: tuple[Api, Any, str], path: str
) -> None:
    # issue 13 point 2: 1,000 distinct unknown subscriptionIds made 1,000 sequential GetItems;
    # now one BatchGetItem per 100 distinct ids (ceil(1000 / 100) = 10), duplicates read once
    from tests.support.apigw import dynamodb_calls

    api, sqs, url = env
    table = webhook_app.wiring().table
    with dynamodb_calls(table) as calls:
        got = api.call("POST", path, body=_collection([f"sub-x{i}" for i in range(1000)]))
    assert got.status == 202, got.body
    assert len(calls.calls) <= 10, calls.calls[:20]
    assert set(calls.calls) == {"BatchGetItem"}
    with dynamodb_calls(table) as calls:
        got = api.call("POST", path, body=_collection(["sub-x1"] * 1000))
    assert got.status == 202
    assert len(calls.calls) == 1
    assert queued(sqs, url) == 0


def test_a_known_subscription_among_many_unknown_ones_is_still_queued(env: tuple[Api, Any, str]) -> None:
    # issue 13 point 2: bounding the reads loses nothing: the one genuine notification is queued
    api, sqs, url = env
    body = _collection([f"sub-x{i}" for i in range(999)])
    body["value"].insert(500, {"subscriptionId": SUB, "clientState": SECRET, "changeType": "updated"})
    got = api.call("POST", "/v1/webhooks/microsoft", body=body)
    assert got.status == 202, got.body
    assert queued(sqs, url) == 1


def test_an_oversized_body_is_refused_before_it_is_read(env: tuple[Api, Any, str]) -> None:
    # issue 13 point 2: a body of 3 MB (under Lambda's 6 MB) is refused (413) before parsing:
    # nothing is read from the store, nothing queued (a genuine Graph collection is far smaller)
    from tests.support.apigw import dynamodb_calls

    api, sqs, url = env
    body = json.dumps(_collection([SUB] * 500, pad=6000))
    assert len(body) > 3_000_000
    with dynamodb_calls(webhook_app.wiring().table) as calls:
        got = api.call("POST", "/v1/webhooks/microsoft", body=body)
    assert got.status == 413, got.body[:200]
    assert got.headers["Content-Type"] == "application/problem+json"
    assert calls.calls == []
    assert queued(sqs, url) == 0


def test_the_aws_clients_give_up_within_graphs_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    # issue 13 point 2 [M16]: Graph's HTTP client waits 3 s; the SDK's defaults (60 s connect and
    # read timeouts, several retries) could keep the webhook far past that
    from calsync.config import get_settings

    monkeypatch.setenv("TABLE_NAME", "calsync-budget")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    get_settings.cache_clear()
    try:
        deps = webhook_app.build()  # what the function builds from its settings
        for client in (deps.table.meta.client, deps.sqs):
            config = client.meta.config
            assert (config.connect_timeout, config.read_timeout) == (1, 1)
            assert config.retries == {"mode": "standard", "total_max_attempts": 2}  # one retry
    finally:
        get_settings.cache_clear()
