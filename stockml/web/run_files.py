"""The one place the web app reads a run folder (`runs/<run id>/` of `stockml train`).

The server is told its runs folder when it starts (`stockml serve --runs`, by default
`runs/` beside the store, where `stockml train` writes) and opens a run's folder only
through the run folder's owner (`training.recorder.RunFolder`: a checked run id under
that root), never through the `training_runs.run_dir` a store holds (whoever can write
the store would otherwise choose which files the server reads). Nothing here unpickles:
the pages read the explanations `stockml signals` stored; from a run folder they read
only the report's PNG plots.
"""

from __future__ import annotations

from pathlib import Path

from stockml.errors import StockmlError


def run_plots(runs: Path, run_id: str) -> dict[str, Path]:
    """{file name: path} of the report's plots (`*.png`) in the run's folder under
    `runs`; empty when the id is not a run id or the folder is missing."""
    from training.recorder import RunFolder

    try:
        folder = RunFolder.open(runs, run_id).path
    except StockmlError:
        return {}
    inside = Path(runs).resolve()
    return {
        p.name: p
        for p in sorted(folder.glob("*.png"))
        if p.is_file() and p.resolve().is_relative_to(inside)
    }
