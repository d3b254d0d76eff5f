"""`stockml train`: walk-forward training of the stack, evaluated in trade terms."""

from __future__ import annotations

from pathlib import Path

import typer

from backtest.costs import TradeCosts
from stockml.commands.profile_options import (
    hold_days_option,
    profile_option,
    stop_loss_option,
    take_profit_option,
)
from stockml.store import DEFAULT_DB
from training.config import REFIT_EVERY

_COSTS = TradeCosts()


def train(
    db: Path = typer.Option(
        DEFAULT_DB, "--db", help="DuckDB store with prices (features and labels are refreshed)."
    ),
    profile: str = profile_option(),
    hold_days: int = hold_days_option(),
    take_profit: float = take_profit_option(),
    stop_loss: float = stop_loss_option(),
    windows: int = typer.Option(
        None,
        "--windows",
        min=1,
        max=100,
        help="Test only the last N yearly walk-forward windows (default: every calendar year "
        "with 3 years of history before it). A history too short for N yearly windows gets "
        "N equal windows over its last 20% of days instead (default 4).",
    ),
    refit_every: int = typer.Option(
        REFIT_EVERY,
        "--refit-every",
        min=1,
        max=100,
        help="Refit the base models at every Nth test window; the windows between are "
        "predicted by the fit before them, trained on days before its own window (the "
        "stack, rules and calibration are still chosen for every window). 1 refits every "
        "window.",
    ),
    train_symbols: str = typer.Option(
        None,
        "--train-symbols",
        help="Comma-separated symbols to train on (default: every stored symbol).",
    ),
    symbols: str = typer.Option(
        None,
        "--symbols",
        help="Comma-separated symbols the test windows' figures and trades cover (the traded "
        "universe; default: every symbol trained on).",
    ),
    trade: str = typer.Option(
        "option",
        "--trade",
        help="What the rules are chosen on and the test windows are traded as: option (the "
        "suggested at-the-money contract) or stock.",
    ),
    option_spread: float = typer.Option(
        None,
        "--option-spread",
        help=f"Share of the option premium lost each way (default {_COSTS.option_spread:g}).",
        show_default=False,
    ),
    stock_commission: float = typer.Option(
        None,
        "--stock-commission",
        help=f"Stock commission each way, a fraction (default {_COSTS.stock_commission:g}).",
        show_default=False,
    ),
    slippage: float = typer.Option(
        None,
        "--slippage",
        help=f"Stock slippage each way, a fraction (default {_COSTS.stock_slippage:g}).",
        show_default=False,
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
    ablation: bool = typer.Option(
        False,
        "--ablation",
        help="Also run the ablation (catalog features only; + context; + uniqueness "
        "weights; the final stack): four walk-forward runs, one table in the final report.",
    ),
    memory_limit: str = typer.Option(
        None,
        "--memory-limit",
        help="Memory the refreshes of features, context and labels may use, e.g. 6G "
        "(default: a quarter of RAM).",
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars or tables."),
) -> None:
    """Walk-forward over yearly test windows, each with its own training period (every
    labelled day before it, less the H days whose labels reach into it), base models fitted
    per date block as Ray tasks with checkpoints; each window's stack is the weighted mean
    of the base models' probabilities that ensemble selection picks on their forward
    out-of-fold predictions; thresholds chosen on the training period. Then the live signal
    model on every labelled day, and report.md beside the store, with every baseline, rank
    IC and 95% intervals. The pooled table goes to stdout; progress to stderr and the JSON
    log."""
    from backtest.labels import resolve_profile
    from stockml import store
    from stockml.logs import configure_logging, log_path_for
    from stockml.memory import MemoryBudget
    from stockml.output import result_console
    from stockml.progress import console
    from training.config import TrainConfig
    from training.pipeline import run_training
    from training.ray_runner import check_ray_address

    check_ray_address(ray_address)  # seconds, not the minutes ray.init retries for
    store.require_store(db)  # a mistyped --db is an error, not a new empty store
    chosen = resolve_profile(profile, hold_days, take_profit, stop_loss)
    configure_logging(log_path_for(db))
    config = TrainConfig.create(
        chosen,
        parse_models(models),
        windows=windows,
        refit_every=refit_every,
        train_symbols=parse_symbols(train_symbols, "--train-symbols"),
        traded_symbols=parse_symbols(symbols, "--symbols"),
        rules=rule_setup(trade, option_spread, stock_commission, slippage),
    )
    MemoryBudget.of(memory_limit)  # a bad --memory-limit fails now, in one line
    store.keep_reading_copy(db)  # what `stockml sql` and `signals` read meanwhile
    options = dict(
        memory_limit=memory_limit, ray_address=ray_address, fresh=fresh, progress=not quiet
    )
    if ablation:
        from training.ablation import run_ablation

        runs = run_ablation(db, config, **options)
        result = runs[-1][1]
        if not quiet:
            print_ablation(result_console(), runs)
    else:
        result = run_training(db, config, **options)
    if not quiet:
        print_summary(result_console(), result, console)


def print_summary(console, result, notes=None) -> None:
    """The pooled walk-forward table (the stack, the baselines and every base model) on
    `console`; the labels used and the symbols without samples on `notes` (default: the
    same console)."""
    from rich.table import Table

    def fmt(value, spec=".3f"):
        return "–" if value is None or value != value else format(value, spec)

    notes = notes or console
    notes.print(f"labels: {result.profile}")
    for reason in result.without_samples:
        notes.print(f"[yellow]no training sample from[/] {reason}")
    table = Table(title=f"pooled walk-forward test windows, run {result.run_id}")
    columns = {
        "accuracy": "acc.",
        "log_loss": "log loss",
        "rank_ic": "rank IC",
        "rank_ic_t": "IC t",
        "top10_win_precision": "top10% win",
        "top10_win_precision_daily": "top10%/day",
        "call_placed_trades": "calls",
        "call_placed_mean_return": "call mean",
        "put_placed_trades": "puts",
        "put_placed_mean_return": "put mean",
    }
    specs = {
        "rank_ic": "+.3f",
        "rank_ic_t": ".1f",
        "call_placed_trades": ".0f",
        "put_placed_trades": ".0f",
        "call_placed_mean_return": "+.1%",
        "put_placed_mean_return": "+.1%",
    }
    table.add_column("model", no_wrap=True)
    for header in columns.values():
        table.add_column(header)
    for name, m in result.metrics.items():
        table.add_row(name, *(fmt(m.get(c), specs.get(c, ".3f")) for c in columns))
    console.print(table)
    for sentence in result.verdict:
        console.print(sentence)
    console.print(f"report (verdict, intervals, trades, plots): {result.report}")


def print_ablation(console, runs) -> None:
    """The ablation table: each variant's pooled stack figures, then the baselines."""
    from rich.table import Table

    from training.ablation import COLUMNS, ablation_rows

    table = Table(title="ablation, pooled walk-forward test windows")
    table.add_column("run", no_wrap=True)
    for header in COLUMNS.values():
        table.add_column(header)
    for label, metrics in ablation_rows(runs):
        values = [metrics.get(c) for c in COLUMNS]
        table.add_row(label, *("–" if v is None or v != v else f"{v:.3f}" for v in values))
    console.print(table)


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


def rule_setup(trade: str, option_spread, stock_commission, slippage):
    """The RuleSetup of the flags (training/rules.py; costs: backtest/costs.py). Raises
    InputError for a trade other than option or stock, or a cost outside [0, 1)."""
    from stockml.errors import InputError
    from training.rules import RuleSetup

    given = {
        "option_spread": option_spread,
        "stock_commission": stock_commission,
        "stock_slippage": slippage,
    }
    try:
        costs = TradeCosts(**{k: v for k, v in given.items() if v is not None})
        return RuleSetup(objective=trade, costs=costs)
    except ValueError as exc:
        raise InputError(str(exc).replace("objective", "--trade")) from exc


def parse_symbols(text: str | None, flag: str) -> tuple[str, ...] | None:
    """A comma-separated symbol list as Yahoo spells them, or None when the flag is absent.
    Raises InputError for an empty list."""
    from stockml.errors import InputError

    if text is None:
        return None
    names = tuple(dict.fromkeys(n.strip().upper() for n in text.split(",") if n.strip()))
    if not names:
        raise InputError(f"{flag} is empty: name at least one symbol, or leave the flag out")
    return names


def register(app: typer.Typer) -> None:
    app.command(
        "train",
        epilog="Example: stockml train --models logistic,lightgbm --windows 1   (a quick look)",
    )(train)
