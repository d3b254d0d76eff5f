"""Yearly walk-forward windows and the field's ranking measures (rank IC, Newey-West t)."""

from __future__ import annotations

import numpy as np
import pytest

from training.metrics import daily_ranking, newey_west_t, paired_daily_lift, ranking_metrics
from training.walkforward import eligible_years, plan_layout, yearly_layout


def trading_days(start: str, end: str) -> np.ndarray:
    days = np.arange(np.datetime64(start), np.datetime64(end))
    return days[np.isin((days.view("int64") + 3) % 7, [0, 1, 2, 3, 4])]  # Mon..Fri


def test_every_year_with_three_years_before_it_is_a_window_the_partial_one_too():
    """Labels from mid-January 2002 to March 2021: 2005 .. 2021 are windows (17), each
    starting on its first trading day of January, the last one partial; the days before
    2005 are the inner blocks; every fit predicting a window ends H days before it."""
    days = trading_days("2002-01-15", "2021-04-01")
    assert eligible_years(days, 3) == list(range(2005, 2022))
    lay = plan_layout(days, 14)
    assert lay.kind == "yearly" and lay.names == tuple(str(y) for y in range(2005, 2022))
    for block in lay.windows:
        first = lay.days[lay.bounds[block]]
        assert str(first.astype("datetime64[Y]")) == lay.window_name(block)
        assert lay.days[lay.bounds[block] - 1] < np.datetime64(f"{lay.window_name(block)}-01-01")
        assert lay.fit_end(block) == lay.bounds[block] - 14
    assert lay.days[-1] == days[-1]  # the newest, partial year is a window
    assert lay.days[lay.bounds[lay.first_window]] == np.datetime64("2005-01-03")


def test_windows_asks_for_the_last_years_and_a_short_history_gets_equal_windows():
    """windows=4 tests 2018 .. 2021 (earlier years become training blocks); a history with
    fewer eligible years than asked gets that many equal windows over its last 20 %."""
    days = trading_days("2002-01-15", "2021-04-01")
    lay = plan_layout(days, 14, windows=4)
    assert lay.kind == "yearly" and lay.names == ("2018", "2019", "2020", "2021")
    short = days[days >= np.datetime64("2018-01-02")]
    assert eligible_years(short, 3) == [2021]
    assert plan_layout(short, 14).names == ("2021",)
    equal = plan_layout(short, 14, windows=4)
    assert equal.kind == "equal" and equal.names == ("1", "2", "3", "4")
    with pytest.raises(ValueError, match="no calendar year"):
        yearly_layout(short, 14, windows=4)


def test_daily_rank_ic_and_deciles_match_a_slow_reference():
    """Per day: Spearman with average ranks for ties (scipy), top minus bottom decile of
    realized returns and the top decile's win share, against a loop over days."""
    from scipy.stats import spearmanr

    rng = np.random.default_rng(3)
    dates = np.repeat(np.arange(30).astype("datetime64[D]"), 40)
    score = np.round(rng.normal(size=len(dates)), 1)  # ties
    realized = 0.2 * score + rng.normal(size=len(dates))
    win = realized > 0.5
    got = daily_ranking(dates, score, realized, win)
    for i, day in enumerate(np.unique(dates)):
        m = dates == day
        order = np.argsort(score[m], kind="stable")
        k = max(1, m.sum() // 10)
        assert got["ic"][i] == pytest.approx(spearmanr(score[m], realized[m]).statistic)
        spread = realized[m][order[-k:]].mean() - realized[m][order[:k]].mean()
        assert got["spread"][i] == pytest.approx(spread)
        assert got["top_win"][i] == pytest.approx(win[m][order[-k:]].mean())
    metrics = ranking_metrics(dates, score, realized, win, 1)
    assert metrics["rank_ic"] == pytest.approx(got["ic"].mean())
    assert metrics["rank_ic"] > 0.1 and metrics["rank_ic_t"] > 3
    # The win share read from another score's top decile (a model's P(win), while its IC
    # is read from p_win - p_loss): the IC and spread stay the ranking's own.
    pick = rng.permutation(score)
    picked = daily_ranking(dates, score, realized, win, pick=pick)
    assert picked["ic"].to_list() == got["ic"].to_list()
    for i, day in enumerate(np.unique(dates)):
        m = dates == day
        order = np.argsort(pick[m], kind="stable")
        k = max(1, m.sum() // 10)
        assert picked["top_win"][i] == pytest.approx(win[m][order[-k:]].mean())
    assert ranking_metrics(dates, score, realized, win, 1, pick=score) == metrics


def test_newey_west_t_with_no_lags_is_the_plain_t_and_grows_less_with_overlap():
    """lags 0: mean / (sd / sqrt(n)) with the population sd; a series of overlapping sums
    (autocorrelated) has a smaller Newey-West t than its naive t; a hand-checked example."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=500) + 0.1
    assert newey_west_t(x, 0) == pytest.approx(x.mean() / (x.std() / np.sqrt(len(x))))
    overlapping = np.convolve(rng.normal(size=514) + 0.05, np.ones(14), "valid")
    assert abs(newey_west_t(overlapping, 13)) < 0.6 * abs(newey_west_t(overlapping, 0))
    # [1, 2, 3, 4], 1 lag: e = [-1.5, -.5, .5, 1.5], gamma0 = 1.25, gamma1 = 0.3125,
    # S = 1.25 + 2 * 0.5 * 0.3125 = 1.5625, t = 2.5 / sqrt(1.5625 / 4) = 4.0
    assert newey_west_t(np.array([1.0, 2, 3, 4]), 1) == pytest.approx(4.0)
    assert np.isnan(newey_west_t(np.array([1.0]), 3))


def test_a_better_ranking_has_a_positive_paired_lift():
    """The lift of a score that knows the return over one that is noise is positive, with
    a large t; a score against itself lifts by exactly 0."""
    rng = np.random.default_rng(1)
    dates = np.repeat(np.arange(200).astype("datetime64[D]"), 30)
    realized = rng.normal(size=len(dates))
    good = realized + rng.normal(size=len(dates))
    noise = rng.normal(size=len(dates))
    lift = paired_daily_lift(dates, good, noise, realized, realized > 0.8, 5)
    assert lift["lift_rank_ic"] > 0.4 and lift["lift_rank_ic_t"] > 10
    same = paired_daily_lift(dates, good, good, realized, realized > 0.8, 5)
    assert same["lift_rank_ic"] == 0 and same["lift_top10_win_precision_daily"] == 0
