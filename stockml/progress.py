"""Progress of every long step, for whoever reads it: a terminal, a pipe, a log file.

`progress_bar(name, total, enabled)` shows one step for the duration of a block;
`make_progress(enabled)` gives the rich `Progress` a stage drives itself (ingest: one task,
updated from its event loop). Either way the same three readers are served:

    stderr is a terminal    a rich bar per step: count, percent, elapsed, ETA, status
    stderr is anything else one line when a step starts, one when it ends, and one every
                            heartbeat while it runs (count, percent, rate, elapsed, ETA,
                            status): never a bar cut to the pipe's 80 columns
    the JSON log (logs.py)  `step_started`, `progress` every heartbeat, `step_done`, with
                            the same figures, whatever stderr is and even with `--quiet`

The ETA is rich's (what is left at the recent rate) unless the step gives its own: a
task field `eta_at`, the `time.monotonic()` at which it expects to end (the train bar's,
weighted by each fit's cost: training/fit_progress.py).

The heartbeat is HEARTBEAT_S seconds, or `$STOCKML_HEARTBEAT_S` (tests use 1). A step
whose total is 0 says "up to date, nothing to do" instead of an empty bar that reads like
a hang. `enabled=False` (`--quiet`) draws nothing on stderr; the log still gets it all.
Results never pass through here: they go to stdout (stockml/output.py).
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

HEARTBEAT_S = 30.0
HEARTBEAT_ENV = "STOCKML_HEARTBEAT_S"

# Diagnostics (progress, notes, warnings) go to stderr; off a terminal, a long line stays
# one line instead of being wrapped at 80 columns.
_stderr_is_terminal = Console(stderr=True).is_terminal
console = Console(stderr=True, soft_wrap=not _stderr_is_terminal)


def heartbeat_interval() -> float:
    """Seconds between two periodic progress lines: $STOCKML_HEARTBEAT_S, else HEARTBEAT_S."""
    text = os.environ.get(HEARTBEAT_ENV)
    try:
        value = float(text) if text else HEARTBEAT_S
    except ValueError:
        value = HEARTBEAT_S
    return value if value > 0 else HEARTBEAT_S


def clock(seconds: float | None) -> str:
    """12.3 -> '0:12', 3725 -> '1:02:05'; None or infinite -> '-:--'."""
    if seconds is None or not math.isfinite(seconds):
        return "-:--"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _count(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _rate(per_second: float) -> str:
    """0.05 -> '3/min', 2.5 -> '2.5/s', 12345.6 -> '12,346/s'."""
    if per_second < 1:
        return f"{per_second * 60:.2g}/min"
    return f"{per_second:.3g}/s" if per_second < 1000 else f"{per_second:,.0f}/s"


def remaining_of(task: Task) -> float | None:
    """Seconds left of `task`: its own estimate (field `eta_at`, a time.monotonic() deadline;
    never below 0), else rich's from the recent rate; None when unknown."""
    at = task.fields.get("eta_at")
    if at is not None:
        return max(at - task.get_time(), 0.0)
    return task.time_remaining


class _Remaining(TimeRemainingColumn):
    """rich's remaining-time column, reading `remaining_of`."""

    def render(self, task: Task) -> Text:
        if task.fields.get("eta_at") is None or task.total is None or task.finished:
            return super().render(task)
        return Text(clock(remaining_of(task)), style="progress.remaining")


class StepProgress(Progress):
    """A rich `Progress` that also reports each task in plain lines and JSON events (see
    the module doc). Drawn as bars only when stderr is a terminal and `enabled`."""

    def __init__(self, enabled: bool = True, heartbeat: float | None = None) -> None:
        self.enabled = enabled
        self.plain = enabled and not console.is_terminal
        super().__init__(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            _Remaining(),
            TextColumn("{task.fields[status]}"),
            console=console,
            disable=not enabled or self.plain,
            refresh_per_second=8,
            redirect_stdout=False,  # results printed meanwhile stay on stdout
        )
        self.heartbeat = heartbeat or heartbeat_interval()
        self._log = structlog.get_logger("progress")
        self._reported: dict[TaskID, float] = {}  # running task -> time of its last line
        self._stop_beats = threading.Event()
        self._beats: threading.Thread | None = None

    def start(self) -> None:
        super().start()
        self._stop_beats.clear()
        self._beats = threading.Thread(target=self._beat, name="progress-heartbeat", daemon=True)
        self._beats.start()

    def stop(self) -> None:
        self._stop_beats.set()
        if self._beats is not None:
            self._beats.join()
            self._beats = None
        for task_id in list(self._reported):
            self._end(task_id)
        super().stop()

    def add_task(
        self,
        description: str,
        start: bool = True,
        total: float | None = 100.0,
        completed: int = 0,
        visible: bool = True,
        **fields: Any,
    ) -> TaskID:
        fields.setdefault("status", "")
        task_id = super().add_task(description, start, total, completed, visible, **fields)
        figures = self._figures(task_id)
        done = f" ({_count(completed)} already done)" if completed else ""
        todo = "" if total is None else f", {_count(total)} to do{done}"
        self._say(f"{description}: started{todo}")
        self._log.info("step_started", **figures)
        self._reported[task_id] = time.monotonic()
        return task_id

    def _figures(self, task_id: TaskID) -> dict[str, Any]:
        """The numbers every line and event carries, read under rich's lock."""
        with self._lock:
            task = self._tasks[task_id]
            elapsed = task.elapsed or 0.0
            done = task.completed
            rate = task.speed
            if rate is None and elapsed > 0 and done:
                rate = done / elapsed
            remaining = None
            if task.fields.get("eta_at") is not None:
                remaining = remaining_of(task)
            elif task.total is not None and rate:
                remaining = max(task.total - done, 0) / rate
            return {
                "step": task.description,
                "done": done,
                "total": task.total,
                "percent": None if not task.total else round(100 * done / task.total, 1),
                "rate_per_s": None if rate is None else float(f"{rate:.4g}"),
                "elapsed_s": round(elapsed, 1),
                "eta_s": None if remaining is None else round(remaining, 1),
                "status": str(task.fields.get("status", "")),
            }

    def _line(self, f: dict[str, Any]) -> str:
        count = _count(f["done"]) + ("" if f["total"] is None else f"/{_count(f['total'])}")
        parts = [f"{f['step']}: {count}"]
        if f["percent"] is not None:
            parts[0] += f" ({f['percent']:.0f}%)"
        if f["rate_per_s"] is not None:
            parts.append(_rate(f["rate_per_s"]))
        parts.append(f"{clock(f['elapsed_s'])} elapsed")
        if f["total"] is not None:
            parts.append(f"ETA {clock(f['eta_s'])}")
        if f["status"]:
            parts.append(f["status"])
        return " · ".join(parts)

    def _beat(self) -> None:
        while not self._stop_beats.wait(min(1.0, self.heartbeat / 4)):
            now = time.monotonic()
            for task_id, last in list(self._reported.items()):
                if now - last >= self.heartbeat:
                    figures = self._figures(task_id)
                    self._say(self._line(figures))
                    self._log.info("progress", **figures)
                    self._reported[task_id] = now

    def _end(self, task_id: TaskID) -> None:
        """The step's last line: done when it reached its total, else where it stopped
        (an error, Ctrl-C, or a total that was more than the work)."""
        del self._reported[task_id]
        f = self._figures(task_id)
        finished = f["total"] is not None and f["done"] >= f["total"]
        if finished:
            rate = "" if f["rate_per_s"] is None else f" ({_rate(f['rate_per_s'])})"
            text = f"{f['step']}: done, {_count(f['done'])} in {clock(f['elapsed_s'])}{rate}"
        else:
            text = f"{f['step']}: stopped at {self._line(f).split(': ', 1)[1]}"
        self._say(text)
        self._log.info("step_done" if finished else "step_stopped", **f)

    def _say(self, text: str) -> None:
        if self.plain:
            self.console.print(text, markup=False, highlight=False)


class Bar:
    """A handle on one step: `advance(n, status=...)`, `update(total=..., status=...)`,
    `log(text)`."""

    def __init__(self, progress: StepProgress | None, task: TaskID | None) -> None:
        self._progress = progress
        self._task = task

    def advance(self, n: float = 1, **fields: Any) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=n, **fields)

    def update(self, **fields: Any) -> None:
        if self._progress is not None:
            self._progress.update(self._task, **fields)

    def log(self, text: str) -> None:
        """A line printed above the live bar (kept in the scrollback), or on its own line
        off a terminal; nothing with `enabled=False`."""
        if self._progress is not None and self._progress.enabled:
            self._progress.console.print(text)


def make_progress(enabled: bool = True) -> StepProgress:
    """A `Progress` for a stage that manages its own tasks (see the module doc)."""
    return StepProgress(enabled)


@contextmanager
def progress_bar(description: str, total: float | None, enabled: bool = True) -> Iterator[Bar]:
    """One step for the duration of the block: a bar, plain lines, JSON events."""
    if total == 0:  # an empty bar with "ETA -:--:--" reads like a hang
        if enabled:
            console.print(f"[bold]{description}[/]: up to date, nothing to do")
        structlog.get_logger("progress").info("step_done", step=description, done=0, total=0)
        yield Bar(None, None)
        return
    with make_progress(enabled) as progress:
        task = progress.add_task(description, total=total)
        yield Bar(progress, task)
