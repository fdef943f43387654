"""The routing configuration file: the bundled default parses, bad files are refused with
where and why."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest
from pydantic import ValidationError

from services.routing.domain.config import (
    ConfigError,
    MemberConfig,
    RoutingConfig,
    TeamConfig,
    parse_config,
)
from services.routing.service import load_config, step_owners

DEFAULT = Path(__file__).resolve().parents[3] / "services/routing/config/default.toml"

MINIMAL = dedent(
    """\
    version = "test-1"
    default_team = "marketing"

    [regions]
    emea = ["DE", "FR"]

    [teams.marketing]

    [teams.sales]
    """
)


def _rule(name: str = "r", team: str = "sales", extra: str = "") -> str:
    return f'\n[[rules]]\nname = "{name}"\nteam = "{team}"\n{extra}\n'


def _refused(text: str, *, source: str = "bad.toml") -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source=source)
    return caught.value


def _default() -> RoutingConfig:
    return parse_config(DEFAULT.read_text(), source=str(DEFAULT))


# --- the bundled default ------------------------------------------------------------------


def test_default_config_parses_with_its_version_and_default_team() -> None:
    config = _default()
    assert config.version == "default-2026.12"
    assert config.default_team == "marketing"


def test_default_config_lists_rules_in_priority_order() -> None:
    assert [(r.name, r.team) for r in _default().rules] == [
        ("customers_to_success", "customer-success"),
        ("disqualified_to_nurture", "marketing-nurture"),
        ("recycled_to_nurture", "marketing-nurture"),
        ("purchase_to_success", "customer-success"),
        ("enterprise_sql", "sales-enterprise"),
        ("sql_to_sales", "sales"),
        ("evaluation_to_sales", "sales"),
        ("mql_to_sdr", "sdr"),
        ("consideration_intent_to_sdr", "sdr"),
    ]


def test_default_config_gives_every_funnel_step_an_owner() -> None:
    assert step_owners(config=_default()) == {
        "awareness": "marketing",
        "interest": "marketing",
        "consideration": "sdr",
        "intent": "sdr",
        "evaluation": "sales",
        "purchase": "customer-success",
    }


def test_default_enterprise_rule_needs_large_b2b_sql_leads() -> None:
    rule = next(r for r in _default().rules if r.name == "enterprise_sql")
    assert rule.qualifications == ("sql",)
    assert rule.segment == "b2b"
    assert rule.min_employees == 1000


def test_default_config_defines_every_team() -> None:
    assert set(_default().teams) == {
        "customer-success",
        "marketing-nurture",
        "sales-enterprise",
        "sales",
        "sdr",
        "marketing",
    }


def test_default_sales_team_has_three_members_a_four_hour_sla_and_reassigns() -> None:
    sales = _default().team("sales")
    assert [m.id for m in sales.members] == [
        "ana@seller.example",
        "ben@seller.example",
        "cai@seller.example",
    ]
    assert sales.members[0].capacity == 40
    assert sales.sla == {"sql": 4 * 3600.0, "evaluation": 86400.0}
    assert sales.escalation == "reassign"


def test_default_enterprise_team_has_no_placeholder_webhook_and_emails_its_tasks() -> None:
    team = _default().team("sales-enterprise")
    assert len(team.members) == 2
    assert team.webhook_url is None  # a sales alert is a task, emailed to the owner
    assert team.tasks_to == "member" and team.email == "enterprise-desk@seller.example"
    assert team.sla == {"sql": 4 * 3600.0}
    assert team.escalation == "reassign"


def test_default_sdr_team_has_slas_for_mqls_and_its_steps_and_only_notifies() -> None:
    sdr = _default().team("sdr")
    assert len(sdr.members) == 2
    assert sdr.sla == {"mql": 86400.0, "intent": 86400.0, "consideration": 2 * 86400.0}
    assert sdr.escalation == "notify"


def test_default_marketing_team_has_no_members() -> None:
    assert _default().team("marketing").members == ()


def test_default_regions_group_realistic_country_codes() -> None:
    regions = _default().regions
    assert set(regions) == {"emea", "amer", "apac"}
    assert {"DE", "FR", "GB"} <= set(regions["emea"])
    assert {"US", "CA", "BR"} <= set(regions["amer"])
    assert {"JP", "AU", "SG"} <= set(regions["apac"])
    assert not set(regions["emea"]) & set(regions["amer"])


def test_default_playbooks_use_the_documented_defaults() -> None:
    playbooks = _default().playbooks
    assert playbooks.abandoned_cart.enabled and playbooks.abandoned_cart.delay_s == 3600
    assert playbooks.abandoned_cart.second_reminder_after_s is None
    assert playbooks.event_followup.delay_s == 86400
    assert playbooks.event_followup.task_min_qualification == "mql"
    assert playbooks.trial_nudge.delay_s == 259200
    assert playbooks.sales_alert.enabled and playbooks.stage_regression_alert.enabled
    assert playbooks.marketing_cap_s == 57600


# --- a minimal config and its defaults ----------------------------------------------------


def test_minimal_config_gets_default_playbooks_and_no_rules() -> None:
    config = parse_config(MINIMAL, source="m.toml")
    assert config.rules == ()
    assert config.playbooks.marketing_cap_s == 57600
    assert config.playbooks.abandoned_cart.delay_s == 3600
    assert config.playbooks.trial_nudge.enabled is True


def test_unconfigured_team_reads_as_an_empty_team() -> None:
    config = parse_config(MINIMAL, source="m.toml")
    team = config.team("nobody")
    assert team == TeamConfig()
    assert team.members == () and team.sla == {} and team.webhook_url is None
    assert team.escalation == "notify"


def test_member_capacity_defaults_to_fifty() -> None:
    text = MINIMAL + 'members = [{ id = "ana@seller.example" }]\n'
    [member] = parse_config(text, source="m.toml").team("sales").members
    assert member == MemberConfig(id="ana@seller.example", name=None, capacity=50)


@pytest.mark.parametrize(
    ("toml_value", "seconds"), [('"90s"', 90.0), ('"15m"', 900.0), ('"2h"', 7200.0), ("600", 600.0)]
)
def test_durations_read_seconds_or_units(toml_value: str, seconds: float) -> None:
    text = MINIMAL + f"\n[playbooks.abandoned_cart]\ndelay_s = {toml_value}\n"
    assert parse_config(text, source="m.toml").playbooks.abandoned_cart.delay_s == seconds


def test_countries_regions_and_industries_are_normalised() -> None:
    text = MINIMAL.replace('["DE", "FR"]', '["de", " fr "]') + _rule(
        extra='countries = ["at"]\nindustries = [" Software "]'
    )
    config = parse_config(text, source="m.toml")
    assert config.regions["emea"] == ("DE", "FR")
    assert config.rules[0].countries == ("AT",)
    assert config.rules[0].industries == ("software",)


def test_config_is_frozen() -> None:
    config = parse_config(MINIMAL, source="m.toml")
    with pytest.raises(ValidationError):
        config.default_team = "sales"  # type: ignore[misc]


# --- refused files ------------------------------------------------------------------------


def test_toml_syntax_error_is_refused_at_place_syntax() -> None:
    error = _refused('version = "unterminated\n', source="broken.toml")
    assert error.source == "broken.toml"
    assert error.place == "syntax"
    assert str(error).startswith("broken.toml: syntax: ")


def test_unknown_key_inside_a_rule_is_refused_naming_the_rule_and_key() -> None:
    error = _refused(MINIMAL + _rule(extra="weight = 3"))
    assert error.place == "rules.0.weight"
    assert "extra" in error.reason.lower() and "3" in error.reason


def test_missing_version_is_refused() -> None:
    error = _refused(MINIMAL.replace('version = "test-1"\n', ""))
    assert error.place == "version"
    assert "required" in error.reason.lower()


def test_duplicate_rule_names_are_refused_at_the_second_rule() -> None:
    error = _refused(MINIMAL + _rule(name="twice") + _rule(name="twice"))
    assert error.place == "rules.1.name"
    assert "'twice'" in error.reason and "rules.0" in error.reason


def test_rule_named_default_is_refused_as_reserved() -> None:
    error = _refused(MINIMAL + _rule(name="default"))
    assert error.place == "rules.0.name"
    assert "reserved" in error.reason


def test_rule_team_that_is_not_defined_is_refused() -> None:
    error = _refused(MINIMAL + _rule() + _rule(name="second", team="salse"))
    assert error.place == "rules.1.team"
    assert "'salse'" in error.reason and "marketing, sales" in error.reason


def test_default_team_that_is_not_defined_is_refused() -> None:
    error = _refused(MINIMAL.replace('default_team = "marketing"', 'default_team = "mktg"'))
    assert error.place == "default_team"
    assert "'mktg'" in error.reason


def test_region_that_is_not_defined_is_refused() -> None:
    error = _refused(MINIMAL + _rule(extra='regions = ["emea", "latam"]'))
    assert error.place == "rules.0.regions.1"
    assert "'latam'" in error.reason and "emea" in error.reason


def test_unknown_qualification_in_a_rule_is_refused() -> None:
    error = _refused(MINIMAL + _rule(extra='qualifications = ["sql", "hot"]'))
    assert error.place == "rules.0.qualifications.1"
    assert "'hot'" in error.reason and "mql" in error.reason


def test_journey_stage_used_as_a_funnel_stage_is_refused() -> None:
    error = _refused(MINIMAL + _rule(extra='funnel_stages = ["validation"]'))
    assert error.place == "rules.0.funnel_stages.0"
    assert "'validation' is not a funnel stage" in error.reason


def test_unknown_segment_is_refused_with_the_value() -> None:
    error = _refused(MINIMAL + _rule(extra='segment = "b2g"'))
    assert error.place == "rules.0.segment"
    assert "'b2g'" in error.reason


def test_country_that_is_not_a_two_letter_code_is_refused() -> None:
    error = _refused(MINIMAL + _rule(extra='countries = ["DEU"]'))
    assert error.place == "rules.0.countries.0"
    assert "'DEU'" in error.reason


def test_region_country_that_is_not_a_two_letter_code_is_refused() -> None:
    error = _refused(MINIMAL.replace('["DE", "FR"]', '["DE", "France"]'))
    assert error.place == "regions.emea.1"
    assert "'France'" in error.reason


@pytest.mark.parametrize("field", ["employees", "score"])
def test_minimum_above_maximum_is_refused(field: str) -> None:
    error = _refused(MINIMAL + _rule(extra=f"min_{field} = 50\nmax_{field} = 10"))
    assert error.place == f"rules.0.max_{field}"
    assert f"min_{field} 50 is more than max_{field} 10" == error.reason


def test_equal_minimum_and_maximum_are_accepted() -> None:
    text = MINIMAL + _rule(extra="min_employees = 10\nmax_employees = 10")
    assert parse_config(text, source="m.toml").rules[0].max_employees == 10


def test_score_above_one_hundred_is_refused() -> None:
    error = _refused(MINIMAL + _rule(extra="min_score = 101"))
    assert error.place == "rules.0.min_score"
    assert "101" in error.reason


def test_unknown_account_role_is_refused() -> None:
    error = _refused(MINIMAL + _rule(extra='account_roles = ["driver", "champion"]'))
    assert error.place == "rules.0.account_roles.1"
    assert "'champion'" in error.reason and "gatekeeper" in error.reason


def test_sla_key_that_is_neither_qualification_nor_stage_is_refused() -> None:
    error = _refused(MINIMAL + 'sla = { urgent = "1h" }\n')
    assert error.place == "teams.sales.sla.urgent"
    assert "'urgent' is not a qualification or funnel stage" in error.reason


def test_sla_keyed_by_funnel_stage_is_accepted() -> None:
    config = parse_config(MINIMAL + 'sla = { intent = "2h" }\n', source="m.toml")
    assert config.team("sales").sla == {"intent": 7200.0}


def test_sla_duration_that_cannot_be_read_is_refused_with_the_value() -> None:
    error = _refused(MINIMAL + 'sla = { sql = "4 hours" }\n')
    assert error.place == "teams.sales.sla.sql"
    assert "'4 hours'" in error.reason


def test_zero_sla_is_refused() -> None:
    error = _refused(MINIMAL + "sla = { sql = 0 }\n")
    assert error.place == "teams.sales.sla.sql"
    assert "greater than 0" in error.reason


def test_duplicate_member_ids_are_refused_within_a_team() -> None:
    members = '{ id = "ana@seller.example" }, { id = "ana@seller.example" }'
    error = _refused(MINIMAL + f"members = [{members}]\n")
    assert error.place == "teams.sales.members.1.id"
    assert "'ana@seller.example'" in error.reason and "members.0" in error.reason


def test_same_member_in_two_teams_is_accepted() -> None:
    member = 'members = [{ id = "ana@seller.example" }]\n'
    text = MINIMAL.replace("[teams.marketing]\n", "[teams.marketing]\n" + member) + member
    config = parse_config(text, source="m.toml")
    assert config.team("marketing").members == config.team("sales").members


def test_member_id_that_is_not_email_like_is_refused() -> None:
    error = _refused(MINIMAL + 'members = [{ id = "ana" }]\n')
    assert error.place == "teams.sales.members.0.id"
    assert "'ana'" in error.reason


def test_negative_capacity_is_refused() -> None:
    error = _refused(MINIMAL + 'members = [{ id = "a@b.example", capacity = -1 }]\n')
    assert error.place == "teams.sales.members.0.capacity"
    assert "-1" in error.reason


def test_webhook_url_that_is_not_http_is_refused() -> None:
    error = _refused(MINIMAL + 'webhook_url = "ftp://alerts.example/x"\n')
    assert error.place == "teams.sales.webhook_url"
    assert "'ftp://alerts.example/x'" in error.reason


def test_unknown_escalation_is_refused() -> None:
    error = _refused(MINIMAL + 'escalation = "page"\n')
    assert error.place == "teams.sales.escalation"
    assert "'page'" in error.reason


def test_disqualified_as_task_minimum_is_refused() -> None:
    text = MINIMAL + '\n[playbooks.event_followup]\ntask_min_qualification = "disqualified"\n'
    error = _refused(text)
    assert error.place == "playbooks.event_followup.task_min_qualification"
    assert "'disqualified'" in error.reason


def test_negative_playbook_delay_is_refused() -> None:
    error = _refused(MINIMAL + "\n[playbooks.trial_nudge]\ndelay_s = -5\n")
    assert error.place == "playbooks.trial_nudge.delay_s"
    assert "-5" in error.reason


def test_the_bundled_config_waits_ten_hours_for_shopify_carts_and_an_hour_for_others() -> None:
    cart = load_config("default").playbooks.abandoned_cart
    assert (cart.delay_for("shopify"), cart.delay_for("segment"), cart.delay_for(None)) == (
        36_000,
        3_600,
        3_600,
    )


def test_the_environment_cart_delay_wins_for_every_source() -> None:
    cart = load_config("default", abandoned_cart_delay_s=60).playbooks.abandoned_cart
    assert (cart.delay_for("shopify"), cart.delay_for("web")) == (60, 60)


@pytest.mark.parametrize(
    ("tasks_to", "email", "member", "expected"),
    [
        ("member", "desk@seller.example", "ana@seller.example", "ana@seller.example"),
        ("member", "desk@seller.example", None, "desk@seller.example"),  # queued: the inbox
        ("member", None, None, None),
        ("team", "desk@seller.example", "ana@seller.example", "desk@seller.example"),
        ("none", "desk@seller.example", "ana@seller.example", None),
    ],
)
def test_a_task_is_emailed_to_the_owner_or_the_team_inbox_as_tasks_to_says(
    tasks_to: str, email: str | None, member: str | None, expected: str | None
) -> None:
    team = TeamConfig.model_validate({"tasks_to": tasks_to, "email": email})
    assert team.task_recipient(member) == expected


def test_a_team_inbox_that_is_not_an_address_is_refused_with_its_place() -> None:
    text = 'version = "v"\ndefault_team = "a"\n[teams.a]\nemail = "sales team"\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="r.toml")
    assert "teams.a.email" in str(caught.value) and "sales team" in str(caught.value)
