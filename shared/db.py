"""Database plumbing: one metadata with a naming convention, engines for SQLite and PostgreSQL,
sessions, the migration check, and the tables every consumer shares (dedupe, outbox)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    bindparam,
    cast,
    create_engine,
    event,
    func,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

if TYPE_CHECKING:
    from alembic.config import Config  # at run time alembic_config imports it itself

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class TZDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and read back timezone-aware in UTC, on every database.

    SQLite keeps timestamps as text without an offset: a `+09:00` time stored as is would read
    back as 09:00 UTC. Converting to UTC on the way in (a naive value is taken as UTC) makes
    stored values and comparisons right on both databases.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        return as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return as_utc(value)


# BigInteger primary keys autoincrement on PostgreSQL but not on SQLite; this variant does both.
AutoId = BigInteger().with_variant(Integer(), "sqlite")

processed_events = Table(
    "processed_events",
    metadata,
    Column("consumer", String(100), primary_key=True),
    Column("event_id", String(200), primary_key=True),
    Column("processed_at", TZDateTime, nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("topic", String(255), nullable=False),
    Column("key", LargeBinary, nullable=True),
    Column("value", LargeBinary, nullable=True),  # None: a tombstone (an erased lead)
    Column("headers", JSON, nullable=False, default=list),
    Column("created_at", TZDateTime, nullable=False),
)


class MigrationsOutOfDate(RuntimeError):
    """The database schema is not at the revision this code expects."""


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for the URL, with SQLite tuned for several threads writing, and JSON columns
    (BANT, states, payloads) read and written by orjson."""
    json = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}
    if url.startswith("sqlite"):
        engine = create_engine(
            url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30}, **json
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:  # DBAPI connection
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin_immediate(conn: Connection) -> None:
            # Take the write lock at BEGIN so two writers queue instead of failing with
            # "database is locked" when a read transaction upgrades to a write.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        @event.listens_for(engine, "connect")
        def _sqlite_no_autobegin(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None

        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=10, **json)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded values after commit (we hand them to pydantic)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def transaction(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits on success and rolls back on any error."""
    with sessions() as session, session.begin():
        yield session


def as_utc(value: datetime | None) -> datetime | None:
    """Give back a timezone-aware UTC time whatever the driver returned."""
    if value is None:
        return None
    tz = value.tzinfo
    if tz is UTC:
        return value
    return value.replace(tzinfo=UTC) if tz is None else value.astimezone(UTC)


# Rows per multi-row statement: well under SQLite's 32,766 bound parameters at 10 columns.
CHUNK = 500


def dialect_insert(session: Session, table: Table) -> Any:
    """An INSERT for `table` in the session's dialect, ready for `on_conflict_do_update` or
    `on_conflict_do_nothing` (PostgreSQL and SQLite both spell it ON CONFLICT)."""
    dialect = session.get_bind().dialect.name
    builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return builder(table)


def insert_ignoring_conflicts(session: Session, table: Table, *, index: Any) -> Any:
    """An INSERT for `table` that skips rows whose `index` columns already exist."""
    return dialect_insert(session, table).on_conflict_do_nothing(index_elements=index)


# Rows per JSON parameter (`json_rows`): a few megabytes at most.
JSON_CHUNK = 2_000


def json_rows(rows: Sequence[dict[str, Any]]) -> Iterator[str]:
    """Rows as JSON arrays of at most JSON_CHUNK rows, for `json_populate_recordset` on
    PostgreSQL (datetimes in ISO 8601, naive ones taken as UTC)."""
    option = orjson.OPT_NON_STR_KEYS | orjson.OPT_NAIVE_UTC
    for start in range(0, len(rows), JSON_CHUNK):
        yield orjson.dumps(list(rows[start : start + JSON_CHUNK]), option=option).decode()


def insert_many(
    session: Session,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    upsert_on: Sequence[str] = (),
) -> None:
    """Insert rows that share their keys; with `upsert_on`, a row whose key columns exist
    replaces the other columns (INSERT ... ON CONFLICT DO UPDATE).

    On PostgreSQL the rows travel as one JSON array that `json_populate_recordset` turns into
    rows of the table's own type, so every value is cast by its column's type: one short
    statement psycopg prepares once, instead of a parameter set per row. A column left out of
    the rows gets its database default; where the table has a Python-side default for one, for
    binary columns (JSON has no bytes), and on SQLite (in process, no round trips), SQLAlchemy's
    executemany does it.
    """
    if not rows:
        return
    names = list(rows[0])
    left_out = [c for c in table.columns if c.name not in rows[0]]
    binary = [c for c in table.columns if c.name in rows[0] and isinstance(c.type, LargeBinary)]
    if (
        session.get_bind().dialect.name != "postgresql"
        or binary
        or any(c.default is not None for c in left_out)
    ):
        statement = dialect_insert(session, table)
        if upsert_on:
            statement = statement.on_conflict_do_update(
                index_elements=list(upsert_on),
                set_={c: statement.excluded[c] for c in names if c not in upsert_on},
            )
        session.execute(statement, list(rows))
        return
    columns = ", ".join(f'"{c}"' for c in names)
    sql = (
        f'INSERT INTO "{table.name}" ({columns}) SELECT {columns} '
        f'FROM json_populate_recordset(NULL::"{table.name}", CAST(:rows AS json)) '
        "WITH ORDINALITY AS r ORDER BY r.ordinality"  # serial ids follow the rows' order
    )
    if upsert_on:
        keys = ", ".join(f'"{c}"' for c in upsert_on)
        updates = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in names if c not in upsert_on)
        sql += f" ON CONFLICT ({keys}) DO UPDATE SET {updates}"
    statement = text(sql)
    for payload in json_rows(rows):
        session.execute(statement, {"rows": payload})


def mark_processed_many(
    session: Session, *, consumer: str, event_ids: Sequence[str], at: datetime
) -> set[str]:
    """Record that `consumer` handled these ids in a few statements; returns the ids that were
    new (not handled before, and each counted once however often it repeats in `event_ids`).

    A concurrent instance's uncommitted row makes PostgreSQL wait for its outcome, so an id is
    new for exactly one of them.
    """
    unique = list(dict.fromkeys(event_ids))
    if not unique:
        return set()
    if session.get_bind().dialect.name == "postgresql":
        # The ids travel as one JSON parameter: a short statement, the same every batch, that
        # psycopg prepares once (a placeholder per id would be re-parsed every time).
        found = session.execute(
            text(
                "INSERT INTO processed_events (consumer, event_id, processed_at) "
                "SELECT :consumer, e, :at FROM json_array_elements_text(CAST(:ids AS json)) AS e "
                "ON CONFLICT (consumer, event_id) DO NOTHING RETURNING event_id"
            ),
            {"consumer": consumer, "at": at, "ids": orjson.dumps(unique).decode()},
        )
        return set(found.scalars())
    rows = [{"consumer": consumer, "event_id": e, "processed_at": at} for e in unique]
    statement = insert_ignoring_conflicts(
        session, processed_events, index=[processed_events.c.consumer, processed_events.c.event_id]
    ).returning(processed_events.c.event_id)
    new = set(session.execute(statement, rows).scalars())
    return new


# --- migrations ---------------------------------------------------------------------------


def migrations_dir() -> Path:
    """Where the Alembic environment lives (shipped as the `migrations` package)."""
    import migrations

    return Path(migrations.__file__).parent


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at our migrations and the given database."""
    from alembic.config import Config

    cfg = Config(str(migrations_dir() / "alembic.ini"))
    cfg.set_main_option("script_location", str(migrations_dir()))
    # ConfigParser interpolation would eat a '%' in a URL-encoded password.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database up to `revision`."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    """Migrate the database down to `revision`."""
    from alembic import command

    command.downgrade(alembic_config(url), revision)


def current_revisions(engine: Engine) -> set[str]:
    """The revisions the database is at (empty when unmigrated)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


def head_revisions() -> set[str]:
    """The revisions this code expects."""
    from alembic.script import ScriptDirectory

    return set(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def check_migrations(engine: Engine) -> None:
    """Raise `MigrationsOutOfDate` naming the command to run unless the schema is at head."""
    current, heads = current_revisions(engine), head_revisions()
    if current == heads:
        return
    state = "not migrated" if not current else f"at {', '.join(sorted(current))}"
    raise MigrationsOutOfDate(
        f"the database {engine.url.render_as_string(hide_password=True)} is {state}, "
        f"this code needs {', '.join(sorted(heads))}: run `leadflow db upgrade`"
    )


def among(
    session: Session, column: ColumnElement[Any], values: Iterable[Any]
) -> ColumnElement[bool]:
    """`column IN values` for a text column; on PostgreSQL the values travel as one JSON
    array (one parameter, however many values, so the statement's text stays the same)."""
    values = list(values)
    if session.get_bind().dialect.name == "postgresql":
        array = cast(bindparam(None, orjson.dumps(values).decode(), type_=Text), JSON)
        return column.in_(select(func.json_array_elements_text(array)).scalar_subquery())
    return column.in_(values)
