"""Kernel kinds: what `features.kernels.feature_nb` computes for one catalog feature.

Each catalog row names a kind (features/catalog.py maps its name to one) and the compiled
dispatcher compares against these members, so both sides use the same names. The numbers
are written out, not positions in a list: adding a kind takes the next free number and
never renumbers the others. `@unique` refuses two kinds with one number, and
`features.catalog.Feature` refuses a kind that is not a member, when the catalog is built.
"""

from __future__ import annotations

from enum import IntEnum, unique


@unique
class Kind(IntEnum):
    ROC = 0
    VOL = 1
    SMA_RATIO = 2
    EMA_RATIO = 3
    WMA_RATIO = 4
    DEMA_RATIO = 5
    TEMA_RATIO = 6
    KAMA_RATIO = 7
    TRIMA_RATIO = 8
    T3_RATIO = 9
    SMA_CROSS = 10
    EMA_CROSS = 11
    MACD_LINE = 12
    MACD_SIGNAL = 13
    MACD_HIST = 14
    PPO = 15
    APO = 16
    RSI = 17
    STOCH_K = 18
    STOCH_D = 19
    STOCHF_K = 20
    STOCHF_D = 21
    STOCHRSI_K = 22
    STOCHRSI_D = 23
    WILLR = 24
    CCI = 25
    CMO = 26
    MOM = 27
    ADX = 28
    PLUS_DI = 29
    MINUS_DI = 30
    ADXR = 31
    DX = 32
    AROON_UP = 33
    AROON_DOWN = 34
    AROONOSC = 35
    NATR = 36
    TRANGE_RATIO = 37
    BB_PCTB = 38
    BB_WIDTH = 39
    KELTNER_POS = 40
    KELTNER_WIDTH = 41
    DONCHIAN_POS = 42
    DONCHIAN_WIDTH = 43
    PARKINSON = 44
    GARMAN_KLASS = 45
    ROGERS_SATCHELL = 46
    YANG_ZHANG = 47
    OBV_SLOPE = 48
    VOLUME_RATIO = 49
    MFI = 50
    ADOSC = 51
    AD_SLOPE = 52
    CMF = 53
    VWAP_DIST = 54
    FORCE = 55
    VOLUME_Z = 56
    LOG_DOLLAR_VOLUME = 57
    BODY_RATIO = 58
    UPPER_SHADOW = 59
    LOWER_SHADOW = 60
    GAP = 61
    CLOSE_LOCATION = 62
    HL_RANGE = 63
    LINREG_SLOPE = 64
    LINREG_R2 = 65
    TSF_RATIO = 66
    ULTOSC = 67
    TRIX = 68
    BOP = 69
    SAR_DIST = 70
    HT_DCPERIOD = 71
    HT_TRENDMODE = 72
    SKEW = 73
    KURT = 74
    DIST_HIGH = 75
    DIST_LOW = 76
    ZSCORE = 77
    PCT_RANK = 78
    UP_DAYS = 79
    MAX_DRAWDOWN = 80
    EMA_SLOPE = 81
    ATR_RATIO = 82
    VOL_RATIO = 83
    PLUS_DM_RATIO = 84
    MINUS_DM_RATIO = 85
    MIDPOINT_RATIO = 86
    MIDPRICE_RATIO = 87
    RET_VOL_ADJ = 88
    RET_SKIP = 89
