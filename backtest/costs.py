"""What a round trip costs: explicit, documented, overridable settings, built once and passed in.

Every cost is a share of the traded value, paid on each side of the trade (at the entry
and again at the exit). For a trade bought (or sold short) at value V0 and closed at V1 per
unit of stake, the round trip costs k (V0 + V1) / V0 = k (1 + V1/V0) as a return on the
stake: the `costs` column of `signal_trades`, already taken out of the net return,
    net = side (V1/V0 - 1) - k (1 + V1/V0)        (stock; side -1 a short sale)
    net = P1/P0 - 1 - s (1 + P1/P0)                 (option bought at P0, sold at P1).
The stake is the mid value of what is bought; the entry cost is paid on top of it, so an
option that expires worthless loses 1 + s of its stake (the premium and the spread paid).

Defaults and their reasons (override any of them: `TradeCosts(option_spread=0.05)`):
- option_spread 0.03: the share of the option's mid price lost each way, i.e. half the
  quoted bid-ask spread. Muravyev & Pearson ("Options Trading Costs Are Lower than You
  Think", Review of Financial Studies 33(11), 2020) measure, for options on S&P 500 stocks
  in 2004-2015, quoted half-spreads of 8.6 % and effective half-spreads of 6.8 % of the
  option price on average over all strikes, far wider out of the money; traders who time
  their orders pay less than 40 % of that. Near-the-money monthly options of large caps
  quote full spreads of a few percent, so 3 % each way (6 % round trip) is a middle,
  rather pessimistic, figure for the contracts suggested here.
- stock_commission 0.0: US retail brokers have charged no stock commission since October
  2019 (Schwab, TD Ameritrade, E*TRADE, Fidelity); set e.g. 0.0005 for a per-share plan.
- stock_slippage 0.0005: 5 basis points each way between the price used (the open, a
  barrier, a close) and the fill: the half-spread of a large US stock is one to three
  basis points, the rest allows for the opening auction and for stop orders filling
  through their price.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TradeCosts:
    """Costs per side of a trade, as fractions of the traded value (see the module doc).

    Raises ValueError when a cost is negative, not finite, or 1 or more (a cost of the
    whole traded value leaves nothing to trade)."""

    option_spread: float = 0.03
    stock_commission: float = 0.0
    stock_slippage: float = 0.0005

    def __post_init__(self) -> None:
        for name in ("option_spread", "stock_commission", "stock_slippage"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0.0 <= value < 1.0):
                raise ValueError(f"{name} must be a fraction in [0, 1), got {value!r}")
        if self.stock_each_way >= 1.0:
            raise ValueError("stock_commission + stock_slippage must be below 1")

    @property
    def stock_each_way(self) -> float:
        """The stock's cost per side: commission plus slippage."""
        return self.stock_commission + self.stock_slippage


def round_trip(gross_ratio: np.ndarray, each_way: float) -> np.ndarray:
    """The round-trip cost as a return on the stake, each_way (1 + V1/V0), element-wise;
    `gross_ratio` is V1/V0, the traded value at the exit per unit bought at the entry (for a
    short sale, the buy-back price over the sale price). NaN stays NaN."""
    return each_way * (1.0 + np.asarray(gross_ratio, dtype=float))
