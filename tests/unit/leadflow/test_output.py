"""Tables print whole values on one line each when stdout is not a terminal."""

from __future__ import annotations

import pytest

from leadflow.output import print_table


def test_a_piped_table_keeps_long_values_whole_and_markup_as_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    error = "not a touch envelope: [bold]x[/bold] " + "y" * 300
    print_table(
        ["id", "state", "error"], [("t.dlq:0:12", "parked", error), ("t.dlq:0:13", None, "")]
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["id", "state", "error"]
    assert error in lines[2] and lines[2].startswith("t.dlq:0:12")
    assert lines[3].strip() == "t.dlq:0:13"
    assert all(line == line.rstrip() for line in lines)
    assert "\x1b[" not in "".join(lines), "no colour codes in a pipe"
