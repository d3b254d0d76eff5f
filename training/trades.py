"""Signal codes, and how one row's two candidate signals settle.

Signals are int8 codes: +1 BUY CALL, -1 BUY PUT, 0 HOLD. A call is right when the label is
a win (+1), a put when it is a loss (-1): the signal code equals the label it bets on.
Probability matrices have the columns of `stockml.defaults.CLASSES` (loss, timeout, win).
Which rows signal is the rule's business (training/rules.py); what the trades did, the
trading room's (training/trading.py). Pure NumPy; no I/O.
"""

from __future__ import annotations

import numpy as np

CALL, PUT, HOLD = 1, -1, 0


def settle(call_margin: np.ndarray, put_margin: np.ndarray) -> np.ndarray:
    """int8 (n,) signals from each side's margin over its threshold ((n,) each; -inf or NaN
    never fires): BUY CALL where the call margin is >= 0, BUY PUT where the put margin is;
    where both fire, the larger margin wins, and an exact tie is HOLD, since the model then
    argues equally for opposite trades. Raises ValueError on mismatched lengths."""
    call_margin = np.asarray(call_margin, dtype=float)
    put_margin = np.asarray(put_margin, dtype=float)
    if call_margin.shape != put_margin.shape or call_margin.ndim != 1:
        raise ValueError("call_margin and put_margin must be 1-D arrays of one length")
    with np.errstate(invalid="ignore"):
        call = (call_margin >= 0) & ~(put_margin >= call_margin)
        put = (put_margin >= 0) & ~(call_margin >= put_margin)
    return (call.astype(np.int8) - put.astype(np.int8)).astype(np.int8)
