"""Settings read from the environment (``calsync.config.from_env``) by the core and provider layers."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from calsync.config import PresenceSettings, Settings, from_env
from calsync_microsoft.settings import MicrosoftSettings


def test_each_field_comes_from_its_variable_and_an_empty_one_keeps_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TABLE_NAME", " calsync ")
    monkeypatch.setenv("MEETING_HOSTS", "zoom.us, meet.google.com")
    monkeypatch.setenv("POLL_QUEUE_URL", "")
    monkeypatch.setenv("LOCAL", "1")  # not the variable of ``local``: that one is given
    settings = from_env(Settings, local=False)
    assert settings.table_name == "calsync"
    assert settings.meeting_hosts == ["zoom.us", "meet.google.com"]
    assert settings.poll_queue_url == ""
    assert settings.local is False


def test_a_prefix_and_other_names_pick_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MICROSOFT_SUBSCRIPTION_MINUTES", "60")
    monkeypatch.setenv("MICROSOFT_AUTHORITY", "")
    monkeypatch.setenv("GRAPH_ENDPOINT", "http://graph.test/v1.0")
    monkeypatch.setenv("MICROSOFT_GRAPH_ENDPOINT", "http://not-this.test")
    settings = from_env(MicrosoftSettings, "microsoft_", {"graph_endpoint": "GRAPH_ENDPOINT"})
    assert settings.subscription_minutes == 60
    assert settings.authority == "https://login.microsoftonline.com/common"
    assert settings.graph_endpoint == "http://graph.test/v1.0"


def test_a_bad_value_fails_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_TTL_SECONDS", "10")  # under the minute P5 allows
    with pytest.raises(ValidationError):
        from_env(PresenceSettings)
    monkeypatch.delenv("TABLE_NAME", raising=False)
    with pytest.raises(ValidationError):
        from_env(Settings)
