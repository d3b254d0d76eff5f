"""Rules that earn their place: signals settled by margin, and each side's rule chosen by
what its placed trades earned after costs on the training rows (hand-made books)."""

from __future__ import annotations

import numpy as np
import pytest

from backtest.execution import Outcomes
from training.rules import Rule, RuleSetup, SideRule, TradeBook, choose_rule, side_score
from training.trades import CALL, PUT, settle


def test_settle_calls_puts_holds_and_settles_conflicts_by_margin():
    """Margins over each side's threshold: call only, put only, neither, both (the larger
    wins), an exact tie (HOLD), NaN and -inf (never)."""
    call = np.array([0.1, -0.1, -0.1, 0.0625, 0.125, 0.125, np.nan, -np.inf])
    put = np.array([-0.1, 0.2, -0.2, 0.125, 0.0625, 0.125, np.nan, 0.3])
    got = settle(call, put)
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, [1, -1, 0, -1, 1, 0, 0, -1])
    with pytest.raises(ValueError, match="one length"):
        settle(np.zeros(3), np.zeros(2))


def test_a_p_win_rule_is_the_threshold_rule_and_an_off_side_never_fires():
    """Score "p_win": BUY CALL when p_win >= t_call, BUY PUT when p_loss >= t_put (the rule
    before issue 24, same cases); a side that is off never fires, whatever its threshold."""
    proba = np.array(
        [
            [0.125, 0.25, 0.625],
            [0.5, 0.25, 0.25],
            [0.125, 0.5, 0.375],
            [0.375, 0.0625, 0.5625],
            [0.3125, 0.0625, 0.625],
            [0.375, 0.0, 0.625],
            [np.nan, np.nan, np.nan],
        ]
    )
    call = SideRule(CALL, True, 0.5, 0.1, 40, 0.1, "")
    put = SideRule(PUT, True, 0.25, 0.1, 40, 0.1, "")
    np.testing.assert_array_equal(Rule(call, put, "p_win").decide(proba), [1, -1, 0, -1, 1, 0, 0])
    off = SideRule(PUT, False, np.inf, -0.02, 40, 0.1, "")
    np.testing.assert_array_equal(Rule(call, off, "p_win").decide(proba), [1, 0, 0, 1, 1, 1, 0])
    edge = side_score(proba, CALL)
    np.testing.assert_allclose(edge[:2], [0.5, -0.25])
    np.testing.assert_allclose(side_score(proba, PUT)[:2], [-0.5, 0.25])


def hand_book(n_days: int = 200, n_symbols: int = 5, hold: int = 3, seed: int = 0):
    """Rows in (day, symbol) order; each trade enters the next day and exits `hold` days
    later; the call trade earns +10 % when the row's true edge is high, else -4 %; every
    put trade loses 2 %."""
    rng = np.random.default_rng(seed)
    day = np.repeat(np.arange(n_days), n_symbols)
    symbol = np.tile(np.arange(n_symbols), n_days)
    n = len(day)
    edge = rng.normal(size=n)
    good = edge > 1.0
    # flat bar rows, as Bars would number them: symbol-major
    bar_row = symbol * (n_days + hold + 2) + day
    dates = (np.datetime64("2020-01-01") + day).astype("datetime64[D]")
    outcomes = Outcomes(
        entry_index=bar_row + 1,
        exit_index=bar_row + 1 + hold,
        entry_date=dates + 1,
        exit_date=dates + 1 + hold,
        entry_price=np.ones(n),
        exit_price=np.ones(n),
        barrier=np.zeros(n),
        sessions=np.full(n, hold),
        both=np.zeros(n, dtype=bool),
    )
    net = {CALL: np.where(good, 0.10, -0.04), PUT: np.full(n, -0.02)}
    book = TradeBook(net, symbol, outcomes, {}, {}, None, bar_row)
    proba = np.column_stack(
        [1 / (1 + np.exp(edge)) * 0.6, np.full(n, 0.4), 1 / (1 + np.exp(-edge)) * 0.6]
    )
    return book, proba, good


def test_a_side_is_on_only_where_its_placed_trades_earn_after_costs():
    """Calls: the rule keeps the rows whose edge makes money, its training mean is what
    the placed trades earned (one position per symbol: overlapping signals of a symbol
    count once); puts lose on every trade: off, with the best candidate's mean in the
    reason."""
    book, proba, good = hand_book()
    rows = np.arange(len(good))
    rule = choose_rule(proba, rows, book, RuleSetup(min_trades=10), "2020-01-01 .. 2020-07-18")
    assert rule.call.on and rule.call.train_return > 0
    signals = rule.decide(proba)
    called = signals == CALL
    assert good[called].mean() > 0.8  # the rule found the paying rows
    assert not rule.put.on and rule.put.threshold == np.inf
    assert rule.put.train_return == pytest.approx(-0.02)
    assert "no BUY PUT rule earned its place on 2020-01-01 .. 2020-07-18" in rule.put.reason
    assert "best mean option return after costs -2.0%" in rule.put.reason
    assert not (signals == PUT).any()
    # the one-position rule: a symbol's signals within one hold count once
    from training.rules import placed

    kept = placed(book.outcomes, book.symbol, signals, CALL)
    assert kept.sum() <= called.sum() and rule.call.trades == kept.sum()


def test_too_few_placed_trades_means_no_rule():
    """Fewer placed trades than min_trades at every candidate: the side is off and says so."""
    book, proba, _ = hand_book(n_days=20)
    rule = choose_rule(proba, np.arange(len(proba)), book, RuleSetup(min_trades=500), "p")
    assert not rule.call.on and "placed 500 trades" in rule.call.reason
    with pytest.raises(ValueError, match="objective"):
        RuleSetup(objective="futures")


def test_the_verdict_trades_a_side_only_when_its_portfolio_grows_and_beats_both_rivals():
    """Trade it only when the placed trades earn after costs, the portfolio staked by the
    sizing rule grows, and its Sharpe beats the natr_14 ranking's and the best single
    model's; else the sentence names the test it failed."""
    import polars as pl

    from training.trading import SideResult, verdict_of

    def side(trades, mean, sharpe, annual):
        figures = {"call_placed_trades": trades, "call_placed_mean_return": mean}
        stats = {"sharpe": sharpe, "annual_return": annual, "max_drawdown": -0.5}
        return {CALL: SideResult(np.zeros(0, bool), figures, stats, pl.DataFrame())}

    def verdict(stack, natr=0.2, best=0.5):
        results = {
            "stack": stack,
            "baseline_volatility": side(100, 0.01, natr, 0.01),
            "baseline_best_base": side(100, 0.01, best, 0.01),
        }
        return verdict_of(results, CALL, 0.3, 0.3)

    ok, text = verdict(side(200, 0.05, 0.9, 0.30))
    assert ok and text.startswith("BUY CALL: trade it (200 placed trades, mean +5.0%")
    ok, text = verdict(side(0, np.nan, np.nan, np.nan))
    assert not ok and "placed no trade" in text
    ok, text = verdict(side(200, -0.01, 0.9, 0.30))
    assert not ok and "its trades lost money after costs" in text
    ok, text = verdict(side(200, 0.02, 0.9, -0.25))  # the long benchmark's puts
    assert not ok and "its portfolio lost money, -25.0% a year (max drawdown -50%)" in text
    ok, text = verdict(side(200, 0.05, 0.4, 0.30))
    assert not ok and "the best single model did as well or better" in text
