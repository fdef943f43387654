"""What other services may use of routing: who owns a lead, its actions, feedback and
assignments, the routing config and the rules' explanations. Scoring imports routing only
through this module (an import-linter contract in `make lint`)."""

from __future__ import annotations

from services.routing.domain.config import RoutingConfig
from services.routing.domain.facts import facts_of
from services.routing.domain.rules import explain_rules, is_regression, route
from services.routing.domain.triggers import TRIGGERS, playbooks_fired, why_not_fired
from services.routing.followups import followup_report
from services.routing.repository import (
    actions_of_lead,
    assignments,
    assignments_of,
    current_owners,
    feedback_of,
    is_suppressed,
    reassign_lead,
)
from services.routing.service import config_for, sla_breaches_by_stage, step_owners

__all__ = [
    "TRIGGERS",
    "RoutingConfig",
    "actions_of_lead",
    "assignments",
    "assignments_of",
    "config_for",
    "current_owners",
    "explain_rules",
    "facts_of",
    "feedback_of",
    "followup_report",
    "is_regression",
    "is_suppressed",
    "playbooks_fired",
    "reassign_lead",
    "route",
    "sla_breaches_by_stage",
    "step_owners",
    "why_not_fired",
]
