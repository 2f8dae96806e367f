"""The template's guard rails (issue 13 point 6, X4): throttling, reserved concurrency on the webhooks,
alarms, log groups, schedule retries, what survives a stack deletion, and IAM conditions that do
not hold vacuously. Read from template.yaml itself (local.template), like the local stack does."""

from __future__ import annotations

from typing import Any

import pytest

from local.template import functions, logical_id_of, resources_of_type, template

WEBHOOKS = ("GoogleWebhookFunction", "MicrosoftWebhookFunction")
# what holds data that is not derived from elsewhere: gone with the stack would be lost
STATEFUL = (
    "AWS::DynamoDB::Table",
    "AWS::S3::Bucket",
    "AWS::KMS::Key",
    "AWS::SQS::Queue",
    "AWS::SecretsManager::Secret",
    "AWS::Logs::LogGroup",
)


def _resources() -> dict[str, Any]:
    res: dict[str, Any] = template()["Resources"]
    return res


def _statements(function: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for policy in _resources()[function]["Properties"].get("Policies") or []:
        if isinstance(policy, dict) and "Statement" in policy:
            out += policy["Statement"]
    return out


def _alarms() -> list[dict[str, Any]]:
    return [r["Properties"] for r in resources_of_type(template(), "AWS::CloudWatch::Alarm").values()]


def _notifies_topic(alarm: dict[str, Any]) -> bool:
    return alarm.get("AlarmActions") == {
        "Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]
    }


def test_http_api_routes_are_throttled() -> None:
    (api,) = resources_of_type(template(), "AWS::Serverless::HttpApi").values()
    settings = api["Properties"]["DefaultRouteSettings"]
    assert settings["ThrottlingRateLimit"] == {"Ref": "ApiThrottlingRateLimit"}
    assert settings["ThrottlingBurstLimit"] == {"Ref": "ApiThrottlingBurstLimit"}
    params = template()["Parameters"]
    assert int(params["ApiThrottlingRateLimit"]["Default"]) > 0
    assert int(params["ApiThrottlingBurstLimit"]["Default"]) >= int(
        params["ApiThrottlingRateLimit"]["Default"]
    )


@pytest.mark.parametrize("webhook", WEBHOOKS)
def test_webhooks_have_reserved_concurrency(webhook: str) -> None:
    assert _resources()[webhook]["Properties"]["ReservedConcurrentExecutions"] == {
        "Ref": "WebhookConcurrency"
    }
    assert int(template()["Parameters"]["WebhookConcurrency"]["Default"]) >= 1


def test_every_dead_letter_queue_has_a_depth_alarm() -> None:
    tpl = template()
    dlqs = {
        logical_id_of(q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
        for q in resources_of_type(tpl, "AWS::SQS::Queue").values()
        if "RedrivePolicy" in q["Properties"]
    }
    dlqs.add("ScheduleDLQ")
    watched = {
        logical_id_of(a["Dimensions"][0]["Value"])
        for a in _alarms()
        if a["Namespace"] == "AWS/SQS"
        and a["MetricName"] == "ApproximateNumberOfMessagesVisible"
        and a["Threshold"] == 0
        and a["ComparisonOperator"] == "GreaterThanThreshold"
        and _notifies_topic(a)
    }
    assert dlqs == {
        "CaldavSyncDLQ",
        "GoogleSyncDLQ",
        "MicrosoftSyncDLQ",
        "PollDLQ",
        "CleanupDLQ",
        "LiveDueDLQ",
        "MicrosoftRenewDLQ",
        "GoogleRenewDLQ",
        "ScheduleDLQ",
    }
    assert dlqs <= watched


@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_every_function_has_error_and_throttle_alarms(metric: str) -> None:
    watched = {
        logical_id_of(a["Dimensions"][0]["Value"])
        for a in _alarms()
        if a["Namespace"] == "AWS/Lambda" and a["MetricName"] == metric and _notifies_topic(a)
    }
    assert set(functions(template())) <= watched


def test_every_function_logs_to_a_declared_log_group_with_retention() -> None:
    for lid in functions(template()):
        group = logical_id_of(_resources()[lid]["Properties"]["LoggingConfig"]["LogGroup"])
        assert group is not None, lid
        res = _resources()[group]
        assert res["Type"] == "AWS::Logs::LogGroup", lid
        assert res["Properties"]["RetentionInDays"], lid
        assert logical_id_of(res["Properties"]["KmsKeyId"]) == "LogsKey", lid


def test_schedules_retry_and_dead_letter() -> None:
    fns = functions(template())
    scheduled = [lid for lid, fn in fns.items() if fn.schedules]
    assert scheduled
    for lid in scheduled:
        props = _resources()[lid]["Properties"]
        # an asynchronous invocation failing after Lambda's retries is kept too
        assert logical_id_of(props["DeadLetterQueue"]["TargetArn"]) == "ScheduleDLQ", lid
        for name, ev in props["Events"].items():
            if ev["Type"] not in ("Schedule", "ScheduleV2"):
                continue
            ep = ev["Properties"]
            assert logical_id_of(ep["DeadLetterConfig"]["Arn"]) == "ScheduleDLQ", (lid, name)
            assert 0 < ep["RetryPolicy"]["MaximumRetryAttempts"] <= 5, (lid, name)
            assert 60 <= ep["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 3600, (lid, name)


def test_stateful_resources_say_what_happens_on_delete_and_replace() -> None:
    for lid, res in _resources().items():
        if res["Type"] in STATEFUL:
            assert res.get("DeletionPolicy") in ("Retain", "Delete", "Snapshot"), lid
            assert res.get("UpdateReplacePolicy") == res.get("DeletionPolicy"), lid
    for lid in ("Table", "PhotoBucket", "KmsKey", "GoogleOAuthSecret", "MicrosoftOAuthSecret"):
        assert _resources()[lid]["DeletionPolicy"] == "Retain", lid


def _kms_statements() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for lid in functions(template()):
        for st in _statements(lid):
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            if any(str(a).startswith("kms:") for a in actions):
                out.append((lid, st))
    return out


def test_kms_conditions_do_not_hold_without_an_encryption_context() -> None:
    # ForAllValues over an empty set is true: a GenerateDataKey/Decrypt with no context at all would
    # pass "keys are a subset of {userId, accountId}". Each listed key must also be present.
    statements = _kms_statements()
    assert len(statements) >= 10
    for lid, st in statements:
        keys = st["Condition"]["ForAllValues:StringEquals"]["kms:EncryptionContextKeys"]
        nulls = st["Condition"]["Null"]
        for key in keys:
            assert nulls.get(f"kms:EncryptionContext:{key}") == "false", (lid, st.get("Sid"), key)


def test_microsoft_accounts_opens_only_sign_in_flows() -> None:
    for _lid, st in (x for x in _kms_statements() if x[0] == "MicrosoftAccountsFunction"):
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        if "kms:Decrypt" in actions:
            assert st["Condition"]["ForAllValues:StringEquals"]["kms:EncryptionContextKeys"] == ["oauthState"]


# functions whose table access is scoped to the item types they touch (partition key prefixes)
SCOPED = {
    "GoogleWebhookFunction": ["CAL#*"],  # CAL#<calendarId> / GCHAN#<channelId>
    "MicrosoftWebhookFunction": ["MSSUB#*"],  # MSSUB#<subscriptionId> / SUB
    # POLL#<provider>#<shard> / CAL#<calendarId> (docs/adr/0016); SRV#<host> / BUDGET (docs/adr/0020)
    "PollShardFunction": ["POLL#*", "SRV#*"],
    "MicrosoftRenewFunction": ["MSSUBS#*", "MSPOLL#*"],
    "LiveDueFunction": ["DUE#*", "USER#*"],  # DUE#<minute> / USER#<id> (docs/adr/0018); the people
}


@pytest.mark.parametrize(("function", "prefixes"), SCOPED.items())
def test_table_access_is_scoped_to_item_types(function: str, prefixes: list[str]) -> None:
    # (CaldavPollFunction only dispatches one task per shard since docs/adr/0016: no table access)
    table_statements = [st for st in _statements(function) if "dynamodb:" in str(st["Action"])]
    assert table_statements
    named: list[str] = []
    for st in table_statements:
        named += st["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
        # ForAllValues holds vacuously for a request without keys (a Scan): it must name one
        assert st["Condition"]["Null"]["dynamodb:LeadingKeys"] == "false"
        assert "dynamodb:Scan" not in str(st["Action"]) and "*" not in str(st["Action"])
    assert sorted(named) == sorted(prefixes)
    policies = _resources()[function]["Properties"]["Policies"]
    assert not any(isinstance(p, dict) and any(k.startswith("DynamoDB") for k in p) for p in policies)


def test_every_checkov_skip_gives_its_reason() -> None:
    skips = 0
    for lid, res in _resources().items():
        for skip in ((res.get("Metadata") or {}).get("checkov") or {}).get("skip") or []:
            skips += 1
            assert skip["id"].startswith("CKV_"), lid
            assert len(str(skip.get("comment", "")).split()) >= 4, (lid, skip)
    assert skips


# The workers that keep a refreshed token seal it again (calsync_google.worker.GoogleSyncWorker.
# keep_token, calsync_microsoft.worker's token cache): without kms:GenerateDataKey every such write
# is denied in AWS (moto does not enforce IAM), and each job pays one more token refresh.
RESEALS = ("GoogleSyncFunction", "GoogleRenewFunction", "MicrosoftSyncFunction")


@pytest.mark.parametrize("function", RESEALS)
def test_workers_that_keep_refreshed_tokens_may_seal_them(function: str) -> None:
    actions = set()
    for st in _statements(function):
        act = st["Action"]
        if st["Effect"] == "Allow" and st.get("Resource") == {"Fn::GetAtt": ["KmsKey", "Arn"]}:
            actions |= set(act if isinstance(act, list) else [act])
    assert {"kms:Decrypt", "kms:GenerateDataKey"} <= actions
