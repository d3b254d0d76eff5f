"""The 179-feature catalog as data: `catalog.csv` beside this module is the one source.

Each row gives a feature's name (a column of the public `features` table), family,
formula, parameters, lookback (leading rows without a value) and its TA-Lib reference
expression (or `formula` for the nine defined by formula). From the name follows the
kernel recipe: a kind (features.kinds.Kind) and up to three numbers.

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

from features.kinds import Kind

_CSV = Path(__file__).with_name("catalog.csv")

# name pattern -> (kind, how to read the numbers). Order matters: first match wins.
_RECIPES: list[tuple[str, Kind]] = [
    (r"ret_(\d+)_vol_adj", Kind.RET_VOL_ADJ),
    (r"ret_(\d+)_skip_(\d+)", Kind.RET_SKIP),
    (r"ret_(\d+)", Kind.ROC),
    (r"vol_ratio_(\d+)_(\d+)", Kind.VOL_RATIO),
    (r"vol_(\d+)", Kind.VOL),
    (r"sma_ratio_(\d+)", Kind.SMA_RATIO),
    (r"ema_ratio_(\d+)", Kind.EMA_RATIO),
    (r"wma_ratio_(\d+)", Kind.WMA_RATIO),
    (r"dema_ratio_(\d+)", Kind.DEMA_RATIO),
    (r"tema_ratio_(\d+)", Kind.TEMA_RATIO),
    (r"kama_ratio_(\d+)", Kind.KAMA_RATIO),
    (r"trima_ratio_(\d+)", Kind.TRIMA_RATIO),
    (r"t3_ratio_(\d+)", Kind.T3_RATIO),
    (r"sma_cross_(\d+)_(\d+)", Kind.SMA_CROSS),
    (r"ema_cross_(\d+)_(\d+)", Kind.EMA_CROSS),
    (r"macd_line_(\d+)_(\d+)_(\d+)", Kind.MACD_LINE),
    (r"macd_signal_(\d+)_(\d+)_(\d+)", Kind.MACD_SIGNAL),
    (r"macd_hist_(\d+)_(\d+)_(\d+)", Kind.MACD_HIST),
    (r"ppo_(\d+)_(\d+)", Kind.PPO),
    (r"apo_(\d+)_(\d+)", Kind.APO),
    (r"stochrsi_k_(\d+)", Kind.STOCHRSI_K),
    (r"stochrsi_d_(\d+)", Kind.STOCHRSI_D),
    (r"rsi_(\d+)", Kind.RSI),
    (r"stoch_k_(\d+)_(\d+)", Kind.STOCH_K),
    (r"stoch_d_(\d+)_(\d+)", Kind.STOCH_D),
    (r"stochf_k_(\d+)", Kind.STOCHF_K),
    (r"stochf_d_(\d+)_(\d+)", Kind.STOCHF_D),
    (r"willr_(\d+)", Kind.WILLR),
    (r"cci_(\d+)", Kind.CCI),
    (r"cmo_(\d+)", Kind.CMO),
    (r"mom_(\d+)", Kind.MOM),
    (r"adxr_(\d+)", Kind.ADXR),
    (r"adx_(\d+)", Kind.ADX),
    (r"plus_di_(\d+)", Kind.PLUS_DI),
    (r"minus_di_(\d+)", Kind.MINUS_DI),
    (r"dx_(\d+)", Kind.DX),
    (r"aroon_up_(\d+)", Kind.AROON_UP),
    (r"aroon_down_(\d+)", Kind.AROON_DOWN),
    (r"aroonosc_(\d+)", Kind.AROONOSC),
    (r"natr_(\d+)", Kind.NATR),
    (r"trange_ratio", Kind.TRANGE_RATIO),
    (r"bb_pctb_(\d+)", Kind.BB_PCTB),
    (r"bb_width_(\d+)", Kind.BB_WIDTH),
    (r"keltner_pos_(\d+)", Kind.KELTNER_POS),
    (r"keltner_width_(\d+)", Kind.KELTNER_WIDTH),
    (r"donchian_pos_(\d+)", Kind.DONCHIAN_POS),
    (r"donchian_width_(\d+)", Kind.DONCHIAN_WIDTH),
    (r"parkinson_(\d+)", Kind.PARKINSON),
    (r"garman_klass_(\d+)", Kind.GARMAN_KLASS),
    (r"rogers_satchell_(\d+)", Kind.ROGERS_SATCHELL),
    (r"yang_zhang_(\d+)", Kind.YANG_ZHANG),
    (r"obv_slope_(\d+)", Kind.OBV_SLOPE),
    (r"volume_ratio_(\d+)", Kind.VOLUME_RATIO),
    (r"mfi_(\d+)", Kind.MFI),
    (r"adosc_(\d+)_(\d+)", Kind.ADOSC),
    (r"ad_slope_(\d+)", Kind.AD_SLOPE),
    (r"cmf_(\d+)", Kind.CMF),
    (r"vwap_dist_(\d+)", Kind.VWAP_DIST),
    (r"force_(\d+)", Kind.FORCE),
    (r"volume_z_(\d+)", Kind.VOLUME_Z),
    (r"log_dollar_volume_(\d+)", Kind.LOG_DOLLAR_VOLUME),
    (r"body_ratio", Kind.BODY_RATIO),
    (r"upper_shadow", Kind.UPPER_SHADOW),
    (r"lower_shadow", Kind.LOWER_SHADOW),
    (r"gap", Kind.GAP),
    (r"close_location", Kind.CLOSE_LOCATION),
    (r"hl_range", Kind.HL_RANGE),
    (r"linreg_slope_(\d+)", Kind.LINREG_SLOPE),
    (r"linreg_r2_(\d+)", Kind.LINREG_R2),
    (r"tsf_ratio_(\d+)", Kind.TSF_RATIO),
    (r"ultosc_(\d+)_(\d+)_(\d+)", Kind.ULTOSC),
    (r"trix_(\d+)", Kind.TRIX),
    (r"bop", Kind.BOP),
    (r"sar_dist", Kind.SAR_DIST),
    (r"ht_dcperiod", Kind.HT_DCPERIOD),
    (r"ht_trendmode", Kind.HT_TRENDMODE),
    (r"skew_(\d+)", Kind.SKEW),
    (r"kurt_(\d+)", Kind.KURT),
    (r"dist_52w_high", Kind.DIST_HIGH),
    (r"dist_52w_low", Kind.DIST_LOW),
    (r"zscore_(\d+)", Kind.ZSCORE),
    (r"pct_rank_(\d+)", Kind.PCT_RANK),
    (r"up_days_(\d+)", Kind.UP_DAYS),
    (r"max_drawdown_(\d+)", Kind.MAX_DRAWDOWN),
    (r"ema_slope_(\d+)", Kind.EMA_SLOPE),
    (r"atr_ratio_(\d+)_(\d+)", Kind.ATR_RATIO),
    (r"plus_dm_(\d+)", Kind.PLUS_DM_RATIO),
    (r"minus_dm_(\d+)", Kind.MINUS_DM_RATIO),
    (r"midpoint_ratio_(\d+)", Kind.MIDPOINT_RATIO),
    (r"midprice_ratio_(\d+)", Kind.MIDPRICE_RATIO),
]


@dataclass(frozen=True)
class Feature:
    name: str
    family: str
    formula: str
    params: str
    lookback: int
    reference: str  # a TA-Lib expression, or "formula"
    kind: Kind
    numbers: tuple[float, float, float]

    def __post_init__(self) -> None:
        # The compiled dispatcher has no error path: refuse a kind it has no branch for
        # here, when the catalog is built, rather than return NaN for every row.
        if not isinstance(self.kind, Kind):
            raise ValueError(
                f"feature {self.name!r}: kind {self.kind!r} is not a features.kinds.Kind"
            )


def _params(text: str) -> dict[str, float]:
    found = {}
    for part in text.split(","):
        if "=" in part:
            key, value = part.split("=", 1)
            found[key.strip()] = float(value)
    return found


def _numbers(name: str, kind: Kind, groups: tuple[str, ...], params: dict) -> tuple:
    ints = [float(g) for g in groups]
    if kind == Kind.T3_RATIO:
        ints = [ints[0], 0.7]
    elif kind in (Kind.STOCH_K, Kind.STOCH_D):
        ints = [params.get("k", 14), params.get("slowk", 3), params.get("slowd", 3)]
    elif kind == Kind.STOCHF_K:
        ints = [ints[0], 3.0]
    elif kind in (Kind.STOCHRSI_K, Kind.STOCHRSI_D):
        ints = [params.get("n", 14), params.get("k", 5), params.get("d", 3)]
    elif kind in (Kind.BB_PCTB, Kind.BB_WIDTH):
        ints = [ints[0], params.get("k", 2.0)]
    elif kind == Kind.SAR_DIST:
        ints = [params.get("accel", 0.02), params.get("max", 0.2)]
    elif kind in (Kind.DIST_HIGH, Kind.DIST_LOW):
        ints = [params.get("n", 252)]
    elif kind == Kind.EMA_SLOPE:
        ints = [ints[0], params.get("lag", 5)]
    elif kind == Kind.RET_VOL_ADJ:
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
# Raise when a kernel's output changes for some input, so that every stored symbol is
# recomputed (2: a zero denominator gives NaN, never +-inf; see features.nb_common).
KERNELS_REVISION = 2
CATALOG_VERSION = hashlib.sha256(
    _CSV.read_bytes() + f"\nkernels revision {KERNELS_REVISION}".encode()
).hexdigest()[:16]
MAX_LOOKBACK = max(f.lookback for f in FEATURES)


def recipe_arrays(features: list[Feature] = FEATURES) -> tuple[np.ndarray, np.ndarray]:
    """(kinds int64[F], params float64[F, 3]) for features.kernels.compute_all_nb."""
    kinds = np.array([f.kind.value for f in features], dtype=np.int64)
    params = np.array([f.numbers for f in features], dtype=np.float64)
    return kinds, params
