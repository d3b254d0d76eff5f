"""Metrics, baselines, the random-split leakage audit, and report.md in the run folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

CLASSES = np.array([-1, 0, 1])
NAMES = {-1: "loss", 0: "timeout", 1: "win"}


def evaluate(y: np.ndarray, proba: np.ndarray, y_train: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy, macro F1, log loss, per-class precision/recall, the
    majority-class baseline (from the training period) and the precision of the 10% most
    confident win calls."""
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        f1_score,
        log_loss,
        precision_recall_fscore_support,
    )

    proba = proba / proba.sum(axis=1, keepdims=True)  # float32 models sum to 1 +- 1e-7
    predicted = CLASSES[proba.argmax(axis=1)]
    out = {
        "accuracy": accuracy_score(y, predicted),
        "balanced_accuracy": balanced_accuracy_score(y, predicted),
        "macro_f1": f1_score(y, predicted, average="macro", labels=CLASSES, zero_division=0),
        "log_loss": log_loss(y, np.clip(proba, 1e-12, 1), labels=CLASSES),
    }
    precision, recall, _, _ = precision_recall_fscore_support(
        y, predicted, labels=CLASSES, zero_division=0
    )
    for c, p, r in zip(CLASSES, precision, recall, strict=True):
        out[f"precision_{NAMES[c]}"] = float(p)
        out[f"recall_{NAMES[c]}"] = float(r)
    majority = CLASSES[np.argmax([np.mean(y_train == c) for c in CLASSES])]
    out["majority_baseline"] = float(np.mean(y == majority))
    top = np.argsort(-proba[:, 2])[: max(1, len(y) // 10)]
    out["top10_win_precision"] = float(np.mean(y[top] == 1))
    out["base_rate_win"] = float(np.mean(y == 1))
    for actual in CLASSES:
        for guess in CLASSES:
            out[f"confusion_{NAMES[actual]}_as_{NAMES[guess]}"] = float(
                np.sum((y == actual) & (predicted == guess))
            )
    return {k: float(v) for k, v in out.items()}


def random_split_audit(samples, model: str, seed: int) -> dict[str, float]:
    """The old system's mistake, measured: the same model on a random 80/20 row split,
    where overlapping 14-day windows of the same stock land on both sides."""
    from threadpoolctl import threadpool_limits

    from training.models import BASE_MODELS

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(samples.y))
    cut = int(len(order) * 0.8)
    train, test = order[:cut], order[cut:]
    with threadpool_limits(2):
        fitted = BASE_MODELS[model](2, seed).fit(samples.x[train], samples.y[train])
        proba = fitted.predict_proba(samples.x[test])
    result = evaluate(samples.y[test], proba, samples.y[train])
    audit = {k: result[k] for k in ("accuracy", "balanced_accuracy", "macro_f1")}
    audit["model_index"] = float(list(BASE_MODELS).index(model))
    return audit


def write_report(
    run_dir: Path,
    run_id: str,
    profile,
    info: dict,
    metrics: dict,
    audit: dict,
    plots: tuple[Path, ...] | list[Path] = (),
) -> Path:
    """report.md: per model and the stack, next to the baselines and the leakage audit."""
    from training.models import BASE_MODELS

    lines = [
        f"# Training run {run_id}",
        "",
        f"Profile `{profile.name}`: hold {profile.hold_days} days, "
        f"target {profile.take_profit:+.0%}, stop {profile.stop_loss:+.0%}.",
        f"Training period {info['train_start']} .. {info['train_end']} "
        f"({info['n_train']:,} samples); test period {info['test_start']} .. "
        f"{info['test_end']} ({info['n_test']:,} samples), "
        f"{profile.hold_days} trading days purged between them.",
        "",
        "| model | accuracy | balanced acc. | macro F1 | log loss | win precision | win recall "
        "| top-10% win precision |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, m in metrics.items():
        lines.append(
            f"| {name} | {m['accuracy']:.3f} | {m['balanced_accuracy']:.3f} | {m['macro_f1']:.3f} "
            f"| {m['log_loss']:.3f} | {m['precision_win']:.3f} | {m['recall_win']:.3f} "
            f"| {m['top10_win_precision']:.3f} |"
        )
    stack = metrics["stack"]
    audit_model = list(BASE_MODELS)[int(audit["model_index"])]
    lines += [
        "",
        f"Majority-class baseline (the training period's most common outcome): "
        f"{stack['majority_baseline']:.3f}. Base rate of wins in the test period: "
        f"{stack['base_rate_win']:.3f}.",
        "",
        "## Leakage audit",
        "",
        f"The same {audit_model} on a random 80/20 row split scores accuracy "
        f"{audit['accuracy']:.3f} (balanced {audit['balanced_accuracy']:.3f}); on the honest "
        f"date split the stack scores {stack['accuracy']:.3f}. The difference is what a random "
        "split of overlapping 14-day windows leaks, not skill.",
        "",
        "## Confusion matrix of the stack (rows: actual, columns: predicted)",
        "",
        "| actual \\ predicted | loss | timeout | win |",
        "| --- | --- | --- | --- |",
    ]
    for actual in ("loss", "timeout", "win"):
        cells = " | ".join(
            f"{stack[f'confusion_{actual}_as_{g}']:.0f}" for g in ("loss", "timeout", "win")
        )
        lines.append(f"| {actual} | {cells} |")
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{p.stem}]({p.name})" for p in plots]
    path = run_dir / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
