"""The one error policy: is a failure the record's own (poison) or a dependency's (outage)?

Every worker that handles records or durable work (the consumer loops, the outbox publisher,
the action worker) asks `classify` and acts on the answer:

- `POISON`: the record can never be handled (it does not parse or validate). Dead-lettered at
  once.
- `RECORD`: handling this record failed in a way that is the record's, or is not known to be
  anyone else's (a bug, a constraint it breaks, a value the database refuses). Retried a bounded
  number of times, then dead-lettered alone, so one bad record never holds up the rest.
- `OUTAGE`: a dependency failed: the database unreachable or dropping the connection, a
  serialization failure or deadlock, the broker unavailable, a timeout, a refused connection.
  Waited out for as long as it lasts, never dead-lettered; nothing is committed meanwhile.

`Outage` tracks one worker's wait: capped exponential backoff, one log line when it starts and
one when it ends (not one per attempt), and what `/readyz` and `/metrics` say about it.
"""

from __future__ import annotations

import logging
import smtplib
import sqlite3
import threading
import time
from dataclasses import dataclass
from enum import StrEnum

import httpx
import psycopg
import pydantic
import sqlalchemy.exc as sa_exc
from kafka.errors import KafkaError

from shared.config import Settings
from shared.logs import redact

log = logging.getLogger(__name__)


class PoisonMessage(Exception):
    """A record that can never be processed (malformed, invalid): straight to the DLQ."""


class PublishError(Exception):
    """The broker did not acknowledge a record in time (or refused it)."""


class Fault(StrEnum):
    """What kind of failure an exception is, and so what to do about it."""

    POISON = "poison"
    RECORD = "record"
    OUTAGE = "outage"


class Dependency(StrEnum):
    """What an outage is an outage of: the `reason` label of `leadflow_consumer_paused`."""

    DATABASE = "database"
    BROKER = "broker"
    SMTP = "smtp"
    WEBHOOK = "webhook"
    NETWORK = "network"


@dataclass(frozen=True)
class Classified:
    """A failure's kind and, for an outage, the dependency that failed."""

    fault: Fault
    dependency: Dependency | None = None


_DB_OUTAGES: tuple[type[BaseException], ...] = (
    # SQLAlchemy's wrappers of the driver's errors, and its own pool and connection errors.
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
    # The drivers' own, when raised outside SQLAlchemy (or found as the wrapped `.orig`).
    # psycopg's OperationalError covers lost connections, admin shutdown, serialization
    # failures, deadlocks, lock timeouts, statement timeouts and a full disk.
    psycopg.OperationalError,
    psycopg.InterfaceError,
    # SQLite's: "database is locked", "disk I/O error", "unable to open database file".
    sqlite3.OperationalError,
)


# The exception classes a dependency's failure arrives as, wrapped or not: what the HTTP layer
# hands to `classify` to answer 503 instead of 500.
DEPENDENCY_ERRORS: tuple[type[Exception], ...] = (
    sa_exc.DBAPIError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
    psycopg.Error,
    sqlite3.Error,
    KafkaError,
    PublishError,
    ConnectionError,
    TimeoutError,
)


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception, what it was raised from or during, and a driver error SQLAlchemy wraps."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo and len(seen) < 16:
        current = todo.pop(0)
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        todo.extend([getattr(current, "orig", None), current.__cause__, current.__context__])
    return [e for e in seen if isinstance(e, BaseException)]


def _outage_of(exc: BaseException) -> Dependency | None:
    """The dependency whose failure `exc` is, or None if it is not a dependency's."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return Dependency.DATABASE
    if isinstance(exc, _DB_OUTAGES):
        return Dependency.DATABASE
    if isinstance(exc, KafkaError):
        return Dependency.BROKER if exc.retriable else None
    if isinstance(exc, PublishError):
        # A produce that timed out, or failed for a reason the broker may recover from. The
        # cause (when there is one) is checked on its own: a record too large is the record's.
        cause = exc.__cause__
        if isinstance(cause, KafkaError) and not cause.retriable:
            return None
        return Dependency.BROKER
    if isinstance(exc, smtplib.SMTPServerDisconnected | smtplib.SMTPConnectError):
        return Dependency.SMTP
    if isinstance(exc, httpx.TransportError) and not isinstance(
        exc, httpx.UnsupportedProtocol | httpx.InvalidURL | httpx.LocalProtocolError
    ):
        return Dependency.WEBHOOK
    if isinstance(exc, ConnectionError | TimeoutError):
        return Dependency.NETWORK
    return None


def classify(exc: BaseException) -> Classified:
    """Poison, the record's own failure, or a dependency's outage (see the module's doc)."""
    chain = _chain(exc)
    if any(isinstance(e, PoisonMessage | pydantic.ValidationError) for e in chain):
        return Classified(Fault.POISON)
    # The outermost error that names a dependency decides: a PublishError raised from a
    # non-retriable KafkaError is the record's even though the chain holds a KafkaError.
    for current in chain:
        if isinstance(current, PublishError):
            dependency = _outage_of(current)
            return Classified(Fault.OUTAGE, dependency) if dependency else Classified(Fault.RECORD)
        dependency = _outage_of(current)
        if dependency is not None:
            return Classified(Fault.OUTAGE, dependency)
    return Classified(Fault.RECORD)


def describe_error(exc: BaseException) -> str:
    """`Type: message`, short: for a database error the driver's own first line, never the
    statement or its parameters (they hold personal data)."""
    orig = getattr(exc, "orig", None)
    shown = orig if isinstance(orig, BaseException) else exc
    first = (str(shown).strip().splitlines() or [""])[0]
    return f"{type(shown).__name__}: {first}"[:300]


def dead_letter_reason(exc: BaseException | None) -> str:
    """Why a record was dead-lettered, for its `leadflow.dlq.error` header: the error's type and
    message without the input values pydantic would echo, emails hashed as in the logs."""
    if exc is None:
        return "unknown error"
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, pydantic.ValidationError):
        cause = cause.__cause__
    if isinstance(cause, pydantic.ValidationError):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {e['msg']}"
            for e in cause.errors(include_url=False, include_input=False, include_context=False)
        )
        head = f"{type(exc).__name__}: {exc}: " if cause is not exc else ""
        text = f"{head}{cause.error_count()} validation error(s): {problems}"
    elif getattr(exc, "orig", None) is not None:
        text = describe_error(exc)
    else:
        text = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, PoisonMessage) and exc.__cause__ is not None:
            text += f": {type(exc.__cause__).__name__}: {exc.__cause__}"
    return redact(text)[:2000]


def backoff_s(attempt: int, *, base_s: float, cap_s: float) -> float:
    """Capped exponential backoff before retry number `attempt` (1, 2, ...)."""
    factor: int = 2 ** max(0, attempt - 1)  # typeshed: int ** int is Any (negative powers)
    return min(cap_s, base_s * factor)


class Outage:
    """One worker's wait for a dependency: when to try again, and what to report meanwhile.

    `failed` on every failed attempt, `recovered` on the first success after; both log only
    when the state changes. Safe to read from another thread (`/readyz`, `/metrics`).
    """

    def __init__(self, *, worker: str, base_s: float, cap_s: float) -> None:
        self.worker = worker
        self.base_s, self.cap_s = base_s, max(base_s, cap_s)
        self._lock = threading.Lock()
        self.dependency: Dependency | None = None
        self.error: str | None = None
        self.since: float | None = None  # time.time() of the first failed attempt
        self.attempts = 0
        self._retry_at = 0.0  # time.monotonic()

    @classmethod
    def from_settings(cls, *, worker: str, settings: Settings) -> Outage:
        """A tracker backing off from `consumer_retry_backoff_s` up to `outage_backoff_max_s`."""
        return cls(
            worker=worker,
            base_s=max(0.05, settings.consumer_retry_backoff_s),
            cap_s=settings.outage_backoff_max_s,
        )

    @property
    def active(self) -> bool:
        """True from the first failed attempt until `recovered`."""
        return self.since is not None

    def failed(self, exc: BaseException, dependency: Dependency, *, where: str = "") -> float:
        """Note a failed attempt; returns the seconds to wait before the next one."""
        with self._lock:
            self.attempts += 1
            self.error = describe_error(exc)
            started = self.since is None
            if started:
                self.since = time.time()
            self.dependency = dependency
            wait = backoff_s(self.attempts, base_s=self.base_s, cap_s=self.cap_s)
            self._retry_at = time.monotonic() + wait
        if started:
            log.warning(
                "%s: %s outage%s; waiting it out, next try in %.1f s, then backing off up to "
                "%.0f s: %s",
                self.worker,
                dependency,
                f" at {where}" if where else "",
                wait,
                self.cap_s,
                self.error,
                extra={"worker": self.worker, "dependency": str(dependency)},
            )
        return wait

    def recovered(self) -> None:
        """Note a success; ends the outage (and logs it) if there was one."""
        if self.since is None:
            return
        with self._lock:
            since, attempts, dependency = self.since, self.attempts, self.dependency
            self.since, self.dependency, self.error, self.attempts = None, None, None, 0
            self._retry_at = 0.0
        log.warning(
            "%s: %s is back after %.1f s and %d failed attempts; carrying on",
            self.worker,
            dependency,
            time.time() - since,
            attempts,
            extra={"worker": self.worker, "dependency": str(dependency)},
        )

    def due(self) -> bool:
        """True when there is no outage, or its backoff is over and it is time to retry."""
        return self.since is None or time.monotonic() >= self._retry_at

    def seconds_to_retry(self) -> float:
        """Seconds until the next attempt is due (0 when it is)."""
        return 0.0 if self.since is None else max(0.0, self._retry_at - time.monotonic())

    def describe(self) -> str | None:
        """What `/readyz` says: None when there is no outage."""
        with self._lock:
            if self.since is None:
                return None
            return (
                f"waiting out a {self.dependency} outage for {time.time() - self.since:.0f} s "
                f"({self.attempts} failed attempts): {self.error}"
            )
