"""report.md: the run in words and tables, rendered from what the run computed (its
evaluation, windows, track record, audit and tuning), written through the run folder.
Renders only: no model is fitted and no score is computed here."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stockml.defaults import CLASS_NAMES as NAMES
from stockml.defaults import CLASSES
from training.report_trades import placed_lines, verdict_lines


def _f(value: float, spec: str = ".3f") -> str:
    return "–" if value is None or not np.isfinite(value) else format(value, spec)


def verdict(low: float, high: float) -> str:
    if not (np.isfinite(low) and np.isfinite(high)):
        return "no interval (too few signals)"
    if low > 0:
        return "**the stack is better**"
    if high < 0:
        return "**the stack is worse**"
    return "not distinguishable (interval spans 0)"


@dataclass
class ReportData:
    """Everything report.md states about a run (assembled by training/pipeline.py)."""

    run_id: str
    profile: Any  # backtest.labels.Profile
    lay: Any  # training.walkforward.Layout
    windows: list  # training.windows.Window, in order
    by_window: dict  # window name ("2008", or "1".."K"), "pooled" -> model -> metric -> value
    cis: dict  # "stack <metric>" / "lift over <baseline> <metric>" -> (point, low, high)
    record: dict  # the stack's placed trades, per side (training.trading.track_record)
    audit: dict
    audit_model: str
    models: list[str]
    recipe: str = ""  # what the run learned from (training.config.Recipe.describe)
    # model -> {"chosen": index, "candidates": [description], "scores": {index: log loss}}
    tuning: dict = field(default_factory=dict)
    ranking_lifts: dict = field(default_factory=dict)  # baseline -> the stack's daily lifts
    traded: Any = None  # training.trading.TradeReport
    live_rule: Any = None  # training.rules.Rule of the live model
    setup: Any = None  # training.rules.RuleSetup
    refit_every: int = 1  # the base models refitted at every that many-th test window


def refit_text(every: int) -> str:
    """The report's sentence on the refit cadence (none when every window is refitted)."""
    if every == 1:
        return ""
    nth = {2: "second", 3: "third"}.get(every, f"{every}th")
    return (
        f" The base models are refitted at every {nth} test window only (a cost choice, "
        "benchmarks/bench_refit.py): a window between refits is predicted by the fit of the "
        "window before, trained on days before that window, so up to "
        f"{every - 1} year(s) staler than a refit would be; its stack, rules and "
        "calibration are still its own."
    )


def write_report(run, data: ReportData, plots=()) -> Path:
    """report.md: the verdict in plain words, signals in trade terms, every window and the
    pooled test rows beside every baseline with intervals, thresholds and calibration, the
    leakage audit. `run` is the RunFolder written to; returns the report's path."""
    run_id, profile, lay, windows = data.run_id, data.profile, data.lay, data.windows
    by_window, cis, record, audit = data.by_window, data.cis, data.record, data.audit
    audit_model, models = data.audit_model, data.models
    pooled = by_window["pooled"]
    stack = pooled["stack"]
    lines = [
        f"# Training run {run_id}",
        "",
        f"Profile `{profile.name}`: hold up to {profile.hold_days} trading days, target "
        f"{profile.take_profit:+.0%}, stop {profile.stop_loss:+.0%}. Walk-forward over "
        f"{lay.describe()}: each "
        f"window's base models, stack, calibration and thresholds come only from days "
        f"ending {profile.hold_days} trading days before it starts (purge). Every base model "
        "is fitted once per date block on the days before it and predicts that block; those "
        "forward out-of-fold predictions train the stack of every later window."
        + refit_text(data.refit_every),
        "",
    ]
    if data.traded is not None:
        lines += verdict_lines(data.traded, data.live_rule, data.setup, profile)
        lines += placed_lines(data.traded)
    lines += ["## Skill against the baselines", ""]
    verdicts = [verdict(lo, hi) for k, (_, lo, hi) in cis.items() if k.startswith("lift over")]
    better = sum("better" in v for v in verdicts)
    worse = sum("worse" in v for v in verdicts)
    lines += [
        f"In short: of {len(verdicts)} comparisons with a model-free or single-model baseline, "
        f"the stack is significantly better on {better}, significantly worse on {worse}, and "
        f"indistinguishable on {len(verdicts) - better - worse}. Where it is not better, "
        "the simpler rule would have served as well.",
        "",
    ]
    for key, (point, low, high) in cis.items():
        if key.startswith("lift over"):
            _, _, baseline, metric = key.split()
            lines.append(
                f"- {metric} vs `{baseline}`: lift {point:+.4f} [{low:+.4f}, {high:+.4f}] — "
                f"{verdict(low, high)}"
            )
    lines += [
        "",
        "Lifts are stack minus baseline (for log loss, baseline minus stack: positive is "
        "better), pooled over the test windows, with 95 % intervals from a block bootstrap "
        "over test dates (all stock-days of a date move together). A figure near the old "
        "system's 86-90 % accuracy would mean leakage, not skill.",
        "",
        "## Pooled test rows: the stack beside every baseline",
        "",
        "| model | accuracy | log loss | top-10% win prec. | call prec. | call cov. | put prec. "
        "| put cov. | call mean exit ret. | put mean exit ret. |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    first = windows[0].name
    best = models[int(by_window[first]["baseline_best_base"]["model_index"])]
    for name, m in pooled.items():
        label = f"{name} ({best} in window {first})" if name == "baseline_best_base" else name
        lines.append(
            f"| {label} | {_f(m.get('accuracy', np.nan))} | {_f(m.get('log_loss', np.nan))} | "
            f"{_f(m['top10_win_precision'])} | {_f(m['call_precision'])} | "
            f"{_f(m['call_coverage'], '.1%')} | {_f(m['put_precision'])} | "
            f"{_f(m['put_coverage'], '.1%')} | {_f(m['call_mean_exit_return'], '+.2%')} | "
            f"{_f(m['put_mean_exit_return'], '+.2%')} |"
        )
    lines += [
        "",
        f"Base rates in the test windows: win {_f(record['base_rate_win'])}, loss "
        f"{_f(record['base_rate_loss'])}. Mean exit returns are the stock's own (negative is "
        "what a put wants). Ranking baselines make as many calls and puts per window as the "
        "stack did.",
        "",
        "## 95 % intervals of the stack (pooled)",
        "",
        "| metric | value | low | high |",
        "| --- | --- | --- | --- |",
    ]
    for key, (point, low, high) in cis.items():
        if key.startswith("stack "):
            lines.append(
                f"| {key[6:]} | {_f(point, '.4f')} | {_f(low, '.4f')} | {_f(high, '.4f')} |"
            )
    lines += [
        "",
        "## Every window",
        "",
        "| window | test days | training days | test rows | stack acc. | majority acc. | "
        "stack log loss | prior log loss | call prec. (cov.) | put prec. (cov.) | top-10% stack "
        "| top-10% natr_14 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for w in windows:
        m = by_window[w.name]
        s = m["stack"]
        lines.append(
            f"| {w.name} | {_day_span(lay, w)} | {w.train_days[0]} .. {w.train_days[1]} | "
            f"{len(w.rows):,} | {_f(s['accuracy'])} | {_f(m['baseline_majority']['accuracy'])} "
            f"| {_f(s['log_loss'])} | {_f(m['baseline_prior']['log_loss'])} | "
            f"{_f(s['call_precision'])} ({_f(s['call_coverage'], '.1%')}) | "
            f"{_f(s['put_precision'])} ({_f(s['put_coverage'], '.1%')}) | "
            f"{_f(s['top10_win_precision'])} | "
            f"{_f(m['baseline_volatility']['top10_win_precision'])} |"
        )
    lines += ranking_lines(data)
    lines += ["", "## Rules and calibration, chosen on each training period", ""]
    for w in windows:
        d = w.decision
        lines += [f"- window {w.name}: {d.call_reason}; {d.put_reason}; {d.calibration.reason}."]
    lines += [
        "",
        "Each side's rule is the threshold on its edge (p_win - p_loss for a call, p_loss - "
        "p_win for a put) whose placed trades earned the most after costs on cross-fitted "
        "(out-of-sample) stack probabilities of the window's training period, among those "
        "signalling 1 % .. 20 % of its stock-days with at least 30 trades; a side whose best "
        "rule lost money there is off for the window (training/rules.py). A day meeting "
        "both takes the larger margin.",
        "",
        "Brier score per class on the pooled test rows (lower is better; the class prior in "
        "brackets): "
        + ", ".join(
            f"{NAMES[c]} {stack[f'brier_{NAMES[c]}']:.4f} "
            f"[{pooled['baseline_prior'][f'brier_{NAMES[c]}']:.4f}]"
            for c in CLASSES
        )
        + ". The reliability diagram is `reliability.png`.",
    ]
    lines += model_choice_lines(data)
    lines += [
        "",
        "## Leakage audit",
        "",
        f"The same {audit_model} on a random 80/20 row split scores accuracy "
        f"{audit['accuracy']:.3f} (balanced {audit['balanced_accuracy']:.3f}); walk-forward, "
        f"the stack scores {stack['accuracy']:.3f} pooled. The difference is what a random "
        "split of overlapping label windows leaks, not skill.",
    ]
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{p.stem}]({p.name})" for p in plots]
    return run.write_text("report.md", "\n".join(lines) + "\n")


# (baseline, metric, higher is better): what "the stack beats it in a window" means.
BEATS = (
    ("baseline_prior", "log_loss", False),
    ("baseline_best_base", "log_loss", False),
    ("baseline_volatility_model", "log_loss", False),
    ("baseline_volatility_model", "rank_ic", True),
    ("baseline_best_base", "rank_ic", True),
    ("baseline_volatility", "top10_win_precision_daily", True),
    ("baseline_volatility", "top10_win_precision", True),
)


def beaten_share(by_window: dict, windows: list, baseline: str, metric: str, higher: bool):
    """(windows the stack beats `baseline` on `metric` in, windows with both values)."""
    wins = total = 0
    for w in windows:
        a = by_window[w.name].get("stack", {}).get(metric, np.nan)
        b = by_window[w.name].get(baseline, {}).get(metric, np.nan)
        if np.isfinite(a) and np.isfinite(b):
            total += 1
            wins += (a > b) if higher else (a < b)
    return wins, total


def ranking_lines(data: ReportData) -> list[str]:
    """The field's ranking skill: each window's daily rank IC (Spearman of p_win - p_loss
    with the exit return, across the day's stocks) with its Newey-West t, the daily
    top-decile win share and top-minus-bottom decile return, beside the volatility
    ranking, the volatility-only model and the best base model; pooled lifts with t; the
    share of windows in which the stack beats each baseline."""
    by_window, windows = data.by_window, data.windows
    lines = [
        "",
        "## Ranking skill: rank IC, window by window",
        "",
        "Each test day, the day's stocks ranked by the stack's p_win - p_loss: the Spearman "
        "correlation of that ranking with the realised exit return (rank IC), the share of "
        "wins among the top 10 % and the top-minus-bottom decile mean exit return, averaged "
        "over the window's days, with Newey-West t-statistics (H - 1 lags: neighbouring "
        "days' labels overlap). `natr_14` ranks by volatility; the volatility model is a "
        "multinomial logistic regression on natr_14 alone, fitted on each training period: "
        "what lies beyond it is what the features add to volatility.",
        "",
        "| window | stack rank IC (t) | vol. model IC | natr_14 IC | best base IC | stack "
        "top-10 % win/day | natr_14 top-10 % win/day | stack top - bottom (t) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in [*(w.name for w in windows), "pooled"]:
        m = by_window[name]
        s = m["stack"]
        lines.append(
            f"| {name} | {_f(s.get('rank_ic'), '+.3f')} ({_f(s.get('rank_ic_t'), '.1f')}) | "
            f"{_f(m.get('baseline_volatility_model', {}).get('rank_ic'), '+.3f')} | "
            f"{_f(m['baseline_volatility'].get('rank_ic'), '+.3f')} | "
            f"{_f(m['baseline_best_base'].get('rank_ic'), '+.3f')} | "
            f"{_f(s.get('top10_win_precision_daily'))} | "
            f"{_f(m['baseline_volatility'].get('top10_win_precision_daily'))} | "
            f"{_f(s.get('top_minus_bottom'), '+.2%')} ({_f(s.get('top_minus_bottom_t'), '.1f')}) |"
        )
    lines += ["", "Pooled, the stack's daily lift over each ranking (mean, Newey-West t):", ""]
    for baseline, lifts in data.ranking_lifts.items():
        lines.append(
            f"- `{baseline}`: rank IC {_f(lifts['lift_rank_ic'], '+.4f')} "
            f"(t {_f(lifts['lift_rank_ic_t'], '.1f')}), daily top-10 % win share "
            f"{_f(lifts['lift_top10_win_precision_daily'], '+.4f')} "
            f"(t {_f(lifts['lift_top10_win_precision_daily_t'], '.1f')})"
        )
    lines += ["", "Windows in which the stack beats each baseline:", ""]
    for baseline, metric, higher in BEATS:
        wins, total = beaten_share(by_window, windows, baseline, metric, higher)
        if total:
            lines.append(f"- {metric} vs `{baseline}`: {wins} of {total}")
    lines += [
        "",
        "The per-window figures are in `yearly.png`. If the universe is today's index "
        "members (as the shared S&P 500 data is), every figure is flattered by survivorship: "
        "stocks that left the index before today are missing from every window.",
    ]
    return lines


def model_choice_lines(data: ReportData) -> list[str]:
    """What the stack learned from and which base models and settings it kept, all chosen
    on training periods: the tuning grid's log losses and each window's ensemble weights."""
    lines = ["", "## What the stack learns from, chosen on the training period", ""]
    if data.recipe:
        lines += [f"Recipe: {data.recipe}.", ""]
    if data.tuning:
        lines += [
            "Settings: each base model's default, one more regularised alternative and, when "
            "rows are weighted, the default without weights, fitted on the inner blocks "
            "(before the first test window) and chosen by forward out-of-fold log loss on "
            "rows whose labels end before it (training/tuning.py):",
            "",
            "| model | default | alternatives (log loss) | chosen |",
            "| --- | --- | --- | --- |",
        ]
        for model, t in data.tuning.items():
            scores = {int(k): v for k, v in t["scores"].items()}
            names = t["candidates"]
            alternatives = "; ".join(
                f"{scores.get(i, float('nan')):.4f} ({name})" for i, name in enumerate(names) if i
            )
            lines.append(
                f"| {model} | {scores.get(0, float('nan')):.4f} | {alternatives or '-'} | "
                f"{names[t['chosen']]} |"
            )
        lines.append("")
    selected = [w for w in data.windows if getattr(w, "selection", None)]
    if selected:
        lines += [
            "Each window's stack is a weighted mean of base models' probabilities, weights "
            "from ensemble selection on the window's training period (Caruana et al. 2004: "
            "greedy picks, with replacement, of the model that most lowers the mean's "
            "forward out-of-fold log loss; a model that never lowers it gets no weight). "
            "A mean rather than a learned meta-learner: it cannot sharpen probabilities "
            "a change of regime turns wrong (training/stacking.py). All eight are still "
            "fitted and scored in the tables above.",
            "",
        ]
        for w in selected:
            weights = ", ".join(f"{m} {v:.2f}" for m, v in w.weights.items())
            lines.append(f"- window {w.name}: {weights}")
        last = selected[-1]
        lines += ["", f"Why, in window {last.name}:", ""]
        lines += [f"- {model}: {why}" for model, why in last.selection.items()]
    return lines


def _day_span(lay, window) -> str:
    block = lay.first_window + window.number - 1
    return f"{lay.days[lay.bounds[block]]} .. {lay.days[lay.bounds[block + 1] - 1]}"
