"""The error policy tells a record's own failure from a dependency's outage, by the real
exception types of the drivers leadflow uses (provoked for real where that is cheap)."""

from __future__ import annotations

import logging
import smtplib
import socket
import sqlite3
from pathlib import Path

import httpx
import psycopg
import psycopg.errors
import pydantic
import pytest
import sqlalchemy as sa
import sqlalchemy.exc as sa_exc
from kafka.errors import (
    CommitFailedError,
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    RequestTimedOutError,
)

from shared.events import TouchEnvelope
from shared.faults import (
    Classified,
    Dependency,
    Fault,
    Outage,
    PoisonMessage,
    PublishError,
    backoff_s,
    classify,
    dead_letter_reason,
)

OUTAGE_DB = Classified(Fault.OUTAGE, Dependency.DATABASE)
OUTAGE_BROKER = Classified(Fault.OUTAGE, Dependency.BROKER)
RECORD = Classified(Fault.RECORD)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _raised(call) -> BaseException:
    try:
        call()
    except BaseException as exc:
        return exc
    raise AssertionError("expected an exception")


def _wrapped(orig: BaseException, kind: type[sa_exc.DBAPIError]) -> BaseException:
    """`orig` as SQLAlchemy raises it from a statement."""
    return kind("INSERT INTO touches ...", {}, orig)


# --- the database ------------------------------------------------------------------------------


def test_postgres_refusing_connections_is_a_database_outage():
    port = _closed_port()
    exc = _raised(lambda: psycopg.connect(f"postgresql://u@127.0.0.1:{port}/x", connect_timeout=2))
    assert isinstance(exc, psycopg.OperationalError)
    assert classify(exc) == OUTAGE_DB


def test_postgres_unreachable_through_sqlalchemy_is_a_database_outage():
    port = _closed_port()
    engine = sa.create_engine(f"postgresql+psycopg://u@127.0.0.1:{port}/x")
    exc = _raised(lambda: engine.connect())
    assert isinstance(exc, sa_exc.OperationalError)
    assert classify(exc) == OUTAGE_DB
    engine.dispose()


@pytest.mark.parametrize(
    "orig",
    [
        psycopg.errors.SerializationFailure("could not serialize access"),
        psycopg.errors.DeadlockDetected("deadlock detected"),
        psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
        psycopg.errors.QueryCanceled("canceling statement due to statement timeout"),
        psycopg.errors.LockNotAvailable("could not obtain lock"),
        psycopg.OperationalError("consuming input failed: server closed the connection"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_transient_postgres_errors_are_database_outages(orig: BaseException):
    assert classify(orig) == OUTAGE_DB
    assert classify(_wrapped(orig, sa_exc.OperationalError)) == OUTAGE_DB


def test_a_closed_connection_is_a_database_outage():
    orig = psycopg.InterfaceError("the connection is closed")
    assert classify(_wrapped(orig, sa_exc.InterfaceError)) == OUTAGE_DB


def test_an_invalidated_connection_is_a_database_outage_whatever_the_error_class():
    exc = sa_exc.DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True)
    assert classify(exc) == OUTAGE_DB


def test_pool_timeout_is_a_database_outage():
    assert classify(sa_exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached")) == (
        OUTAGE_DB
    )


@pytest.mark.parametrize(
    ("orig", "kind"),
    [
        (psycopg.errors.UntranslatableCharacter("\\u0000 cannot be converted"), sa_exc.DataError),
        (psycopg.errors.NumericValueOutOfRange("integer out of range"), sa_exc.DataError),
        (psycopg.errors.UniqueViolation("duplicate key value"), sa_exc.IntegrityError),
    ],
    ids=lambda e: type(e).__name__,
)
def test_values_postgres_refuses_are_the_records_own_failure(
    orig: BaseException, kind: type[sa_exc.DBAPIError]
):
    assert classify(_wrapped(orig, kind)) == RECORD


def test_a_locked_sqlite_database_is_a_database_outage(tmp_path: Path):
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    waiter = sqlite3.connect(path, timeout=0)
    exc = _raised(lambda: waiter.execute("INSERT INTO t VALUES (1)"))
    assert isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)
    assert classify(exc) == OUTAGE_DB
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
    with engine.connect() as conn:
        wrapped = _raised(lambda: conn.execute(sa.text("INSERT INTO t VALUES (1)")))
    assert isinstance(wrapped, sa_exc.OperationalError)
    assert classify(wrapped) == OUTAGE_DB
    engine.dispose()
    holder.close()
    waiter.close()


def test_a_sqlite_constraint_violation_is_the_records_own_failure(tmp_path: Path):
    conn = sqlite3.connect(tmp_path / "u.db")
    conn.execute("CREATE TABLE t (x UNIQUE)")
    conn.execute("INSERT INTO t VALUES (1)")
    exc = _raised(lambda: conn.execute("INSERT INTO t VALUES (1)"))
    assert isinstance(exc, sqlite3.IntegrityError)
    assert classify(exc) == RECORD
    conn.close()


# --- the broker --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "exc",
    [
        KafkaTimeoutError("Unable to bootstrap from 127.0.0.1:9092"),
        KafkaConnectionError("Connection reset"),
        NotLeaderForPartitionError(),
        RequestTimedOutError(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_retriable_kafka_errors_are_broker_outages(exc: BaseException):
    assert classify(exc) == OUTAGE_BROKER


def test_a_record_too_large_for_the_broker_is_the_records_own_failure():
    assert classify(MessageSizeTooLargeError()) == RECORD
    try:
        raise PublishError("MessageSizeTooLargeError") from MessageSizeTooLargeError()
    except PublishError as exc:
        assert classify(exc) == RECORD


def test_a_publish_that_timed_out_is_a_broker_outage():
    assert classify(PublishError("broker did not acknowledge in time")) == OUTAGE_BROKER
    try:
        raise PublishError("timed out") from KafkaTimeoutError("Failed to update metadata")
    except PublishError as exc:
        assert classify(exc) == OUTAGE_BROKER


def test_a_commit_refused_after_a_rebalance_is_not_an_outage():
    assert classify(CommitFailedError("group rebalanced")).fault is not Fault.OUTAGE


# --- other dependencies ------------------------------------------------------------------------


def test_an_unreachable_webhook_receiver_is_an_outage():
    port = _closed_port()
    exc = _raised(lambda: httpx.post(f"http://127.0.0.1:{port}/hook", timeout=2))
    assert isinstance(exc, httpx.ConnectError)
    assert classify(exc) == Classified(Fault.OUTAGE, Dependency.WEBHOOK)


def test_an_unreachable_smtp_server_is_an_outage():
    port = _closed_port()
    exc = _raised(lambda: smtplib.SMTP("127.0.0.1", port, timeout=2))
    assert isinstance(exc, ConnectionRefusedError)
    assert classify(exc).fault is Fault.OUTAGE
    assert classify(smtplib.SMTPServerDisconnected("closed")) == Classified(
        Fault.OUTAGE, Dependency.SMTP
    )


def test_an_outage_found_down_the_cause_chain_still_counts():
    try:
        try:
            raise psycopg.OperationalError("server closed the connection")
        except psycopg.OperationalError as inner:
            raise RuntimeError("scoring a batch failed") from inner
    except RuntimeError as exc:
        assert classify(exc) == OUTAGE_DB


# --- the record itself -------------------------------------------------------------------------


def test_a_record_that_does_not_validate_is_poison():
    exc = _raised(lambda: TouchEnvelope.model_validate_json(b'{"event_id": 1}'))
    assert classify(exc) == Classified(Fault.POISON)
    assert classify(PoisonMessage("not a touch envelope")) == Classified(Fault.POISON)


@pytest.mark.parametrize(
    "exc", [RuntimeError("bug"), KeyError("lead_id"), ValueError("bad value"), ZeroDivisionError()]
)
def test_an_error_of_no_dependency_is_the_records_own(exc: BaseException):
    assert classify(exc) == RECORD


# --- waiting an outage out ---------------------------------------------------------------------


def test_backoff_doubles_up_to_its_cap():
    waits = [backoff_s(n, base_s=0.5, cap_s=5) for n in range(1, 8)]
    assert waits == [0.5, 1, 2, 4, 5, 5, 5]


def test_an_outage_logs_once_when_it_starts_and_once_when_it_ends(
    caplog: pytest.LogCaptureFixture,
):
    outage = Outage(worker="consumer scoring", base_s=0.01, cap_s=0.05)
    caplog.set_level(logging.INFO, logger="shared.faults")
    error = psycopg.OperationalError("connection refused")
    for _ in range(20):
        outage.failed(error, Dependency.DATABASE, where="touch-events[0] offset=5")
    assert outage.active and outage.attempts == 20
    described = outage.describe()
    assert described is not None and "database" in described and "20 failed attempts" in described
    outage.recovered()
    outage.recovered()  # a second success is no state change
    lines = [r.getMessage() for r in caplog.records if r.name == "shared.faults"]
    assert len(lines) == 2
    assert "database outage at touch-events[0] offset=5;" in lines[0]
    assert "is back" in lines[1] and "20 failed attempts" in lines[1]
    assert not outage.active and outage.describe() is None and outage.due()


def test_an_outage_is_not_due_again_until_its_backoff_is_over():
    outage = Outage(worker="w", base_s=30, cap_s=60)
    wait = outage.failed(KafkaTimeoutError(), Dependency.BROKER)
    assert wait == 30
    assert not outage.due() and 29 < outage.seconds_to_retry() <= 30


def test_a_dead_letter_reason_lists_fields_and_rules_without_the_input() -> None:
    try:
        TouchEnvelope.model_validate({"event_id": "e", "lead_key": "ann@acme.example"})
    except pydantic.ValidationError as exc:
        try:
            raise PoisonMessage("not a touch envelope") from exc
        except PoisonMessage as poison:
            reason = dead_letter_reason(poison)
    assert reason.startswith("PoisonMessage: not a touch envelope: 5 validation error(s): ")
    assert "type: Field required" in reason and "lead: Field required" in reason
    assert "ann@acme.example" not in reason


def test_a_dead_letter_reason_hashes_an_email_in_any_other_error() -> None:
    reason = dead_letter_reason(ValueError("no account for bob@acme.example"))
    assert reason.startswith("ValueError: no account for ")
    assert "bob@acme.example" not in reason
