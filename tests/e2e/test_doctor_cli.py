"""`leadflow doctor`: a row per check, exit 1 when one fails, never a secret's value."""

from __future__ import annotations

import json
import subprocess

import pytest

from leadflow.embedded import free_port
from shared.db import downgrade, upgrade
from tests.e2e.test_leadflow_up import LEADFLOW, TEST_SECRET_KEY, clean_env

pytestmark = pytest.mark.e2e

PUBLIC_URL = "https://leads.example.com"


def doctor(*args: str, unset: tuple[str, ...] = (), **env: str) -> subprocess.CompletedProcess[str]:
    """`leadflow doctor ...` with this session's secret key (unless unset) and `env`."""
    environment = clean_env(**env)
    for name in unset:
        environment.pop(name)
    return subprocess.run(
        [LEADFLOW, "doctor", *args], capture_output=True, text=True, timeout=60, env=environment
    )


def statuses(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, str]]:
    """The --json report's checks by name."""
    report = json.loads(result.stdout)
    assert report["ok"] == (result.returncode == 0)
    return {check["name"]: check for check in report["checks"]}


def test_every_check_passes_against_the_test_database_and_a_real_broker(broker, clean_db):
    env = {
        "LEADFLOW_DATABASE_URL": clean_db,
        "LEADFLOW_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "LEADFLOW_PUBLIC_URL": PUBLIC_URL,
    }
    result = doctor("--json", **env)
    assert result.returncode == 0, result.stdout + result.stderr
    checks = statuses(result)
    assert list(checks) == [
        "settings",
        "secrets",
        "public URL",
        "broker",
        "database",
        "migrations",
    ]
    assert {c["status"] for c in checks.values()} == {"ok"}, checks
    assert broker.bootstrap_servers in checks["broker"]["detail"]

    table = doctor(**env)
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    for name in checks:
        assert any(line.startswith(name) and " ok " in line for line in lines), name
    assert TEST_SECRET_KEY not in table.stdout + table.stderr


def test_a_placeholder_secret_fails_naming_the_variable_not_the_value(broker, clean_db):
    result = doctor(
        "--json",
        LEADFLOW_DATABASE_URL=clean_db,
        LEADFLOW_KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap_servers,
        LEADFLOW_PUBLIC_URL=PUBLIC_URL,
        LEADFLOW_SHOPIFY_WEBHOOK_SECRET="change-me-please",
    )
    assert result.returncode == 1
    secrets = statuses(result)["secrets"]
    assert secrets["status"] == "fail"
    assert "LEADFLOW_SHOPIFY_WEBHOOK_SECRET is a well-known placeholder" in secrets["detail"]
    assert "change-me-please" not in result.stdout + result.stderr


def test_a_malformed_secret_fails_the_settings_without_echoing_it(clean_db):
    value = "not-a-webhook-secret-at-all"
    result = doctor("--json", LEADFLOW_DATABASE_URL=clean_db, LEADFLOW_WEBHOOK_SECRET=value)
    assert result.returncode == 1
    settings = statuses(result)["settings"]
    assert settings["status"] == "fail" and "LEADFLOW_WEBHOOK_SECRET" in settings["detail"]
    assert value not in result.stdout + result.stderr


def test_the_embedded_mode_skips_the_broker_and_only_warns_about_the_dev_secret(clean_db):
    result = doctor("--json", unset=("LEADFLOW_SECRET_KEY",), LEADFLOW_DATABASE_URL=clean_db)
    assert result.returncode == 0, result.stdout
    checks = statuses(result)
    assert checks["broker"] == {
        "name": "broker",
        "status": "ok",
        "detail": "embedded mode: leadflow up starts its own broker",
    }
    assert checks["secrets"]["status"] == "warn"
    assert "LEADFLOW_SECRET_KEY is the built-in development value" in checks["secrets"]["detail"]


def test_migrations_behind_fail_naming_the_command(tmp_path):
    url = f"sqlite:///{tmp_path / 'behind.db'}"
    upgrade(url)
    downgrade(url, "-1")
    result = doctor("--json", LEADFLOW_DATABASE_URL=url)
    assert result.returncode == 1
    checks = statuses(result)
    assert checks["database"]["status"] == "ok"
    assert checks["migrations"]["status"] == "fail"
    assert "leadflow db upgrade" in checks["migrations"]["detail"]


def test_an_unreachable_broker_and_a_missing_database_file_fail(tmp_path):
    missing = tmp_path / "missing.db"
    result = doctor(
        "--json",
        LEADFLOW_DATABASE_URL=f"sqlite:///{missing}",
        LEADFLOW_KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}",
    )
    assert result.returncode == 1
    checks = statuses(result)
    assert checks["broker"]["status"] == "fail"
    assert "LEADFLOW_KAFKA_BOOTSTRAP_SERVERS" in checks["broker"]["detail"]
    assert (
        checks["database"]["status"] == "fail" and "does not exist" in checks["database"]["detail"]
    )
    assert not missing.exists(), "the check must not create the database file"
