"""The ablation: what each ingredient of the final stack adds, on the same walk-forward.

Four runs on the same samples, windows and seeds, each adding one thing to the one before:

    catalog features only   the 179 own-history features, unweighted rows, all eight base
                            models at their defaults in the stack
    + context               the market, sector and cross-sectional columns
    + uniqueness weights    rows weighted by their label's average uniqueness
    final                   + settings tuned on the inner blocks; the stack a weighted mean
                            whose weights ensemble selection fits (training/stacking.py)

Each is a full `run_training` (its own run folder, checkpoints and report); fits a later
variant shares with an earlier one are not shared (different inputs or weights). The
pooled walk-forward figures of all four, beside the class prior, the best single base model
and the `natr_14` ranking, go into the final run's report.md as one table and into
`model_metrics` (model 'ablation: <row>', window 'pooled', under the final run's id).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.config import Recipe, TrainConfig
from training.pipeline import RunResult, run_training

VARIANTS: list[tuple[str, Recipe]] = [
    ("catalog features only", Recipe(context=False, weights=False, select=False, tune=False)),
    ("+ context", Recipe(context=True, weights=False, select=False, tune=False)),
    ("+ uniqueness weights", Recipe(context=True, weights=True, select=False, tune=False)),
    (
        "final: + tuning + ensemble selection",
        Recipe(context=True, weights=True, select=True, tune=True),
    ),
]

COLUMNS = {  # metric -> header
    "accuracy": "accuracy",
    "log_loss": "log loss",
    "top10_win_precision": "top-10 % win precision",
    "call_precision": "call precision",
    "put_precision": "put precision",
}


def ablation_rows(results: list[tuple[str, RunResult]]) -> list[tuple[str, dict[str, float]]]:
    """(row label, metric -> value): each variant's stack, then the baselines of the last
    run (they do not depend on the recipe, except the best base model)."""
    rows = [(label, r.metrics["stack"]) for label, r in results]
    last = results[-1][1].metrics
    rows += [
        ("class prior (no model)", last["baseline_prior"]),
        ("best single base model, final run", last["baseline_best_base"]),
        ("rank by natr_14 (no model)", last["baseline_volatility"]),
    ]
    return rows


def ablation_markdown(results: list[tuple[str, RunResult]]) -> list[str]:
    """The ablation section of report.md: one table, pooled over the test windows."""
    lines = [
        "",
        "## Ablation: what each ingredient adds (pooled walk-forward test windows)",
        "",
        "| run | " + " | ".join(COLUMNS.values()) + " |",
        "| --- |" + " --- |" * len(COLUMNS),
    ]
    for label, metrics in ablation_rows(results):
        cells = []
        for metric in COLUMNS:
            value = metrics.get(metric)
            cells.append("–" if value is None or value != value else f"{value:.3f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Runs: " + "; ".join(f"{label}: `{r.run_id}`" for label, r in results) + ".",
        "Each row is a full walk-forward run with its own report; every choice in it was "
        "made on training periods only.",
    ]
    return lines


def run_ablation(
    db_path: Path,
    config: TrainConfig,
    variants: list[tuple[str, Recipe]] = VARIANTS,
    **kwargs: Any,
) -> list[tuple[str, RunResult]]:
    """Run every variant: `config` with each variant's recipe (keyword arguments go to
    `run_training`), then append the table to the last run's report and store it. Returns
    [(label, result)] in `variants` order."""
    from stockml import store
    from training.recorder import RunFolder, runs_root

    results = [
        (label, run_training(db_path, config.replace(recipe=recipe), **kwargs))
        for label, recipe in variants
    ]
    final = results[-1][1]
    run = RunFolder.open(runs_root(db_path), final.run_id)
    report = run.file("report.md").read_text()
    run.write_text("report.md", report + "\n".join(ablation_markdown(results)) + "\n")
    metrics = [
        ("pooled", f"ablation: {label}", metric, float(value))
        for label, m in ablation_rows(results)
        for metric, value in m.items()
        if metric in COLUMNS and value == value
    ]
    con = store.connect(db_path)
    try:
        store.append_metrics(con, final.run_id, metrics)
    finally:
        store.close(con)
    return results
