"""The Google webhook through its REAL Lambda handler (functions/google_webhook/app.py: Powertools
resolver, payload 2.0 events, the channel read from the table on moto), fuzzed with hypothesis:
random headers (names in any case, values of any text, the right ones mixed in) and random bodies
(text, JSON, base64) never give a 5xx, and a sync job is enqueued only when the channel id, its
token and its resource id are all right and the message is not ``sync``. Rules X2, X5, S1.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from calsync.domain.models import UTC
from calsync.store import keys
from calsync.store.channels import Channel, ChannelStore, new_channel_id, token_digest
from calsync.wiring.webhook import webhook_deps
from functions.google_webhook import app as webhook_app
from tests.support import apigw
from tests.support.apigw import LambdaContext

CAL = "c" * 32
CHANNEL_ID = new_channel_id(CAL)
STOPPED_ID = new_channel_id(CAL)
TOKEN = "tok-" + "y" * 40
RESOURCE = "res-fuzz-1"
CONTEXT = LambdaContext(function_name="google-webhook")


class RecordingSqs:
    def __init__(self, table: Any = None) -> None:
        self.sent: list[dict[str, Any]] = []
        self.table = table

    def send_message(self, **kwargs: Any) -> dict[str, Any]:
        self.sent.append(kwargs)
        return {"MessageId": f"m{len(self.sent)}"}


@pytest.fixture
def sqs(moto_table: Any) -> Iterator[RecordingSqs]:
    store = ChannelStore(moto_table)
    for channel_id in (CHANNEL_ID, STOPPED_ID):
        store.put(
            Channel(
                channel_id=channel_id,
                calendar_id=CAL,
                user_id="u1",
                account_id="a" * 32,
                resource_id=RESOURCE,
                token_sha256=token_digest(TOKEN),
                expires_at=datetime(2026, 11, 27, tzinfo=UTC),
            )
        )
    stopped = store.get(STOPPED_ID)
    assert stopped is not None
    store.set_state(stopped, "stopped")
    recorder = RecordingSqs(moto_table)
    with webhook_app.wiring.use(webhook_deps(moto_table, sqs=recorder, queue_url="https://sqs.test/q.fifo")):
        yield recorder


NAMES = [
    "X-Goog-Channel-ID",
    "X-Goog-Channel-Token",
    "X-Goog-Resource-ID",
    "X-Goog-Resource-State",
    "X-Goog-Message-Number",
    "X-Goog-Channel-Expiration",
    "Content-Type",
    "X-Other",
]
names = st.sampled_from(NAMES).flatmap(lambda n: st.sampled_from([n, n.lower(), n.upper()]))
values = st.one_of(
    st.sampled_from(
        [CHANNEL_ID, STOPPED_ID, TOKEN, RESOURCE, "sync", "exists", "not_exists", "", "1", "8", "0"]
    ),
    st.text(max_size=60),
    st.text(min_size=500, max_size=700),  # longer than any header the decision reads
    st.sampled_from([CHANNEL_ID + " ", TOKEN[:-1], TOKEN + "x", CHANNEL_ID.upper()]),
)
AUTHENTIC = {
    "X-Goog-Channel-ID": CHANNEL_ID,
    "X-Goog-Channel-Token": TOKEN,
    "X-Goog-Resource-ID": RESOURCE,
    "X-Goog-Message-Number": "5",
}
# half the cases start from an authentic notification that random headers then change (or not)
header_sets = st.tuples(st.booleans(), st.dictionaries(names, values, max_size=8)).map(
    lambda t: {**(AUTHENTIC if t[0] else {}), **t[1]}
)
bodies = st.one_of(
    st.none(),
    st.text(max_size=200),
    st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=4).map(json.dumps),
    st.binary(max_size=200).map(lambda b: base64.b64encode(b).decode()),
)


def _forget_messages(table: Any) -> None:
    """Each example starts afresh: no message number taken, no push job queued."""
    table.update_item(
        Key={"pk": keys.calendar_pk(CAL), "sk": keys.google_channel_sk(CHANNEL_ID)},
        UpdateExpression="REMOVE lastMessage",
    )
    table.delete_item(Key={"pk": keys.calendar_pk(CAL), "sk": keys.GPUSH_QUEUED})


def _event(headers: dict[str, str], body: str | None, b64: bool) -> dict[str, Any]:
    event = apigw.event("POST", "/v1/webhooks/google", headers={k.lower(): v for k, v in headers.items()})
    event["body"] = body
    event["isBase64Encoded"] = b64 and body is not None
    return event


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(headers=header_sets, body=bodies, b64=st.booleans())
def test_random_requests_never_5xx_and_never_enqueue_unless_authentic(
    sqs: RecordingSqs, headers: dict[str, str], body: str | None, b64: bool
) -> None:  # rules X2, X5, S1
    sqs.sent.clear()
    _forget_messages(sqs.table)
    answer = webhook_app.lambda_handler(_event(headers, body, b64), CONTEXT)
    status = int(answer["statusCode"])
    assert status in (200, 400, 401), answer
    lowered = {k.lower(): v for k, v in _event(headers, body, b64)["headers"].items()}
    channel = lowered.get("x-goog-channel-id")
    token_ok = lowered.get("x-goog-channel-token") == TOKEN and lowered.get("x-goog-resource-id") == RESOURCE
    number = str(lowered.get("x-goog-message-number", "")).strip()
    numbered = number.isascii() and number.isdigit() and 1 <= int(number) < 2**63
    pushed = channel == CHANNEL_ID and token_ok and lowered.get("x-goog-resource-state") != "sync"
    wants_sync = pushed and numbered
    event("enqueued" if wants_sync else f"not enqueued ({status})")
    if wants_sync:
        [sent] = sqs.sent
        assert json.loads(sent["MessageBody"])["calendarId"] == CAL
        assert sent["MessageGroupId"] == CAL
    else:
        assert sqs.sent == []
    if pushed and not numbered:
        assert status == 400  # Google numbers every message (issue 13 point 5)
    elif channel in (CHANNEL_ID, STOPPED_ID):
        assert status == (200 if token_ok else 401)  # a bad token for one of our channels: refused
    else:
        assert status == 200  # unknown channel: dropped


def test_store_outage_is_503_so_google_retries(sqs: RecordingSqs, moto_table: Any) -> None:  # S8
    class Broken:
        def get_item(self, **_: Any) -> Any:
            raise RuntimeError("DynamoDB is down")

    headers = {"x-goog-channel-id": CHANNEL_ID, "x-goog-channel-token": TOKEN, "x-goog-resource-id": RESOURCE}
    with webhook_app.wiring.use(webhook_deps(Broken(), sqs=sqs, queue_url="https://sqs.test/q.fifo")):
        answer = webhook_app.lambda_handler(_event(headers, None, False), CONTEXT)
    assert answer["statusCode"] == 503 and not sqs.sent
