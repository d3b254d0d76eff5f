"""Label profiles and the `labels` table: triple-barrier outcomes for every stock and day.

Profiles are stored by name, so several live side by side; a run with overridden
barriers gets a name of its own (e.g. `swing-h10-tp0.08-sl-0.04`). Labels are refreshed
per symbol when its prices fingerprint or the profile's parameters change.

A move that ingest quarantined (`price_flags`, see ingest/quality.py) is not believed, so
no sample may rest on it: rows whose label horizon holds it (the H days before it) and rows
whose feature windows hold it (the day itself and the MAX_LOOKBACK - 1 after) get no label,
which keeps them out of `samples ... WHERE label IS NOT NULL` and so out of training.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import polars as pl
import structlog

from features.catalog import MAX_LOOKBACK
from features.compute import adjust_bars, offsets_of
from stockml import store
from stockml.errors import InputError
from stockml.memory import MemoryBudget
from stockml.refresh import plan_refresh, refresh_derived

# Bytes one price row costs while its chunk is in flight (prices, adjusted bars, five
# outputs and the label frame, two chunks at once); chunk sizes follow the memory limit.
LABEL_ROW_BYTES = 1_000


@dataclass(frozen=True)
class Profile:
    name: str
    hold_days: int
    take_profit: float
    stop_loss: float

    def params(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def describe(self) -> str:
        """The barriers in words, e.g. `14 days, +10% / -5%`."""
        return f"{self.hold_days} days, {self.take_profit:+.0%} / {self.stop_loss:+.0%}"


# swing: the user's original rule. options: a week's hold with symmetric barriers of 3%,
# about 1.5 weekly standard deviations of a typical large cap, so all three classes occur.
# The one place their numbers are written: commands, docs' examples and tests read them here.
PROFILES = {
    p.name: p for p in (Profile("swing", 14, 0.10, -0.05), Profile("options", 5, 0.03, -0.03))
}


def resolve_profile(
    name: str,
    hold_days: int | None = None,
    take_profit: float | None = None,
    stop_loss: float | None = None,
) -> Profile:
    if name not in PROFILES:
        raise InputError(f"unknown profile {name!r}: use one of {', '.join(PROFILES)}")
    base = PROFILES[name]
    if hold_days is None and take_profit is None and stop_loss is None:
        return base
    h = base.hold_days if hold_days is None else hold_days
    tp = base.take_profit if take_profit is None else take_profit
    sl = base.stop_loss if stop_loss is None else stop_loss
    if h < 1:
        raise InputError("--hold-days must be at least 1")
    if not tp > 0:
        raise InputError(f"--take-profit must be a positive fraction, e.g. {base.take_profit:g}")
    if not -1 < sl < 0:
        raise InputError(f"--stop-loss must be a negative fraction, e.g. {base.stop_loss:g}")
    return Profile(f"{name}-h{h}-tp{tp:g}-sl{sl:g}", h, tp, sl)


def quarantine_mask(
    prices: pl.DataFrame, offsets: np.ndarray, quarantined: pl.DataFrame, hold_days: int
) -> np.ndarray:
    """True for rows of `prices` (sorted by symbol, date; `offsets` its symbol blocks) that a
    quarantined move (`quarantined`: symbol, date) touches: the `hold_days` rows before the
    move's day, the day itself and the MAX_LOOKBACK - 1 rows after it."""
    mask = np.zeros(prices.height, dtype=bool)
    if quarantined.is_empty() or prices.is_empty():
        return mask
    symbols = prices["symbol"].to_numpy()[offsets[:-1]]
    block = dict(zip(symbols.tolist(), range(len(symbols)), strict=True))
    days = prices["date"].to_numpy()
    for symbol, day in quarantined.select("symbol", "date").iter_rows():
        k = block.get(symbol)
        if k is None:
            continue
        a, b = int(offsets[k]), int(offsets[k + 1])
        at = a + int(np.searchsorted(days[a:b], np.datetime64(day, "D")))
        mask[max(a, at - hold_days) : min(b, at + MAX_LOOKBACK)] = True
    return mask


def compute_labels(
    prices: pl.DataFrame, profile: Profile, quarantined: pl.DataFrame | None = None
) -> pl.DataFrame:
    """symbol, date, profile, label, exit_offset, exit_return, mfe, mae; pure. Rows touched by
    a `quarantined` move (symbol, date; see `quarantine_mask`) have no label."""
    from backtest.nb import label_triple_barrier_nb

    prices = prices.sort("symbol", "date")
    adjusted = adjust_bars(prices)
    arrays = [
        np.ascontiguousarray(adjusted[k].to_numpy()) for k in ("open", "high", "low", "close")
    ]
    offsets = offsets_of(adjusted["symbol"])
    label, offset, ret, mfe, mae = label_triple_barrier_nb(
        *arrays,
        offsets,
        profile.hold_days,
        profile.take_profit,
        profile.stop_loss,
    )
    if quarantined is not None:
        untrusted = quarantine_mask(prices, offsets, quarantined, profile.hold_days)
        for out in (label, offset, ret, mfe, mae):
            out[untrusted] = np.nan
    return pl.DataFrame(
        {
            "symbol": prices["symbol"],
            "date": prices["date"],
            "profile": pl.repeat(profile.name, prices.height, eager=True),
            "label": pl.Series(label, nan_to_null=True).cast(pl.Int8),
            "exit_offset": pl.Series(offset, nan_to_null=True).cast(pl.Int16),
            "exit_return": pl.Series(ret, nan_to_null=True),
            "mfe": pl.Series(mfe, nan_to_null=True),
            "mae": pl.Series(mae, nan_to_null=True),
        }
    )


def refresh_labels(
    con: Any, profile: Profile, progress: bool = True, memory_limit: int | str | None = None
) -> dict[str, Any]:
    """Bring the profile's labels up to date with `prices`, in symbol chunks sized to
    `memory_limit` (as for `refresh_features`); returns a summary."""
    params = profile.params()
    budget = MemoryBudget.of(memory_limit)
    budget.bound_duckdb(con)
    rows = budget.chunk_rows(LABEL_ROW_BYTES)
    plan = plan_refresh(con, store.labels_state(con, profile.name), params, rows)
    quarantined = store.quarantined_days(con)
    summary = refresh_derived(
        con,
        plan,
        title=f"labels {profile.name}",
        compute=lambda prices: compute_labels(prices, profile, quarantined),
        replace=lambda batch, frame: store.replace_labels(
            con, profile.name, batch, frame, plan.fingerprints, params
        ),
        delete=lambda gone: store.delete_labels(con, profile.name, gone),
        progress=progress,
    )
    budget.release_duckdb(con)
    summary = {"profile": profile.name, **summary}
    structlog.get_logger("backtest").info("labels_refreshed", **summary)
    return summary
