"""A bad routing config file is refused at start-up with its place and reason."""

from __future__ import annotations

import subprocess

import pytest

from tests.e2e.test_leadflow_up import LEADFLOW, clean_env

pytestmark = pytest.mark.e2e


def test_routing_refuses_to_start_with_a_rule_for_an_unknown_team(broker, clean_db, tmp_path):
    bad = tmp_path / "routing.toml"
    bad.write_text(
        'version = "x"\ndefault_team = "marketing"\n[teams.marketing]\n'
        '[[rules]]\nname = "to_ghosts"\nteam = "ghosts"\nqualifications = ["sql"]\n'
    )
    result = subprocess.run(
        [LEADFLOW, "routing", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(
            LEADFLOW_DATABASE_URL=clean_db,
            LEADFLOW_KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap_servers,
            LEADFLOW_ROUTING_CONFIG=str(bad),
        ),
    )
    assert result.returncode == 1
    assert "routing.toml" in result.stderr
    assert "rules.0.team" in result.stderr and "ghosts" in result.stderr
