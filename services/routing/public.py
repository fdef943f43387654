"""What other services (and the `leadflow` command) may use of routing: who owns a lead, its
actions, feedback and assignments, the teams, the routing config and the rules' explanations.
Scoring imports routing only through this module (an import-linter contract in `make lint`)."""

from __future__ import annotations

from services.routing.domain.config import RoutingConfig
from services.routing.domain.facts import facts_of
from services.routing.domain.rules import explain_rules, is_regression, route
from services.routing.domain.triggers import TRIGGERS, playbooks_fired, why_not_fired
from services.routing.followups import followup_report
from services.routing.privacy import erase_lead, held_about
from services.routing.repository import (
    actions_of_lead,
    assignments,
    assignments_of,
    current_owners,
    feedback_of,
    is_suppressed,
    list_actions,
    reassign_lead,
)
from services.routing.service import (
    action_view,
    config_for,
    list_teams,
    sla_breaches_by_stage,
    step_owners,
)

__all__ = [
    "TRIGGERS",
    "RoutingConfig",
    "action_view",
    "actions_of_lead",
    "assignments",
    "assignments_of",
    "config_for",
    "current_owners",
    "erase_lead",
    "explain_rules",
    "facts_of",
    "feedback_of",
    "followup_report",
    "held_about",
    "is_regression",
    "is_suppressed",
    "list_actions",
    "list_teams",
    "playbooks_fired",
    "reassign_lead",
    "route",
    "sla_breaches_by_stage",
    "step_owners",
    "why_not_fired",
]
