"""The `leadflow` command: the embedded mode, one service each, and the admin commands.

Built with typer (shell completion: `leadflow --install-completion`); each command's code is
in `leadflow.commands.*` or `leadflow.admin`. A `CliError` is printed as `leadflow: ...` on
stderr with exit 1; a usage error exits 2.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Annotated, Any

import typer

from leadflow.admin import cmd_backtest, cmd_db, cmd_followups, keys_app
from leadflow.clicommon import CliError
from leadflow.commands.dlq import dlq_app
from leadflow.commands.doctor import cmd_doctor
from leadflow.commands.imports import cmd_import
from leadflow.commands.leads import leads_app
from leadflow.commands.serve import check_secrets as _check_secrets
from leadflow.commands.serve import run_service, run_up
from leadflow.commands.teams import cmd_actions, cmd_teams

__all__ = ["_check_secrets", "app", "main", "parse_command"]

app = typer.Typer(
    name="leadflow",
    help="leadflow: event-driven lead processing (ingest -> Kafka -> scoring -> routing).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

PortOption = Annotated[
    int | None, typer.Option(help="HTTP port (default LEADFLOW_HTTP_PORT or 8000)")
]
HostOption = Annotated[
    str | None, typer.Option(help="HTTP host (default LEADFLOW_HTTP_HOST or 127.0.0.1)")
]
WorkersOption = Annotated[
    int | None,
    typer.Option(help="worker processes on the one port (default LEADFLOW_HTTP_WORKERS or 1)"),
]


def version() -> str:
    """The installed leadflow distribution's version."""
    try:
        return metadata.version("leadflow")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _print_version(value: bool) -> None:
    if value:
        print(f"leadflow {version()}")
        raise typer.Exit()


@app.callback()
def _root(
    _version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="print the installed version and exit",
        ),
    ] = False,
) -> None:
    """leadflow: event-driven lead processing (ingest -> Kafka -> scoring -> routing)."""


@app.command("up")
def _up(port: PortOption = None, host: HostOption = None) -> None:
    """Run the whole system: embedded broker, SQLite, every service, one port."""
    run_up(port=port, host=host)


@app.command("ingest")
def _ingest(
    port: PortOption = None, host: HostOption = None, workers: WorkersOption = None
) -> None:
    """Run the ingest service alone (needs LEADFLOW_KAFKA_BOOTSTRAP_SERVERS)."""
    run_service("ingest", port=port, host=host, workers=workers)


@app.command("scoring")
def _scoring(
    port: PortOption = None, host: HostOption = None, workers: WorkersOption = None
) -> None:
    """Run the scoring service alone (needs LEADFLOW_KAFKA_BOOTSTRAP_SERVERS)."""
    run_service("scoring", port=port, host=host, workers=workers)


@app.command("routing")
def _routing(
    port: PortOption = None, host: HostOption = None, workers: WorkersOption = None
) -> None:
    """Run the routing service alone (needs LEADFLOW_KAFKA_BOOTSTRAP_SERVERS)."""
    run_service("routing", port=port, host=host, workers=workers)


app.command("db")(cmd_db)
app.add_typer(keys_app, name="keys")
app.command("backtest")(cmd_backtest)
app.command("followups")(cmd_followups)
app.add_typer(dlq_app, name="dlq")
app.add_typer(leads_app, name="leads")
app.command("teams")(cmd_teams)
app.command("actions")(cmd_actions)
app.command("doctor")(cmd_doctor)
app.command("import")(cmd_import)


def parse_command(argv: Sequence[str]) -> tuple[list[str], dict[str, Any]]:
    """The command path and its parameters a command line resolves to, without running it.
    Raises `typer.TyperException` (a usage error, `exit_code` 2) when the CLI refuses it."""
    command: Any = typer.main.get_command(app)
    ctx = command.make_context("leadflow", list(argv))
    path: list[str] = []
    while hasattr(command, "resolve_command"):  # a group: descend into the named command
        name, command, rest = command.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
        path.append(name)
        ctx = command.make_context(name, rest, parent=ctx)
    return path, dict(ctx.params)


def _raise_system_exit(signum: int, _frame: object) -> None:
    # uvicorn re-raises the signal it caught after a graceful shutdown; turning SIGTERM into
    # SystemExit lets our `finally` blocks stop consumers and the broker instead of dying.
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `leadflow` console script: the exit code."""
    signal.signal(signal.SIGTERM, _raise_system_exit)
    command = typer.main.get_command(app)
    try:
        command.main(
            args=list(argv) if argv is not None else None,
            prog_name="leadflow",
            standalone_mode=True,
        )
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    except CliError as exc:
        print(f"leadflow: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
