"""Constants every stage agrees on, each defined once here and imported where used.

- `EXCHANGE_TZ`: the time zone in which US trading days are dated (Yahoo's
  `exchangeTimezoneName` for NYSE/Nasdaq listings);
- `CLASSES`: the label classes in the column order of every probability matrix
  (`predict_proba(x)[:, i]` is the probability of `CLASSES[i]`): loss, timeout, win;
- `CLASS_NAMES`: their names in reports and metric keys;
- `DEFAULT_PROFILE`: the label profile a command uses when none is named.

Fetch defaults live on `ingest.policy.FetchPolicy` and profile parameters on
`backtest.labels.PROFILES`; this module holds what is not owned by one stage.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np

EXCHANGE_TZ_NAME = "America/New_York"
EXCHANGE_TZ = ZoneInfo(EXCHANGE_TZ_NAME)

LOSS, TIMEOUT, WIN = -1, 0, 1
CLASSES = np.array([LOSS, TIMEOUT, WIN])
CLASS_NAMES = {LOSS: "loss", TIMEOUT: "timeout", WIN: "win"}
# Column of each class in a probability matrix ordered like CLASSES.
LOSS_COL, TIMEOUT_COL, WIN_COL = 0, 1, 2

DEFAULT_PROFILE = "swing"
