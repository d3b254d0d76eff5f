"""Decision rules that earn their place in what the user trades.

A rule is, per side, a threshold on that side's edge: p_win - p_loss for BUY CALL, p_loss -
p_win for BUY PUT (`RuleSetup.score`: "edge"; "p_win" ranks calls by p_win and puts by
p_loss alone, the rule before issue 24). It is chosen on the training period's cross-fitted
probabilities by the mean return after costs of the trades it would have placed there:
entered at the next session's open, one open position per symbol and side, exited at the
barriers or the hold limit (backtest/execution.py), as options (the suggested contract at
Black-Scholes, the spread each way: training/option_trades.py) or, for a stock trader, as
the stock (`RuleSetup.objective`). Candidates are the thresholds at which the rule signals
1 %, 2 %, ..., 20 % of the training stock-days (before the one-position rule), each with at
least `min_trades` placed trades; the one with the best mean after costs is kept, and only
when that mean is above zero is the side on. Otherwise the side is off for that window (and,
for the live rule, for `stockml signals`), and the reason says what the best candidate
would have earned. Nothing here sees a test window: the caller passes training rows.

Both sides can fire on one row only when their thresholds sum to zero or less; then the
larger margin over its threshold wins and an exact tie holds (training/trades.py `settle`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from backtest.costs import TradeCosts
from stockml.defaults import LOSS_COL, WIN_COL
from training.trades import CALL, HOLD, PUT, settle

SIDES = {"call": CALL, "put": PUT}
ACTION = {CALL: "BUY CALL", PUT: "BUY PUT"}


@dataclass(frozen=True)
class RuleSetup:
    """How rules are chosen: on `objective` ("option" or "stock") trades with `costs`,
    the score "edge" (p_win - p_loss, or its mirror for puts) or "p_win" (each side's own
    probability), coverage candidates from `min_coverage` to `max_coverage` of the
    training stock-days in steps of one point, at least `min_trades` placed trades.
    Raises ValueError for anything else."""

    objective: str = "option"
    score: str = "edge"
    costs: TradeCosts = field(default_factory=TradeCosts)
    min_coverage: float = 0.01
    max_coverage: float = 0.20
    min_trades: int = 30

    def __post_init__(self) -> None:
        if self.objective not in ("option", "stock"):
            raise ValueError(f"objective must be 'option' or 'stock', not {self.objective!r}")
        if self.score not in ("edge", "p_win"):
            raise ValueError(f"score must be 'edge' or 'p_win', not {self.score!r}")
        if not 0 < self.min_coverage <= self.max_coverage <= 1:
            raise ValueError("need 0 < min_coverage <= max_coverage <= 1")
        if not (isinstance(self.min_trades, int) and self.min_trades >= 1):
            raise ValueError(f"min_trades must be a positive integer, not {self.min_trades!r}")


def side_score(proba: np.ndarray, side: int, kind: str = "edge") -> np.ndarray:
    """(n,) the score a rule thresholds for `side` from (n, 3) probabilities."""
    proba = np.asarray(proba, dtype=float)
    own, other = (WIN_COL, LOSS_COL) if side == CALL else (LOSS_COL, WIN_COL)
    return proba[:, own] - proba[:, other] if kind == "edge" else proba[:, own]


class TradeBook(NamedTuple):
    """What every sample row's trade would have done, both sides (issue 24's "trades as they
    could be placed"), computed once per run: `net[side]` (n,) the return after costs of
    the objective's trade (NaN: no entry, no price), `symbol` (n,) int codes for the
    one-position rule, `outcomes` (backtest.execution.Outcomes), `stock[side]` and
    `option[side]` the full returns (TradeReturns, training.option_trades.OptionTrades),
    `bars` and `rows` (each sample's row of the bars)."""

    net: dict[int, np.ndarray]
    symbol: np.ndarray
    outcomes: object
    stock: dict[int, object]
    option: dict[int, object]
    bars: object
    rows: np.ndarray


def book_trades(con, samples, profile, setup: RuleSetup) -> TradeBook:
    """The TradeBook of `samples` (training.dataset.Samples, rows in (date, symbol) order)
    for label `profile`'s barriers, read from the store's prices."""
    from backtest.execution import read_bars, rows_of, stock_returns, trade_outcomes
    from training.option_trades import option_trades

    bars = read_bars(con, sorted(set(samples.symbols.tolist())))
    rows = rows_of(bars, samples.symbols, samples.dates)
    outcomes = trade_outcomes(bars, rows, profile.hold_days, profile.take_profit, profile.stop_loss)
    stock = {s: stock_returns(outcomes, s, setup.costs) for s in (CALL, PUT)}
    option = {
        s: option_trades(bars, rows, outcomes, s, profile.hold_days, setup.costs)
        for s in (CALL, PUT)
    }
    chosen = option if setup.objective == "option" else stock
    net = {s: np.asarray(chosen[s].net, dtype=float) for s in (CALL, PUT)}
    symbol = np.searchsorted(bars.symbols, samples.symbols.astype(str)).astype(np.int64)
    return TradeBook(net, symbol, outcomes, stock, option, bars, rows)


@dataclass
class SideRule:
    """One side's rule: on or off, its threshold on the side's score (inf when off), and
    what chose it on the training period: the mean return after costs of its placed trades
    (of the best candidate when off), their number and the share of stock-days signalled."""

    side: int
    on: bool
    threshold: float
    train_return: float
    trades: int
    coverage: float
    reason: str


@dataclass
class Rule:
    """A window's (or the live model's) decision rule: one SideRule per side."""

    call: SideRule
    put: SideRule
    score: str = "edge"

    def decide(self, proba: np.ndarray) -> np.ndarray:
        """int8 (n,) signals of (n, 3) probabilities: +1 BUY CALL, -1 BUY PUT, 0 HOLD."""
        margins = []
        for rule in (self.call, self.put):
            if not rule.on:
                margins.append(np.full(len(proba), -np.inf))
                continue
            margins.append(side_score(proba, rule.side, self.score) - rule.threshold)
        return settle(*margins)

    def side(self, side: int) -> SideRule:
        return self.call if side == CALL else self.put

    @property
    def t_call(self) -> float:
        """The call side's threshold on its score (inf: the side is off)."""
        return self.call.threshold

    @property
    def t_put(self) -> float:
        """The put side's threshold on its score (inf: the side is off)."""
        return self.put.threshold


def placed(outcomes, symbol: np.ndarray, signals: np.ndarray, side: int) -> np.ndarray:
    """bool (n,): which rows open a trade of `side` when `signals` (int8 (n,)) fire, one
    position per symbol and side; `outcomes` (backtest.execution.Outcomes) and `symbol`
    (int codes) of the same n rows, in date order."""
    from backtest.execution import first_free

    code = np.where(signals == side, side, 0).astype(np.int8)
    return first_free(outcomes, code, symbol) & (signals == side)


def choose_side(
    proba: np.ndarray, rows: np.ndarray, book: TradeBook, side: int, setup: RuleSetup, span: str
) -> SideRule:
    """The rule of `side` chosen on training `rows` (sample rows, date order) and their
    cross-fitted probabilities `proba` (len(rows), 3); `span` names the period in words."""
    score = side_score(proba, side, setup.score)
    finite = np.isfinite(score)
    shares = np.arange(round(setup.min_coverage * 100), round(setup.max_coverage * 100) + 1) / 100
    name = ACTION[side]
    best: tuple[float, float, int, float] | None = None
    outcomes, symbol, returns = book.outcomes.take(rows), book.symbol[rows], book.net[side][rows]
    if finite.any():
        for t in np.unique(np.quantile(score[finite], 1 - shares, method="higher")):
            signals = np.where(score >= t, side, HOLD).astype(np.int8)
            net = returns[placed(outcomes, symbol, signals, side)]
            net = net[np.isfinite(net)]
            if len(net) < setup.min_trades:
                continue
            candidate = (float(np.mean(net)), float(t), len(net), float(np.mean(score >= t)))
            if best is None or candidate[0] > best[0]:
                best = candidate
    if best is None:
        return SideRule(
            side,
            False,
            np.inf,
            np.nan,
            0,
            0.0,
            f"no {name} rule placed {setup.min_trades} trades on {span}",
        )
    mean, threshold, trades, coverage = best
    what = f"{setup.objective} return after costs"
    if mean <= 0:
        return SideRule(
            side,
            False,
            np.inf,
            mean,
            trades,
            coverage,
            f"no {name} rule earned its place on {span}: best mean {what} {mean:+.1%} "
            f"({trades} trades)",
        )
    return SideRule(
        side,
        True,
        threshold,
        mean,
        trades,
        coverage,
        f"{name} when {_score_name(side, setup.score)} >= {threshold:+.4f}: mean {what} "
        f"{mean:+.1%} over {trades} placed trades on {span} ({coverage:.0%} of stock-days "
        "signalled)",
    )


def choose_rule(
    proba: np.ndarray, rows: np.ndarray, book: TradeBook, setup: RuleSetup, span: str
) -> Rule:
    """Both sides' rules on training `rows` (see `choose_side`)."""
    return Rule(
        choose_side(proba, rows, book, CALL, setup, span),
        choose_side(proba, rows, book, PUT, setup, span),
        setup.score,
    )


def _score_name(side: int, kind: str) -> str:
    if kind == "p_win":
        return "p_win" if side == CALL else "p_loss"
    return "p_win - p_loss" if side == CALL else "p_loss - p_win"
