"""PNG plots for the run folder: what report.md shows in numbers, at a glance."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stockml.defaults import CLASS_NAMES, CLASSES

NAMES = tuple(CLASS_NAMES[c] for c in CLASSES)


def write_plots(run, evaluation, samples, traded, audit: dict, horizon: int) -> list[Path]:
    """models.png (pooled accuracy vs baselines and the leaky audit), confusion.png (the
    stack), win_precision.png (precision of the most confident win calls by coverage,
    beside the natr_14 ranking), reliability.png (calibration per class), equity.png
    (each side's placed trades as a portfolio beside the natr_14 ranking and the best single
    model traded the same way and holding the universe: training/trading.py), yearly.png
    (rank IC and daily top-decile win share per test window), written into the RunFolder
    `run` from the Evaluation `evaluation`. Returns their paths."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no screen
    import matplotlib.pyplot as plt

    from training.calibration import reliability
    from training.trading import POSITIONS

    rows, pooled = evaluation.rows, evaluation.pooled
    y = samples.y[rows]
    metrics = evaluation.by_window["pooled"]
    stack = metrics["stack"]
    paths = []
    names = [n for n in metrics if "accuracy" in metrics[n]]
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(names) + 1.5))
    pos = np.arange(len(names))
    ax.barh(pos - 0.2, [metrics[n]["accuracy"] for n in names], 0.4, label="accuracy")
    ax.barh(
        pos + 0.2, [metrics[n]["balanced_accuracy"] for n in names], 0.4, label="balanced accuracy"
    )
    ax.axvline(stack["majority_baseline"], color="black", ls="--", label="majority class")
    ax.axvline(audit["accuracy"], color="red", ls=":", label="random-split audit (leaky)")
    ax.set_yticks(pos, names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("pooled walk-forward test windows")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Honest walk-forward: every model against the baselines")
    fig.tight_layout()
    paths.append(_save(fig, run.file("models.png")))

    matrix = np.array([[stack[f"confusion_{a}_as_{g}"] for g in NAMES] for a in NAMES])
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(matrix, cmap="Blues")
    for i in range(3):
        for j in range(3):
            ax.text(j, i, f"{matrix[i, j]:.0f}", ha="center", va="center", color="tab:red")
    ax.set_xticks(range(3), NAMES)
    ax.set_yticks(range(3), NAMES)
    ax.set_xlabel("predicted (most likely)")
    ax.set_ylabel("actual")
    ax.set_title("Stack, pooled test windows")
    fig.tight_layout()
    paths.append(_save(fig, run.file("confusion.png")))

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, label in (("stack", "stack's p_win"), ("baseline_volatility", "natr_14 alone")):
        order = np.argsort(-np.nan_to_num(pooled[name]["score"], nan=-np.inf), kind="stable")
        hits = np.cumsum(y[order] == 1) / np.arange(1, len(order) + 1)
        ax.plot(np.arange(1, len(order) + 1) / len(order) * 100, hits, label=label)
    ax.axhline(np.mean(y == 1), color="black", ls="--", label="base rate of wins")
    ax.set_xlabel("share of test stock-days called, highest score first (%)")
    ax.set_ylabel("precision of win")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax.set_title("Would the confident calls have paid?")
    fig.tight_layout()
    paths.append(_save(fig, run.file("win_precision.png")))

    fig, ax = plt.subplots(figsize=(5, 4.5))
    table = reliability(pooled["stack"]["proba"], y)
    for c, name in zip(CLASSES, NAMES, strict=True):
        pts = [r for r in table if r["class"] == c]
        ax.plot([r["predicted"] for r in pts], [r["observed"] for r in pts], "o-", label=name)
    ax.plot([0, 1], [0, 1], color="grey", ls=":", label="perfect calibration")
    ax.set_xlabel("predicted probability (bin mean)")
    ax.set_ylabel("observed frequency")
    ax.legend(fontsize=8)
    ax.set_title("Reliability of the stack, pooled test windows")
    fig.tight_layout()
    paths.append(_save(fig, run.file("reliability.png")))

    fig, axes = plt.subplots(2, 2, figsize=(10, 6), sharex=True, height_ratios=[3, 1])
    universe = traded.universe[1]
    positions = POSITIONS[traded.objective]
    labels = {
        "stack": "stack",
        "baseline_volatility": "natr_14 ranking",
        "baseline_best_base": "best single model",
    }
    for col, (side, name) in enumerate(((1, "BUY CALL"), (-1, "BUY PUT"))):
        top, bottom = axes[0, col], axes[1, col]
        for model, label in labels.items():
            result = traded.results[model][side]
            curve, stats = result.curve, result.stats
            top.plot(
                curve["date"].to_numpy(),
                curve["equity"].to_numpy(),
                label=f"{label} (Sharpe {stats['sharpe']:.2f}, max DD {stats['max_drawdown']:.0%})",
            )
            bottom.plot(curve["date"].to_numpy(), curve["drawdown"].to_numpy())
        top.plot(
            universe["date"].to_numpy(),
            universe["equity"].to_numpy(),
            color="grey",
            ls="--",
            label="hold the traded universe",
        )
        top.set_title(f"{name}: placed trades, 1/{positions} of equity each, after costs")
        top.legend(fontsize=7)
        top.set_ylabel("equity (start 1)")
        bottom.set_ylabel("drawdown")
    fig.autofmt_xdate()
    fig.tight_layout()
    paths.append(_save(fig, run.file("equity.png")))
    paths.append(yearly_plot(plt, run, evaluation.by_window))
    plt.close("all")
    return paths


def yearly_plot(plt, run, by_window: dict) -> Path:
    """yearly.png: each test window's rank IC of the stack beside the volatility model and
    the natr_14 ranking, and its daily top-decile win share beside natr_14's."""
    names = [w for w in by_window if w != "pooled"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True)
    pos = np.arange(len(names))
    series = (
        ("stack", "stack"),
        ("baseline_volatility_model", "natr_14 model"),
        ("baseline_volatility", "natr_14 ranking"),
    )
    for i, (model, label) in enumerate(series):
        values = [by_window[w].get(model, {}).get("rank_ic", np.nan) for w in names]
        top.bar(pos + (i - 1) * 0.27, values, 0.27, label=label)
    top.axhline(0, color="black", lw=0.8)
    top.set_ylabel("daily rank IC")
    top.legend(fontsize=8)
    top.set_title("Ranking skill per test window")
    for model, label in (("stack", "stack"), ("baseline_volatility", "natr_14 ranking")):
        values = [
            by_window[w].get(model, {}).get("top10_win_precision_daily", np.nan) for w in names
        ]
        bottom.plot(pos, values, "o-", label=label)
    bottom.set_ylabel("top-10 % win share per day")
    bottom.set_xticks(pos, names, rotation=45 if len(names) > 8 else 0)
    bottom.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, run.file("yearly.png"))


def _save(fig, path: Path) -> Path:
    from stockml.files import atomic_write

    return atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=110))
