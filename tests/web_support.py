"""The web tests' store, written through the store module's own functions in a second:
prices of three stocks (weekdays of 2023) and BTC-USD (every day, to Sunday 31 December),
real features, listings, two runs (swing: params as training records them, the profile as
JSON text; options: the profile as an object) with metrics, trades, signals and one
stored explanation, a run folder with a plot, and a decoy folder the store names.
"""

from __future__ import annotations

import json
import zlib
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from stockml import store
from stockml.store.connection import insert_frame

RUN = "aaaa000000000001"  # swing: params as training records them (profile as JSON text)
RUN_NEW = "bbbb000000000002"  # options: the profile stored as an object
STOCKS = ["AAA", "BBB", "CCC"]
FRIDAY = date(2023, 12, 29)
SUNDAY = date(2023, 12, 31)
MODELS = ["lightgbm", "logistic"]


def png_bytes() -> bytes:
    """A valid 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = (1).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def bars(symbol: str, days: list[date], seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.015, len(days))))
    return pl.DataFrame(
        {
            "symbol": [symbol] * len(days),
            "date": days,
            "open": close * 0.999,
            "high": close * 1.01,
            "low": close * 0.99,
            "close": close,
            "adjclose": close,
            "volume": rng.integers(10**5, 10**7, len(days)),
        }
    )


def signal_rows(run_id: str, profile: str, rows: list[tuple]) -> pl.DataFrame:
    """signals rows from (symbol, date, signal, p_win, p_loss)."""
    return pl.DataFrame(
        {
            "run_id": [run_id] * len(rows),
            "symbol": [r[0] for r in rows],
            "date": [r[1] for r in rows],
            "signal": [r[2] for r in rows],
            "p_win": [r[3] for r in rows],
            "p_timeout": [1 - r[3] - r[4] for r in rows],
            "p_loss": [r[4] for r in rows],
            "threshold": [0.5 if r[2] != "HOLD" else float("nan") for r in rows],
            "profile": [profile] * len(rows),
        }
    )


def info(days: list[date]) -> dict:
    return {
        "train_start": days[0],
        "train_end": days[-60],
        "test_start": days[-50],
        "test_end": days[-15],
        "n_train": 600,
        "n_test": 120,
    }


def build_app_store(root: Path) -> Path:
    """The store `root/s.duckdb` and its runs folder `root/runs` (see the module docstring);
    `root/elsewhere` is the folder training_runs.run_dir names, never read by the server."""
    from features.compute import refresh_features

    db = root / "s.duckdb"
    start = date(2023, 1, 2)
    every_day = [start + timedelta(days=i) for i in range((SUNDAY - start).days + 1)]
    weekdays = [d for d in every_day if d.weekday() < 5]
    con = store.connect(db)
    try:
        for i, symbol in enumerate(STOCKS):
            insert_frame(con, bars(symbol, weekdays, i), "INSERT INTO prices SELECT * FROM _new")
        insert_frame(con, bars("BTC-USD", every_day, 9), "INSERT INTO prices SELECT * FROM _new")
        refresh_features(con, progress=False)
        store.upsert_symbols(
            con,
            [
                ("AAA", "Aaa Corp", "Energy"),
                ("BBB", "Bbb Corp", "Financials"),
                ("CCC", "Ccc Corp", "Energy"),
                ("BTC-USD", "Bitcoin USD", None),
            ],
        )
        profile = {"hold_days": 14, "take_profit": 0.1, "stop_loss": -0.05}
        metrics = [
            (w, m, k, v)
            for w in ("1", "2", "pooled")
            for m, k, v in (
                ("stack", "accuracy", 0.52),
                ("stack", "log_loss", 0.98),
                ("lightgbm", "accuracy", 0.50),
                ("baseline_prior", "log_loss", 1.08),
            )
        ]
        metrics += [("1", m, "stack_weight", w) for m, w in zip(MODELS, (0.25, 0.75), strict=True)]
        metrics += [("pooled", "stack", "accuracy_ci_low", 0.49)]
        metrics += [("pooled", "stack", "accuracy_ci_high", 0.55)]
        trades = pl.DataFrame(
            {
                "run_id": [RUN] * 3,
                "window": ["1", "1", "2"],
                "symbol": ["AAA", "BBB", "AAA"],
                "date": weekdays[-50:-47],
                "signal": ["BUY CALL", "BUY PUT", "BUY CALL"],
                "exit_date": weekdays[-40:-37],
                "days_held": [10, 10, 10],
                "outcome": [1, -1, 0],
                "stock_return": [0.1, 0.05, 0.01],
                "option_return": [0.8, 0.4, -0.2],
            },
            schema_overrides={"outcome": pl.Int8, "days_held": pl.Int32},
        )
        params = json.dumps({"models": MODELS, "profile": json.dumps(profile)})
        store.record_training_run(
            con,
            RUN,
            "swing",
            info(weekdays),
            "f" * 16,
            "test",
            params,
            str(root / "elsewhere"),
            metrics,
            trades,
        )
        newer = json.dumps({"models": MODELS, "profile": {**profile, "hold_days": 5}})
        store.record_training_run(
            con, RUN_NEW, "options", info(weekdays), "e" * 16, "test", newer, "", metrics[:4]
        )
        store.replace_signals(
            con,
            RUN,
            signal_rows(
                RUN,
                "swing",
                [
                    ("AAA", FRIDAY, "BUY CALL", 0.61, 0.10),
                    ("BBB", FRIDAY, "HOLD", 0.30, 0.30),
                    ("CCC", FRIDAY, "BUY PUT", 0.10, 0.58),
                    ("BTC-USD", SUNDAY, "HOLD", 0.35, 0.33),
                ],
            ),
        )
        store.replace_signals(
            con, RUN_NEW, signal_rows(RUN_NEW, "options", [("AAA", FRIDAY, "HOLD", 0.3, 0.2)])
        )
        contributions = pl.DataFrame(
            [
                (RUN, "AAA", FRIDAY, outcome, rank, feature, value, 0.5, sign * 0.01 / rank)
                for outcome, sign in (("win", 1), ("loss", -1))
                for rank, (feature, value) in enumerate(
                    [("rsi_14", 71.5), ("natr_14", None), ("ret_5", 0.03)], start=1
                )
            ],
            schema=[
                "run_id",
                "symbol",
                "date",
                "outcome",
                "rank",
                "feature",
                "value",
                "reference",
                "contribution",
            ],
            orient="row",
        )
        heads = pl.DataFrame(
            {
                "run_id": [RUN],
                "symbol": ["AAA"],
                "date": [FRIDAY],
                "models": [MODELS],
                "note": [None],
            },
            schema_overrides={"note": pl.String},
        )
        store.replace_explanations(con, RUN, heads, contributions)
        con.execute(
            "INSERT INTO ingest_status (symbol, status, attempts, rows, error, updated_at) "
            "VALUES ('AAA', 'ok', 1, 260, NULL, now()), "
            "('ZZZ', 'failed', 4, 0, 'HTTP 404 Not Found', now())"
        )
    finally:
        con.close()
    (root / "runs" / RUN).mkdir(parents=True)
    (root / "runs" / RUN / "models.png").write_bytes(png_bytes())
    (root / "elsewhere").mkdir()  # what training_runs.run_dir of RUN names: never read
    (root / "elsewhere" / "secret.png").write_bytes(png_bytes())
    return db


RUN_TRADED = "cccc000000000003"  # swing, recorded as training does since issue 24
CALL_VERDICT = "BUY CALL: trade it (3 placed trades, mean +12.0% after costs, Sharpe 1.40)."
PUT_VERDICT = (
    "BUY PUT: do not trade it: its trades lost money after costs (2 placed trades, "
    "mean -8.0% after costs, Sharpe -0.60)."
)
CALL_RULE = (
    "BUY CALL when p_win - p_loss >= +0.1000: mean option return after costs +2.1% over "
    "41 placed trades on 2023-01-02 .. 2023-10-20"
)
PUT_RULE = (
    "BUY PUT when p_loss - p_win >= +0.2000: mean option return after costs +0.4% over "
    "30 placed trades on 2023-01-02 .. 2023-10-20"
)


def add_traded_run(db: Path) -> None:
    """A newer swing run written as `stockml train` and `stockml signals` write one now:
    verdicts and rules in `run_notes` (calls: trade it; puts: do not), the placed-trade
    and portfolio figures in `model_metrics` (pooled and live), equity curves for the
    stack, both baselines and the universe, placed trades (entry day, fill, costs), and
    signals with the contracts training/contracts.py suggests: BUY CALL AAA and BTC-USD,
    BUY PUT CCC, HOLD BBB."""
    from training.contracts import contracts_frame

    con = store.connect(db)
    try:
        days = [
            d
            for (d,) in con.execute(
                "SELECT date FROM prices WHERE symbol = 'AAA' ORDER BY date"
            ).fetchall()
        ]
        test_days = days[-50:]
        pooled = {
            "call_placed_trades": 3,
            "call_placed_hit_rate": 2 / 3,
            "call_placed_mean_return": 0.12,
            "call_placed_mean_option_return": 0.12,
            "call_placed_mean_stock_return": 0.011,
            "call_placed_mean_costs": 0.03,
            "call_placed_barrier_rate": 1 / 3,
            "call_placed_median_return": 0.1,
            "call_sharpe": 1.4,
            "call_sortino": 2.1,
            "call_max_drawdown": -0.12,
            "call_max_drawdown_days": 9,
            "call_total_return": 0.3,
            "call_annual_return": 0.25,
            "call_exposure": 0.4,
            "call_skipped": 1,
            "call_trade_it": 1,
            "put_placed_trades": 2,
            "put_placed_hit_rate": 0.5,
            "put_placed_mean_return": -0.08,
            "put_placed_mean_option_return": -0.08,
            "put_placed_mean_stock_return": -0.004,
            "put_placed_mean_costs": 0.03,
            "put_placed_barrier_rate": 0.5,
            "put_sharpe": -0.6,
            "put_max_drawdown": -0.3,
            "put_trade_it": 0,
        }
        metrics = [("pooled", "stack", k, v) for k, v in pooled.items()]
        metrics += [
            ("pooled", "baseline_volatility", "call_placed_trades", 7),
            ("pooled", "baseline_volatility", "call_sharpe", 0.5),
            ("pooled", "baseline_hold_universe", "sharpe", 0.9),
            ("pooled", "baseline_hold_universe", "total_return", 0.15),
            ("pooled", "stack", "accuracy", 0.51),
        ]
        metrics += [
            ("live", "stack", "call_rule_on", 1),
            ("live", "stack", "put_rule_on", 1),
            ("live", "stack", "call_rule_threshold", 0.1),
            ("live", "stack", "put_rule_threshold", 0.2),
        ]
        notes = {
            "verdict.call": CALL_VERDICT,
            "verdict.put": PUT_VERDICT,
            "rule.live.call": CALL_RULE,
            "rule.live.put": PUT_RULE,
            "rule.1.call": CALL_RULE,
            "rule.1.put": PUT_RULE,
        }
        steps = np.linspace(0.0, 1.0, len(test_days))
        curves = pl.concat(
            [
                pl.DataFrame(
                    {
                        "run_id": RUN_TRADED,
                        "model": model,
                        "side": side,
                        "date": test_days,
                        "equity": 1.0 + growth * steps,
                        "drawdown": -0.05 * steps,
                        "positions": [1] * len(test_days),
                    },
                    schema_overrides={"positions": pl.Int32},
                )
                for model, side, growth in (
                    ("stack", "call", 0.3),
                    ("stack", "put", -0.2),
                    ("baseline_volatility", "call", 0.1),
                    ("baseline_volatility", "put", -0.1),
                    ("baseline_best_base", "call", 0.05),
                    ("baseline_best_base", "put", 0.0),
                    ("baseline_hold_universe", "both", 0.15),
                )
            ]
        )
        trades = pl.DataFrame(
            {
                "run_id": [RUN_TRADED] * 3,
                "window": ["1", "1", "1"],
                "symbol": ["AAA", "CCC", "CCC"],
                "date": [test_days[0], test_days[1], test_days[20]],
                "signal": ["BUY CALL", "BUY PUT", "BUY PUT"],
                "entry_date": [test_days[1], test_days[2], test_days[21]],
                "entry_price": [50.0, 40.0, 41.0],
                "exit_date": [test_days[8], test_days[9], test_days[30]],
                "days_held": [7, 7, 9],
                "outcome": [1, -1, 1],
                "stock_return": [0.1, 0.05, -0.1],
                "option_return": [0.8, 0.6, -0.9],
                "costs": [0.03, 0.03, 0.03],
            },
            schema_overrides={"outcome": pl.Int8, "days_held": pl.Int32},
        )
        params = json.dumps(
            {
                "models": MODELS,
                "profile": "swing",
                "hold_days": 14,
                "take_profit": 0.1,
                "stop_loss": -0.05,
            }
        )
        store.record_training_run(
            con,
            RUN_TRADED,
            "swing",
            info(days),
            "d" * 16,
            "test",
            params,
            "",
            metrics,
            trades,
            curves=curves,
            notes=notes,
        )
        signals = signal_rows(
            RUN_TRADED,
            "swing",
            [
                ("AAA", FRIDAY, "BUY CALL", 0.61, 0.10),
                ("BTC-USD", SUNDAY, "BUY CALL", 0.45, 0.30),
                ("BBB", FRIDAY, "HOLD", 0.30, 0.30),
                ("CCC", FRIDAY, "BUY PUT", 0.10, 0.58),
            ],
        )
        closes = pl.DataFrame(
            con.execute(
                "SELECT symbol, date, close FROM prices WHERE (symbol, date) IN "
                "(('AAA', ?), ('BTC-USD', ?), ('BBB', ?), ('CCC', ?))",
                [FRIDAY, SUNDAY, FRIDAY, FRIDAY],
            ).fetchall(),
            schema=["symbol", "date", "close"],
            orient="row",
        )
        signals = signals.join(closes, on=["symbol", "date"]).with_columns(vol_20=pl.lit(0.02))
        store.replace_signals(
            con, RUN_TRADED, contracts_frame(signals, 14, 0.1, -0.05).drop("vol_20")
        )
    finally:
        con.close()
