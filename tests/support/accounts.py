"""The accounts function (functions/accounts/app.py) in tests: the table fixture's back end for
DynamoDB, moto for KMS and SQS, and a real Radicale server (started once per test module)."""

from __future__ import annotations

import contextlib
import importlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from calsync.config import get_settings
from calsync.wiring.accounts import accounts_deps
from tests.support.apigw import Answer, Api
from tests.support.radicale import Radicale, radicale_server

REGION = "eu-west-1"
# Radicale users (htpasswd, plain): name -> password. The passwords are distinctive, so that a test
# can search logs, answers and the table for them.
USERS = {
    "alice": "Alice-pw-7f3b9c2e",
    "alice2": "Alice2-pw-51d0aa7c",
    "carol": "Carol-pw-0e9d8b1f",
}


@dataclass
class Aws:
    kms: Any
    key_id: str
    sqs: Any
    queue_url: str

    def jobs(self) -> list[dict[str, Any]]:
        """The sync jobs on the queue (received and deleted)."""
        out: list[dict[str, Any]] = []
        while True:
            resp = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, AttributeNames=["MessageGroupId"]
            )
            messages = resp.get("Messages", [])
            if not messages:
                return out
            for m in messages:
                out.append({**json.loads(m["Body"]), "_group": m["Attributes"]["MessageGroupId"]})
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Radicale]:
    with radicale_server(Path(tmp_path_factory.mktemp("radicale"))) as server:
        for user, password in USERS.items():
            server.add_user(user, password)
        server.make_calendar("alice", USERS["alice"], "work", "Work")
        server.make_calendar("alice", USERS["alice"], "home", "Home")
        server.make_calendar("alice", USERS["alice"], "todo", "Tasks", tasks=True)
        server.make_calendar("alice2", USERS["alice2"], "main", "Main")
        server.make_calendar("carol", USERS["carol"], "cal", "Carol's")
        yield server


@pytest.fixture
def aws(table: Any) -> Iterator[Aws]:
    """KMS and SQS on moto (inside the table fixture's own moto when the table is on moto)."""
    on_moto = "amazonaws.com" in str(table.meta.client.meta.endpoint_url)
    with contextlib.nullcontext() if on_moto else mock_aws():
        kms = boto3.client("kms", region_name=REGION)
        key_id = kms.create_key(Description="calsync credentials (test)")["KeyMetadata"]["KeyId"]
        sqs = boto3.client("sqs", region_name=REGION)
        url = sqs.create_queue(QueueName="calsync-caldav-sync.fifo", Attributes={"FifoQueue": "true"})[
            "QueueUrl"
        ]
        yield Aws(kms, key_id, sqs, url)


class AccountsApi(Api):
    def post(self, path: str, **kwargs: Any) -> Answer:
        return self.call("POST", path, **kwargs)


@pytest.fixture
def accounts_api(table: Any, aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[AccountsApi]:
    """functions/accounts/app.py on the test table, moto KMS/SQS; loopback CalDAV allowed (as in
    the local stack: Radicale listens on 127.0.0.1)."""
    monkeypatch.setenv("TABLE_NAME", table.name)
    get_settings.cache_clear()
    module = importlib.import_module("functions.accounts.app")
    deps = accounts_deps(
        table, kms=aws.kms, key_id=aws.key_id, sqs=aws.sqs, queue_url=aws.queue_url, allow_local=True
    )
    try:
        with module.wiring.use(deps):
            yield AccountsApi(module)
    finally:
        get_settings.cache_clear()


def connect_body(radicale: Radicale, user: str, location: str = "hq", **extra: Any) -> dict[str, Any]:
    return {
        "locationId": location,
        "serverUrl": radicale.url,
        "username": user,
        "password": USERS[user],
        **extra,
    }
