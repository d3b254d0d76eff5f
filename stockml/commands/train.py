"""`stockml train`: eight base models on Ray, stacked on the training period only."""

from __future__ import annotations

from pathlib import Path

import typer

from stockml.store import DEFAULT_DB


def train(
    db: Path = typer.Option(
        DEFAULT_DB, "--db", help="DuckDB store with prices (features and labels are refreshed)."
    ),
    profile: str = typer.Option(
        "swing", "--profile", help="Label profile to learn: swing or options."
    ),
    ray_address: str = typer.Option(
        None,
        "--ray-address",
        help="Ray cluster to use (default $RAY_ADDRESS, else a local Ray on this machine).",
    ),
    models: str = typer.Option(
        None,
        "--models",
        help="Comma-separated subset of the base models to train (default: all eight: "
        "random_forest,xgboost,lightgbm,extra_trees,gradient_boosting,mlp,logistic,svm).",
    ),
    fresh: bool = typer.Option(
        False, "--fresh", help="Ignore checkpoints of an interrupted run and start over."
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars or tables."),
) -> None:
    """Split by date (last 20% of days = test, H days purged), fit every (model, fold) as a
    Ray task with checkpoints, stack on out-of-fold predictions of the training period,
    predict the test period once, and write report.md beside the store."""
    from stockml.logs import configure_logging, log_path_for
    from stockml.progress import console
    from training.pipeline import run_training

    configure_logging(log_path_for(db))
    chosen = parse_models(models)
    result = run_training(db, profile, ray_address, fresh, progress=not quiet, models=chosen)
    if not quiet:
        from rich.table import Table

        table = Table(title=f"test period, run {result.run_id}")
        for col in (
            "model",
            "accuracy",
            "balanced acc.",
            "macro F1",
            "log loss",
            "top-10% win prec.",
        ):
            table.add_column(col)
        for name, m in result.metrics.items():
            table.add_row(
                name,
                f"{m['accuracy']:.3f}",
                f"{m['balanced_accuracy']:.3f}",
                f"{m['macro_f1']:.3f}",
                f"{m['log_loss']:.3f}",
                f"{m['top10_win_precision']:.3f}",
            )
        console.print(table)
        console.print(
            f"majority-class baseline {result.metrics['stack']['majority_baseline']:.3f}; "
            f"report: {result.report}"
        )


def parse_models(text: str | None) -> list[str] | None:
    from stockml.errors import InputError
    from training.models import BASE_MODELS

    if not text:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in BASE_MODELS]
    if unknown or not names:
        given = ", ".join(unknown) or "(none given)"
        raise InputError(f"unknown model {given}: choose from {', '.join(BASE_MODELS)}")
    return list(dict.fromkeys(names))


def register(app: typer.Typer) -> None:
    app.command("train")(train)
