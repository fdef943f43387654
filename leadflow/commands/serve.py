"""`leadflow up` (the embedded mode) and `leadflow ingest|scoring|routing` (one service)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

from leadflow.clicommon import CliError, load_settings, safe_url
from shared.config import EMBEDDED_SESSION_TIMEOUT_MS, Settings
from shared.logs import configure_logging

if TYPE_CHECKING:
    from leadflow.runtime import Runtime

log = logging.getLogger("leadflow")


def _configure_logging(settings: Settings) -> None:
    configure_logging(level=settings.log_level, fmt=settings.log_format)


@contextlib.contextmanager
def _exclusive(name: str, what: str) -> Iterator[None]:
    """Hold an exclusive lock for the process's lifetime, or fail saying who holds it."""
    path = Path(tempfile.gettempdir()) / f"leadflow-{name}.lock"
    handle: IO[str] = open(path, "a+")  # noqa: SIM115 - held for the whole block
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise CliError(f"another `leadflow up` ({holder}) is already running {what}") from exc
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        yield
    finally:
        handle.close()


def _uvicorn_options(settings: Settings) -> dict[str, object]:
    """The uvicorn options every leadflow server shares."""
    return {
        "host": settings.http_host,
        "port": settings.http_port,
        "log_level": settings.log_level.lower(),
        "access_log": False,
        # uvicorn's own formatters would bypass ours (and the email redaction); without them
        # its loggers propagate to the root handler.
        "log_config": None,
    }


def _serve(app: object, *, settings: Settings) -> None:
    """Serve the app with uvicorn until SIGINT or SIGTERM."""
    import uvicorn

    config = uvicorn.Config(app, lifespan="off", **_uvicorn_options(settings))  # type: ignore[arg-type]
    uvicorn.Server(config).run()


def check_secrets(settings: Settings, *, embedded: bool) -> None:
    """Refuse to start with a built-in, placeholder or short secret unless this is `leadflow up`
    with its own broker (local play), where it is a warning; warn when auth is off."""
    weak = settings.weak_secrets()
    if weak and not embedded:
        raise CliError(
            "refusing to start with weak secrets outside the embedded mode:\n"
            + "\n".join(f"  {problem}" for problem in weak)
            + "\nset each to a long random value, e.g. `openssl rand -hex 32` "
            "(unsubscribe links and webhook signatures could be forged with a known one)"
        )
    for problem in weak:
        log.warning("%s: fine for local play only; set your own secret elsewhere", problem)
    if settings.auth == "off":
        log.warning(
            "LEADFLOW_AUTH=off: every endpoint and webhook source is open to anyone who can "
            "reach this port; use it for local play only"
        )


def _announce_auth(runtime: object, *, dev_key: bool) -> None:
    """In the embedded mode, create and print a dev key on first start."""
    from shared.auth import any_key_exists, create_key

    settings: Settings = runtime.settings  # type: ignore[attr-defined]
    if settings.auth == "off" or not dev_key:
        return
    sessions = runtime.resources.sessions  # type: ignore[attr-defined]
    with sessions.begin() as session:
        if any_key_exists(session):
            return
        key = create_key(session, name="dev", scopes=["admin"])
    print(
        "Created an API key named 'dev' with the admin scope (shown once; "
        "`leadflow keys create` makes more):\n"
        f"  export LEADFLOW_KEY={key}\n"
        '  curl -H "Authorization: Bearer $LEADFLOW_KEY" ...',
        flush=True,
    )


def _run_runtime(
    settings: Settings,
    *,
    services: Sequence[str],
    migrate: bool,
    banner: str,
    dev_key: bool = False,
    drain: bool = False,
    broker_details: dict[str, object] | None = None,
) -> None:
    from leadflow.runtime import Runtime
    from services.routing.domain.config import ConfigError
    from services.scoring.domain.scoring_model import ModelError
    from shared.db import MigrationsOutOfDate

    runtime = Runtime(
        settings=settings, services=services, migrate=migrate, broker_details=broker_details
    )
    try:
        try:
            app = runtime.start()
        except (MigrationsOutOfDate, ModelError, ConfigError) as exc:
            raise CliError(str(exc)) from exc
        _announce_auth(runtime, dev_key=dev_key)
        log.info(banner)
        print(banner, flush=True)
        _serve(app, settings=settings)
    finally:
        # HTTP has stopped taking events (uvicorn returned); let the consumers catch up with
        # what was accepted, then stop them, the producer and (by our caller) the broker.
        if drain and runtime.resources is not None:
            try:
                _drain(runtime, timeout_s=runtime.settings.shutdown_drain_s)
            except KeyboardInterrupt:
                log.warning("stopping at once (a second Ctrl-C): not waiting for the consumers")
        runtime.stop()


def _drain(runtime: Runtime, *, timeout_s: float) -> None:
    """Wait, bounded, until the consumers have processed every accepted event; say so."""
    if timeout_s <= 0:
        return
    if runtime.drain(timeout_s=0):  # also checks the outbox has nothing left to publish
        log.info("stopping: the consumers have processed every accepted event")
        return
    log.info(
        "stopping: waiting up to %.0f s for the consumers to process %d accepted events",
        timeout_s,
        runtime.backlog(),
    )
    if runtime.drain(timeout_s=timeout_s):
        log.info("stopping: the consumers have caught up")
    else:
        log.warning(
            "stopping: %d accepted events were not processed within %.0f s "
            "(LEADFLOW_SHUTDOWN_DRAIN_S); an embedded broker loses them",
            runtime.backlog(),
            timeout_s,
        )


def _port_free(host: str, port: int) -> bool:
    from leadflow.embedded import port_is_open

    return not port_is_open("127.0.0.1" if host in ("0.0.0.0", "") else host, port)


def run_up(*, port: int | None, host: str | None) -> None:
    """Run broker (unless one is configured), migrations and all three services on one port."""
    from leadflow.embedded import (
        MEMORY_ONLY_NOTE,
        BrokerError,
        EmbeddedBroker,
        resolve_tansu_bin,
    )

    settings = load_settings(http_port=port, http_host=host)
    _configure_logging(settings)
    check_secrets(settings, embedded=settings.kafka_bootstrap_servers is None)
    if settings.http_workers > 1:
        raise CliError(
            "`leadflow up` runs one process; LEADFLOW_HTTP_WORKERS is for the single-service "
            "commands (`leadflow ingest --workers N`)"
        )
    locks = [(f"port-{settings.http_port}", f"on port {settings.http_port}")]
    if settings.database_url.startswith("sqlite"):
        db = settings.database_url.split("///", 1)[-1]
        digest = hashlib.sha1(str(Path(db).resolve()).encode()).hexdigest()[:12]
        locks.append((f"db-{digest}", f"on the database {db}"))
    with contextlib.ExitStack() as stack:
        for name, what in locks:
            stack.enter_context(_exclusive(name, what))
        if not _port_free(settings.http_host, settings.http_port):
            raise CliError(
                f"port {settings.http_port} is already in use; stop what listens there or "
                f"choose another with --port / LEADFLOW_HTTP_PORT"
            )
        broker: EmbeddedBroker | None = None
        if settings.kafka_bootstrap_servers is None:
            try:
                broker = EmbeddedBroker(
                    binary=resolve_tansu_bin(settings.tansu_bin), port=settings.broker_port
                )
                stack.callback(broker.stop)
                bootstrap = broker.start()
            except BrokerError as exc:
                raise CliError(str(exc)) from exc
            update: dict[str, object] = {"kafka_bootstrap_servers": bootstrap}
            if "kafka_session_timeout_ms" not in settings.model_fields_set:
                update["kafka_session_timeout_ms"] = EMBEDDED_SESSION_TIMEOUT_MS
            settings = settings.model_copy(update=update)
        where = "embedded Tansu" if broker else "external Kafka"
        banner = (
            f"leadflow is up on http://{settings.http_host}:{settings.http_port} "
            f"(broker: {where} at {settings.kafka_bootstrap_servers}; database: "
            f"{safe_url(settings.database_url)}). Ctrl-C stops it."
        )
        details: dict[str, object] = {"embedded": False}
        if broker is not None:
            banner += f"\nNote: {MEMORY_ONLY_NOTE}."
            details = {
                "embedded": True,
                "kind": "tansu",
                "persistent": False,
                "note": MEMORY_ONLY_NOTE,
            }
        _run_runtime(
            settings,
            services=("ingest", "scoring", "routing"),
            migrate=True,
            banner=banner,
            dev_key=True,
            drain=True,
            broker_details=details,
        )


def _preflight(settings: Settings, *, service: str) -> None:
    """What each worker would refuse at start, checked once before any is started."""
    from services.routing.domain.config import ConfigError
    from services.routing.service import config_for
    from services.scoring.domain.scoring_model import ModelError
    from services.scoring.service import load_models
    from shared.db import MigrationsOutOfDate, check_migrations, make_engine

    engine = make_engine(settings.database_url)
    try:
        check_migrations(engine)
        if service == "routing":
            config_for(settings)
        if service == "scoring":
            load_models(settings.scoring_model)
    except (MigrationsOutOfDate, ModelError, ConfigError) as exc:
        raise CliError(str(exc)) from exc
    finally:
        engine.dispose()


def _serve_workers(name: str, *, settings: Settings) -> None:
    """Serve one service from `http_workers` uvicorn worker processes on one port."""
    import uvicorn

    from shared.config import export_prometheus_multiproc_dir

    _preflight(settings, service=name)
    with contextlib.ExitStack() as stack:
        folder = settings.prometheus_multiproc_dir
        if not folder:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="leadflow-metrics-"))
            export_prometheus_multiproc_dir(folder)
        elif any(Path(folder).glob("*.db")):
            # Files of an earlier run would be added to this run's counters.
            raise CliError(f"PROMETHEUS_MULTIPROC_DIR={folder} is not empty; empty it first")
        print(
            f"leadflow {name} on http://{settings.http_host}:{settings.http_port} with "
            f"{settings.http_workers} workers (broker {settings.kafka_bootstrap_servers})",
            flush=True,
        )
        uvicorn.run(
            f"leadflow.worker:{name}",
            factory=True,
            workers=settings.http_workers,
            lifespan="on",
            **_uvicorn_options(settings),  # type: ignore[arg-type]
        )


def run_service(name: str, *, port: int | None, host: str | None, workers: int | None) -> None:
    """Run one service alone (as docker-compose does), in one or `workers` processes."""
    settings = load_settings(http_port=port, http_host=host, http_workers=workers)
    _configure_logging(settings)
    if settings.kafka_bootstrap_servers is None:
        raise CliError(
            f"`leadflow {name}` needs LEADFLOW_KAFKA_BOOTSTRAP_SERVERS "
            "(use `leadflow up` for the embedded broker)"
        )
    check_secrets(settings, embedded=False)
    if settings.http_workers > 1:
        _serve_workers(name, settings=settings)
        return
    _run_runtime(
        settings,
        services=(name,),
        migrate=False,
        banner=f"leadflow {name} on http://{settings.http_host}:{settings.http_port} "
        f"(broker {settings.kafka_bootstrap_servers})",
    )
