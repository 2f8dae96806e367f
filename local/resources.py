"""Create the template's resources on the local servers, from template.yaml's own definitions:
tables (keys, GSIs, TTL), queues with their dead-letter queues, KMS keys, secrets, buckets.

Returns what ``!Ref`` and ``!GetAtt`` of each resource give, so that the functions' environments
name the local resources.
"""

from __future__ import annotations

import json
import secrets as random_secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config

from local.template import (
    ACCOUNT_ID,
    Resolver,
    bucket_defs,
    event_bus_defs,
    key_alias_defs,
    key_defs,
    queue_defs,
    secret_defs,
    table_create_kwargs,
    table_defs,
    table_ttl_attribute,
)

_BOTO = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=2, read_timeout=30)


@dataclass
class Created:
    refs: dict[str, str] = field(default_factory=dict)
    attrs: dict[str, str] = field(default_factory=dict)
    queue_urls: dict[str, str] = field(default_factory=dict)  # logical id -> URL
    summary: list[str] = field(default_factory=list)


def client(service: str, endpoint: str, region: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        config=_BOTO,
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - dummy credentials of local servers
    )


def names(tpl: Mapping[str, Any], region: str, parameters: Mapping[str, str] | None = None) -> Created:
    """The local names of tables and buckets (known before anything is created)."""
    resolver = Resolver(tpl, region, parameters=dict(parameters or {}))
    out = Created()
    for t in table_defs(tpl, resolver):
        assert t.name is not None
        out.refs[t.logical_id] = t.name
        out.attrs[f"{t.logical_id}.Arn"] = f"arn:aws:dynamodb:{region}:{ACCOUNT_ID}:table/{t.name}"
        out.attrs[f"{t.logical_id}.StreamArn"] = (
            f"arn:aws:dynamodb:{region}:{ACCOUNT_ID}:table/{t.name}/stream/local"
        )
    for b in bucket_defs(tpl, resolver):
        assert b.name is not None
        out.refs[b.logical_id] = b.name
        out.attrs[f"{b.logical_id}.Arn"] = f"arn:aws:s3:::{b.name}"
        out.attrs[f"{b.logical_id}.DomainName"] = f"{b.name}.s3.amazonaws.com"
        out.attrs[f"{b.logical_id}.RegionalDomainName"] = f"{b.name}.s3.{region}.amazonaws.com"
    for e in event_bus_defs(tpl, resolver):
        assert e.name is not None
        out.refs[e.logical_id] = e.name
        out.attrs[f"{e.logical_id}.Arn"] = f"arn:aws:events:{region}:{ACCOUNT_ID}:event-bus/{e.name}"
        out.attrs[f"{e.logical_id}.Name"] = e.name
    return out


def create_tables(
    tpl: Mapping[str, Any],
    ddb_endpoint: str,
    region: str,
    created: Created,
    *,
    parameters: Mapping[str, str] | None = None,
) -> None:
    ddb = client("dynamodb", ddb_endpoint, region)
    resolver = Resolver(tpl, region, parameters=dict(parameters or {}))
    existing = set(ddb.list_tables().get("TableNames", []))
    for t in table_defs(tpl, resolver):
        assert t.name is not None
        if t.name in existing:
            created.summary.append(f"table {t.name} (exists)")
            continue
        ddb.create_table(**table_create_kwargs(t.name, t.logical_id, tpl))
        ddb.get_waiter("table_exists").wait(TableName=t.name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
        ttl = table_ttl_attribute(t.logical_id, tpl)
        if ttl:
            ddb.update_time_to_live(
                TableName=t.name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl}
            )
        created.summary.append(f"table {t.name}" + (f" (TTL {ttl})" if ttl else ""))


def create_aws_resources(
    tpl: Mapping[str, Any],
    aws_endpoint: str,
    region: str,
    created: Created,
    *,
    parameters: Mapping[str, str] | None = None,
    secret_values: Mapping[str, str] | None = None,
) -> None:
    """Queues (dead-letter queues first), KMS keys and aliases, secrets and buckets on moto.
    ``secret_values``: a secret's value by logical id (``CALSYNC_SECRETS``) instead of a placeholder."""
    params = dict(parameters or {})
    resolver = Resolver(tpl, region, refs=created.refs, attrs=created.attrs, parameters=params)
    queues = queue_defs(tpl, resolver)
    if queues:
        sqs = client("sqs", aws_endpoint, region)
        for q in queues:
            attrs = dict(q.attributes)
            if q.dlq:
                policy: dict[str, Any] = {"deadLetterTargetArn": created.attrs[f"{q.dlq}.Arn"]}
                if q.max_receive_count is not None:
                    policy["maxReceiveCount"] = q.max_receive_count
                attrs["RedrivePolicy"] = json.dumps(policy)
            url = sqs.create_queue(QueueName=q.name, Attributes=attrs)["QueueUrl"]
            arn = f"arn:aws:sqs:{region}:{ACCOUNT_ID}:{q.name}"
            created.queue_urls[q.logical_id] = url
            created.refs[q.logical_id] = url
            created.attrs[f"{q.logical_id}.Arn"] = arn
            created.attrs[f"{q.logical_id}.QueueName"] = q.name
            created.attrs[f"{q.logical_id}.QueueUrl"] = url
            created.summary.append(f"queue {q.name}" + (f" (DLQ {q.dlq})" if q.dlq else ""))
    keys = key_defs(tpl, resolver)
    if keys:
        kms = client("kms", aws_endpoint, region)
        for k in keys:
            meta = kms.create_key(
                Description=str(k.properties.get("Description", k.logical_id)),
                KeyUsage=str(k.properties.get("KeyUsage", "ENCRYPT_DECRYPT")),
                KeySpec=str(k.properties.get("KeySpec", "SYMMETRIC_DEFAULT")),
            )["KeyMetadata"]
            created.refs[k.logical_id] = meta["KeyId"]
            created.attrs[f"{k.logical_id}.Arn"] = meta["Arn"]
            created.attrs[f"{k.logical_id}.KeyId"] = meta["KeyId"]
            created.summary.append(f"KMS key {k.logical_id}")
        for alias, target in key_alias_defs(tpl):
            if target in created.refs:
                kms.create_alias(AliasName=alias, TargetKeyId=created.refs[target])
    with_refs = Resolver(tpl, region, refs=created.refs, attrs=created.attrs, parameters=params)
    secrets = secret_defs(tpl, with_refs)
    if secrets:
        sm = client("secretsmanager", aws_endpoint, region)
        given = secret_values or {}
        for s in secrets:
            assert s.name is not None
            value = given.get(s.logical_id)
            arn = sm.create_secret(Name=s.name, SecretString=value or _placeholder(s.properties))["ARN"]
            created.refs[s.logical_id] = arn
            created.attrs[f"{s.logical_id}.Id"] = arn
            created.summary.append(
                f"secret {s.name} ({'value from CALSYNC_SECRETS' if value else 'placeholder value'})"
            )
    buckets = bucket_defs(tpl, resolver)
    if buckets:
        s3 = client("s3", aws_endpoint, region)
        for b in buckets:
            assert b.name is not None
            kwargs: dict[str, Any] = {"Bucket": b.name}
            if region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
            s3.create_bucket(**kwargs)
            created.summary.append(f"bucket {b.name}")
    buses = event_bus_defs(tpl, resolver)
    if buses:
        events = client("events", aws_endpoint, region)
        for e in buses:
            assert e.name is not None
            events.create_event_bus(Name=e.name)
            created.summary.append(f"event bus {e.name}")


def _placeholder(props: Mapping[str, Any]) -> str:
    """A locally generated secret value: the template's own string, or one shaped like what
    GenerateSecretString would make (a JSON template with the generated key added)."""
    if isinstance(props.get("SecretString"), str):
        return str(props["SecretString"])
    gen = props.get("GenerateSecretString") or {}
    value = random_secrets.token_urlsafe(int(gen.get("PasswordLength", 32)))[
        : int(gen.get("PasswordLength", 32))
    ]
    if gen.get("SecretStringTemplate") and gen.get("GenerateStringKey"):
        doc = json.loads(str(gen["SecretStringTemplate"]))
        doc[str(gen["GenerateStringKey"])] = value
        return json.dumps(doc)
    return value
