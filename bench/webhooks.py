"""`python -m bench.webhooks [--runs N]`: what an unauthenticated POST costs the webhooks (issue 13
points 2 and 5), on Amazon DynamoDB Local (`make ddb-local`; SQS is a recorder).

- Graph: one POST of 1,000 distinct unknown subscriptionIds: DynamoDB requests and seconds.
- Google: one captured genuine notification posted 20 times: jobs queued.

Seconds on DynamoDB Local (a JVM on this machine) are far above DynamoDB's; the request counts are
what the tests pin (tests/integration/test_microsoft_webhook_fuzz.py,
tests/integration/test_google_push_replays.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PATHS = [ROOT / "layers" / "core", ROOT / "layers" / "microsoft", ROOT / "layers" / "google", ROOT]

ENV = {
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "POWERTOOLS_METRICS_NAMESPACE": "calsync",
    "POWERTOOLS_TRACE_DISABLED": "1",
}


class _Sqs:
    def __init__(self) -> None:
        self.sent = 0

    def send_message(self, **_: Any) -> dict[str, str]:
        self.sent += 1
        return {"MessageId": str(self.sent)}

    def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.sent += len(kwargs["Entries"])
        return {}


def graph(table: Any, runs: int) -> list[str]:
    from calsync.wiring.webhook import webhook_deps
    from functions.microsoft_webhook import app
    from tests.support.apigw import Api, dynamodb_calls

    api, lines = Api(app), []
    with app.wiring.use(webhook_deps(table, sqs=_Sqs(), queue_url="bench")):
        for run in range(runs):
            items = [{"subscriptionId": str(uuid.uuid4()), "clientState": "x"} for _ in range(1000)]
            with dynamodb_calls(table) as calls:
                start = time.perf_counter()
                got = api.call("POST", "/v1/webhooks/microsoft", body={"value": items})
                seconds = time.perf_counter() - start
            ops = ", ".join(sorted(set(calls.calls)))
            n = len(calls.calls)
            lines.append(f"Graph run {run}: {got.status}, {n} requests ({ops}), {seconds:.2f} s")
    return lines


def google(table: Any) -> list[str]:
    from calsync.domain.models import UTC
    from calsync.store.channels import Channel, ChannelStore, new_channel_id, token_digest
    from calsync.wiring.webhook import webhook_deps
    from functions.google_webhook import app
    from tests.support.apigw import Api

    calendar = uuid.uuid4().hex
    channel_id, token = new_channel_id(calendar), "bench-token"
    now = datetime(2026, 11, 20, 8, tzinfo=UTC)
    ChannelStore(table).put(
        Channel(
            channel_id=channel_id,
            calendar_id=calendar,
            user_id="u",
            account_id="a",
            resource_id="res",
            token_sha256=token_digest(token),
            expires_at=now + timedelta(days=7),
        )
    )
    sqs = _Sqs()
    headers = {
        "x-goog-channel-id": channel_id,
        "x-goog-channel-token": token,
        "x-goog-resource-id": "res",
        "x-goog-resource-state": "exists",
        "x-goog-message-number": "7",
    }
    with app.wiring.use(webhook_deps(table, sqs=sqs, queue_url="bench", clock=lambda: now)):
        statuses = [Api(app).call("POST", "/v1/webhooks/google", headers=headers).status for _ in range(20)]
    answers = sorted(set(statuses))
    return [f"Google: 20 posts of one notification: answers {answers}, {sqs.sent} job(s) queued"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    os.environ.update(ENV)
    sys.path[:0] = [str(p) for p in PATHS if str(p) not in sys.path]
    import boto3

    from tests.conftest import _create
    from tests.support.dynamodb_local import dynamodb_local

    with dynamodb_local() as endpoint:
        resource = boto3.resource("dynamodb", region_name=ENV["AWS_DEFAULT_REGION"], endpoint_url=endpoint)
        table = _create(resource, f"calsync-bench-{uuid.uuid4().hex[:6]}")
        for line in [*graph(table, args.runs), *google(table)]:
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
