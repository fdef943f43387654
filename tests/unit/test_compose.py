"""docker-compose.yml only runs real `leadflow` commands and sets only real settings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from leadflow.cli import build_parser
from shared.config import Settings

COMPOSE_FILE = Path(__file__).resolve().parents[2] / "docker-compose.yml"
PREFIX = "LEADFLOW_"
APP_SERVICES = ("ingest", "scoring", "routing")


def load_compose(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """The compose file with anchors and merge keys resolved."""
    return yaml.safe_load(path.read_text())


def service_env(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a dict, whether written as a mapping or `K=V` items."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def unknown_settings(compose: dict[str, Any]) -> list[str]:
    """`service: VAR` for every LEADFLOW_* variable that is not a Settings field."""
    return [
        f"{name}: {key}"
        for name, service in compose["services"].items()
        for key in service_env(service)
        if key.startswith(PREFIX) and key[len(PREFIX) :].lower() not in Settings.model_fields
    ]


_INTERPOLATION = re.compile(r"^\$\{(?P<name>\w+)(?P<op>:?[-?])(?P<rest>.*)\}$")


def interpolated(value: str) -> str | None:
    """The value compose gives a variable the host leaves unset: `${X:-d}` is `d`; None for
    `${X:?message}`, which compose refuses to start without."""
    match = _INTERPOLATION.match(value)
    if match is None:
        return value
    return None if match["op"].endswith("?") else match["rest"]


def invalid_settings(compose: dict[str, Any]) -> list[str]:
    """`service: VAR=value (error)` for every known LEADFLOW_* variable whose value (as compose
    resolves it with nothing set on the host) fails."""
    problems = []
    for name, service in compose["services"].items():
        for key, raw in service_env(service).items():
            field = key[len(PREFIX) :].lower()
            value = interpolated(raw)
            if not key.startswith(PREFIX) or field not in Settings.model_fields or value is None:
                continue
            try:
                Settings(**{field: value})
            except ValidationError as exc:
                problems.append(f"{name}: {key}={value!r} ({exc.errors()[0]['msg']})")
    return problems


def command_error(command: list[str]) -> str | None:
    """None if `leadflow <command>` parses, else why it does not."""
    try:
        build_parser().parse_args(command)
    except SystemExit as exc:
        return f"`leadflow {' '.join(command)}` is rejected by the CLI (exit {exc.code})"
    return None


def test_compose_has_the_broker_database_mail_catcher_migration_and_services() -> None:
    services = load_compose()["services"]
    for name in ("kafka", "postgres", "mailpit", "migrate", *APP_SERVICES):
        assert name in services, f"service {name!r} missing"


def test_every_image_service_runs_a_command_the_leadflow_cli_accepts() -> None:
    built = {n: s for n, s in load_compose()["services"].items() if "build" in s}
    assert set(built) >= {"migrate", *APP_SERVICES}
    for name, service in built.items():
        command = service.get("command")
        assert isinstance(command, list) and command, f"{name} has no exec-form command"
        assert command_error(command) is None, name


def test_every_leadflow_variable_is_a_real_setting_with_a_valid_value() -> None:
    compose = load_compose()
    assert any(key.startswith(PREFIX) for key in service_env(compose["services"]["ingest"]))
    assert unknown_settings(compose) == []
    assert invalid_settings(compose) == []


@pytest.mark.parametrize("name", APP_SERVICES)
def test_services_wait_for_healthy_kafka_and_completed_migrations(name: str) -> None:
    depends_on = load_compose()["services"][name]["depends_on"]
    assert depends_on["kafka"]["condition"] == "service_healthy"
    assert depends_on["migrate"]["condition"] == "service_completed_successfully"


def test_checkers_report_unknown_variables_bad_values_and_bad_commands() -> None:
    compose = {
        "services": {"x": {"environment": ["LEADFLOW_NOT_A_SETTING=1", "LEADFLOW_HTTP_PORT=99999"]}}
    }
    assert unknown_settings(compose) == ["x: LEADFLOW_NOT_A_SETTING"]
    assert len(invalid_settings(compose)) == 1
    assert command_error(["ingest", "--no-such-option"]) is not None
    assert command_error(["not-a-command"]) is not None


def test_compose_runs_the_kafka_release_the_tests_run_on():
    pom = (COMPOSE_FILE.parent / "tests" / "kafka" / "pom.xml").read_text()
    version = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom)
    assert version is not None
    kafka = load_compose()["services"]["kafka"]
    assert kafka["image"] == f"apache/kafka:{version.group(1)}"


def test_compose_kafka_keeps_its_log_in_a_volume():
    compose = load_compose()
    kafka = compose["services"]["kafka"]
    log_dir = service_env(kafka)["KAFKA_LOG_DIRS"]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in kafka["volumes"]}
    assert log_dir in mounts
    assert mounts[log_dir] in compose["volumes"], "the Kafka log must be a named volume"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_compose_gives_no_default_secret_key_so_it_must_be_set(name: str) -> None:
    raw = service_env(load_compose()["services"][name])["LEADFLOW_SECRET_KEY"]
    assert interpolated(raw) is None, f"compose would start {name} with {raw!r}"


def test_compose_secrets_left_unset_on_the_host_are_unset_not_placeholders() -> None:
    env = service_env(load_compose()["services"]["ingest"])
    for key, raw in env.items():
        if "SECRET" in key or key.endswith("_KEY") or "PASSWORD" in key:
            value = interpolated(raw)
            assert value in (None, ""), f"{key} defaults to {value!r}"
