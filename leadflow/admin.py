"""The admin commands of `leadflow`: migrations, API keys, the backtest and follow-ups (the
DLQ's are in `leadflow.commands.dlq`)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated, Any

import typer

from leadflow.clicommon import CliError, JsonOption, load_settings, safe_url, utc_option
from leadflow.output import print_json, print_table
from leadflow.progress import progress_bar, stderr_is_terminal
from shared.auth import SCOPES
from shared.config import Settings

log = logging.getLogger("leadflow")


class DbAction(StrEnum):
    """What `leadflow db` does."""

    upgrade = "upgrade"
    downgrade = "downgrade"
    current = "current"


def cmd_db(
    action: Annotated[DbAction, typer.Argument(help="upgrade, downgrade or current")],
    revision: Annotated[
        str | None, typer.Argument(help="target revision (default head for upgrade)")
    ] = None,
    url: Annotated[
        str | None, typer.Option(help="database URL (default LEADFLOW_DATABASE_URL)")
    ] = None,
) -> None:
    """Database migrations: upgrade [REV], downgrade REV, or show the current revision."""
    from shared.db import current_revisions, downgrade, head_revisions, make_engine, upgrade

    settings = load_settings()
    url = url or settings.database_url
    if action == DbAction.upgrade:
        upgrade(url, revision or "head")
        print(f"database {safe_url(url)} is at {revision or 'head'}")
    elif action == DbAction.downgrade:
        if not revision:
            raise CliError("`leadflow db downgrade` needs a revision (e.g. `base` or `-1`)")
        downgrade(url, revision)
        print(f"database {safe_url(url)} downgraded to {revision}")
    else:
        engine = make_engine(url)
        try:
            current = current_revisions(engine)
        finally:
            engine.dispose()
        heads = head_revisions()
        state = "up to date" if current == heads else "OUT OF DATE: run `leadflow db upgrade`"
        print(
            f"current: {', '.join(sorted(current)) or '(none)'}; "
            f"head: {', '.join(sorted(heads))}; {state}"
        )


@contextlib.contextmanager
def migrated_sessions(settings: Settings) -> Iterator[object]:
    """A session factory on the configured database, refusing an unmigrated one clearly."""
    from shared.db import MigrationsOutOfDate, check_migrations, make_engine, make_session_factory

    engine = make_engine(settings.database_url)
    try:
        try:
            check_migrations(engine)
        except MigrationsOutOfDate as exc:
            raise CliError(str(exc)) from exc
        yield make_session_factory(engine)
    finally:
        engine.dispose()


keys_app = typer.Typer(help="API keys for the HTTP API.", no_args_is_help=True)

# The scopes a key may have, as choices (a wrong one is a usage error naming it, exit 2).
Scope = StrEnum("Scope", [(scope, scope) for scope in SCOPES])  # type: ignore[misc]


@contextlib.contextmanager
def _keys_session() -> Iterator[Any]:
    """A transaction on the configured database; key errors become CLI errors."""
    from shared.auth import ApiKeyError

    settings = load_settings()
    try:
        with migrated_sessions(settings) as sessions, sessions.begin() as session:  # type: ignore[attr-defined]
            yield session
    except ApiKeyError as exc:
        raise CliError(str(exc)) from exc


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="a unique name, e.g. the client's")],
    scope: Annotated[list[Scope], typer.Option(help="repeat for several")],
) -> None:
    """Create a key; prints it once, alone on the last line."""
    from shared.auth import create_key

    scopes = [s.value for s in scope]
    with _keys_session() as session:
        key = create_key(session, name=name, scopes=scopes)
    print(f"created key {name!r} with scopes {', '.join(scopes)}.")
    print("It is shown only this once; store it now:")
    print(key)


@keys_app.command("list")
def keys_list(as_json: JsonOption = False) -> None:
    """List keys: names, scopes, state (never the keys)."""
    from shared.auth import list_keys

    with _keys_session() as session:
        rows = list_keys(session)
    if as_json:
        print_json(
            [
                {
                    "name": k.name,
                    "hint": k.hint,
                    "scopes": k.scopes,
                    "created_at": k.created_at.isoformat(),
                    "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
                }
                for k in rows
            ]
        )
        return
    if not rows:
        print("no API keys; create one with `leadflow keys create`")
        return
    print_table(
        ["name", "key", "scopes", "created", "state"],
        [
            (
                k.name,
                f"{k.hint}...",
                ",".join(k.scopes),
                f"{k.created_at:%Y-%m-%d %H:%M}",
                f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "active",
            )
            for k in rows
        ],
    )


@keys_app.command("revoke")
def keys_revoke(name: Annotated[str, typer.Argument(help="the key's name")]) -> None:
    """Revoke a key by name."""
    from shared.auth import revoke_key

    with _keys_session() as session:
        revoke_key(session, name=name)
    print(f"revoked key {name!r}")


def cmd_backtest(
    model: Annotated[
        str,
        typer.Option(
            help="a TOML model file or a bundled model name; several joined by commas, "
            "default first"
        ),
    ],
    routing: Annotated[
        str | None,
        typer.Option(help="a candidate routing TOML file (default: the live routing config)"),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="only leads with a touch on or after this date (YYYY-MM-DD)")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Re-score stored histories with a candidate model and report what would change."""
    from datetime import UTC, datetime

    from services.routing.domain.config import ConfigError
    from services.routing.service import config_for, load_config
    from services.scoring.domain.scoring_model import ModelError
    from services.scoring.service import load_models
    from views.backtest import backtest

    settings = load_settings()
    try:
        models = load_models(model)
    except ModelError as exc:
        raise CliError(f"the candidate model is refused: {exc}") from exc
    candidate_routing = None
    if routing:
        try:
            candidate_routing = load_config(routing)
        except ConfigError as exc:
            raise CliError(f"the candidate routing file is refused: {exc}") from exc
    after = utc_option(since or None, option="--since")
    # With --json the bar shows only to a person watching stderr; stdout gets the JSON alone.
    with (
        migrated_sessions(settings) as sessions,
        sessions() as session,  # type: ignore[operator]
        progress_bar(
            "backtest", unit="leads", enabled=not as_json or stderr_is_terminal()
        ) as advance,
    ):
        report = backtest(
            session,
            models=models,
            routing=config_for(settings),
            candidate_routing=candidate_routing,
            since=after,
            now=datetime.now(UTC),
            progress=advance,
        )
        session.rollback()  # a backtest has no side effects, whatever happened
    if as_json:
        print_json(report.as_dict())
    else:
        print("\n".join(report.lines()))


def followup_lines(report: dict[str, Any]) -> list[str]:
    """The follow-up check as text: the unanswered leads, then the unanswered touch types."""
    unanswered = report["unanswered"]
    total = report["unanswered_total"]
    lines = [f"leads that acted in the last {report['days']} days with no next step: {total}"]
    for item in unanswered:
        owner = item["owner"]
        who = f"{owner['team']}/{owner['member'] or 'queue'}" if owner else "no owner"
        lines.append(f"  {item['email'] or item['lead_id']}  [{who}]  {item['reason']}")
    if len(unanswered) < total:
        lines.append(f"  ... and {total - len(unanswered)} more (--limit)")
    gaps = [c for c in report["coverage"] if not c["answered"]]
    lines.append(f"touch types no playbook or routing rule answers: {len(gaps)}")
    for c in gaps:
        stage = f" (signals {c['funnel_stage']})" if c["funnel_stage"] else ""
        lines.append(f"  {c['type']}{stage}: seen {c['seen']} times")
    return lines


def cmd_followups(
    days: Annotated[int, typer.Option(help="look back this many days")] = 30,
    limit: Annotated[int, typer.Option(help="leads to list at most")] = 100,
    as_json: JsonOption = False,
) -> None:
    """Leads that acted and got no next step, touch types nothing answers (exit 1: some)."""
    from operations.followups import followups

    settings = load_settings()
    with migrated_sessions(settings) as sessions, sessions() as session:  # type: ignore[operator]
        report = followups(session=session, settings=settings, days=days, limit=limit)
    if as_json:
        print_json(report)
    else:
        print("\n".join(followup_lines(report)))
    if report["unanswered_total"]:
        raise SystemExit(1)
