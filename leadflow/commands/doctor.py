"""`leadflow doctor`: is this environment ready to run leadflow? One row per check.

The checks, each ok, warn or fail (exit 1 when any fails):

- settings: every `LEADFLOW_*` variable parses (the errors name the variable, never a value);
- secrets: `Settings.weak_secrets()` (built-in, placeholder or short): a failure with a broker
  configured, a warning in the embedded mode, which `leadflow up` accepts for local play; and
  a warning when `LEADFLOW_AUTH=off`;
- public URL: `LEADFLOW_PUBLIC_URL` (the base of the links in emails and webhooks) must be an
  absolute http(s) URL; a warning when it names this machine (localhost, a loopback address or
  `LEADFLOW_HTTP_HOST`) on another port than `LEADFLOW_HTTP_PORT` (nothing would answer), or
  names this machine at all outside the embedded mode (recipients cannot reach it). A public
  host on another port is not flagged: it is normally a proxy in front of the service;
- broker: bootstrap from `LEADFLOW_KAFKA_BOOTSTRAP_SERVERS` within a few seconds (unset: the
  embedded mode, where `leadflow up` starts its own broker);
- database and migrations: a connection within a few seconds, and the schema at head
  (`shared.db.check_migrations`; a SQLite file that does not exist is not created).
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from leadflow.clicommon import JsonOption, safe_url, settings_errors
from leadflow.output import print_json, print_table
from shared.config import Settings

Status = Literal["ok", "warn", "fail"]
BROKER_TIMEOUT_S = 5.0
DATABASE_TIMEOUT_S = 5


@dataclass(frozen=True)
class Check:
    """One row of the report."""

    name: str
    status: Status
    detail: str


def _is_local(host: str, *, http_host: str) -> bool:
    """Whether `host` names this machine: localhost, a loopback address or the listen host."""
    if host in ("localhost", "") or host == http_host:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host.endswith(".localhost")


def check_public_url(settings: Settings) -> Check:
    """`LEADFLOW_PUBLIC_URL` against where the service listens (see the module's rules)."""
    name = "public URL"
    try:
        parts = urlsplit(settings.public_url)
        port = parts.port
    except ValueError:
        return Check(name, "fail", "LEADFLOW_PUBLIC_URL is not a valid URL")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return Check(name, "fail", "LEADFLOW_PUBLIC_URL must be an absolute http(s) URL")
    port = port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname
    embedded = settings.kafka_bootstrap_servers is None
    if _is_local(host, http_host=settings.http_host):
        if port != settings.http_port:
            return Check(
                name,
                "warn",
                f"LEADFLOW_PUBLIC_URL {settings.public_url} points at port {port} of this "
                f"machine, but the service listens on {settings.http_port} "
                "(LEADFLOW_HTTP_PORT): links in emails and webhooks would not answer",
            )
        if not embedded:
            return Check(
                name,
                "warn",
                f"LEADFLOW_PUBLIC_URL {settings.public_url} points at this machine: links in "
                "emails and webhooks reach nobody else; set the address recipients use",
            )
    return Check(name, "ok", settings.public_url)


def check_secrets(settings: Settings) -> Check:
    """Weak secrets fail outside the embedded mode (services refuse them), warn in it."""
    embedded = settings.kafka_bootstrap_servers is None
    problems = settings.weak_secrets()
    notes = []
    if settings.auth == "off":
        notes.append("LEADFLOW_AUTH=off: every endpoint is open to anyone who can reach it")
    if problems and not embedded:
        return Check("secrets", "fail", "; ".join(problems + notes))
    if problems:
        notes = [*problems, "accepted by `leadflow up` for local play only", *notes]
    if notes:
        return Check("secrets", "warn", "; ".join(notes))
    return Check("secrets", "ok", "every configured secret is set and well-formed")


def check_broker(settings: Settings) -> Check:
    """Bootstrap from the configured brokers within BROKER_TIMEOUT_S."""
    if settings.kafka_bootstrap_servers is None:
        return Check("broker", "ok", "embedded mode: leadflow up starts its own broker")
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    servers = settings.kafka_bootstrap_servers
    kafka_log = logging.getLogger("kafka")
    level = kafka_log.level
    kafka_log.setLevel(logging.CRITICAL)  # its connection errors are this check's answer
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=settings.bootstrap_servers,
            client_id="leadflow-doctor",
            request_timeout_ms=int(BROKER_TIMEOUT_S * 1000),
            bootstrap_timeout_ms=int(BROKER_TIMEOUT_S * 1000),
        )
        try:
            topics = set(admin.list_topics())
        finally:
            admin.close()
    except (KafkaError, OSError, ValueError) as exc:
        return Check(
            "broker",
            "fail",
            f"LEADFLOW_KAFKA_BOOTSTRAP_SERVERS={servers}: no broker answered within "
            f"{BROKER_TIMEOUT_S:.0f} s ({type(exc).__name__})",
        )
    finally:
        kafka_log.setLevel(level)
    missing = [t for t in settings.main_topics if t not in topics]
    note = f"; {len(missing)} of leadflow's topics not created yet" if missing else ""
    return Check("broker", "ok", f"reachable at {servers}{note}")


def check_database(settings: Settings) -> list[Check]:
    """The database answers within DATABASE_TIMEOUT_S, and its schema is at head."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from shared.db import MigrationsOutOfDate, check_migrations, make_engine

    url = settings.database_url
    shown = safe_url(url)
    try:
        parsed = make_url(url)
    except (SQLAlchemyError, ValueError):
        return [Check("database", "fail", "LEADFLOW_DATABASE_URL is not a database URL")]
    file = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if file not in (None, "", ":memory:") and not Path(str(file)).exists():
        return [
            Check(
                "database",
                "fail",
                f"{shown}: the file does not exist; `leadflow db upgrade` (or `leadflow up`) "
                "creates and migrates it",
            )
        ]
    if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        parsed = parsed.update_query_dict({"connect_timeout": str(DATABASE_TIMEOUT_S)})
        url = parsed.render_as_string(hide_password=False)
    engine = make_engine(url)
    try:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            return [Check("database", "fail", f"{shown}: not reachable ({reason})")]
        checks = [Check("database", "ok", f"reachable at {shown}")]
        try:
            check_migrations(engine)
        except MigrationsOutOfDate as exc:
            checks.append(Check("migrations", "fail", str(exc)))
        else:
            checks.append(Check("migrations", "ok", "the schema is at head"))
        return checks
    finally:
        engine.dispose()


def run_checks() -> list[Check]:
    """Every check, in order; the later ones only once the settings load."""
    from pydantic import ValidationError

    try:
        settings = Settings()
    except ValidationError as exc:
        return [Check("settings", "fail", "; ".join(settings_errors(exc)))]
    mode = "embedded mode" if settings.kafka_bootstrap_servers is None else "external broker"
    return [
        Check("settings", "ok", f"every LEADFLOW_* variable is valid ({mode})"),
        check_secrets(settings),
        check_public_url(settings),
        check_broker(settings),
        *check_database(settings),
    ]


def cmd_doctor(as_json: JsonOption = False) -> None:
    """Check settings, secrets, public URL, broker, database, migrations (exit 1: a failure)."""
    checks = run_checks()
    failed = any(c.status == "fail" for c in checks)
    if as_json:
        print_json({"ok": not failed, "checks": [asdict(c) for c in checks]})
    else:
        print_table(["check", "status", "detail"], [(c.name, c.status, c.detail) for c in checks])
    if failed:
        raise SystemExit(1)
