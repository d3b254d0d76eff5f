"""The 179-feature catalog as data: `catalog.csv` beside this module is the one source.

Each row gives a feature's name (a column of the public `features` table), family,
formula, parameters, lookback (leading rows without a value) and its TA-Lib reference
expression (or `formula` for the nine defined by formula). From the name follows the
kernel recipe: a kind code (features.kernels.KINDS) and up to three numbers.

Adopted from ../shared/features-catalog.csv unchanged in names, order and definitions.
Notes on where our kernels differ from TA-Lib at the last bits are in NOTES below; the
parity tests use the same tolerances.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_CSV = Path(__file__).with_name("catalog.csv")

# name pattern -> (kind, how to read the numbers). Order matters: first match wins.
_RECIPES: list[tuple[str, str]] = [
    (r"ret_(\d+)_vol_adj", "ret_vol_adj"),
    (r"ret_(\d+)_skip_(\d+)", "ret_skip"),
    (r"ret_(\d+)", "roc"),
    (r"vol_ratio_(\d+)_(\d+)", "vol_ratio"),
    (r"vol_(\d+)", "vol"),
    (r"sma_ratio_(\d+)", "sma_ratio"),
    (r"ema_ratio_(\d+)", "ema_ratio"),
    (r"wma_ratio_(\d+)", "wma_ratio"),
    (r"dema_ratio_(\d+)", "dema_ratio"),
    (r"tema_ratio_(\d+)", "tema_ratio"),
    (r"kama_ratio_(\d+)", "kama_ratio"),
    (r"trima_ratio_(\d+)", "trima_ratio"),
    (r"t3_ratio_(\d+)", "t3_ratio"),
    (r"sma_cross_(\d+)_(\d+)", "sma_cross"),
    (r"ema_cross_(\d+)_(\d+)", "ema_cross"),
    (r"macd_line_(\d+)_(\d+)_(\d+)", "macd_line"),
    (r"macd_signal_(\d+)_(\d+)_(\d+)", "macd_signal"),
    (r"macd_hist_(\d+)_(\d+)_(\d+)", "macd_hist"),
    (r"ppo_(\d+)_(\d+)", "ppo"),
    (r"apo_(\d+)_(\d+)", "apo"),
    (r"stochrsi_k_(\d+)", "stochrsi_k"),
    (r"stochrsi_d_(\d+)", "stochrsi_d"),
    (r"rsi_(\d+)", "rsi"),
    (r"stoch_k_(\d+)_(\d+)", "stoch_k"),
    (r"stoch_d_(\d+)_(\d+)", "stoch_d"),
    (r"stochf_k_(\d+)", "stochf_k"),
    (r"stochf_d_(\d+)_(\d+)", "stochf_d"),
    (r"willr_(\d+)", "willr"),
    (r"cci_(\d+)", "cci"),
    (r"cmo_(\d+)", "cmo"),
    (r"mom_(\d+)", "mom"),
    (r"adxr_(\d+)", "adxr"),
    (r"adx_(\d+)", "adx"),
    (r"plus_di_(\d+)", "plus_di"),
    (r"minus_di_(\d+)", "minus_di"),
    (r"dx_(\d+)", "dx"),
    (r"aroon_up_(\d+)", "aroon_up"),
    (r"aroon_down_(\d+)", "aroon_down"),
    (r"aroonosc_(\d+)", "aroonosc"),
    (r"natr_(\d+)", "natr"),
    (r"trange_ratio", "trange_ratio"),
    (r"bb_pctb_(\d+)", "bb_pctb"),
    (r"bb_width_(\d+)", "bb_width"),
    (r"keltner_pos_(\d+)", "keltner_pos"),
    (r"keltner_width_(\d+)", "keltner_width"),
    (r"donchian_pos_(\d+)", "donchian_pos"),
    (r"donchian_width_(\d+)", "donchian_width"),
    (r"parkinson_(\d+)", "parkinson"),
    (r"garman_klass_(\d+)", "garman_klass"),
    (r"rogers_satchell_(\d+)", "rogers_satchell"),
    (r"yang_zhang_(\d+)", "yang_zhang"),
    (r"obv_slope_(\d+)", "obv_slope"),
    (r"volume_ratio_(\d+)", "volume_ratio"),
    (r"mfi_(\d+)", "mfi"),
    (r"adosc_(\d+)_(\d+)", "adosc"),
    (r"ad_slope_(\d+)", "ad_slope"),
    (r"cmf_(\d+)", "cmf"),
    (r"vwap_dist_(\d+)", "vwap_dist"),
    (r"force_(\d+)", "force"),
    (r"volume_z_(\d+)", "volume_z"),
    (r"log_dollar_volume_(\d+)", "log_dollar_volume"),
    (r"body_ratio", "body_ratio"),
    (r"upper_shadow", "upper_shadow"),
    (r"lower_shadow", "lower_shadow"),
    (r"gap", "gap"),
    (r"close_location", "close_location"),
    (r"hl_range", "hl_range"),
    (r"linreg_slope_(\d+)", "linreg_slope"),
    (r"linreg_r2_(\d+)", "linreg_r2"),
    (r"tsf_ratio_(\d+)", "tsf_ratio"),
    (r"ultosc_(\d+)_(\d+)_(\d+)", "ultosc"),
    (r"trix_(\d+)", "trix"),
    (r"bop", "bop"),
    (r"sar_dist", "sar_dist"),
    (r"ht_dcperiod", "ht_dcperiod"),
    (r"ht_trendmode", "ht_trendmode"),
    (r"skew_(\d+)", "skew"),
    (r"kurt_(\d+)", "kurt"),
    (r"dist_52w_high", "dist_high"),
    (r"dist_52w_low", "dist_low"),
    (r"zscore_(\d+)", "zscore"),
    (r"pct_rank_(\d+)", "pct_rank"),
    (r"up_days_(\d+)", "up_days"),
    (r"max_drawdown_(\d+)", "max_drawdown"),
    (r"ema_slope_(\d+)", "ema_slope"),
    (r"atr_ratio_(\d+)_(\d+)", "atr_ratio"),
    (r"plus_dm_(\d+)", "plus_dm_ratio"),
    (r"minus_dm_(\d+)", "minus_dm_ratio"),
    (r"midpoint_ratio_(\d+)", "midpoint_ratio"),
    (r"midprice_ratio_(\d+)", "midprice_ratio"),
]


@dataclass(frozen=True)
class Feature:
    name: str
    family: str
    formula: str
    params: str
    lookback: int
    reference: str  # a TA-Lib expression, or "formula"
    kind: str
    numbers: tuple[float, float, float]


def _params(text: str) -> dict[str, float]:
    found = {}
    for part in text.split(","):
        if "=" in part:
            key, value = part.split("=", 1)
            found[key.strip()] = float(value)
    return found


def _numbers(name: str, kind: str, groups: tuple[str, ...], params: dict) -> tuple:
    ints = [float(g) for g in groups]
    if kind == "t3_ratio":
        ints = [ints[0], 0.7]
    elif kind in ("stoch_k", "stoch_d"):
        ints = [params.get("k", 14), params.get("slowk", 3), params.get("slowd", 3)]
    elif kind == "stochf_k":
        ints = [ints[0], 3.0]
    elif kind in ("stochrsi_k", "stochrsi_d"):
        ints = [params.get("n", 14), params.get("k", 5), params.get("d", 3)]
    elif kind in ("bb_pctb", "bb_width"):
        ints = [ints[0], params.get("k", 2.0)]
    elif kind == "sar_dist":
        ints = [params.get("accel", 0.02), params.get("max", 0.2)]
    elif kind in ("dist_high", "dist_low"):
        ints = [params.get("n", 252)]
    elif kind == "ema_slope":
        ints = [ints[0], params.get("lag", 5)]
    elif kind == "ret_vol_adj":
        ints = [params.get("n", ints[0]), params.get("vol", 20)]
    while len(ints) < 3:
        ints.append(0.0)
    return tuple(ints[:3])


def load_catalog(path: Path = _CSV) -> list[Feature]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    features = []
    for row in rows:
        name = row["name"]
        found = [(k, m) for p, k in _RECIPES if (m := re.fullmatch(p, name))]
        if not found:
            raise ValueError(f"catalog feature {name!r} has no kernel recipe")
        kind, match = found[0]
        params = _params(row["params"])
        features.append(
            Feature(
                name=name,
                family=row["family"],
                formula=row["formula"],
                params=row["params"],
                lookback=int(row["lookback"]),
                reference=row["talib_reference"],
                kind=kind,
                numbers=_numbers(name, kind, match.groups(), params),
            )
        )
    return features


FEATURES = load_catalog()
COLUMNS = [f.name for f in FEATURES]
CATALOG_VERSION = hashlib.sha256(_CSV.read_bytes()).hexdigest()[:16]
MAX_LOOKBACK = max(f.lookback for f in FEATURES)


def recipe_arrays(features: list[Feature] = FEATURES) -> tuple[np.ndarray, np.ndarray]:
    """(kinds int64[F], params float64[F, 3]) for features.kernels.compute_all_nb."""
    from features.kernels import KIND

    kinds = np.array([KIND[f.kind] for f in features], dtype=np.int64)
    params = np.array([f.numbers for f in features], dtype=np.float64)
    return kinds, params
