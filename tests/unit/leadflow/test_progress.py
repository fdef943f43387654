"""Progress bars go to stderr; away from a terminal only their final state, once."""

from __future__ import annotations

import pytest

from leadflow.progress import progress_bar


def test_off_a_terminal_the_final_count_is_printed_once_on_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with progress_bar("replay", unit="messages") as advance:
        for done in range(1, 4):
            advance(done, 3)
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("3/3 messages") == 1 and "replay" in err
    assert "1/3" not in err and "\r" not in err


def test_an_unknown_total_shows_the_count_alone(capsys: pytest.CaptureFixture[str]) -> None:
    with progress_bar("replay", unit="messages") as advance:
        advance(7, None)
    assert "7 messages" in capsys.readouterr().err


def test_a_disabled_bar_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with progress_bar("backtest", unit="leads", enabled=False) as advance:
        advance(5, 5)
    assert capsys.readouterr() == ("", "")
