"""The portfolio kernel: one book of trades (one side) through the days, marked to market daily.

Contract of `simulate_nb(n_days, order, entry_day, symbol, n_symbols, mark_start, mark_day,
mark_value, closed, entry_cost, exit_cost, max_positions, initial)`:
    n_days       days of the simulation, numbered 0..n_days-1;
    order        int64 (n,): the trades in the order they may enter (entry day first; the
                 wrapper breaks ties by priority, then symbol, then input order);
    entry_day    int64 (n,): the day each trade is bought at the open (outside 0..n_days-1:
                 never entered);
    symbol       int64 (n,): 0 <= symbol < n_symbols;
    mark_start   int64 (n+1,): trade i's marks are mark_day / mark_value[mark_start[i]:
                 mark_start[i+1]], at least one, on strictly increasing days from its entry
                 day on; mark_value is the position's value per unit of stake at that day's
                 close, the last one at its exit when closed[i] (bool) is true; marks on
                 day n_days or later are never reached (the trade is still open at the end);
    entry_cost, exit_cost  float64 (n,): paid at the entry / exit as a share of the stake;
    max_positions  the cap on open positions; initial the starting equity (> 0).
Each day: first the entries at the open, in `order`: a trade is skipped when a position in
its symbol is open (it exits this day at the earliest, so still holds at the open), when
max_positions are open, or when no cash is left; else it is staked
min(equity at the previous close / max_positions, cash / (1 + entry_cost)) and the cash
pays stake (1 + entry_cost). Then every open position takes its marks up to this day; one
whose last mark is an exit is sold, the cash receiving stake (value - exit_cost). Equity at
the close is cash plus the open positions' marks. Nothing is borrowed: cash never falls
below zero, and a full cap or empty cash skips a trade rather than scaling it.
Returns equity (n_days,), held (n_days,) int64 positions open during the day (entries
included, exits of the day included), taken bool (n,), stake float64 (n,) (0 when not
taken), skipped_busy and skipped_full (ints: trades not entered because their symbol was
held / because the cap or the cash was reached).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, error_model="numpy")
def simulate_nb(
    n_days,
    order,
    entry_day,
    symbol,
    n_symbols,
    mark_start,
    mark_day,
    mark_value,
    closed,
    entry_cost,
    exit_cost,
    max_positions,
    initial,
):
    """Open positions live in max_positions slots, so a day costs O(max_positions) and the
    whole run O(n_days max_positions + marks)."""
    n = entry_day.shape[0]
    equity = np.empty(n_days)
    held = np.zeros(n_days, dtype=np.int64)
    taken = np.zeros(n, dtype=np.bool_)
    stake = np.zeros(n)
    slot_trade = np.full(max_positions, -1, dtype=np.int64)
    slot_stake = np.zeros(max_positions)
    slot_value = np.zeros(max_positions)
    slot_next = np.zeros(max_positions, dtype=np.int64)
    busy = np.zeros(n_symbols, dtype=np.bool_)
    cash = initial
    previous = initial
    n_open = 0
    skipped_busy = 0
    skipped_full = 0
    p = 0
    for d in range(n_days):
        while p < n and entry_day[order[p]] < d:
            p += 1  # entry days before the first day are never entered
        while p < n and entry_day[order[p]] == d:
            i = order[p]
            p += 1
            if busy[symbol[i]]:
                skipped_busy += 1
                continue
            size = min(previous / max_positions, cash / (1.0 + entry_cost[i]))
            if n_open >= max_positions or not size > 0.0:
                skipped_full += 1
                continue
            s = 0
            while slot_trade[s] >= 0:
                s += 1
            slot_trade[s] = i
            slot_stake[s] = size
            slot_value[s] = size
            slot_next[s] = mark_start[i]
            cash -= size * (1.0 + entry_cost[i])
            busy[symbol[i]] = True
            n_open += 1
            taken[i] = True
            stake[i] = size
        held[d] = n_open
        marked = 0.0
        for s in range(max_positions):
            i = slot_trade[s]
            if i < 0:
                continue
            k = slot_next[s]
            end = mark_start[i + 1]
            while k < end and mark_day[k] <= d:
                slot_value[s] = slot_stake[s] * mark_value[k]
                k += 1
            slot_next[s] = k
            if k == end and closed[i]:
                cash += slot_value[s] - slot_stake[s] * exit_cost[i]
                slot_trade[s] = -1
                busy[symbol[i]] = False
                n_open -= 1
            else:
                marked += slot_value[s]
        equity[d] = cash + marked
        previous = equity[d]
    return equity, held, taken, stake, skipped_busy, skipped_full
