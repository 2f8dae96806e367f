"""Template parameter overrides (``CALSYNC_PARAMETERS``) and local secret values
(``CALSYNC_SECRETS``) of the local stack (local/overrides.py): parsed, checked against the template
before anything starts, and used when the resources are created and the functions' environments
resolved."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from local.config import ConfigError
from local.overrides import parameters_from_env, parse_parameters, secrets_from_env
from local.template import ROOT, Resolver, function_environment, functions, load

TPL: dict[str, Any] = {
    "Parameters": {
        "Stage": {"Type": "String", "Default": "dev", "AllowedValues": ["dev", "prod"]},
        "AuthUri": {"Type": "String", "Default": "https://accounts.example.com/auth"},
        "Authority": {
            "Type": "String",
            "Default": "https://login.example.com",
            "AllowedPattern": "^https://.+",
        },
        "WebhookUrl": {"Type": "String", "Default": ""},
    },
    "Conditions": {"HasWebhookUrl": {"Fn::Not": [{"Fn::Equals": [{"Ref": "WebhookUrl"}, ""]}]}},
    "Resources": {
        "OAuthSecret": {
            "Type": "AWS::SecretsManager::Secret",
            "Properties": {
                "GenerateSecretString": {
                    "SecretStringTemplate": '{"client_id": "set-me"}',
                    "GenerateStringKey": "client_secret",
                }
            },
        },
        "Fn": {
            "Type": "AWS::Serverless::Function",
            "Properties": {
                "CodeUri": "functions/x",
                "Environment": {
                    "Variables": {
                        "AUTH_URI": {"Ref": "AuthUri"},
                        "WEBHOOK_URL": {
                            "Fn::If": ["HasWebhookUrl", {"Ref": "WebhookUrl"}, "https://api.example.com/hook"]
                        },
                    }
                },
            },
        },
    },
}


def test_parse_parameters() -> None:
    assert parse_parameters("") == {}
    assert parse_parameters("  Stage=dev  ") == {"Stage": "dev"}
    got = parse_parameters("A=1 B=x,y,C=http://127.0.0.1:8/p?q=1&r=2  D=")
    assert got == {"A": "1", "B": "x,y", "C": "http://127.0.0.1:8/p?q=1&r=2", "D": ""}
    with pytest.raises(ConfigError, match="Name=Value"):
        parse_parameters("just words")
    with pytest.raises(ConfigError, match="twice"):
        parse_parameters("A=1 A=2")


def test_parameters_are_checked_against_the_template() -> None:
    env = {"CALSYNC_PARAMETERS": "AuthUri=http://127.0.0.1:9/auth WebhookUrl=http://127.0.0.1:3/hook"}
    params = parameters_from_env(TPL, env)
    assert params == {"AuthUri": "http://127.0.0.1:9/auth", "WebhookUrl": "http://127.0.0.1:3/hook"}
    with pytest.raises(ConfigError, match="no parameter Nope"):
        parameters_from_env(TPL, {"CALSYNC_PARAMETERS": "Nope=1"})
    with pytest.raises(ConfigError, match="Stage must be one of dev, prod"):
        parameters_from_env(TPL, {"CALSYNC_PARAMETERS": "Stage=qa"})
    with pytest.raises(ConfigError, match=r"Authority='http://127\.0\.0\.1:9' does not match"):
        parameters_from_env(TPL, {"CALSYNC_PARAMETERS": "Authority=http://127.0.0.1:9"})
    assert parameters_from_env(TPL, {"CALSYNC_PARAMETERS": "Authority=https://127.0.0.1:9/common"})
    assert parameters_from_env(TPL, {}) == {}


def test_overridden_parameters_reach_the_functions_environment(tmp_path: Path) -> None:
    fns = functions(TPL, root=tmp_path)
    default = function_environment(fns["Fn"], Resolver(TPL))
    assert default == {
        "AUTH_URI": "https://accounts.example.com/auth",
        "WEBHOOK_URL": "https://api.example.com/hook",
    }
    params = parameters_from_env(
        TPL, {"CALSYNC_PARAMETERS": "AuthUri=http://127.0.0.1:9/auth WebhookUrl=http://127.0.0.1:3/hook"}
    )
    got = function_environment(fns["Fn"], Resolver(TPL, parameters=params))
    assert got == {"AUTH_URI": "http://127.0.0.1:9/auth", "WEBHOOK_URL": "http://127.0.0.1:3/hook"}


def test_secrets_from_env() -> None:
    value = {"client_id": "id", "client_secret": "s3cr3t"}
    got = secrets_from_env(TPL, {"CALSYNC_SECRETS": json.dumps({"OAuthSecret": value})})
    assert json.loads(got["OAuthSecret"]) == value
    assert secrets_from_env(TPL, {"CALSYNC_SECRETS": '{"OAuthSecret": "plain"}'}) == {"OAuthSecret": "plain"}
    assert secrets_from_env(TPL, {}) == {}
    for bad, message in (
        ("{nope", "not JSON"),
        ("[1]", "JSON object"),
        ('{"Other": "x"}', "no AWS::SecretsManager::Secret Other"),
        ('{"OAuthSecret": 3}', "string or a JSON object"),
        ('{"OAuthSecret": ""}', "empty"),
    ):
        with pytest.raises(ConfigError, match=message) as err:
            secrets_from_env(TPL, {"CALSYNC_SECRETS": bad})
        assert "s3cr3t" not in str(err.value)


def test_secret_value_is_stored_instead_of_the_placeholder() -> None:
    from moto.server import ThreadedMotoServer

    from local.resources import client, create_aws_resources, names

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        created = names(TPL, "eu-west-1")
        value = json.dumps({"client_id": "fake-client", "client_secret": "s3cr3t"})
        create_aws_resources(TPL, endpoint, "eu-west-1", created, secret_values={"OAuthSecret": value})
        sm = client("secretsmanager", endpoint, "eu-west-1")
        assert sm.get_secret_value(SecretId=created.refs["OAuthSecret"])["SecretString"] == value
        assert any("CALSYNC_SECRETS" in line for line in created.summary)
        assert "s3cr3t" not in " ".join(created.summary)  # the value is never shown
    finally:
        server.stop()


def test_the_real_template_takes_the_google_parameters() -> None:
    tpl = load()
    env = {
        "CALSYNC_PARAMETERS": "GoogleApiEndpoint=http://127.0.0.1:7/calendar/v3/ "
        "GoogleWebhookUrl=http://127.0.0.1:3000/v1/webhooks/google",
        "CALSYNC_SECRETS": '{"GoogleOAuthSecret": {"client_id": "c", "client_secret": "s"}}',
    }
    params = parameters_from_env(tpl, env)
    assert set(secrets_from_env(tpl, env)) == {"GoogleOAuthSecret"}
    fns = functions(tpl)
    sync_env = function_environment(fns["GoogleSyncFunction"], Resolver(tpl, parameters=params))
    assert sync_env["GOOGLE_API_ENDPOINT"] == "http://127.0.0.1:7/calendar/v3/"
    assert sync_env["GOOGLE_WEBHOOK_URL"] == "http://127.0.0.1:3000/v1/webhooks/google"


def test_a_wrong_override_stops_the_stack_before_it_starts(tmp_path: Path) -> None:
    ports = []
    socks = [socket.socket() for _ in range(5)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    env = {
        **os.environ,
        **dict(
            zip(
                (
                    "CALSYNC_API_PORT",
                    "CALSYNC_DYNAMODB_PORT",
                    "CALSYNC_AWS_PORT",
                    "CALSYNC_CALDAV_PORT",
                    "CALSYNC_LIVE_PORT",
                ),
                map(str, ports),
                strict=True,
            )
        ),
        "CALSYNC_STATE_DIR": str(tmp_path / "state"),
        "CALSYNC_PARAMETERS": "GoogleApiEndpont=http://127.0.0.1:7/",
    }
    done = subprocess.run(
        [sys.executable, "-m", "local"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "CALSYNC_PARAMETERS" in done.stderr and "GoogleApiEndpont" in done.stderr
    assert not (tmp_path / "state").exists()  # nothing was started
