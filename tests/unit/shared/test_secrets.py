"""Secrets at start-up: placeholders and the built-in key are refused outside the embedded mode,
webhook signing keys are checked for format and length."""

from __future__ import annotations

import base64
import logging
import os
import secrets

import pytest
from pydantic import ValidationError

from leadflow.cli import _check_secrets, main
from shared.config import Settings, is_placeholder_secret

GOOD_KEY = secrets.token_hex(32)


def whsec(n_bytes: int) -> str:
    """A Standard Webhooks secret holding an `n_bytes` random key."""
    return "whsec_" + base64.b64encode(os.urandom(n_bytes)).decode()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts with no LEADFLOW_* variable set, whatever the shell exported."""
    for name in list(os.environ):
        if name.upper().startswith("LEADFLOW_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(
    "value",
    [
        "change-me-in-production",
        "CHANGE_ME",
        "changeme",
        "please-change-me-now",
        "secret",
        "Password",
        "your-secret-key-here",
        "replace_me",
        "leadflow-dev-secret-change-me",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ],
)
def test_well_known_placeholders_are_recognised(value: str) -> None:
    assert is_placeholder_secret(value)


@pytest.mark.parametrize("value", [GOOD_KEY, whsec(32), "shpss_4f1c9e0b7a2d", "Kx9-vQ2m-Lp7t"])
def test_generated_secrets_are_not_placeholders(value: str) -> None:
    assert not is_placeholder_secret(value)


def test_the_built_in_secret_key_is_weak() -> None:
    assert Settings().weak_secrets() == ["LEADFLOW_SECRET_KEY is the built-in development value"]


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("secret_key", "change-me-in-production", "LEADFLOW_SECRET_KEY is a well-known"),
        ("secret_key", "s3cr3t-but-short", None),
        ("secret_key", "abc123", "LEADFLOW_SECRET_KEY has 6 characters"),
        ("shopify_webhook_secret", "changeme", "LEADFLOW_SHOPIFY_WEBHOOK_SECRET is a well-known"),
        ("smtp_password", "password", "LEADFLOW_SMTP_PASSWORD is a well-known"),
        ("hubspot_client_secret", "your-secret", "LEADFLOW_HUBSPOT_CLIENT_SECRET is a well-known"),
        (
            "webhook_secret",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "LEADFLOW_WEBHOOK_SECRET is a well-known",
        ),
    ],
)
def test_each_weak_secret_is_named(field: str, value: str, problem: str | None) -> None:
    values: dict[str, str] = {"secret_key": GOOD_KEY, field: value}
    weak = Settings(**values).weak_secrets()
    if problem is None:
        assert weak == []
    else:
        assert len(weak) == 1 and weak[0].startswith(problem), weak


def test_sound_secrets_are_not_weak() -> None:
    settings = Settings(
        secret_key=GOOD_KEY, webhook_secret=whsec(32), shopify_webhook_secret="shpss_" + GOOD_KEY
    )
    assert settings.weak_secrets() == []


@pytest.mark.parametrize("n_bytes", [24, 32, 64])
def test_webhook_secrets_of_24_to_64_bytes_are_accepted(n_bytes: int) -> None:
    value = whsec(n_bytes)
    assert Settings(webhook_secret=value).webhook_secret.get_secret_value() == value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (whsec(16), "holds a 16-byte key"),
        (whsec(65), "holds a 65-byte key"),
        ("whsec_not base64!", "is not valid base64"),
        ("whsec_abc", "is not valid base64"),
        (base64.b64encode(os.urandom(32)).decode(), "does not start with 'whsec_'"),
    ],
)
def test_malformed_webhook_secrets_are_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    monkeypatch.setenv("LEADFLOW_WEBHOOK_SECRET", value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    errors = caught.value.errors()
    assert errors[0]["loc"] == ("webhook_secret",)
    assert message in errors[0]["msg"]
    assert value not in str(caught.value), "the secret itself must not be echoed"


@pytest.mark.parametrize("command", [["ingest"], ["scoring"], ["routing"], ["up"]])
def test_services_refuse_the_built_in_secret_with_an_external_broker(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    monkeypatch.setenv("LEADFLOW_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    assert main(command) == 1
    err = capsys.readouterr().err
    assert "refusing to start with weak secrets" in err
    assert "LEADFLOW_SECRET_KEY is the built-in development value" in err


def test_services_refuse_compose_s_old_placeholder(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEADFLOW_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("LEADFLOW_SECRET_KEY", "change-me-in-production")
    assert main(["routing"]) == 1
    assert "LEADFLOW_SECRET_KEY is a well-known placeholder" in capsys.readouterr().err


def test_the_embedded_mode_warns_about_the_built_in_secret_but_starts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="leadflow.cli"):
        _check_secrets(Settings(), embedded=True)
    assert "LEADFLOW_SECRET_KEY is the built-in development value" in caplog.text


def test_sound_secrets_start_outside_the_embedded_mode_without_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="leadflow.cli"):
        _check_secrets(Settings(secret_key=GOOD_KEY, webhook_secret=whsec(32)), embedded=False)
    assert caplog.text == ""
