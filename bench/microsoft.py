"""(d) Microsoft: Graph calls and DynamoDB writes per notification, and Graph concurrency per mailbox
under a burst (rules S2, S8).

Real msal and the real handlers (webhook → MicrosoftSyncQueue → sync function) against the local
fake of Graph and the identity platform (tests/support/fake_graph.py), DynamoDB/SQS/KMS on moto.

- one changed event → one notification: Graph calls and DynamoDB writes from the webhook POST to
  the stored occurrence (target: a constant small number);
- a burst of 1,000 notifications for one mailbox, drained by 8 concurrent workers (as Lambda would
  poll the queue): the peak number of Graph requests in flight for that mailbox (target ≤ 4; the
  FIFO group is the mailbox, so one worker at a time talks to it).
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from typing import Any

WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
NOW = datetime(2026, 11, 20, 8, 0)
BURST = 1000
WORKERS = 8
UPN = "ann@contoso.test"


def bench_microsoft() -> int:
    import warnings

    import boto3
    from moto import mock_aws

    from bench import table as render_rows
    from calsync.domain.models import UTC
    from tests.conftest import _create
    from tests.support.apigw import dynamodb_calls
    from tests.support.fake_graph import fake_graph, graph_event
    from tests.support.microsoft import ms_world

    warnings.filterwarnings("ignore", message="response_mode='form_post'")
    now = NOW.replace(tzinfo=UTC)
    missed = 0
    with mock_aws(), fake_graph(page_size=50) as fake:
        fake.add_mailbox(UPN, {"cal-work": ("Calendar", True)})
        table = _create(boto3.resource("dynamodb", region_name="eu-west-1"), "calsync-bench-ms")
        with ms_world(table, fake, now) as world:
            for i in range(20):
                fake.put_event(UPN, "cal-work", graph_event(f"Event {i}", now + timedelta(hours=i + 1)))
            assert world.connect("ann", UPN).status == 201
            world.drain()
            fake.outbox.clear()
            event = next(iter(fake.mailboxes[UPN].events["cal-work"].values()))

            # one changed event, one notification
            fake.put_event(UPN, "cal-work", {**event, "subject": "Event moved"})
            calls = fake.calls
            with dynamodb_calls(table) as counter:
                fake.deliver_notifications()
                world.drain()
            graph_calls = fake.calls - calls
            writes = sum(counter.count(op) for op in WRITES)
            ok1 = graph_calls <= 2 and writes <= 8
            missed += not ok1

            # a burst of 1,000 notifications for the mailbox
            fake.put_event(UPN, "cal-work", {**event, "subject": "Event moved again"})
            one = fake.outbox[0]
            fake.outbox[:] = [one] * BURST
            t0 = time.perf_counter()
            statuses = fake.deliver_notifications()
            webhook_s = time.perf_counter() - t0
            fake.peak_concurrency.clear()
            fake.delay = 0.002
            calls = fake.calls
            t0 = time.perf_counter()
            _drain_concurrently(world)
            drain_s = time.perf_counter() - t0
            peak = fake.peak_concurrency.get(UPN, 0)
            ok2 = peak <= 4 and all(s == 202 for s in statuses)
            missed += not ok2
            rows = [
                [
                    "1 changed event, 1 notification",
                    str(graph_calls),
                    str(writes),
                    "",
                    "met" if ok1 else "NOT met",
                ],
                [
                    f"burst of {BURST} notifications ({WORKERS} workers)",
                    str(fake.calls - calls),
                    "",
                    str(peak),
                    ("met" if ok2 else "NOT met (≤ 4)")
                    + f"; webhook {webhook_s / BURST * 1000:.1f} ms/POST, "
                    f"drain {drain_s:.1f} s",
                ],
            ]
    print("(d) Microsoft: per notification, and under a burst (fake Graph + real msal, moto)")
    print(render_rows(["case", "Graph calls", "DynamoDB writes", "peak Graph/mailbox", "target"], rows))
    print()
    return missed


def _drain_concurrently(world: Any) -> None:
    from functions.microsoft_sync import app as sync_app
    from local.sources import sqs_record, to_delete
    from tests.support.apigw import LambdaContext

    idle = [0] * WORKERS

    def work(n: int) -> None:
        while idle[n] < 3:
            msgs = world.sqs.receive_message(
                QueueUrl=world.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
            ).get("Messages", [])
            if not msgs:
                idle[n] += 1
                time.sleep(0.05)
                continue
            idle[n] = 0
            records = [sqs_record(m, world.queue_arn, "eu-west-1") for m in msgs]
            answer = sync_app.lambda_handler({"Records": records}, LambdaContext(function_name="ms-sync"))
            for rec in to_delete(records, answer, report_failures=True):
                world.sqs.delete_message(QueueUrl=world.queue_url, ReceiptHandle=rec["receiptHandle"])

    threads = [threading.Thread(target=work, args=(n,)) for n in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
