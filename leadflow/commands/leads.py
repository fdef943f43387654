"""`leadflow leads show`: one lead as sales tools read it, and why it has its score;
`leadflow leads export`: every matching lead as CSV or NDJSON;
`leadflow leads erase`: a person erased everywhere."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import typer

from leadflow.admin import migrated_sessions
from leadflow.clicommon import CliError, JsonOption, load_settings, utc_option
from leadflow.output import print_json, print_table

leads_app = typer.Typer(help="Leads as sales tools read them.", no_args_is_help=True)


def find_lead(session: Any, *, ref: str) -> dict[str, Any] | None:
    """The lead an email address (normalised) or a lead id names, through the read side."""
    from shared.events import normalize_email
    from views import leads as leads_view

    if "@" not in ref:
        return leads_view.get_lead(session, lead_id=ref)
    items, _ = leads_view.list_leads(
        session,
        filters=leads_view.LeadFilter(email=normalize_email(ref)),
        after=None,
        limit=1,
    )
    return items[0] if items else None


def no_such_lead(ref: str) -> CliError:
    """The error for a reference that names no lead."""
    what = "email" if "@" in ref else "id"
    return CliError(f"no lead with {what} {ref!r}")


def _lead_lines(lead: dict[str, Any], explained: dict[str, Any] | None) -> list[str]:
    """The lead's headline facts as text."""
    owner = lead["owner"]
    who = f"{owner['team']}/{owner['member'] or 'queue'}" if owner else "no owner yet"
    name = " ".join(filter(None, [lead.get("first_name"), lead.get("last_name")]))
    lines = [
        f"{lead['email'] or '(no email)'}{f'  {name}' if name else ''}  (id {lead['id']})",
        f"score {lead['score']} (fit {lead['fit_score']}, engagement "
        f"{lead['engagement_score']}) under model {lead['model_version'] or '-'}",
        f"qualification {lead['qualification']}"
        + (f": {lead['qualification_reason']}" if lead.get("qualification_reason") else ""),
        f"funnel stage {lead['funnel_stage'] or '-'}; journey stage {lead['journey_stage'] or '-'}",
        f"owner {who}",
    ]
    if explained is not None and explained["score_now"] != explained["score"]:
        lines.append(f"score now {explained['score_now']} (evidence decays since it was stored)")
    return lines


@leads_app.command("show")
def leads_show(
    ref: Annotated[str, typer.Argument(metavar="EMAIL", help="the lead's email (or its id)")],
    as_json: JsonOption = False,
) -> None:
    """A lead: score, fit and engagement, qualification, stages, owner, BANT and why."""
    from services.scoring.domain.scoring_model import ModelError
    from services.scoring.service import explain_lead, load_models
    from shared.events import utcnow

    settings = load_settings()
    try:
        models = load_models(settings.scoring_model)
    except ModelError as exc:
        raise CliError(f"LEADFLOW_SCORING_MODEL is refused: {exc}") from exc
    with migrated_sessions(settings) as sessions, sessions() as session:  # type: ignore[operator]
        lead = find_lead(session, ref=ref)
        if lead is None:
            raise no_such_lead(ref)
        explained = explain_lead(session, lead_id=lead["id"], models=models, now=utcnow())
    if as_json:
        print_json({"lead": lead, "explain": explained})
        return
    print("\n".join(_lead_lines(lead, explained)))
    bant = lead.get("bant") or {}
    if bant:
        print()
        print_table(
            ["BANT", "score", "met", "evidence"],
            [
                (
                    dimension,
                    facts.get("score"),
                    "met" if facts.get("met") else "not met",
                    ", ".join(sorted({e.get("type", "?") for e in facts.get("evidence", [])})),
                )
                for dimension, facts in bant.items()
            ],
        )
    if explained is not None and explained["sentences"]:
        print()
        print("why:")
        for sentence in explained["sentences"]:
            print(f"  - {sentence}")


@leads_app.command("erase")
def leads_erase(
    ref: Annotated[str, typer.Argument(metavar="EMAIL", help="the lead's email (or its id)")],
    reason: Annotated[str | None, typer.Option(help="why (kept with the erasure)")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="erase without asking")] = False,
    as_json: JsonOption = False,
) -> None:
    """Erase a person everywhere leadflow stores them (GDPR); keeps identity hashes only."""
    from services.scoring.domain.scoring_model import ModelError
    from services.scoring.privacy import erase_lead
    from services.scoring.service import load_models
    from shared.db import transaction
    from shared.events import utcnow

    settings = load_settings()
    try:
        models = load_models(settings.scoring_model)
    except ModelError as exc:
        raise CliError(f"LEADFLOW_SCORING_MODEL is refused: {exc}") from exc
    with migrated_sessions(settings) as sessions:  # type: ignore[operator]
        with sessions() as session:
            lead = find_lead(session, ref=ref)
        if lead is None:
            raise no_such_lead(ref)
        if not yes:
            if not sys.stdin.isatty():
                raise CliError("add --yes to erase without being asked")
            typer.confirm(f"Erase {lead['email'] or lead['id']} everywhere?", abort=True)
        with transaction(sessions) as session:
            record = erase_lead(
                session,
                lead_id=lead["id"],
                requested_by="leadflow leads erase",
                reason=reason,
                settings=settings,
                models=models,
                now=utcnow(),
            )
    if record is None:
        raise no_such_lead(ref)
    if as_json:
        print_json({**record, "at": record["at"].isoformat()})
        return
    removed = ", ".join(f"{table} {n}" for table, n in record["removed"].items())
    print(f"erased lead {record['lead_id']} (erasure {record['id']}): {removed}")
    print("its tombstone goes out with the next outbox flush of a running scoring or routing")


@leads_app.command("export")
def leads_export(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="write to this file (default: standard output)"),
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="csv or ndjson (default: the file's suffix, else ndjson)"),
    ] = None,
    qualification: Annotated[str | None, typer.Option(help="only leads so qualified")] = None,
    funnel_stage: Annotated[str | None, typer.Option(help="only leads at this stage")] = None,
    team: Annotated[str | None, typer.Option(help="only leads this team owns")] = None,
    min_score: Annotated[int | None, typer.Option(min=0, max=100)] = None,
    updated_since: Annotated[
        str | None, typer.Option(help="only leads changed since (YYYY-MM-DD or ISO time, UTC)")
    ] = None,
) -> None:
    """Every matching lead as CSV or NDJSON, in id order, with a progress bar on stderr."""
    from leadflow.progress import progress_bar, stderr_is_terminal
    from views import export as export_view
    from views import leads as leads_view

    chosen = fmt or ("csv" if output is not None and output.suffix.lower() == ".csv" else "ndjson")
    if chosen not in export_view.MEDIA_TYPES:
        raise CliError(f"--format {chosen!r}: give csv or ndjson")
    filters = leads_view.LeadFilter(
        qualification=qualification,
        funnel_stage=funnel_stage,
        team=team,
        min_score=min_score,
        updated_since=utc_option(updated_since, option="--updated-since"),
    )
    settings = load_settings()
    with migrated_sessions(settings) as sessions, sessions() as session:  # type: ignore[operator]
        total = leads_view.count_leads(session, filters=filters)
        # The bar is on stderr; shown when stdout is a file, or a person watches stderr.
        with (
            progress_bar(
                "export", unit="leads", enabled=output is not None or stderr_is_terminal()
            ) as advance,
            _opened(output) as sink,
        ):
            advance(0, total)
            for chunk in export_view.export_chunks(
                session,
                filters=filters,
                fmt=chosen,  # type: ignore[arg-type]
                progress=lambda done: advance(done, max(total, done)),
            ):
                sink.write(chunk)
    if output is not None:
        print(f"exported {total} leads to {output}", file=sys.stderr)


@contextlib.contextmanager
def _opened(path: Path | None) -> Iterator[BinaryIO]:
    """The file at `path` for writing bytes, or standard output."""
    if path is None:
        yield sys.stdout.buffer
        sys.stdout.flush()
        return
    try:
        handle = path.open("wb")
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror}") from exc
    with handle:
        yield handle
