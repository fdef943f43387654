"""Backtest reports: what a candidate model would change, counted per field and per move."""

from __future__ import annotations

import json
from typing import Any

from services.scoring.domain.backtest import (
    EXAMPLES_PER_CHANGE,
    FIELDS,
    BacktestReport,
    LeadOutcome,
)


def _state(**overrides: Any) -> dict[str, Any]:
    state: dict[str, Any] = {
        "score": 40,
        "qualification": "mql",
        "funnel_stage": "interest",
        "journey_stage": "solution_exploration",
        "owner_team": "marketing",
    }
    state.update(overrides)
    return state


def _outcome(lead: str, current: dict[str, Any], candidate: dict[str, Any]) -> LeadOutcome:
    return LeadOutcome(
        lead_id=lead, email=f"{lead}@example.com", current=current, candidate=candidate
    )


def _report(*outcomes: LeadOutcome) -> BacktestReport:
    report = BacktestReport(model_version="cand-2")
    for outcome in outcomes:
        report.add(outcome)
    return report


# --- one lead -----------------------------------------------------------------------------


def test_outcome_lists_only_the_fields_that_change() -> None:
    outcome = _outcome("a", _state(), _state(qualification="sql", score=70))
    assert outcome.changed() == {"qualification": ("mql", "sql")}


def test_outcome_with_nothing_changed_is_empty() -> None:
    assert _outcome("a", _state(), _state()).changed() == {}


def test_outcome_counts_a_field_set_for_the_first_time_as_a_change() -> None:
    outcome = _outcome("a", _state(funnel_stage=None), _state(funnel_stage="awareness"))
    assert outcome.changed() == {"funnel_stage": (None, "awareness")}


# --- counting -----------------------------------------------------------------------------


def test_report_counts_leads_and_changed_leads() -> None:
    report = _report(
        _outcome("a", _state(), _state()),
        _outcome("b", _state(), _state(qualification="sql")),
        _outcome("c", _state(), _state(qualification="sql", owner_team="sales")),
    )
    assert report.leads == 3
    assert report.changed_leads == 2


def test_report_counts_changed_leads_per_field() -> None:
    report = _report(
        _outcome("a", _state(), _state(qualification="sql", funnel_stage="intent")),
        _outcome("b", _state(), _state(qualification="sql")),
        _outcome("c", _state(), _state(journey_stage="validation")),
    )
    assert report.changes == {
        "qualification": 2,
        "funnel_stage": 1,
        "journey_stage": 1,
        "owner_team": 0,
    }


def test_report_counts_moves_as_from_arrow_to() -> None:
    report = _report(
        _outcome("a", _state(), _state(qualification="sql")),
        _outcome("b", _state(), _state(qualification="sql")),
        _outcome("c", _state(qualification="sql"), _state(qualification="mql")),
    )
    assert report.moves["qualification"] == {"mql -> sql": 2, "sql -> mql": 1}
    assert not report.moves["funnel_stage"]


def test_report_keeps_at_most_five_examples_per_field() -> None:
    assert EXAMPLES_PER_CHANGE == 5
    outcomes = [_outcome(f"lead{i}", _state(), _state(owner_team="sales")) for i in range(8)]
    report = _report(*outcomes)
    assert report.changes["owner_team"] == 8
    assert len(report.examples["owner_team"]) == EXAMPLES_PER_CHANGE
    assert [e["lead_id"] for e in report.examples["owner_team"]] == [f"lead{i}" for i in range(5)]
    assert report.examples["owner_team"][0] == {
        "lead_id": "lead0",
        "email": "lead0@example.com",
        "from": "marketing",
        "to": "sales",
    }


def test_examples_are_kept_per_field_independently() -> None:
    outcomes = [_outcome(f"q{i}", _state(), _state(qualification="sql")) for i in range(7)]
    outcomes.append(_outcome("f", _state(), _state(funnel_stage="intent")))
    report = _report(*outcomes)
    assert [e["lead_id"] for e in report.examples["funnel_stage"]] == ["f"]
    assert len(report.examples["qualification"]) == EXAMPLES_PER_CHANGE


def test_mean_score_delta_averages_over_all_leads() -> None:
    report = _report(
        _outcome("a", _state(score=40), _state(score=70)),
        _outcome("b", _state(score=40), _state(score=40)),
        _outcome("c", _state(score=50), _state(score=40)),
    )
    assert report.score_delta_total == 20
    assert report.as_dict()["mean_score_delta"] == round(20 / 3, 2)


def test_missing_scores_count_as_zero() -> None:
    report = _report(_outcome("a", {"qualification": "mql"}, _state(score=30)))
    assert report.as_dict()["mean_score_delta"] == 30


def test_empty_report_has_zero_mean_delta() -> None:
    data = BacktestReport(model_version="cand-2").as_dict()
    assert data["leads"] == 0
    assert data["mean_score_delta"] == 0


# --- output -------------------------------------------------------------------------------


def _mixed_report() -> BacktestReport:
    return _report(
        _outcome("a", _state(), _state(qualification="sql", score=80)),
        _outcome("b", _state(), _state(qualification="sql", funnel_stage="intent")),
        _outcome("c", _state(qualification="sql"), _state(qualification="mql", score=10)),
        _outcome("d", _state(), _state()),
    )


def test_as_dict_is_plain_json_data_matching_the_counts() -> None:
    report = _mixed_report()
    data = json.loads(json.dumps(report.as_dict()))
    assert data["model_version"] == "cand-2"
    assert (data["leads"], data["changed_leads"]) == (report.leads, report.changed_leads)
    assert data["changes"] == report.changes
    assert data["moves"]["qualification"] == dict(report.moves["qualification"])
    assert list(data["moves"]["qualification"]) == ["mql -> sql", "sql -> mql"]
    assert data["examples"] == report.examples
    assert set(data["changes"]) == set(FIELDS)


def test_lines_agree_with_as_dict() -> None:
    report = _mixed_report()
    data = report.as_dict()
    lines = report.lines()
    assert lines[0].startswith(
        f"Backtest of model cand-2 on {data['leads']} leads: {data['changed_leads']} would change"
    )
    assert f"mean score delta {data['mean_score_delta']:+}" in lines[0]
    for name in FIELDS:
        assert f"  {name}: {data['changes'][name]} leads would change" in lines
        for move, count in data["moves"][name].items():
            assert f"    {move}: {count}" in lines
    assert "      e.g. a@example.com: mql -> sql" in lines


def test_lines_fall_back_to_the_lead_id_without_an_email() -> None:
    report = _report(
        LeadOutcome("lead-9", None, _state(), _state(owner_team="sales")),
    )
    assert "      e.g. lead-9: marketing -> sales" in report.lines()
