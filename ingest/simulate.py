"""The market the fixture server serves: a seeded simulator, or the real data set.

`MarketData` holds each symbol's bars as served today, built by `from_simulator` or
`from_parquet`, with hooks to split or pay a dividend between two runs; the simulator
below gives the demo and tests a Yahoo to talk to offline.

Returns follow a market factor, a sector factor and an idiosyncratic part, each with
GARCH(1,1) volatility clustering and Student-t (fat-tailed) shocks. About two thirds
of the stocks pay quarterly dividends; a stock whose raw price passes a threshold
splits. Bars are then expressed as Yahoo serves them on the as-of day: OHLC and volume
adjusted for every split up to then, adjclose also for dividends.

The same seed always gives the same market; a later as-of day only adds days (and
re-adjusts history for events in between), exactly what an incremental ingester must
cope with on real Yahoo.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

from ingest.yahoo import daily_utc_offsets
from stockml.defaults import EXCHANGE_TZ_NAME

SIM_START = date(2016, 1, 4)
SIM_HORIZON = date(2031, 12, 31)
_HOLIDAYS = {(1, 1), (7, 4), (12, 25)}


@dataclass
class Series:
    """One symbol's bars as served (adjusted as of the data's as-of day)."""

    dates: np.ndarray  # datetime64[D]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    adjclose: np.ndarray
    volume: np.ndarray  # int64
    dividends: dict[np.datetime64, float] = field(default_factory=dict)
    splits: dict[np.datetime64, float] = field(default_factory=dict)


def trading_calendar(start: date, end: date) -> np.ndarray:
    days = np.arange(np.datetime64(start, "D"), np.datetime64(end, "D") + 1)
    weekday = (days.astype("int64") + 3) % 7  # 1970-01-01 was a Thursday
    keep = weekday < 5
    months = days.astype("datetime64[M]").astype(int) % 12 + 1
    dom = (days - days.astype("datetime64[M]")).astype(int) + 1
    for m, d in _HOLIDAYS:
        keep &= ~((months == m) & (dom == d))
    return days[keep]


def _garch_t(rng: np.random.Generator, n_days: int, n_series: int, vol: float) -> np.ndarray:
    """Returns with GARCH(1,1) variance and Student-t(4) shocks scaled to unit variance."""
    omega, alpha, beta = vol**2 * 0.05, 0.08, 0.87
    shocks = rng.standard_t(4, size=(n_days, n_series)) / np.sqrt(2.0)
    if n_series == 1:  # the same arithmetic on Python floats: 30x faster, bit-identical
        values, v = [], vol**2
        for z in shocks[:, 0].tolist():
            r = math.sqrt(v) * z
            values.append(r)
            v = omega + alpha * (r * r) + beta * v
        return np.array(values).reshape(n_days, 1)
    out = np.empty((n_days, n_series))
    var = np.full(n_series, vol**2)
    for t in range(n_days):
        out[t] = np.sqrt(var) * shocks[t]
        var = omega + alpha * out[t] ** 2 + beta * var
    return out


def simulate_market(
    listings: list[tuple[str, str, str]], as_of: date, seed: int = 7, start: date = SIM_START
) -> dict[str, Series]:
    """Bars for every (symbol, name, sector) from `start` (default 2016) up to `as_of`, as
    Yahoo would serve them on `as_of`. Another `start` gives another market."""
    days = trading_calendar(start, max(SIM_HORIZON, as_of))
    n = len(days)
    rng = np.random.default_rng(seed)
    market = _garch_t(rng, n, 1, 0.009)[:, 0] + 0.0003
    # Each sector and each symbol draws from its own stream, so the market one symbol
    # sees does not depend on which other symbols are simulated with it.
    sector_ret = {
        sector: _garch_t(np.random.default_rng([seed, zlib.crc32(sector.encode())]), n, 1, 0.006)[
            :, 0
        ]
        for sector in {sector for _, _, sector in listings}
    }
    served = days <= np.datetime64(as_of, "D")
    out: dict[str, Series] = {}
    for symbol, _name, sector in listings:
        srng = np.random.default_rng([seed, zlib.crc32(symbol.encode())])
        beta_m = srng.uniform(0.6, 1.5)
        idio = _garch_t(srng, n, 1, srng.uniform(0.008, 0.02))[:, 0]
        ret = beta_m * market + sector_ret[sector] + idio
        out[symbol] = _bars(srng, days, ret)
        out[symbol] = _as_served(out[symbol], served)
    return out


def _bars(rng: np.random.Generator, days: np.ndarray, ret: np.ndarray) -> Series:
    n = len(days)
    close = np.empty(n)
    price = rng.uniform(20, 300)
    splits: dict[np.datetime64, float] = {}
    dividends: dict[np.datetime64, float] = {}
    pays = rng.random() < 0.67
    div_yield = rng.uniform(0.005, 0.04) / 4
    div_phase = int(rng.integers(0, 63))
    for t in range(n):
        if price > 600 and t > 0:
            ratio = float(rng.choice([2.0, 3.0, 4.0]))
            splits[days[t]] = ratio
            price /= ratio
        price *= float(np.exp(ret[t]))
        if pays and t % 63 == div_phase and t > 0:
            amount = round(price * div_yield, 2)
            if amount > 0:
                dividends[days[t]] = amount
                price -= amount
        close[t] = price
    gap = rng.normal(0, 0.004, n)
    prev = np.r_[close[0], close[:-1]]
    open_ = prev * np.exp(gap)
    for d in splits:  # the open after a split is quoted in the new shares
        i = int(np.searchsorted(days, d))
        open_[i] = open_[i] / splits[d]
    spread = np.abs(rng.normal(0, 0.008, (2, n)))
    high = np.maximum(open_, close) * np.exp(spread[0])
    low = np.minimum(open_, close) * np.exp(-spread[1])
    volume = rng.lognormal(np.log(rng.uniform(1e6, 3e7)), 0.35, n) * (1 + 20 * np.abs(ret))
    return Series(
        days, open_, high, low, close, close.copy(), volume.astype(np.int64), dividends, splits
    )


def _as_served(raw: Series, served: np.ndarray) -> Series:
    """Cut at the as-of day and adjust: splits on OHLC/volume, dividends on adjclose."""
    days = raw.dates[served]
    o, h, lo, c = (x[served].copy() for x in (raw.open, raw.high, raw.low, raw.close))
    v = raw.volume[served].astype(np.float64)
    last = days[-1] if len(days) else np.datetime64("1970-01-01")
    splits = {d: r for d, r in raw.splits.items() if d <= last}
    dividends = {d: a for d, a in raw.dividends.items() if d <= last}
    for d, ratio in splits.items():
        before = days < d
        for arr in (o, h, lo, c):
            arr[before] /= ratio
        v[before] *= ratio
    split_adjusted_div = {}
    for d, amount in dividends.items():
        later = sum(np.log(r) for s, r in splits.items() if s > d)
        split_adjusted_div[d] = round(amount / float(np.exp(later)), 6)
    factor = np.ones(len(days))
    for d, amount in split_adjusted_div.items():
        i = int(np.searchsorted(days, d))
        if i > 0:
            factor[:i] *= 1.0 - amount / c[i - 1]
    # Yahoo's prices are float32 widened to double; do the same.
    f32 = lambda x: x.astype(np.float32).astype(np.float64)  # noqa: E731
    return Series(
        days,
        f32(o),
        f32(h),
        f32(lo),
        f32(c),
        f32(c * factor),
        np.round(v).astype(np.int64),
        split_adjusted_div,
        splits,
    )


# ---- the market as served: simulated or real bars, changed between runs on demand ----


def session_open_epoch(days: np.ndarray) -> np.ndarray:
    """09:30 New York of each day, in epoch seconds (Yahoo's daily bar stamp)."""
    base, offsets = daily_utc_offsets(EXCHANGE_TZ_NAME)
    day_number = days.astype("datetime64[D]").astype(np.int64)
    return day_number * 86400 + 9 * 3600 + 1800 - offsets[day_number - base]


class MarketData:
    """Per-symbol bars as served today, with hooks to change history between runs."""

    def __init__(self, series: dict[str, Series], as_of: date | None = None) -> None:
        self.series = series
        self.as_of = as_of
        self._stamps: dict[str, np.ndarray] = {}

    @classmethod
    def from_parquet(cls, path: Path, symbols: list[str] | None = None) -> MarketData:
        import polars as pl

        frame = pl.read_parquet(path)
        if symbols is not None:
            frame = frame.filter(pl.col("symbol").is_in(symbols))
        series: dict[str, Series] = {}
        for (symbol,), part in frame.sort("symbol", "date").group_by("symbol", maintain_order=True):
            days = part["date"].to_numpy().astype("datetime64[D]")
            div = part["dividend"].to_numpy()
            split = part["split_ratio"].to_numpy()
            series[symbol] = Series(
                days,
                part["open"].to_numpy(),
                part["high"].to_numpy(),
                part["low"].to_numpy(),
                part["close"].to_numpy(),
                part["adjclose"].to_numpy(),
                part["volume"].to_numpy().astype(np.int64),
                {days[i]: float(div[i]) for i in np.flatnonzero(div > 0)},
                {days[i]: float(split[i]) for i in np.flatnonzero(split != 1.0)},
            )
        return cls(series)

    @classmethod
    def from_simulator(
        cls,
        listings: list[tuple[str, str, str]],
        as_of: date,
        seed: int = 7,
        start: date = SIM_START,
    ) -> MarketData:
        return cls(simulate_market(listings, as_of, seed, start), as_of)

    def stamps(self, symbol: str) -> np.ndarray:
        if symbol not in self._stamps:
            self._stamps[symbol] = session_open_epoch(self.series[symbol].dates)
        return self._stamps[symbol]

    def inject_split(self, symbol: str, day: date, ratio: float) -> None:
        """A split on `day`: history before it is re-expressed in new shares."""
        s = self.series[symbol]
        before = s.dates < np.datetime64(day, "D")
        for arr in (s.open, s.high, s.low, s.close, s.adjclose):
            arr[before] /= ratio
        s.volume[before] = np.round(s.volume[before] * ratio).astype(np.int64)
        s.splits[np.datetime64(day, "D")] = ratio

    def inject_dividend(self, symbol: str, day: date, amount: float) -> None:
        """A dividend with ex-date `day`: adjclose before it scales down, OHLC stay."""
        s = self.series[symbol]
        i = int(np.searchsorted(s.dates, np.datetime64(day, "D")))
        if i == 0:
            raise ValueError("a dividend needs a previous close")
        s.adjclose[:i] *= 1.0 - amount / s.close[i - 1]
        s.dividends[np.datetime64(day, "D")] = amount
