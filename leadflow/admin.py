"""The admin commands of `leadflow`: migrations, API keys, the backtest and the DLQ."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import Any

from leadflow.clicommon import CliError, load_settings, safe_url
from shared.config import Settings

log = logging.getLogger("leadflow")


def cmd_db(args: argparse.Namespace) -> None:
    """Migrate the database, or show where it is."""
    from shared.db import current_revisions, downgrade, head_revisions, make_engine, upgrade

    settings = load_settings()
    url = args.url or settings.database_url
    if args.action == "upgrade":
        upgrade(url, args.revision or "head")
        print(f"database {safe_url(url)} is at {args.revision or 'head'}")
    elif args.action == "downgrade":
        if not args.revision:
            raise CliError("`leadflow db downgrade` needs a revision (e.g. `base` or `-1`)")
        downgrade(url, args.revision)
        print(f"database {safe_url(url)} downgraded to {args.revision}")
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
def _migrated_sessions(settings: Settings) -> Iterator[object]:
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


def cmd_keys(args: argparse.Namespace) -> None:
    """Create, list or revoke API keys in the configured database."""
    from shared.auth import ApiKeyError, create_key, list_keys, revoke_key

    settings = load_settings()
    try:
        with _migrated_sessions(settings) as sessions, sessions.begin() as session:  # type: ignore[attr-defined]
            if args.action == "create":
                key = create_key(session, name=args.name, scopes=args.scope)
                print(f"created key {args.name!r} with scopes {', '.join(args.scope)}.")
                print("It is shown only this once; store it now:")
                print(key)
            elif args.action == "list":
                rows = list_keys(session)
                if not rows:
                    print("no API keys; create one with `leadflow keys create`")
                for k in rows:
                    state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "active"
                    print(
                        f"{k.name}\t{k.hint}...\t{','.join(k.scopes)}\t"
                        f"created {k.created_at:%Y-%m-%d %H:%M}\t{state}"
                    )
            else:
                revoke_key(session, name=args.name)
                print(f"revoked key {args.name!r}")
    except ApiKeyError as exc:
        raise CliError(str(exc)) from exc


def _progress_bar(done: int, total: int) -> None:
    """A one-line progress bar on stderr, redrawn in place (only for runs worth watching)."""
    if total < 50 or (done % max(1, total // 200) and done != total):
        return
    width = 30
    filled = width * done // total
    end = "\n" if done == total else ""
    print(
        f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} leads",
        end=end,
        file=sys.stderr,
        flush=True,
    )


def cmd_backtest(args: argparse.Namespace) -> None:
    """Re-score stored histories with a candidate model and report what would change."""
    import json
    from datetime import UTC, datetime

    from services.routing.domain.config import ConfigError
    from services.routing.service import config_for, load_config
    from services.scoring.domain.scoring_model import ModelError
    from services.scoring.service import load_models
    from views.backtest import backtest

    settings = load_settings()
    try:
        models = load_models(args.model)
    except ModelError as exc:
        raise CliError(f"the candidate model is refused: {exc}") from exc
    candidate_routing = None
    if args.routing:
        try:
            candidate_routing = load_config(args.routing)
        except ConfigError as exc:
            raise CliError(f"the candidate routing file is refused: {exc}") from exc
    since = None
    if args.since:
        try:
            since = datetime.fromisoformat(args.since)
        except ValueError as exc:
            raise CliError(f"--since {args.since!r} is not a date (YYYY-MM-DD)") from exc
        since = since if since.tzinfo else since.replace(tzinfo=UTC)
    with _migrated_sessions(settings) as sessions, sessions() as session:  # type: ignore[operator]
        report = backtest(
            session,
            models=models,
            routing=config_for(settings),
            candidate_routing=candidate_routing,
            since=since,
            now=datetime.now(UTC),
            progress=None if args.json else _progress_bar,
        )
        session.rollback()  # a backtest has no side effects, whatever happened
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
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


def cmd_followups(args: argparse.Namespace) -> None:
    """Every action has a next step: print the leads that got none, and the touch types no
    playbook or rule answers; exit 1 when there are unanswered leads (for a cron check)."""
    import json

    from operations.followups import followups

    settings = load_settings()
    with _migrated_sessions(settings) as sessions, sessions() as session:  # type: ignore[operator]
        report = followups(session=session, settings=settings, days=args.days, limit=args.limit)
    print(json.dumps(report, indent=2) if args.json else "\n".join(followup_lines(report)))
    if report["unanswered_total"]:
        raise SystemExit(1)


def cmd_dlq(args: argparse.Namespace) -> None:
    """List parked messages of the dead-letter topics, or replay them to their topic."""
    import json

    from kafka.errors import KafkaError

    from operations import service
    from shared.events import utcnow
    from shared.faults import PublishError
    from shared.kafka import AsyncProducer

    settings = load_settings()
    if settings.kafka_bootstrap_servers is None:
        raise CliError(
            "`leadflow dlq` needs LEADFLOW_KAFKA_BOOTSTRAP_SERVERS: the broker the services use "
            "(`leadflow up` prints its embedded broker's address at start)"
        )
    try:
        with _migrated_sessions(settings) as sessions:
            if args.action == "list":
                page = service.list_dlq(
                    settings=settings,
                    sessions=sessions,  # type: ignore[arg-type]
                    topic=args.topic,
                    limit=args.limit,
                    cursor=args.cursor,
                )
                if args.json:
                    print(json.dumps(page, indent=2))
                    return
                if not page["items"]:
                    print("no parked messages")
                for item in page["items"]:
                    origin = item["origin"]
                    state = f"replayed {item['replayed_at']}" if item["replayed_at"] else "parked"
                    print(
                        f"{item['id']}\t{state}\tfrom {origin['topic']}[{origin['partition']}] "
                        f"offset={origin['offset']}\tevent_id={item['event_id']}\t{item['error']}"
                    )
                if page["next_cursor"]:
                    print(f"more: --cursor {page['next_cursor']}")
                return
            if not args.ids and not args.all:
                raise CliError("`leadflow dlq replay` needs message ids or --all")
            producer = AsyncProducer(settings=settings)
            try:
                report = service.replay_dlq(
                    settings=settings,
                    sessions=sessions,  # type: ignore[arg-type]
                    producer=producer,
                    topic=args.topic,
                    ids=args.ids or None,
                    now=utcnow,
                )
            finally:
                producer.close()
            if args.json:
                print(json.dumps(report.as_dict(), indent=2))
                return
            for skipped in report.skipped:
                print(f"skipped {skipped['id']}: {skipped['reason']}")
            print(f"replayed {len(report.replayed)} message(s)")
    except service.DlqError as exc:
        raise CliError(str(exc)) from exc
    except (KafkaError, PublishError) as exc:
        raise CliError(
            f"the broker at {settings.kafka_bootstrap_servers} could not be used: {exc}"
        ) from exc
