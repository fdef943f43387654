"""Progress bars for long `leadflow` commands (backtest, DLQ replay; imports and exports).

`progress_bar` yields a callback `advance(done, total)` (total None while unknown) that long
operations already accept. The bar goes to stderr, never stdout, so `--json` output stays
clean: on a terminal it is redrawn in place; elsewhere (a pipe, a CI log) only its final
state is printed, once, when the block ends.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

Advance = Callable[[int, "int | None"], None]


class _CountColumn(ProgressColumn):
    """`done/total unit`, or `done unit` while the total is unknown."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        """The count as text."""
        done = int(task.completed)
        if task.total is None:
            return Text(f"{done} {self.unit}")
        return Text(f"{done}/{int(task.total)} {self.unit}")


def stderr_is_terminal() -> bool:
    """Whether a person is watching stderr (the bars are worth redrawing)."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _ignore(_done: int, _total: int | None) -> None:
    """The callback of a disabled bar."""


@contextlib.contextmanager
def progress_bar(description: str, *, unit: str, enabled: bool = True) -> Iterator[Advance]:
    """A progress bar on stderr for the block, moved by the yielded `advance(done, total)`;
    with `enabled` False the callback does nothing and nothing is printed."""
    if not enabled:
        yield _ignore
        return
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        _CountColumn(unit),
        TimeElapsedColumn(),
        console=Console(stderr=True, highlight=False, emoji=False, markup=False),
    )
    task = progress.add_task(description, total=None)

    def advance(done: int, total: int | None) -> None:
        progress.update(task, completed=done, total=total)

    with progress:
        yield advance
