"""Alembic migrations: they build the schema the code describes, and run both ways."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

import services.routing.repository
import services.scoring.repository  # noqa: F401 - registers the tables on the metadata
from shared.db import (
    MigrationsOutOfDate,
    check_migrations,
    downgrade,
    make_engine,
    metadata,
    upgrade,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def empty_database_url(tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A database with nothing in it: a fresh PostgreSQL schema, or a new SQLite file."""
    base = os.environ.get("LEADFLOW_TEST_DATABASE_URL")
    if not base:
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    schema = f"lf_mig_{uuid.uuid4().hex[:10]}"
    admin = make_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield (
            make_url(base)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def tables(url: str) -> set[str]:
    """Tables in the database, Alembic's own excepted."""
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade_round_trips(empty_database_url: str):
    upgrade(empty_database_url)
    assert tables(empty_database_url) == set(metadata.tables)
    downgrade(empty_database_url, "base")
    assert tables(empty_database_url) == set()
    upgrade(empty_database_url)
    assert tables(empty_database_url) == set(metadata.tables)


def test_migrated_schema_matches_the_code_models(empty_database_url: str):
    upgrade(empty_database_url)
    engine = make_engine(empty_database_url)
    try:
        with engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_unmigrated_database_is_refused_naming_the_command(empty_database_url: str):
    engine = make_engine(empty_database_url)
    try:
        with pytest.raises(MigrationsOutOfDate, match="run `leadflow db upgrade`"):
            check_migrations(engine)
        upgrade(empty_database_url)
        check_migrations(engine)  # at head: no complaint
    finally:
        engine.dispose()
