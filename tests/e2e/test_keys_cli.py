"""`leadflow keys create|list|revoke` as an operator runs them."""

from __future__ import annotations

import subprocess

import pytest

from shared.auth import find_principal
from shared.db import make_engine, make_session_factory
from tests.e2e.test_leadflow_up import LEADFLOW, clean_env

pytestmark = pytest.mark.e2e


def keys(*args: str, db: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LEADFLOW, "keys", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(LEADFLOW_DATABASE_URL=db),
    )


def principal_of(db: str, key: str):
    engine = make_engine(db)
    try:
        with make_session_factory(engine)() as session:
            return find_principal(session, key=key)
    finally:
        engine.dispose()


def test_create_prints_the_key_alone_on_the_last_line_and_it_works(clean_db):
    created = keys(
        "create", "--name", "crm", "--scope", "events:write", "--scope", "leads:read", db=clean_db
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("lf_") and " " not in key
    principal = principal_of(clean_db, key)
    assert principal is not None and principal.scopes == {"events:write", "leads:read"}

    listed = keys("list", db=clean_db)
    assert "crm" in listed.stdout and "events:write,leads:read" in listed.stdout
    assert key not in listed.stdout  # shown once, never again

    assert keys("revoke", "crm", db=clean_db).returncode == 0
    assert principal_of(clean_db, key) is None
    assert "revoked" in keys("list", db=clean_db).stdout


def test_duplicate_name_unknown_scope_and_unknown_key_fail_clearly(clean_db):
    assert keys("create", "--name", "a", "--scope", "admin", db=clean_db).returncode == 0
    again = keys("create", "--name", "a", "--scope", "admin", db=clean_db)
    assert again.returncode == 1 and "already exists" in again.stderr
    bad_scope = keys("create", "--name", "b", "--scope", "everything", db=clean_db)
    assert bad_scope.returncode == 2 and "everything" in bad_scope.stderr
    missing = keys("revoke", "nobody", db=clean_db)
    assert missing.returncode == 1 and "nobody" in missing.stderr


def test_keys_on_an_unmigrated_database_names_the_command(tmp_path):
    result = keys("list", db=f"sqlite:///{tmp_path / 'empty.db'}")
    assert result.returncode == 1 and "leadflow db upgrade" in result.stderr
