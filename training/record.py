"""What a finished run leaves in the store: its `training_runs` row, every figure as
`model_metrics` rows, its signal trades and the record of every fit, written together
(stockml/store/runs.py) so a reader never sees half a run.

`model_metrics` rows are (window, model, metric, value): every window's and the pooled
scores of the stack, each base model and each baseline; the pooled intervals as
`<metric>_ci_low/_ci_high` (lifts as `lift_<metric>` on the baseline's rows); each window's
thresholds (`t_call`, `t_put`), whether it was calibrated, which base models its stack reads
(`in_stack`) and their weights (`stack_weight`); the leakage audit (`audit_random_split`);
the tuning grid's choice and log losses.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from stockml import store

Metric = tuple[str, str, str, float]  # (window, model, metric, value)


def metric_rows(
    evaluation, windows, audit: dict, tuning: dict, models: list[str], live_rule=None
) -> list[Metric]:
    """Every figure of a run as `model_metrics` rows (module docstring), with each window's
    rule and the live one (`live_rule`, window 'live')."""
    metrics = [
        (window, model, metric, float(value))
        for window, table in evaluation.by_window.items()
        for model, values in table.items()
        for metric, value in values.items()
    ]
    for key, (point, low, high) in evaluation.intervals.items():
        if key.startswith("stack "):
            model, metric = "stack", key.split()[1]
        else:
            model, metric = key.split()[2], f"lift_{key.split()[3]}"
            metrics.append(("pooled", model, metric, point))
        metrics += [
            ("pooled", model, f"{metric}_ci_low", low),
            ("pooled", model, f"{metric}_ci_high", high),
        ]
    for baseline, lifts in evaluation.ranking_lifts.items():
        metrics += [("pooled", baseline, k, float(v)) for k, v in lifts.items()]
    for w in windows:
        d = w.decision
        metrics += [
            (w.name, "stack", "t_call", d.rule.t_call),
            (w.name, "stack", "t_put", d.rule.t_put),
            (w.name, "stack", "calibrated", float(d.calibration.calibrator is not None)),
        ]
        metrics += rule_rows(w.name, d.rule)
    if live_rule is not None:
        metrics += rule_rows("live", live_rule)
    metrics += [("pooled", "audit_random_split", k, v) for k, v in audit.items()]
    for model, t in tuning.items():
        metrics.append(("pooled", model, "tuning_chosen", float(t["chosen"])))
        metrics += [
            ("pooled", model, f"tuning_log_loss_{i}", float(v)) for i, v in t["scores"].items()
        ]
    for w in windows:
        if w.kept:
            metrics += [(w.name, m, "in_stack", float(m in w.kept)) for m in models]
        metrics += [(w.name, m, "stack_weight", v) for m, v in w.weights.items()]
    return metrics


def rule_rows(window: str, rule) -> list[Metric]:
    """A rule (training.rules.Rule) as `model_metrics` rows of model `stack`: per side
    `<side>_rule_on` (1 or 0), `<side>_rule_train_return` (the training period's mean return
    after costs of the rule's placed trades, that chose it), `<side>_rule_threshold` and
    `<side>_rule_train_trades`."""
    out = []
    for name, side in (("call", rule.call), ("put", rule.put)):
        out += [
            (window, "stack", f"{name}_rule_on", float(side.on)),
            (window, "stack", f"{name}_rule_train_return", float(side.train_return)),
            (window, "stack", f"{name}_rule_threshold", float(side.threshold)),
            (window, "stack", f"{name}_rule_train_trades", float(side.trades)),
        ]
    return out


def run_info(samples, lay, day_index: np.ndarray, windows) -> dict[str, Any]:
    """The `training_runs` dates and counts: the first window's training period, all test
    windows, and their rows."""
    return {
        "train_start": lay.days[0],
        "train_end": lay.days[lay.fit_end(lay.first_window) - 1],
        "test_start": lay.days[lay.bounds[lay.first_window]],
        "test_end": lay.days[-1],
        "n_train": int(np.sum(day_index < lay.fit_end(lay.first_window))),
        "n_test": int(sum(len(w.rows) for w in windows)),
    }


def run_notes(windows, live_rule, traded) -> dict[str, str]:
    """The run's sentences for `run_notes`: the verdict per side, each window's rule and
    the live one."""
    notes = {f"verdict.{n}": traded.verdict[s][1] for n, s in (("call", 1), ("put", -1))}
    for name, rule in [*((w.name, w.decision.rule) for w in windows), ("live", live_rule)]:
        notes[f"rule.{name}.call"] = rule.call.reason
        notes[f"rule.{name}.put"] = rule.put.reason
    return notes


def record_run(
    con,
    run,
    config,
    info: dict,
    metrics: list[Metric],
    trades,
    fits,
    samples: int,
    curves=None,
    notes=None,
) -> None:
    """The run's row (its flat params, as data), metrics, trades, fit records and equity
    curves, in one transaction. `run` is the RunFolder, `config` the TrainConfig, `fits`
    FitRecords."""
    store.record_training_run(
        con,
        run.run_id,
        config.profile.name,
        info,
        fingerprint=config.digest(),
        code_version=" ".join(f"{k} {v}" for k, v in config.code),
        params=json.dumps({**config.params(), "samples": samples}),
        run_dir=str(run.path),
        metrics=metrics,
        trades=trades,
        fits=fits,
        curves=curves,
        notes=notes,
    )
