"""Domain vocabulary every service shares: qualification levels and the two stage tracks."""

from __future__ import annotations

from enum import StrEnum


class Qualification(StrEnum):
    """How far sales and marketing agree the lead is qualified (seed 004, step 6)."""

    UNQUALIFIED = "unqualified"
    MQL = "mql"
    SQL = "sql"
    CUSTOMER = "customer"
    DISQUALIFIED = "disqualified"
    # Sales sent it back with a reason: nurtured by marketing until it raises its hand again.
    RECYCLED = "recycled"


class FunnelStage(StrEnum):
    """The seller's view: how close the buyer is to a purchase (seed 000, A-F)."""

    AWARENESS = "awareness"
    INTEREST = "interest"
    CONSIDERATION = "consideration"
    INTENT = "intent"
    EVALUATION = "evaluation"
    PURCHASE = "purchase"


class JourneyStage(StrEnum):
    """The buyer's own view: where they are in their process (seed 000, 1-6)."""

    PROBLEM_IDENTIFICATION = "problem_identification"
    SOLUTION_EXPLORATION = "solution_exploration"
    REQUIREMENTS_BUILDING = "requirements_building"
    SUPPLIER_SELECTION = "supplier_selection"
    VALIDATION = "validation"
    CONSENSUS_CREATION = "consensus_creation"


FUNNEL_ORDER = list(FunnelStage)
JOURNEY_ORDER = list(JourneyStage)
