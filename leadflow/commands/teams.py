"""`leadflow teams` and `leadflow actions`: routing's teams and follow-up actions, read through
`services/routing/public.py`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from leadflow.admin import migrated_sessions
from leadflow.clicommon import JsonOption, load_settings
from leadflow.commands.leads import find_lead, no_such_lead
from leadflow.output import print_json, print_table
from services.routing.domain.actions import ActionStatus


def _member(member: dict[str, Any]) -> str:
    """`name load/capacity`, marked when away."""
    capacity = member["capacity"]
    shown = f"{member['name'] or member['id']} {member['load']}/{capacity or '-'}"
    return shown + (" (away)" if member["away"] else "")


def cmd_teams(as_json: JsonOption = False) -> None:
    """Teams: members (load/capacity), open and queued leads, SLA breaches, rules."""
    from services.routing.public import config_for, list_teams
    from shared.events import utcnow

    settings = load_settings()
    config = config_for(settings)
    with migrated_sessions(settings) as sessions, sessions() as session:  # type: ignore[operator]
        teams = list_teams(session, config=config, now=utcnow())
    if as_json:
        print_json({"items": teams})
        return
    print_table(
        ["team", "members (load/capacity)", "open", "queued", "SLA breaches", "rules"],
        [
            (
                team["team"],
                ", ".join(_member(m) for m in team["members"]) or "-",
                team["open_leads"],
                team["queued"],
                team["sla_breaches"],
                ", ".join(team["rules"]) or "-",
            )
            for team in teams
        ],
    )


def cmd_actions(
    lead: Annotated[
        str | None,
        typer.Option(metavar="EMAIL|ID", help="only this lead's actions (email or lead id)"),
    ] = None,
    status: Annotated[ActionStatus | None, typer.Option(help="only actions in this state")] = None,
    kind: Annotated[
        str | None,
        typer.Option(help="only this kind: email, webhook, task, sla, lead_webhook"),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="actions at most")] = 100,
    as_json: JsonOption = False,
) -> None:
    """Follow-up actions (emails, webhooks, tasks, SLA checks), the soonest due first."""
    from services.routing.public import action_view, list_actions

    settings = load_settings()
    with migrated_sessions(settings) as sessions, sessions() as session:  # type: ignore[operator]
        lead_id = None
        if lead is not None:
            found = find_lead(session, ref=lead)
            if found is None:
                raise no_such_lead(lead)
            lead_id = found["id"]
        rows = list_actions(
            session,
            lead_id=lead_id,
            status=status.value if status else None,
            kind=kind,
            limit=limit,
        )
        items = [action_view(r) for r in rows]
    if as_json:
        print_json({"items": items})
        return
    if not items:
        print("no actions match")
        return
    print_table(
        ["id", "lead", "kind", "playbook", "status", "due", "team/member", "attempts", "error"],
        [
            (
                a["id"],
                a["lead_id"],
                a["kind"],
                a["playbook"],
                a["status"],
                a["due_at"],
                "/".join(filter(None, [a["team"], a["member"]])) or "-",
                a["attempts"],
                a["last_error"] or a["cancel_reason"] or "",
            )
            for a in items
        ],
    )
