"""The `leadflow` command itself: its version, help and shell completion."""

from __future__ import annotations

import subprocess
from importlib import metadata

import pytest

from tests.e2e.test_leadflow_up import LEADFLOW, clean_env

pytestmark = pytest.mark.e2e


def leadflow(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LEADFLOW, *args], capture_output=True, text=True, timeout=60, env=clean_env()
    )


def test_version_prints_the_installed_distribution_s_version():
    result = leadflow("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"leadflow {metadata.version('leadflow')}"


def test_help_lists_every_command():
    result = leadflow("--help")
    assert result.returncode == 0, result.stderr
    for command in (
        "up",
        "ingest",
        "scoring",
        "routing",
        "db",
        "keys",
        "backtest",
        "followups",
        "dlq",
        "leads",
        "teams",
        "actions",
        "doctor",
    ):
        assert f" {command} " in result.stdout, command


def test_shell_completion_completes_commands_and_option_choices():
    """What the script `--install-completion` installs asks on every Tab (bash's protocol)."""

    def complete(words: str, cword: int) -> list[str]:
        env = clean_env(_LEADFLOW_COMPLETE="complete_bash", COMP_WORDS=words, COMP_CWORD=str(cword))
        done = subprocess.run([LEADFLOW], capture_output=True, text=True, timeout=60, env=env)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert complete("leadflow ke", 1) == ["keys"]
    assert complete("leadflow keys create --scope leads", 4) == ["leads:read", "leads:write"]


def test_unknown_command_and_option_are_usage_errors():
    assert leadflow("not-a-command").returncode == 2
    wrong = leadflow("keys", "list", "--no-such-option")
    assert wrong.returncode == 2 and "--no-such-option" in wrong.stderr
