"""The one place the web app reads a run folder (`runs/<run id>/` of `stockml train`).

The server is told its runs folder when it starts (`stockml serve --runs`, by default
`runs/` beside the store, where `stockml train` writes) and reads only below it: the
folder of a run is `<runs>/<run id>`, the id checked to be a plain name, never the
`training_runs.run_dir` a store holds (whoever can write the store would otherwise choose
which files the server reads). Nothing here unpickles: the pages read the explanations
`stockml signals` stored; from a run folder they read only the report's PNG plots.
"""

from __future__ import annotations

import re
from pathlib import Path

# Run ids are hex digests; any plain name is accepted, never a path or a dot name.
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


def run_plots(runs: Path, run_id: str) -> dict[str, Path]:
    """{file name: path} of the report's plots (`*.png`) in the run's folder under
    `runs`; empty when the id is not a plain name or the folder is missing."""
    if not RUN_ID.fullmatch(run_id):
        return {}
    folder = runs / run_id
    if not folder.is_dir():
        return {}
    inside = runs.resolve()
    return {
        p.name: p
        for p in sorted(folder.glob("*.png"))
        if p.is_file() and p.resolve().is_relative_to(inside)
    }
