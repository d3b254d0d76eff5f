"""Live progress for every long step: a rich bar with counts, elapsed time and ETA.

`progress_bar` is the one way stages show progress, so every step looks the same.
It renders to stderr and degrades to nothing when `enabled=False` (tests, `--quiet`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True)


class Bar:
    """A handle on one progress task: `advance`, `update(status=...)`, `log(text)`."""

    def __init__(self, progress: Progress | None, task: Any) -> None:
        self._progress = progress
        self._task = task

    def advance(self, n: float = 1, **fields: Any) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=n, **fields)

    def update(self, **fields: Any) -> None:
        if self._progress is not None:
            self._progress.update(self._task, **fields)

    def log(self, text: str) -> None:
        """A line printed above the live bar (kept in the scrollback)."""
        if self._progress is not None:
            self._progress.console.print(text)


def make_progress(enabled: bool = True) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
        disable=not enabled,
        refresh_per_second=8,
    )


@contextmanager
def progress_bar(description: str, total: float | None, enabled: bool = True) -> Iterator[Bar]:
    """Show one bar for the duration of the block."""
    if not enabled:
        yield Bar(None, None)
        return
    if total == 0:  # an empty bar with "ETA -:--:--" reads like a hang
        console.print(f"[bold]{description}[/]: up to date, nothing to do")
        yield Bar(None, None)
        return
    with make_progress(enabled) as progress:
        task = progress.add_task(description, total=total, status="")
        yield Bar(progress, task)
