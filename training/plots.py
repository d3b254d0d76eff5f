"""PNG plots for the run folder: what report.md shows in numbers, at a glance."""

from __future__ import annotations

from pathlib import Path

import numpy as np

NAMES = ("loss", "timeout", "win")


def write_plots(
    run_dir: Path, metrics: dict, audit: dict, y_test: np.ndarray, stack_proba: np.ndarray
) -> list[Path]:
    """models.png (scores vs baseline and audit), confusion.png (the stack),
    win_precision.png (precision of the most confident win calls by coverage)."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no screen
    import matplotlib.pyplot as plt

    paths = []
    names = list(metrics)
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(names) + 1.5))
    pos = np.arange(len(names))
    ax.barh(pos - 0.2, [metrics[n]["accuracy"] for n in names], 0.4, label="accuracy")
    ax.barh(
        pos + 0.2, [metrics[n]["balanced_accuracy"] for n in names], 0.4, label="balanced accuracy"
    )
    ax.axvline(
        metrics["stack"]["majority_baseline"], color="black", ls="--", label="majority class"
    )
    ax.axvline(audit["accuracy"], color="red", ls=":", label="random-split audit (leaky)")
    ax.set_yticks(pos, names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("test period")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Honest date split: every model against the baselines")
    fig.tight_layout()
    paths.append(_save(fig, run_dir / "models.png"))

    stack = metrics["stack"]
    matrix = np.array([[stack[f"confusion_{a}_as_{g}"] for g in NAMES] for a in NAMES])
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(matrix, cmap="Blues")
    for i in range(3):
        for j in range(3):
            ax.text(j, i, f"{matrix[i, j]:.0f}", ha="center", va="center", color="tab:red")
    ax.set_xticks(range(3), NAMES)
    ax.set_yticks(range(3), NAMES)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title("Stack, test period")
    fig.tight_layout()
    paths.append(_save(fig, run_dir / "confusion.png"))

    order = np.argsort(-stack_proba[:, 2])
    hits = np.cumsum(y_test[order] == 1)
    coverage = np.arange(1, len(order) + 1) / len(order)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(coverage * 100, hits / np.arange(1, len(order) + 1), label="stack's win calls")
    ax.axhline(np.mean(y_test == 1), color="black", ls="--", label="base rate of wins")
    ax.set_xlabel("share of test samples called, most confident first (%)")
    ax.set_ylabel("precision of win")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax.set_title("Would the confident calls have paid?")
    fig.tight_layout()
    paths.append(_save(fig, run_dir / "win_precision.png"))
    plt.close("all")
    return paths


def _save(fig, path: Path) -> Path:
    temp = path.with_suffix(".tmp.png")
    fig.savefig(temp, dpi=110)
    temp.replace(path)
    return path
