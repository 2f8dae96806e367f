"""(e) Google: API calls and DynamoDB writes per push notification for one changed event (rules S1,
S6), and the built (unzipped) size of the Google layer and of each function that carries it.

The real google-api-python-client and google-auth and the real handlers (accounts → callback,
fake Google push → webhook function → GoogleSyncQueue → sync function) against the local fake of
Google (tests/support/fake_google.py); DynamoDB, SQS and KMS on moto. The account has 20 events.

- one changed event → one notification: target 1 Google API call (``events.list`` with the sync
  token; the channel exists) and only the writes of what changed (pinned exactly in
  tests/integration/test_google_bench.py);
- sizes: ``du`` of the ``sam build`` output (``.aws-sam/build``, or ``$CALSYNC_BUILD_DIR``), layer
  by layer; Lambda's limit is 250 MB unzipped for a function and all its layers together.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
NOW = datetime(2026, 11, 20, 8, 0)
REGION = "eu-west-1"
WEBHOOK = "https://calsync.test/v1/webhooks/google"
LAMBDA_LIMIT_MB = 250
GOOGLE_FUNCTIONS = (
    "GoogleAccountsFunction",
    "GoogleSyncFunction",
    "GoogleRenewFunction",
    "SchedulingFunction",
)
ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def google_world(table: Any, now: datetime) -> Iterator[Any]:
    """The handlers of the Google functions wired to the fake and to moto (as tests/integration/
    test_google.py's ``world`` fixture). Needs an active ``mock_aws``."""
    import boto3

    from calsync.domain.links import LinkSettings
    from calsync.wiring.webhook import webhook_deps
    from calsync_google.client import Caller, ClientSecret, GoogleEndpoints
    from calsync_google.provider import connect_deps
    from calsync_google.settings import get_google_settings
    from functions.google_accounts import app as accounts_app
    from functions.google_webhook import app as webhook_app
    from tests.integration.test_google import World, post_webhook
    from tests.support.fake_google import fake_google
    from tests.support.poll import PollFanOut

    answers: list[int] = []

    def deliver(address: str, headers: dict[str, str]) -> int:
        status = post_webhook(headers)
        answers.append(status)
        return status

    with fake_google(page_size=50, deliver=deliver, clock=lambda: now) as fake:
        user, email = f"u{uuid.uuid4().hex[:8]}", "bench@example.com"
        fake.add_calendar(email, email, "Work", "owner", primary=True)
        kms = boto3.client("kms", region_name=REGION)
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        sqs = boto3.client("sqs", region_name=REGION)
        url = sqs.create_queue(
            QueueName=f"google-{uuid.uuid4().hex[:6]}.fifo",
            Attributes={"FifoQueue": "true", "VisibilityTimeout": "360"},
        )["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        endpoints = GoogleEndpoints(fake.auth_uri, fake.token_uri, fake.api_endpoint)
        secret = ClientSecret(fake.client_id, fake.client_secret)
        common = {"table": table, "kms": kms, "key_id": key_id, "sqs": sqs, "queue_url": url}
        worker = {
            **common,
            "client": lambda: secret,
            "webhook_url": WEBHOOK,
            "links": LinkSettings.of(["meet.google.com"], [], []),
            "caller": lambda: Caller(sleep=lambda _s: None),
        }
        wired = contextlib.ExitStack()
        wired.enter_context(webhook_app.wiring.use(webhook_deps(table, sqs=sqs, queue_url=url)))
        saved = {k: os.environ.get(k) for k in ("GOOGLE_API_ENDPOINT", "GOOGLE_TOKEN_URI", "TABLE_NAME")}
        os.environ.update(
            {
                "GOOGLE_API_ENDPOINT": fake.api_endpoint,
                "GOOGLE_TOKEN_URI": fake.token_uri,
                "TABLE_NAME": table.name,
            }
        )
        get_google_settings.cache_clear()
        polls = PollFanOut(table, sqs, {"google": url})  # the schedule's poll tasks (docs/adr/0016)
        world = World(fake, table, sqs, url, arn, user, email, answers, polls, now=now, wired=wired)
        try:
            world.wire_sync(**worker)  # the sync function; its clock is world.now (drain(now) sets it)
            connect = connect_deps(**common, client=lambda: secret, endpoints=endpoints, clock=lambda: now)
            wired.enter_context(accounts_app.wiring.use(connect))
            yield world
        finally:
            polls.close()
            wired.close()
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            get_google_settings.cache_clear()


def event(event_id: str, title: str, start: datetime) -> dict[str, Any]:
    return {
        "id": event_id,
        "summary": title,
        "start": {"dateTime": start.isoformat()},
        "end": {"dateTime": (start + timedelta(minutes=30)).isoformat()},
        "hangoutLink": f"https://meet.google.com/{event_id}",
    }


def per_notification(table: Any, now: datetime, events: int = 20) -> tuple[int, list[str], dict[str, int]]:
    """Connect an account of ``events`` events, then change one: (API calls, the calls, writes by
    operation) from the notification to the stored change."""
    from tests.support.apigw import dynamodb_calls

    with google_world(table, now) as world:
        for i in range(events):
            world.fake.put_event(
                world.email, event(f"ev{i}", f"Event {i}", now + timedelta(hours=i + 1)), deliver=False
            )
        assert world.connect().status == 201
        world.drain(now)
        world.fake.deliver()  # the new channel's `sync` message: starts nothing
        assert world.queued() == 0
        world.fake.put_event(
            world.email, event("ev3", "Event 3 moved", now + timedelta(hours=30)), deliver=False
        )
        world.fake.requests.clear()
        with dynamodb_calls(table) as counter:
            assert world.fake.deliver() == [200]
            world.drain(now)
        writes = {op: counter.count(op) for op in WRITES if counter.count(op)}
        return len(world.fake.requests), list(world.fake.requests), writes


def build_dir() -> Path:
    return Path(os.environ.get("CALSYNC_BUILD_DIR") or ROOT / ".aws-sam" / "build")


def sizes(build: Path) -> dict[str, int]:
    """Unzipped bytes of each built artifact (what Lambda unpacks)."""
    out: dict[str, int] = {}
    for name in ("CoreLayer", "GoogleLayer", "CaldavLayer", *GOOGLE_FUNCTIONS, "GoogleWebhookFunction"):
        path = build / name
        if path.is_dir():
            out[name] = sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
    return out


def bench_google() -> int:
    import boto3
    from moto import mock_aws

    from bench import table as render_rows
    from calsync.domain.models import UTC
    from tests.conftest import _create

    now = NOW.replace(tzinfo=UTC)
    missed = 0
    with mock_aws():
        table = _create(boto3.resource("dynamodb", region_name=REGION), "calsync-bench-google")
        calls, which, writes = per_notification(table, now)
    # the sync's 8 at most, and the webhook's 3 (message number, queued marker and its clearing:
    # what drops replays and coalesces bursts, issue 13 point 5)
    ok = calls == 1 and sum(writes.values()) <= 8 + 3
    missed += not ok
    print("(e) Google: per notification for one changed event (fake Google + real client, moto)")
    rows = [
        [
            "1 changed event of 20, 1 notification",
            f"{calls} ({', '.join(sorted(set(w.split(' ')[0] for w in which)))} events.list)",
            f"{sum(writes.values())} ({', '.join(f'{k} {v}' for k, v in writes.items())})",
            "met" if ok else "NOT met (1 call, only what changed)",
        ]
    ]
    print(render_rows(["case", "Google API calls", "DynamoDB writes", "target"], rows))
    build = build_dir()
    found = sizes(build)
    print()
    if not found:
        print(f"built sizes: no `sam build` output in {build} (run `make build`, or set CALSYNC_BUILD_DIR)")
        return missed
    mb = {k: v / 1_000_000 for k, v in found.items()}
    size_rows = [
        [name, f"{mb[name]:7.1f} MB" if mb[name] >= 1 else f"{found[name] / 1000:7.1f} kB"] for name in found
    ]
    core, google = mb.get("CoreLayer", 0.0), mb.get("GoogleLayer", 0.0)
    for fn in GOOGLE_FUNCTIONS:
        if fn in mb:
            extra = mb.get("CaldavLayer", 0.0) if fn == "SchedulingFunction" else 0.0
            total = mb[fn] + core + google + extra
            fits = total < LAMBDA_LIMIT_MB
            missed += not fits
            size_rows.append(
                [f"{fn} + its layers", f"{total:7.1f} MB ({'under' if fits else 'OVER'} 250 MB)"]
            )
    print(f"built sizes, unzipped ({build}):")
    print(render_rows(["artifact", "size"], size_rows))
    print()
    return missed
