"""docker-compose.yml only runs real `leadflow` commands and sets only real settings; it ships
no secret, pins every image, and checks each service's readiness."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer
import yaml
from pydantic import ValidationError

from leadflow.cli import parse_command
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


_INTERPOLATION = re.compile(
    r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<rest>[^}]*))?\}|\$(?P<bare>\w+)"
)


def interpolated(value: str) -> str | None:
    """The value compose gives a string when the host sets no variable: `${X:-d}` is `d`,
    `${X}` and `$X` are empty; None if it holds a `${X:?message}`, which compose refuses to
    start without. `$$` is a literal `$`."""
    resolved = []
    for part in value.split("$$"):
        if any(m["op"] and m["op"].endswith("?") for m in _INTERPOLATION.finditer(part)):
            return None
        resolved.append(_INTERPOLATION.sub(lambda m: m["rest"] or "", part))
    return "$".join(resolved)


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
    """None if `leadflow <command>` parses (down typer's command tree to the command it names,
    without running it), else why it does not."""
    try:
        parse_command(command)
    except typer.TyperException as exc:
        return f"`leadflow {' '.join(command)}` is rejected by the CLI ({exc})"
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
    assert shipped_secrets(load_compose()["services"]) == []


def test_the_database_password_is_required_from_the_host_and_the_same_on_both_sides() -> None:
    services = load_compose()["services"]
    password = service_env(services["postgres"])["POSTGRES_PASSWORD"]
    assert password.startswith("${POSTGRES_PASSWORD:?"), password
    for name in ("migrate", *APP_SERVICES):
        url = service_env(services[name])["LEADFLOW_DATABASE_URL"]
        assert f":{password}@postgres:5432/" in url, name
        assert interpolated(url) is None, f"{name} would start with a database password"


def test_secrets_compose_leaves_empty_are_unset_and_none_is_weak() -> None:
    env = service_env(load_compose()["services"]["routing"])
    empty = {
        key[len(PREFIX) :].lower(): ""
        for key, raw in env.items()
        if key.startswith(PREFIX) and is_secret(key) and interpolated(raw) == ""
    }
    assert "webhook_secret" in empty
    settings = Settings(**empty)
    assert all(getattr(settings, field) is None for field in empty)
    # LEADFLOW_SECRET_KEY aside (compose does not start without it), nothing is weak.
    assert [p for p in settings.weak_secrets() if "LEADFLOW_SECRET_KEY" not in p] == []


def test_the_secret_checker_reports_a_default_password_a_placeholder_and_a_url_password() -> None:
    services = {
        "db": {"environment": {"POSTGRES_PASSWORD": "leadflow", "POSTGRES_USER": "leadflow"}},
        "app": {"environment": ["LEADFLOW_SECRET_KEY=${K:-change-me}", "LEADFLOW_X_KEY=${K:?}"]},
        "url": {"environment": {"LEADFLOW_DATABASE_URL": "postgresql://u:pw@db/x"}},
        "ok": {"environment": {"GF_AUTH_BASIC_ENABLED": "false", "SMTP_TOKEN": "${T:-}"}},
    }
    assert shipped_secrets(services) == [
        "db: POSTGRES_PASSWORD='leadflow'",
        "app: LEADFLOW_SECRET_KEY='change-me'",
        "url: LEADFLOW_DATABASE_URL carries password 'pw'",
    ]
    assert interpolated("a${X:-b}c$Y$$d") == "abc$d"
    assert interpolated("u:${P:?set P}@h") is None


def test_every_image_is_pinned_to_a_release() -> None:
    services = load_compose()["services"]
    assert all(service.get("image") for service in services.values())
    unpinned = [
        f"{name}: {service['image']}"
        for name, service in services.items()
        if "build" not in service and not is_pinned(service["image"])
    ]
    assert unpinned == []


def test_the_pin_check_refuses_latest_untagged_and_partial_versions() -> None:
    refused = ["nginx", "nginx:latest", "postgres:16", "nginx:1.27-alpine", "nginx:stable"]
    accepted = ["nginx:1.27.3-alpine", "prom/prometheus:v2.53.0", "a/b@sha256:" + "0" * 64]
    accepted += ["postgres:16.6", "postgres:16.6-bookworm"]
    assert [image for image in refused + accepted if is_pinned(image)] == accepted


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_are_healthy_only_when_readyz_answers_on_their_port(name: str) -> None:
    service = load_compose()["services"][name]
    check = service["healthcheck"]["test"]
    assert check[0] == "CMD", "exec form: no shell in between"
    probe = " ".join(check[1:])
    assert f"http://127.0.0.1:{command_port(service['command'])}/readyz" in probe
    # urlopen raises on a 503, so the check fails while /readyz says not ready.
    assert "urllib.request.urlopen(" in probe


def test_only_the_gateway_is_published_beyond_this_machine() -> None:
    services = load_compose()["services"]
    public = {
        name: str(entry)
        for name, service in services.items()
        for entry in service.get("ports") or []
        if not str(entry).startswith("127.0.0.1:")
    }
    assert public == {"gateway": "8000:8000"}
    assert not any(services[name].get("ports") for name in APP_SERVICES)


def command_port(command: list[str]) -> int:
    """The port `leadflow <service> --port N` serves on, read from the command's words."""
    for i, word in enumerate(command):
        if word == "--port":
            return int(command[i + 1])
    return int(Settings.model_fields["http_port"].default)


SECRET_NAME = re.compile(r"SECRET|PASSWORD|_KEY$|TOKEN")
_PINNED = re.compile(r"[\w./-]+(:v?\d+\.\d+\.\d+([-.+][\w.-]+)?)?(@sha256:[0-9a-f]{64})?")
# Projects whose every release is major.minor (PostgreSQL 16.6 is a patch release of 16).
TWO_PART_RELEASES = re.compile(r"postgres:\d+\.\d+(-[\w.-]+)?")


def is_secret(key: str) -> bool:
    """Whether a variable's name says it holds a secret."""
    return SECRET_NAME.search(key) is not None


def shipped_secrets(services: dict[str, Any]) -> list[str]:
    """`service: VAR=value` for each secret compose would fill in with nothing set on the host:
    a secret variable with a default, or a URL with a password in it."""
    problems = []
    for name, service in services.items():
        for key, raw in service_env(service).items():
            value = interpolated(raw)
            if value and is_secret(key):
                problems.append(f"{name}: {key}={value!r}")
            elif value and "://" in value and urlsplit(value).password:
                problems.append(f"{name}: {key} carries password {urlsplit(value).password!r}")
    return problems


def is_pinned(image: str) -> bool:
    """Whether an image names one release: a full x.y.z tag (any variant), or a digest."""
    if TWO_PART_RELEASES.fullmatch(image):
        return True
    return _PINNED.fullmatch(image) is not None and (":" in image or "@" in image)
