"""The `leadflow` command: the embedded mode and one service each (the admin commands are in
`leadflow.admin`)."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import logging
import signal
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

from leadflow.admin import cmd_backtest, cmd_db, cmd_dlq, cmd_followups, cmd_keys
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
        handle.write(f"pid {__import__('os').getpid()}")
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


def _check_secrets(settings: Settings, *, embedded: bool) -> None:
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


def cmd_up(args: argparse.Namespace) -> None:
    """Run broker (unless one is configured), migrations and all three services on one port."""
    from leadflow.embedded import (
        MEMORY_ONLY_NOTE,
        BrokerError,
        EmbeddedBroker,
        resolve_tansu_bin,
    )

    settings = load_settings(http_port=args.port, http_host=args.host)
    _configure_logging(settings)
    _check_secrets(settings, embedded=settings.kafka_bootstrap_servers is None)
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


def _cmd_service(name: str) -> object:
    def run(args: argparse.Namespace) -> None:
        settings = load_settings(
            http_port=args.port, http_host=args.host, http_workers=args.workers
        )
        _configure_logging(settings)
        if settings.kafka_bootstrap_servers is None:
            raise CliError(
                f"`leadflow {name}` needs LEADFLOW_KAFKA_BOOTSTRAP_SERVERS "
                "(use `leadflow up` for the embedded broker)"
            )
        _check_secrets(settings, embedded=False)
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

    run.__doc__ = f"Run the {name} service alone (as docker-compose does)."
    return run


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(prog="leadflow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def http_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--port", type=int, help="HTTP port (default LEADFLOW_HTTP_PORT or 8000)")
        p.add_argument("--host", help="HTTP host (default LEADFLOW_HTTP_HOST or 127.0.0.1)")

    up = sub.add_parser("up", help="run the whole system: embedded broker, SQLite, every service")
    http_options(up)
    up.set_defaults(func=cmd_up)
    for name in ("ingest", "scoring", "routing"):
        p = sub.add_parser(name, help=f"run the {name} service alone")
        http_options(p)
        p.add_argument(
            "--workers",
            type=int,
            help="worker processes on the one port (default LEADFLOW_HTTP_WORKERS or 1)",
        )
        p.set_defaults(func=_cmd_service(name))

    db = sub.add_parser("db", help="database migrations")
    db.add_argument("action", choices=["upgrade", "downgrade", "current"])
    db.add_argument("revision", nargs="?", help="target revision (default head for upgrade)")
    db.add_argument("--url", help="database URL (default LEADFLOW_DATABASE_URL)")
    db.set_defaults(func=cmd_db)

    from shared.auth import SCOPES

    keys = sub.add_parser("keys", help="API keys for the HTTP API")
    keys_sub = keys.add_subparsers(dest="action", required=True)
    create = keys_sub.add_parser("create", help="create a key; prints it once, on the last line")
    create.add_argument("--name", required=True, help="a unique name, e.g. the client's")
    create.add_argument(
        "--scope", action="append", required=True, choices=SCOPES, help="repeat for several"
    )
    keys_sub.add_parser("list", help="list keys (names, scopes, state; never the keys)")
    revoke = keys_sub.add_parser("revoke", help="revoke a key by name")
    revoke.add_argument("name")
    keys.set_defaults(func=cmd_keys)

    bt = sub.add_parser(
        "backtest", help="re-score stored histories with a candidate model, without side effects"
    )
    bt.add_argument(
        "--model",
        required=True,
        help="a TOML model file or a bundled model name; several joined by commas, default first",
    )
    bt.add_argument(
        "--routing", help="a candidate routing TOML file (default: the live routing config)"
    )
    bt.add_argument("--since", help="only leads with a touch on or after this date (YYYY-MM-DD)")
    bt.add_argument("--json", action="store_true", help="print the report as JSON")
    bt.set_defaults(func=cmd_backtest)

    fu = sub.add_parser(
        "followups",
        help="leads that acted and got no next step; touch types nothing answers (exit 1: some)",
    )
    fu.add_argument("--days", type=int, default=30, help="look back this many days (default 30)")
    fu.add_argument("--limit", type=int, default=100, help="leads to list at most (default 100)")
    fu.add_argument("--json", action="store_true", help="print the report as JSON")
    fu.set_defaults(func=cmd_followups)

    dlq = sub.add_parser("dlq", help="dead-letter queues: list parked messages, replay them")
    dlq_sub = dlq.add_subparsers(dest="action", required=True)
    dlq_list = dlq_sub.add_parser("list", help="parked messages with their error and origin")
    dlq_list.add_argument("--limit", type=int, default=100, help="messages per page (default 100)")
    dlq_list.add_argument("--cursor", help="the position printed after `more:`")
    replay = dlq_sub.add_parser(
        "replay", help="re-publish parked messages to the topic they came from (each once)"
    )
    replay.add_argument("ids", nargs="*", help="message ids as `leadflow dlq list` prints them")
    replay.add_argument("--all", action="store_true", help="every message not replayed yet")
    for p in (dlq_list, replay):
        p.add_argument("--topic", help="a DLQ topic, or the topic whose DLQ to use (default: all)")
        p.add_argument("--json", action="store_true", help="print JSON")
    dlq.set_defaults(func=cmd_dlq)
    return parser


def _raise_system_exit(signum: int, _frame: object) -> None:
    # uvicorn re-raises the signal it caught after a graceful shutdown; turning SIGTERM into
    # SystemExit lets our `finally` blocks stop consumers and the broker instead of dying.
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `leadflow` console script."""
    signal.signal(signal.SIGTERM, _raise_system_exit)
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except CliError as exc:
        print(f"leadflow: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
