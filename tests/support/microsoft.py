"""The Microsoft functions wired to the fake Graph (tests/support/fake_graph.py), a test table, moto
KMS and SQS: the webhook, accounts, sync and renewal handlers as Lambda would call them."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import boto3
from moto import mock_aws

from calsync.domain.links import LinkSettings
from calsync.wiring.webhook import webhook_deps
from calsync_microsoft.provider import connect_deps as ms_connect_deps
from calsync_microsoft.settings import MicrosoftSettings
from calsync_microsoft.wiring import renew_deps
from calsync_microsoft.wiring import sync_deps as ms_sync_deps
from functions.microsoft_accounts import app as accounts_app
from functions.microsoft_renew import app as renew_app
from functions.microsoft_sync import app as sync_app
from functions.microsoft_webhook import app as webhook_app
from tests.support import apigw
from tests.support.apigw import Answer, Api, LambdaContext, api_on
from tests.support.fake_graph import FakeGraph, LoopbackHttp
from tests.support.tasks import TaskQueue

REGION = "eu-west-1"
CLIENT_ID = "calsync-client-id"
WEBHOOK = "https://api.calsync.test/v1/webhooks/microsoft"
LINKS = LinkSettings.of(["teams.microsoft.com", "meet.example.com"], [], [])


@dataclass
class MsWorld:
    table: Any
    fake: FakeGraph
    sqs: Any
    queue_url: str
    queue_arn: str
    kms: Any
    key_id: str
    now: datetime
    webhook_answers: list[Answer] = field(default_factory=list)
    tasks: Any = None  # the MicrosoftRenewQueue (a TaskQueue), made by ``wire``
    wired: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    deps: dict[str, Any] = field(default_factory=dict)  # what the functions are wired with

    @property
    def settings(self) -> MicrosoftSettings:
        return MicrosoftSettings(
            client_id=CLIENT_ID,
            authority=self.fake.authority,
            graph_endpoint=self.fake.graph_endpoint,
            webhook_url=WEBHOOK,
            subscription_minutes=4230,
            sync_queue_url=self.queue_url,
        )

    def wire(self, http_client: Any = None) -> None:
        """``http_client``: what the functions reach Microsoft with (default: the fake, over HTTP)."""
        deps = {
            "table": self.table,
            "kms": self.kms,
            "key_id": self.key_id,
            "sqs": self.sqs,
            "queue_url": self.queue_url,
            "http_client": http_client or LoopbackHttp(self.fake.port),
            "client_secret": "test-client-secret-9d1c",
            "settings": self.settings,
            "links": LINKS,
        }
        self.deps = deps
        self.tasks = TaskQueue(self.sqs, renew_app, "ms-renew")  # the MicrosoftRenewQueue
        renew = renew_deps(deps, task_queue_url=self.tasks.url, clock=lambda: self.now)
        self.wired.enter_context(renew_app.wiring.use(renew))
        self.wired.enter_context(accounts_app.wiring.use(ms_connect_deps(deps, clock=lambda: self.now)))
        self.wired.enter_context(sync_app.wiring.use(ms_sync_deps(deps, clock=lambda: self.now)))
        webhook = webhook_deps(self.table, sqs=self.sqs, queue_url=self.queue_url)
        self.wired.enter_context(webhook_app.wiring.use(webhook))
        self.fake.transport = self.deliver

    def unwire(self) -> None:
        self.wired.close()

    # ---- Graph -> the webhook function (API Gateway payload 2.0, Auth NONE) ---------------------
    def deliver(self, url: str, query: dict[str, str], body: bytes | None) -> tuple[int, dict[str, str], str]:
        path = urlsplit(url).path
        got = Api(webhook_app).call(
            "POST", path, query=query or None, body=body.decode() if body else None, claims=None
        )
        self.webhook_answers.append(got)
        return got.status, dict(got.headers), got.body

    # ---- the person -----------------------------------------------------------------------------
    def connect(self, user: str, upn: str, location: str = "hq") -> Answer:
        api = Api(accounts_app)
        claims = apigw.claims(user, [location])
        started = api.call(
            "POST",
            "/v1/me/accounts/microsoft/authorize",
            body={"locationId": location, "redirectUri": "https://app.calsync.test/oauth/microsoft"},
            claims=claims,
        )
        assert started.status == 200, started.body
        params = self.fake.sign_in(started.json()["authorizationUrl"], upn)
        return api.get("/v1/oauth/microsoft/callback", query=params, claims=claims)

    def drain(self) -> list[dict[str, Any]]:
        return TaskQueue(self.sqs, sync_app, "ms-sync", url=self.queue_url, batch=10).drain(50)

    def queued(self) -> int:
        attrs = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["All"])["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def renew(self, task: str = "renew") -> dict[str, Any]:
        """One scheduled run: its shard tasks dispatched and run (docs/adr/0020); ``queued``: the
        mailbox jobs it added to the sync queue."""
        before = self.queued()
        result: dict[str, Any] = renew_app.lambda_handler(
            {"task": task}, LambdaContext(function_name="ms-renew")
        )
        self.tasks.run()
        return {**result, "queued": self.queued() - before}

    def listed(self, user: str) -> list[tuple[str, str]]:
        claims = apigw.claims(user, ["hq"])
        with api_on(self.table, self.now) as api:
            api.get("/v1/me/meetings", claims=claims)
            got = api.get("/v1/me/meetings", claims=claims)
        assert got.status == 200, got.body
        return sorted((m["title"], m["start"]) for m in got.json()["meetings"])


@contextmanager
def ms_world(table: Any, fake: FakeGraph, now: datetime) -> Iterator[MsWorld]:
    """KMS and SQS on moto (the table fixture's moto is active for a moto table; for a table on
    DynamoDB Local, moto is started here for KMS and SQS only)."""
    on_moto = "amazonaws.com" in str(table.meta.client.meta.endpoint_url)
    with contextlib.nullcontext() if on_moto else mock_aws():
        yield from _ms_world(table, fake, now)


def _ms_world(table: Any, fake: FakeGraph, now: datetime) -> Iterator[MsWorld]:
    sqs = boto3.client("sqs", region_name=REGION)
    name = f"calsync-microsoft-{uuid.uuid4().hex[:6]}.fifo"
    url = sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true", "VisibilityTimeout": "60"})[
        "QueueUrl"
    ]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    kms = boto3.client("kms", region_name=REGION)
    key_id = kms.create_key(Description="calsync credentials (test)")["KeyMetadata"]["KeyId"]
    world = MsWorld(table, fake, sqs, url, arn, kms, key_id, now)
    world.wire()
    try:
        yield world
    finally:
        world.unwire()


def body_json(answer: Answer) -> Any:
    return json.loads(answer.body)
