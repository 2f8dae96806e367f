"""Shared fixtures: AWS credentials for tests, and the table on moto and on Amazon DynamoDB Local.

``table`` is parametrized over both back ends: every test that uses it runs against moto and
against DynamoDB Local (skipped with a clear reason only where Java or the npm package is missing,
which `make test` installs).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, settings

from tests.support.dynamodb_local import dynamodb_local, find_jar
from tests.support.template import table_create_kwargs

REGION = "eu-west-1"

# Property tests never fail for a slow machine: no per-example deadline and no "too slow" health
# check (a loaded two-core CI runner is slow, not wrong). In CI the examples are derandomized, so a
# run is repeatable: a red CI is a bug in the code, found again by the next run; locally they stay
# random, to keep finding new ones.
settings.register_profile(
    "calsync", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.register_profile("calsync-ci", settings.get_profile("calsync"), derandomize=True, database=None)
settings.load_profile("calsync-ci" if os.environ.get("CI") else "calsync")


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "calsync")
    monkeypatch.setenv("POWERTOOLS_DEV", "0")


@pytest.fixture(scope="session")
def ddb_local_endpoint() -> Iterator[str]:
    if find_jar() is None:
        if os.environ.get("CI"):
            pytest.fail("DynamoDB Local is not installed (make ddb-local); CI must run against it")
        pytest.skip("DynamoDB Local is not installed: run `make ddb-local` (needs Java)")
    with dynamodb_local() as endpoint:
        yield endpoint


def _create(resource: Any, name: str) -> Any:
    table = resource.create_table(**table_create_kwargs(name))
    table.wait_until_exists()
    return table


@pytest.fixture(params=["moto", "dynamodb-local"])
def table(request: pytest.FixtureRequest, _aws_env: None) -> Iterator[Any]:
    """A fresh table built from template.yaml, on moto and on DynamoDB Local."""
    name = f"calsync-test-{uuid.uuid4().hex[:8]}"
    if request.param == "moto":
        from moto import mock_aws

        with mock_aws():
            yield _create(boto3.resource("dynamodb", region_name=REGION), name)
    else:
        endpoint = request.getfixturevalue("ddb_local_endpoint")
        resource = boto3.resource("dynamodb", region_name=REGION, endpoint_url=endpoint)
        table = _create(resource, name)
        try:
            yield table
        finally:
            table.delete()


@pytest.fixture
def moto_table(_aws_env: None) -> Iterator[Any]:
    """The table on moto only (for fast tests that need no second back end)."""
    from moto import mock_aws

    with mock_aws():
        yield _create(boto3.resource("dynamodb", region_name=REGION), f"calsync-{uuid.uuid4().hex[:8]}")
