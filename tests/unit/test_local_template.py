"""The local stack's template reader (local/template.py): functions, routes, event sources and
resources read from a template, with intrinsics resolved to the local names (LOCAL.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from local import template as t
from tests.support import template as support

SMALL = """
Parameters:
  Stage: {Type: String, Default: dev}
  JwtIssuer: {Type: String}
  JwtAudience: {Type: String}
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
Globals:
  Function:
    Timeout: 10
    Layers: [!Ref CoreLayer]
    Environment:
      Variables:
        TABLE_NAME: !Ref Table
        SHARED: shared
Resources:
  CoreLayer:
    Type: AWS::Serverless::LayerVersion
    Properties: {ContentUri: layers/core}
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Jwt
        Authorizers:
          Jwt:
            JwtConfiguration: {issuer: !Ref JwtIssuer, audience: [!Ref JwtAudience]}
  ApiFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/api
      Handler: app.lambda_handler
      Environment:
        Variables:
          QUEUE_URL: !Ref SyncQueue
          QUEUE_ARN: !GetAtt SyncQueue.Arn
          KEY_ID: !Ref TokenKey
          SECRET_ARN: !Ref ClientSecret
          BUCKET: !Ref Photos
          LOG_RETENTION: !If [IsProd, 90, 14]
          GREETING: !Sub "hello-${AWS::Region}-${Table}"
      Events:
        Mine: {Type: HttpApi, Properties: {ApiId: !Ref Api, Method: get, Path: /v1/me/meetings}}
        Docs:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Method: GET, Path: /v1/openapi.json, Auth: {Authorizer: NONE}}
  SyncFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/sync
      Handler: app.handler
      Timeout: 60
      Events:
        Jobs:
          Type: SQS
          Properties:
            Queue: !GetAtt SyncQueue.Arn
            BatchSize: 5
            FunctionResponseTypes: [ReportBatchItemFailures]
        Poll: {Type: ScheduleV2, Properties: {ScheduleExpression: rate(5 minutes)}}
        Off: {Type: Schedule, Properties: {ScheduleExpression: rate(1 hour), Enabled: false}}
  SyncQueue:
    Type: AWS::SQS::Queue
    Properties:
      FifoQueue: true
      VisibilityTimeout: 60
      RedrivePolicy: {deadLetterTargetArn: !GetAtt SyncDlq.Arn, maxReceiveCount: 3}
  SyncDlq:
    Type: AWS::SQS::Queue
    Properties: {FifoQueue: true}
  TokenKey: {Type: AWS::KMS::Key, Properties: {Description: tokens}}
  ClientSecret:
    Type: AWS::SecretsManager::Secret
    Properties:
      GenerateSecretString: {SecretStringTemplate: '{"clientId": "local"}', GenerateStringKey: clientSecret}
  Photos: {Type: AWS::S3::Bucket}
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
      TimeToLiveSpecification: {AttributeName: expiresAt, Enabled: true}
"""


@pytest.fixture
def small(tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "template.yaml"
    path.write_text(SMALL)
    return t.load(path)


def test_tests_and_local_stack_share_one_reader() -> None:
    assert support.table_create_kwargs is t.table_create_kwargs
    assert support.resource is t.resource


def test_real_template_routes_and_auth() -> None:
    # rule X1: every client route needs a JWT; only the OpenAPI document is public
    fns = t.functions(t.template())
    routes = {r.route_key: r for fn in fns.values() for r in fn.routes}
    assert routes["GET /v1/me/meetings"].auth is True
    assert routes["GET /v1/openapi.json"].auth is False
    assert fns["ApiFunction"].handler_file() == t.ROOT / "functions" / "api" / "app.py"
    # R8: the room routes send Microsoft mailbox jobs (calsync_microsoft.jobs, imported on them only)
    assert fns["ApiFunction"].layers == (t.ROOT / "layers" / "core", t.ROOT / "layers" / "microsoft")
    assert "TABLE_NAME" in fns["ApiFunction"].environment  # from Globals


def test_no_two_functions_set_one_variable_differently() -> None:
    # the local stack runs every function in one process, where the settings are read once
    # (calsync.config.get_settings): a name that means another queue in another function would
    # send one function's messages to the other's queue (local/runtime.py serialises them at best)
    seen: dict[str, tuple[str, Any]] = {}
    clashes = []
    for lid, fn in t.functions(t.template()).items():
        for name, value in fn.environment.items():
            other = seen.setdefault(name, (lid, value))
            if other[1] != value:
                clashes.append((name, other[0], lid))
    assert clashes == []


def test_functions_and_event_sources(small: dict[str, Any], tmp_path: Path) -> None:
    fns = t.functions(small, root=tmp_path)
    api, sync = fns["ApiFunction"], fns["SyncFunction"]
    assert [(r.route_key, r.auth) for r in api.routes] == [
        ("GET /v1/me/meetings", True),
        ("GET /v1/openapi.json", False),
    ]
    assert api.timeout == 10 and sync.timeout == 60
    assert sync.handler_name == "handler"
    assert sync.sqs == (t.SqsSource("Jobs", "SyncQueue", 5, True, True),)
    assert [(s.expression, s.enabled) for s in sync.schedules] == [
        ("rate(5 minutes)", True),
        ("rate(1 hour)", False),
    ]


def test_environment_resolves_to_local_names(small: dict[str, Any], tmp_path: Path) -> None:
    fns = t.functions(small, root=tmp_path)
    resolver = t.Resolver(
        small,
        "eu-west-1",
        refs={
            "Table": "calsync-local-Table",
            "SyncQueue": "http://127.0.0.1:5000/123456789012/q.fifo",
            "TokenKey": "key-1",
            "ClientSecret": "arn:secret",
            "Photos": "photos",
        },
        attrs={"SyncQueue.Arn": "arn:aws:sqs:eu-west-1:123456789012:q.fifo"},
    )
    env = t.function_environment(fns["ApiFunction"], resolver)
    assert env == {
        "TABLE_NAME": "calsync-local-Table",
        "SHARED": "shared",
        "QUEUE_URL": "http://127.0.0.1:5000/123456789012/q.fifo",
        "QUEUE_ARN": "arn:aws:sqs:eu-west-1:123456789012:q.fifo",
        "KEY_ID": "key-1",
        "SECRET_ARN": "arn:secret",
        "BUCKET": "photos",
        "LOG_RETENTION": "14",
        "GREETING": "hello-eu-west-1-calsync-local-Table",
    }
    assert t.jwt_config(small, resolver) == ("https://idp.calsync.local/", ["calsync-local"])


def test_resource_definitions(small: dict[str, Any]) -> None:
    resolver = t.Resolver(small, "eu-west-1")
    queues = t.queue_defs(small, resolver)
    assert [q.logical_id for q in queues] == ["SyncDlq", "SyncQueue"]  # dead-letter queue first
    main = queues[1]
    assert main.fifo and main.name.endswith(".fifo")
    assert main.attributes == {"VisibilityTimeout": "60", "FifoQueue": "true"}
    assert (main.dlq, main.max_receive_count) == ("SyncDlq", 3)
    assert [k.logical_id for k in t.key_defs(small, resolver)] == ["TokenKey"]
    assert [s.logical_id for s in t.secret_defs(small, resolver)] == ["ClientSecret"]
    assert [b.name for b in t.bucket_defs(small, resolver)] == ["calsync-local-photos"]
    assert t.table_ttl_attribute("Table", small) == "expiresAt"
    kwargs = t.table_create_kwargs("x", "Table", small)
    assert kwargs["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]


def test_create_resources_on_moto(small: dict[str, Any]) -> None:
    """Queues with their DLQ, a key, a secret with a generated placeholder, a bucket and the table."""
    import json
    import socket

    from moto.server import ThreadedMotoServer

    from local.resources import client, create_aws_resources, create_tables, names

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        created = names(small, "eu-west-1")
        create_tables(small, endpoint, "eu-west-1", created)
        create_aws_resources(small, endpoint, "eu-west-1", created)
        ddb = client("dynamodb", endpoint, "eu-west-1")
        ttl = ddb.describe_time_to_live(TableName=created.refs["Table"])["TimeToLiveDescription"]
        assert ttl["AttributeName"] == "expiresAt"
        sqs = client("sqs", endpoint, "eu-west-1")
        attrs = sqs.get_queue_attributes(QueueUrl=created.refs["SyncQueue"], AttributeNames=["All"])[
            "Attributes"
        ]
        assert attrs["FifoQueue"] == "true"
        assert json.loads(attrs["RedrivePolicy"])["deadLetterTargetArn"] == created.attrs["SyncDlq.Arn"]
        sm = client("secretsmanager", endpoint, "eu-west-1")
        value = json.loads(sm.get_secret_value(SecretId=created.refs["ClientSecret"])["SecretString"])
        assert value["clientId"] == "local" and len(value["clientSecret"]) >= 16
        kms = client("kms", endpoint, "eu-west-1")
        assert kms.describe_key(KeyId=created.refs["TokenKey"])["KeyMetadata"]["Description"] == "tokens"
        s3 = client("s3", endpoint, "eu-west-1")
        assert s3.head_bucket(Bucket=created.refs["Photos"])["ResponseMetadata"]["HTTPStatusCode"] == 200
    finally:
        server.stop()
