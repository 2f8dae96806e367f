"""A rotated OAuth client secret is used without a new container (X3).

Microsoft client secrets expire (at most 24 months in Entra ID) and are rotated: a new secret is
put in Secrets Manager, then the old one is deleted at the identity platform. calsync reads the
secret through Powertools parameters, cached 5 minutes (``max_age=300``); a warm container that
had kept the value it read at its first invocation would send the deleted secret for as long as it
lives, and every token refresh and sign-in would fail with ``invalid_client``. Here Powertools'
cache is cleared where five minutes would have passed."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters

from calsync_google.client import GoogleEndpoints
from calsync_google.provider import connect_deps
from calsync_google.settings import client_secret
from calsync_microsoft.settings import MicrosoftSettings
from calsync_microsoft.wiring import identity_of
from tests.support.fake_google import fake_google
from tests.support.fake_graph import LoopbackHttp, fake_graph

REGION = "eu-west-1"
NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


@pytest.fixture
def secrets(moto_table: Any) -> Iterator[Any]:
    parameters.clear_caches()
    yield boto3.client("secretsmanager", region_name=REGION)
    parameters.clear_caches()


def test_the_microsoft_app_signs_in_with_the_rotated_secret(secrets: Any) -> None:
    with fake_graph() as fake:
        fake.add_mailbox("ann@contoso.test", {"cal-0": ("Calendar", True)})
        fake.client_secrets = {"old"}
        name = f"calsync-microsoft-{uuid.uuid4().hex[:6]}"
        secrets.create_secret(
            Name=name, SecretString=json.dumps({"client_id": "cid", "client_secret": "old"})
        )
        settings = MicrosoftSettings(client_secret_name=name, authority=fake.authority)
        identity = identity_of({"settings": settings, "http_client": LoopbackHttp(fake.port)})

        def sign_in() -> None:
            flow = identity.start("https://app.calsync.test/cb")
            identity.finish(flow, fake.sign_in(flow["auth_uri"], "ann@contoso.test"))

        sign_in()
        # rotated: the new secret in Secrets Manager, the old one deleted at Entra
        secrets.put_secret_value(
            SecretId=name, SecretString=json.dumps({"client_id": "cid", "client_secret": "new"})
        )
        fake.client_secrets = {"new"}
        parameters.clear_caches()  # five minutes later
        sign_in()
        assert identity.config.client_id == "cid"  # read from the same JSON secret


def test_the_google_sign_in_exchanges_its_code_with_the_rotated_secret(
    moto_table: Any, secrets: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TABLE_NAME", moto_table.name)
    with fake_google(clock=lambda: NOW) as fake:
        fake.add_calendar("p@example.com", "p@example.com", "Work", "owner", primary=True)
        name = f"calsync-google-{uuid.uuid4().hex[:6]}"
        value = {"client_id": fake.client_id, "client_secret": fake.client_secret}
        secrets.create_secret(Name=name, SecretString=json.dumps(value))
        endpoints = GoogleEndpoints(fake.auth_uri, fake.token_uri, fake.api_endpoint)
        kms = boto3.client("kms", region_name=REGION)
        deps = connect_deps(
            moto_table,
            kms=kms,
            key_id=kms.create_key()["KeyMetadata"]["KeyId"],
            sqs=boto3.client("sqs", region_name=REGION),
            queue_url="https://sqs.eu-west-1.amazonaws.com/123456789012/unused",
            client=lambda: client_secret(name),  # what GoogleAccountsFunction is wired with
            endpoints=endpoints,
        )
        flow = deps.connect.flow  # the sign-in of GoogleAccountsFunction's wiring

        def sign_in(user: str) -> str:
            url, _ = flow.authorization_url(user, "hq", "https://app.calsync.test/oauth", NOW)
            code, state = fake.authorize(url, "p@example.com")
            return flow.exchange(code, flow.consume_state(state, user, NOW)).refresh_token

        assert sign_in("u1")
        # rotated: Google accepts only the new secret now
        fake.client_secret = "rotated-" + uuid.uuid4().hex[:6]
        secrets.put_secret_value(
            SecretId=name, SecretString=json.dumps({**value, "client_secret": fake.client_secret})
        )
        parameters.clear_caches()  # five minutes later
        assert sign_in("u2")
