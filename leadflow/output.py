"""How `leadflow` commands print: JSON exactly as given, tables with rich.

A table goes to stdout as a rich table: with colour and wrapped to the terminal's width when
stdout is a terminal; without colour and as wide as its widest row otherwise, so that a pipe
or a file gets every value whole (ids, errors) on one line. Cells are plain text (never rich
markup), so a value such as `topic[0]` prints as it is.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

_UNBOUNDED = 100_000


def print_json(value: Any) -> None:
    """`value` as indented JSON on stdout (the `--json` output of every command)."""
    print(json.dumps(value, indent=2))


def stdout_console() -> Console:
    """A console on stdout that prints text as given (no highlighting, no emoji codes)."""
    return Console(highlight=False, emoji=False, markup=False)


def table(
    columns: Sequence[str], rows: Iterable[Sequence[object]], *, title: str | None = None
) -> Table:
    """A rich table of plain-text cells; None prints as an empty cell."""
    made = Table(
        *columns,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        title=title,
        title_justify="left",
        pad_edge=False,
    )
    for row in rows:
        made.add_row(*(Text("" if cell is None else str(cell)) for cell in row))
    return made


def print_table(
    columns: Sequence[str], rows: Iterable[Sequence[object]], *, title: str | None = None
) -> None:
    """Print a table on stdout: fitted to a terminal, or whole lines for a pipe or file."""
    shown = table(columns, rows, title=title)
    console = stdout_console()
    if not console.is_terminal:
        # As wide as the widest row: measured on a console wider than any table.
        wide = Console(file=sys.stdout, width=_UNBOUNDED, highlight=False, markup=False)
        width = wide.measure(shown).maximum
        console = Console(file=sys.stdout, width=width, highlight=False, emoji=False, markup=False)
        with console.capture() as captured:
            console.print(shown)
        print("\n".join(line.rstrip() for line in captured.get().splitlines()))
        return
    console.print(shown)
