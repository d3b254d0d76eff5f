"""Trades as they could be placed: the per-signal outcome kernel and the one-position filter.

Contract of `trade_outcomes_nb(o, h, lo, c, block_end, rows, hold, take_profit, stop_loss)`:
    o, h, lo, c  flat float64 adjusted bars of all symbols back to back, each in date order
                 (the layout of features/ and backtest/nb.py);
    block_end    int64 (n,): for each signal, the end (exclusive) of its symbol's rows;
    rows         int64 (n,): the signal day t of each signal, a flat row index (its close
                 produced the signal); a negative row is no signal;
    hold         H sessions; take_profit > 0 and stop_loss < 0 as fractions.
For a signal on day t the position is entered at the open of session t+1 (the earliest
real fill), and the barriers are set from that price: upper = open[t+1] (1 + take_profit),
lower = open[t+1] (1 + stop_loss). Sessions t+1 .. t+H are scanned in order:
    - from session t+2 on, an open at or beyond a barrier exits at that open (a gap
      through the stop fills worse than the stop, a gap through the target better); on the
      entry session the open is the entry itself, inside both barriers;
    - then the session's range, which on the entry session lies wholly after the fill (the
      open is the day's first trade): a low reaching `lower` exits at `lower` (-1), else a
      high reaching `upper` exits at `upper` (+1); a session touching both counts as the
      lower barrier, as in the labels (a daily bar cannot say which came first; for a call
      the doubt goes against the trade, for a put, whose target is the lower barrier, it
      favours it: `both` flags these sessions so the share can be reported);
    - neither by session t+H: exit at the close of t+H (0), the labels' timeout day.
The barriers are the stock's, the same for both sides: a put profits at the lower one.
Outputs, one per signal: entry_index, exit_index (int64 flat rows, -1 without entry),
entry_price, exit_price (float64, NaN without entry), barrier (+1 upper, -1 lower, 0 hold
limit; NaN without entry, and NaN while the trade is still open because the symbol's data
end before t+H without a barrier: then exit_index / exit_price are the last bar and its
close, a mark rather than an exit), sessions (int64, exit_index - entry_index + 1, the
sessions the position was held, 1..H; 0 without entry) and both (bool). A signal on a
symbol's last day, or whose entry open is not a positive number, has no entry.

Contract of `first_free_nb(code, symbol, entry_index, exit_index, n_symbols)`:
    code         int8 (n,): the side of each row's signal (+1, -1; 0 = no signal);
    symbol       int64 (n,): symbol number of each row, 0 <= symbol < n_symbols;
    entry_index, exit_index  int64 (n,): flat rows from `trade_outcomes_nb` (-1: no entry).
Rows must be in date order within each symbol (a global date order or a (symbol, date)
order both qualify). A signal is kept when no kept trade of the same symbol and side is
open on its entry session, i.e. every earlier kept one exited before that session
(exit_index < entry_index): a signal while a position is open is not a new trade.
Returns bool (n,). Raises ValueError when a symbol's entries go backwards in time.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, error_model="numpy")
def trade_outcomes_nb(o, h, lo, c, block_end, rows, hold, take_profit, stop_loss):
    """One signal after another, each followed until its exit: at most H sessions per
    signal, and most stop early, so the loop is O(n H) at worst and needs no vectorising."""
    n = rows.shape[0]
    entry_index = np.full(n, -1, dtype=np.int64)
    exit_index = np.full(n, -1, dtype=np.int64)
    entry_price = np.full(n, np.nan)
    exit_price = np.full(n, np.nan)
    barrier = np.full(n, np.nan)
    sessions = np.zeros(n, dtype=np.int64)
    both = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        t = rows[i]
        end = block_end[i]
        e = t + 1
        if t < 0 or e >= end:
            continue
        entry = o[e]
        if not entry > 0.0:
            continue
        upper = entry * (1.0 + take_profit)
        lower = entry * (1.0 + stop_loss)
        last = t + hold
        stop = min(last, end - 1)
        exit_at = -1
        price = np.nan
        hit = np.nan
        for j in range(e, stop + 1):
            if j > e and o[j] <= lower:
                exit_at, price, hit = j, o[j], -1.0
                break
            if j > e and o[j] >= upper:
                exit_at, price, hit = j, o[j], 1.0
                break
            if lo[j] <= lower:
                exit_at, price, hit = j, lower, -1.0
                both[i] = h[j] >= upper
                break
            if h[j] >= upper:
                exit_at, price, hit = j, upper, 1.0
                break
        if exit_at < 0:
            exit_at = stop
            price = c[stop]
            hit = 0.0 if last < end else np.nan  # data end before t+H: still open
        entry_index[i] = e
        exit_index[i] = exit_at
        entry_price[i] = entry
        exit_price[i] = price
        barrier[i] = hit
        sessions[i] = exit_at - e + 1
    return entry_index, exit_index, entry_price, exit_price, barrier, sessions, both


@njit(cache=True, error_model="numpy")
def first_free_nb(code, symbol, entry_index, exit_index, n_symbols):
    """One pass: the last kept trade's exit row per (symbol, side) is all the state."""
    n = code.shape[0]
    kept = np.zeros(n, dtype=np.bool_)
    busy_until = np.full((n_symbols, 2), -1, dtype=np.int64)  # exit row of the last kept
    last_entry = np.full((n_symbols, 2), -1, dtype=np.int64)
    for i in range(n):
        side = code[i]
        e = entry_index[i]
        if side == 0 or e < 0:
            continue
        k = symbol[i]
        s = 0 if side > 0 else 1
        if e < last_entry[k, s]:
            raise ValueError("rows must be in date order within each symbol")
        last_entry[k, s] = e
        if e > busy_until[k, s]:
            kept[i] = True
            busy_until[k, s] = exit_index[i]
    return kept
