"""`leadflow doctor`'s rules for the public URL and the secrets (no I/O)."""

from __future__ import annotations

import secrets

import pytest

from leadflow.commands.doctor import check_public_url, check_secrets
from shared.config import Settings

BROKER = "kafka:9092"
GOOD_KEY = secrets.token_hex(32)


def settings(*, broker: str | None, **values: object) -> Settings:
    return Settings(kafka_bootstrap_servers=broker, secret_key=GOOD_KEY, **values)


@pytest.mark.parametrize(
    ("broker", "url", "port", "status"),
    [
        (None, "http://127.0.0.1:8000", 8000, "ok"),  # `make run` as shipped
        (None, "http://localhost:8000/", 8000, "ok"),
        (None, "http://127.0.0.1:8000", 9000, "warn"),  # `leadflow up --port 9000`
        (None, "http://localhost", 8000, "warn"),  # port 80 of this machine
        (BROKER, "http://127.0.0.1:8000", 8000, "warn"),  # links reach nobody else
        (BROKER, "https://leads.example.com", 8000, "ok"),  # a proxy in front: port 443
        (BROKER, "https://leads.example.com:8443", 8000, "ok"),
        (BROKER, "leads.example.com", 8000, "fail"),  # not absolute
        (BROKER, "ftp://leads.example.com", 8000, "fail"),
        (BROKER, "http://leads.example.com:99999", 8000, "fail"),
    ],
)
def test_public_url_is_checked_against_the_listen_port_and_the_mode(
    broker: str | None, url: str, port: int, status: str
) -> None:
    check = check_public_url(settings(broker=broker, public_url=url, http_port=port))
    assert check.status == status, check.detail


def test_a_url_on_the_listen_host_counts_as_this_machine() -> None:
    check = check_public_url(
        settings(
            broker=BROKER, public_url="http://10.0.0.5:8080", http_host="10.0.0.5", http_port=8000
        )
    )
    assert check.status == "warn"
    assert "port 8080" in check.detail and "listens on 8000" in check.detail


def test_weak_secrets_fail_with_a_broker_and_warn_in_the_embedded_mode() -> None:
    weak = {"secret_key": "change-me-in-production"}
    failed = check_secrets(Settings(kafka_bootstrap_servers=BROKER, **weak))
    assert failed.status == "fail"
    assert failed.detail == "LEADFLOW_SECRET_KEY is a well-known placeholder"
    warned = check_secrets(Settings(kafka_bootstrap_servers=None, **weak))
    assert warned.status == "warn" and "local play only" in warned.detail


def test_sound_secrets_pass_and_auth_off_warns() -> None:
    assert check_secrets(settings(broker=BROKER)).status == "ok"
    off = check_secrets(settings(broker=BROKER, auth="off"))
    assert off.status == "warn" and "LEADFLOW_AUTH=off" in off.detail
