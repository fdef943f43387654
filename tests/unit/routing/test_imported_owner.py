"""An imported lead stays with its owner in the CRM it came from, when the routing file has
that member (by id or by name)."""

from __future__ import annotations

from services.routing.domain.config import parse_config
from services.routing.domain.rules import IMPORTED_OWNER_RULE, RoutingDecision, imported_owner

CONFIG = parse_config(
    """
version = "t-1"
default_team = "marketing"

[teams.marketing]

[teams.sdr]
members = [{ id = "jo@seller.example", name = "Jo Seller" }]

[teams.sales]
members = [{ id = "ana@seller.example", name = "Ana Ruiz" }, { id = "jo@seller.example" }]
""",
    source="test.toml",
)


def test_the_crm_owner_is_found_by_id_or_name_whatever_the_case():
    expected = RoutingDecision(team="sdr", rule=IMPORTED_OWNER_RULE, member="jo@seller.example")
    assert imported_owner("jo@seller.example", CONFIG) == expected
    assert imported_owner("  JO SELLER ", CONFIG) == expected
    assert imported_owner("ana ruiz", CONFIG) == RoutingDecision(
        team="sales", rule=IMPORTED_OWNER_RULE, member="ana@seller.example"
    )


def test_an_owner_the_routing_file_does_not_know_leaves_the_lead_to_the_rules():
    assert imported_owner("Someone Else", CONFIG) is None
    assert imported_owner("   ", CONFIG) is None
