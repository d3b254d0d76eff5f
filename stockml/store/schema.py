"""The schema: every CREATE TABLE and CREATE VIEW of the store, and nothing else.

The table and column names here are a public interface (documented in the README): users
query them with SQL, scripts depend on them. `CORE_DDL` is run on every writable connect and
is idempotent. `features` is the one table whose columns come from code (the feature
catalog), so it is built by `features_ddl`, together with the `model_inputs` and `samples`
views over it.

Tables:
    prices             one row per symbol and New York trading day, Yahoo's values as served
    corporate_actions  dividends and splits, as Yahoo reports them
    ingest_status      one row per symbol: ok/failed, reason, what range was fetched
    price_flags        days whose prices contradicted themselves at ingest: repaired or
                       quarantined (labels leave out what a quarantined day touches)
    symbols            name and GICS sector of the built-in universes' symbols
    settings           small key/value memory (e.g. the transport that last worked)
    features           symbol, date, then the catalog's columns (created by features/)
    features_status    which prices fingerprint the stored features were computed from
    labels             triple-barrier outcomes per symbol, date and profile
    labels_status      which prices fingerprint and parameters each profile's labels used
    context_features   market, sector and cross-sectional columns per symbol and date
                       (features/context.csv), recomputed whole when any price changes
    model_inputs (view) features with their context columns: the model's input row
    samples (view)     model_inputs joined with labels: the table users query
    _context_*         scratch tables of a context refresh in progress (stock series,
                       cross-sections, the new table), dropped when it ends or restarts
    training_runs, model_metrics, signals, signal_trades   written by training/
    training_fits      one row per (run, model, fold) fit: the Ray node and host it ran on
    equity_curves      each traded signal set's portfolio per side and session (issue 24)
    run_notes          a run's sentences: the verdict per side, each window's and the live rule
    signal_explanations, signal_contributions   why each stored signal: written by
                       `stockml signals` when it scores (EXPLANATION_DDL), read by the page
    price_holes        sessions a symbol's answer lacked (null, or missing where its calendar
                       traded): refetched until filled or declared permanent (INGEST_DDL)

`window` is an SQL keyword: quote it in queries (`SELECT "window", ...`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

CORE_DDL = """
CREATE TABLE IF NOT EXISTS prices (
    symbol    VARCHAR NOT NULL,
    date      DATE    NOT NULL,
    open      DOUBLE  NOT NULL,
    high      DOUBLE  NOT NULL,
    low       DOUBLE  NOT NULL,
    close     DOUBLE  NOT NULL,
    adjclose  DOUBLE  NOT NULL,
    volume    BIGINT,
    PRIMARY KEY (symbol, date)
);
CREATE TABLE IF NOT EXISTS corporate_actions (
    symbol  VARCHAR NOT NULL,
    date    DATE    NOT NULL,
    kind    VARCHAR NOT NULL,   -- 'dividend' (cash per share) or 'split' (numerator/denominator)
    value   DOUBLE  NOT NULL,
    PRIMARY KEY (symbol, date, kind)
);
CREATE TABLE IF NOT EXISTS ingest_status (
    symbol          VARCHAR PRIMARY KEY,
    status          VARCHAR NOT NULL,   -- 'ok', 'failed' or 'inactive' (repeated 404s)
    attempts        INTEGER NOT NULL,   -- HTTP requests made for the symbol in the last run
    rows            BIGINT  NOT NULL,   -- rows stored in prices
    first_date      DATE,
    last_date       DATE,
    error           VARCHAR,            -- why it failed (NULL when ok)
    updated_at      TIMESTAMP NOT NULL, -- UTC
    fetched_from    DATE,               -- the stored history covers [fetched_from, fetched_through]
    fetched_through DATE,
    dropped_null    INTEGER,            -- rows Yahoo served with null values (last fetch)
    dropped_invalid INTEGER,            -- rows with impossible values kept out of prices
    transport       VARCHAR             -- 'aiohttp' or 'curl': which client fetched it
);
CREATE TABLE IF NOT EXISTS price_flags (
    symbol  VARCHAR NOT NULL,
    date    DATE    NOT NULL,   -- the day of the move: its close against the previous close
    kind    VARCHAR NOT NULL,   -- unit_change, unadjusted_split, split_mismatch, extreme_move
    detail  VARCHAR NOT NULL,   -- the moves seen and what was done, in words
    action  VARCHAR NOT NULL,   -- 'repaired' (earlier bars rescaled) or 'quarantined'
    PRIMARY KEY (symbol, date)
);
CREATE TABLE IF NOT EXISTS symbols (
    symbol  VARCHAR PRIMARY KEY,
    name    VARCHAR,
    sector  VARCHAR             -- GICS sector, for per-sector questions in SQL
);
CREATE TABLE IF NOT EXISTS settings (
    key    VARCHAR PRIMARY KEY,
    value  VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS features_status (
    symbol              VARCHAR PRIMARY KEY,
    prices_fingerprint  VARCHAR NOT NULL,
    catalog_version     VARCHAR NOT NULL,
    rows                BIGINT  NOT NULL,
    computed_at         TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS labels (
    symbol       VARCHAR  NOT NULL,
    date         DATE     NOT NULL,
    profile      VARCHAR  NOT NULL,
    label        TINYINT,            -- +1 win, 0 timeout, -1 loss; NULL in the last H days
                                     -- and near a quarantined price_flags day
    exit_offset  SMALLINT,           -- trading days from entry to exit (H on timeout)
    exit_return  DOUBLE,
    mfe          DOUBLE,             -- maximum favourable excursion (high vs entry)
    mae          DOUBLE              -- maximum adverse excursion (low vs entry, <= 0)
);
CREATE TABLE IF NOT EXISTS labels_status (
    symbol              VARCHAR NOT NULL,
    profile             VARCHAR NOT NULL,
    prices_fingerprint  VARCHAR NOT NULL,
    params              VARCHAR NOT NULL,
    rows                BIGINT  NOT NULL,
    computed_at         TIMESTAMP NOT NULL,
    PRIMARY KEY (symbol, profile)
);
CREATE TABLE IF NOT EXISTS training_runs (
    run_id            VARCHAR PRIMARY KEY,
    created_at        TIMESTAMP NOT NULL,
    profile           VARCHAR NOT NULL,
    status            VARCHAR NOT NULL,   -- 'running', 'done'
    train_start       DATE,
    train_end         DATE,
    test_start        DATE,
    test_end          DATE,
    n_train           BIGINT,
    n_test            BIGINT,
    data_fingerprint  VARCHAR,
    code_version      VARCHAR,
    params            VARCHAR,            -- JSON
    run_dir           VARCHAR
);
CREATE TABLE IF NOT EXISTS model_metrics (
    run_id    VARCHAR NOT NULL,
    "window"  VARCHAR NOT NULL,     -- walk-forward test window '1'..'K', or 'pooled'
    model     VARCHAR NOT NULL,     -- a base model, 'stack', 'baseline_*', 'audit_random_split'
    metric    VARCHAR NOT NULL,
    value     DOUBLE,
    PRIMARY KEY (run_id, "window", model, metric)
);
CREATE TABLE IF NOT EXISTS signals (
    run_id     VARCHAR NOT NULL,
    symbol     VARCHAR NOT NULL,
    date       DATE    NOT NULL,
    signal     VARCHAR NOT NULL,   -- 'BUY CALL', 'BUY PUT', 'HOLD'
    p_win      DOUBLE,
    p_timeout  DOUBLE,
    p_loss     DOUBLE,
    threshold  DOUBLE,             -- the threshold the signal's probability reached (NULL: HOLD)
    profile    VARCHAR,            -- the label profile the run learned
    PRIMARY KEY (run_id, symbol, date)
);
CREATE TABLE IF NOT EXISTS signal_trades (
    run_id         VARCHAR NOT NULL,
    "window"       VARCHAR NOT NULL,  -- the walk-forward test window of the signal
    symbol         VARCHAR NOT NULL,
    date           DATE    NOT NULL,  -- the signal day (its close produced the signal)
    signal         VARCHAR NOT NULL,  -- 'BUY CALL' or 'BUY PUT'
    exit_date      DATE,              -- the label's exit day (target, stop or timeout)
    days_held      INTEGER,           -- trading days
    outcome        TINYINT,           -- the label: +1 target, -1 stop, 0 timeout
    stock_return   DOUBLE,            -- the stock's own return entry -> exit
    option_return  DOUBLE,            -- at-the-money option, Black-Scholes at realized vol
    PRIMARY KEY (run_id, symbol, date)
);
CREATE TABLE IF NOT EXISTS training_fits (
    run_id   VARCHAR NOT NULL,
    model    VARCHAR NOT NULL,   -- a base model
    fold     VARCHAR NOT NULL,   -- 'b<j>': fitted on the days before block j, predicts it; 'live'
    node_id  VARCHAR,            -- the Ray node it ran on (NULL: the serial path, or fitted
                                 -- before fits were recorded)
    host     VARCHAR,            -- that node's host name
    seconds  DOUBLE,             -- the fit and its predictions, on that node
    rows     BIGINT  NOT NULL,   -- rows fitted on
    PRIMARY KEY (run_id, model, fold)
);
"""

# --- Why each signal: written by `stockml signals` (training/explain.py) when it scores,
# read by the symbol page, which recomputed it per request before. Runs scored before these
# tables existed have no rows: the page says to score again. ---
EXPLANATION_DDL = """
CREATE TABLE IF NOT EXISTS signal_explanations (
    run_id   VARCHAR NOT NULL,
    symbol   VARCHAR NOT NULL,
    date     DATE    NOT NULL,
    models   VARCHAR[] NOT NULL,  -- the base models the live stack reads
    note     VARCHAR,             -- why there are no contributions (NULL: explained)
    PRIMARY KEY (run_id, symbol, date)
);
CREATE TABLE IF NOT EXISTS signal_contributions (
    run_id        VARCHAR  NOT NULL,
    symbol        VARCHAR  NOT NULL,
    date          DATE     NOT NULL,
    outcome       VARCHAR  NOT NULL,  -- 'win' or 'loss': the probability it moves
    rank          SMALLINT NOT NULL,  -- 1: the largest |contribution|
    feature       VARCHAR  NOT NULL,
    value         DOUBLE,             -- the feature's value that day (NULL: missing)
    reference     DOUBLE,             -- its median over the training samples
    contribution  DOUBLE   NOT NULL,  -- probability points: p(x) - p(x, feature at reference)
    PRIMARY KEY (run_id, symbol, date, outcome, rank)
);
"""

# --- Trades as they could be placed (issue 24): `signal_trades` gains the entry session and
# fill and the costs charged. Added by ALTER TABLE after CORE_DDL on every writable connect,
# so a store made before gets them (NULL for its earlier runs) and every store has one column
# order; training writes the table by name, so a writer without them still inserts. ---
SIGNAL_TRADES_PLACED = """
ALTER TABLE signal_trades ADD COLUMN IF NOT EXISTS entry_date DATE;
ALTER TABLE signal_trades ADD COLUMN IF NOT EXISTS entry_price DOUBLE;
ALTER TABLE signal_trades ADD COLUMN IF NOT EXISTS costs DOUBLE;
"""
# What they mean (the README's schema table says the same):
#   entry_date   the session entered: the first after the signal day `date`, at its open
#   entry_price  the fill, that session's split- and dividend-adjusted open
#   costs        the round trip charged as a return on the stake, already taken out of
#                stock_return / option_return (backtest/costs.py; the trade the run's rule
#                was chosen on: the option's, or the stock's for a stock user)

# ---- Signals a trader can act on (issue 24): one equity curve per traded signal set and
# side, which the report and the page both draw; and each signal's suggested contract. Run
# after CORE_DDL on every writable connect (idempotent: an older store gains them, NULL on
# its earlier rows). ----
# The signals' contract columns added below, in the order `stockml signals` prints them
# and the page reads them (NULL on HOLD rows and on rows recorded before issue 24).
SIGNAL_CONTRACT_COLUMNS = (
    "close",
    "act_on",
    "strike",
    "expiry",
    "premium",
    "target_price",
    "stop_price",
    "last_exit",
)
TRADING_DDL = """
CREATE TABLE IF NOT EXISTS equity_curves (
    run_id     VARCHAR NOT NULL,
    model      VARCHAR NOT NULL,  -- 'stack', 'baseline_volatility', 'baseline_best_base',
                                  -- 'baseline_hold_universe'
    side       VARCHAR NOT NULL,  -- 'call', 'put' ('both' for the universe)
    date       DATE    NOT NULL,  -- every session of the test windows
    equity     DOUBLE,            -- multiples of the starting capital, at the close
    drawdown   DOUBLE,            -- equity / its running peak - 1 (<= 0)
    positions  INTEGER,           -- trades open at the close
    PRIMARY KEY (run_id, model, side, date)
);
CREATE TABLE IF NOT EXISTS run_notes (
    run_id  VARCHAR NOT NULL,
    note    VARCHAR NOT NULL,  -- 'verdict.call', 'verdict.put': trade it or not, and why;
                               -- 'rule.<window>.call' / '.put' ('live': what signals uses)
    text    VARCHAR NOT NULL,  -- the sentence, as the report says it
    PRIMARY KEY (run_id, note)
);
ALTER TABLE signals ADD COLUMN IF NOT EXISTS close DOUBLE;
    -- the signal day's close as traded
ALTER TABLE signals ADD COLUMN IF NOT EXISTS act_on DATE;
    -- the session to act: the next open after the signal day (NULL: HOLD)
ALTER TABLE signals ADD COLUMN IF NOT EXISTS strike DOUBLE;
    -- the suggested contract: at the money, at a listed strike increment
ALTER TABLE signals ADD COLUMN IF NOT EXISTS expiry DATE;
    -- its monthly expiry, the one nearest 30 days after act_on that outlives the hold
ALTER TABLE signals ADD COLUMN IF NOT EXISTS premium DOUBLE;
    -- approximate premium per share: Black-Scholes at the 20-day realised volatility
ALTER TABLE signals ADD COLUMN IF NOT EXISTS target_price DOUBLE;
ALTER TABLE signals ADD COLUMN IF NOT EXISTS stop_price DOUBLE;
    -- the underlying's barriers from the signal day's close
ALTER TABLE signals ADD COLUMN IF NOT EXISTS last_exit DATE;
    -- the hold limit: the H-th session from act_on
"""

# ---- ingest (issue 25): what each stored history is, and the holes Yahoo may fill later ----
# Run after CORE_DDL on every writable connect; idempotent, so it also brings an older store's
# `ingest_status` up to date (the new columns are NULL on its rows until the next fetch).
INGEST_DDL = """
ALTER TABLE ingest_status ADD COLUMN IF NOT EXISTS invalid_volume INTEGER;
    -- volumes that cannot be (negative, beyond int64, fractional) in the last fetch: NULL
ALTER TABLE ingest_status ADD COLUMN IF NOT EXISTS not_found_runs INTEGER;
    -- consecutive runs Yahoo answered 404; at ingest.fetch.INACTIVE_AFTER: 'inactive'
ALTER TABLE ingest_status ADD COLUMN IF NOT EXISTS currency VARCHAR;
    -- meta.currency of the stored history: an answer in another currency is refused
ALTER TABLE ingest_status ADD COLUMN IF NOT EXISTS exchange_timezone VARCHAR;
    -- meta.exchangeTimezoneName: the calendar the symbol's dates are days of
ALTER TABLE ingest_status ADD COLUMN IF NOT EXISTS instrument_type VARCHAR;
    -- meta.instrumentType: EQUITY, ETF, INDEX, CRYPTOCURRENCY, CURRENCY, FUTURE, ...
CREATE TABLE IF NOT EXISTS price_holes (
    symbol      VARCHAR NOT NULL,
    date        DATE    NOT NULL,
    kind        VARCHAR NOT NULL,   -- 'null': served with a null price; 'missing': a session of
                                    -- the symbol's calendar (most of its peers) it lacked
    status      VARCHAR NOT NULL,   -- 'open' (refetched each run), 'filled', 'permanent'
    checks      INTEGER NOT NULL,   -- answers that covered the day and still lacked it
    first_seen  TIMESTAMP NOT NULL, -- UTC
    updated_at  TIMESTAMP NOT NULL, -- UTC
    PRIMARY KEY (symbol, date)
);
"""

# Feature columns are stored as REAL (float32). The kernels compute in float64 (equal to
# TA-Lib at 1e-9); the store keeps 7 significant digits, which is what the tree models use
# anyway (they bin or cast to float32), and halves the write that dominates the backtest.
FEATURE_SQL_TYPE = "FLOAT"

_COLUMN_NAME = re.compile(r"[a-z][a-z0-9_]*")


def features_columns(columns: Sequence[str]) -> list[tuple[str, str]]:
    """(name, DuckDB type) of every `features` column, as information_schema reports them."""
    return [("symbol", "VARCHAR"), ("date", "DATE")] + [(c, FEATURE_SQL_TYPE) for c in columns]


def features_ddl(columns: Sequence[str]) -> str:
    """CREATE `features` with the catalog's columns, and the `samples` view over it.

    Column names are spliced into the SQL, so each must be a plain lower-case identifier.
    """
    for name in columns:
        if not _COLUMN_NAME.fullmatch(name):
            raise ValueError(f"bad feature column name {name!r}")
    cols = ",\n    ".join(f"{name} {FEATURE_SQL_TYPE}" for name in columns)
    return (
        f"CREATE TABLE features (\n    symbol VARCHAR NOT NULL,\n    date DATE NOT NULL,\n"
        f"    {cols}\n);\n" + MODEL_INPUTS + "\n" + SAMPLES
    )


def context_ddl(columns: Sequence[str], table: str = "context_features") -> str:
    """CREATE `table` (`context_features`, or the scratch table a refresh fills before it
    takes that name) with the context catalog's columns (features/context.csv)."""
    for name in columns:
        if not _COLUMN_NAME.fullmatch(name):
            raise ValueError(f"bad context column name {name!r}")
    cols = ",\n    ".join(f"{name} {FEATURE_SQL_TYPE}" for name in columns)
    return (
        f"CREATE TABLE {table} (\n    symbol VARCHAR NOT NULL,\n    date DATE NOT NULL,"
        f"\n    {cols}\n);"
    )


def context_scratch_from(table: str, source: str) -> str:
    """CREATE a context refresh's scratch `table` with the columns and rows of `source`
    (its first chunk: the stage's frame fixes the types)."""
    return f"CREATE TABLE {table} AS SELECT * FROM {source}"


CONTEXT_SWAP = (
    "DROP TABLE context_features",
    "ALTER TABLE _context_new RENAME TO context_features",
)


# The model's input row, the one definition training, `stockml signals` and the page read:
# symbol, date, every catalog column, then (once the context table exists) every context
# column. `samples` is it joined with the labels.
MODEL_INPUTS = "CREATE OR REPLACE VIEW model_inputs AS SELECT f.* FROM features f;"
MODEL_INPUTS_WITH_CONTEXT = (
    "CREATE OR REPLACE VIEW model_inputs AS SELECT f.*, c.* EXCLUDE (symbol, date) "
    "FROM features f LEFT JOIN context_features c USING (symbol, date);"
)
SAMPLES = (
    "CREATE OR REPLACE VIEW samples AS SELECT m.*, l.profile, l.label, l.exit_offset, "
    "l.exit_return, l.mfe, l.mae FROM model_inputs m JOIN labels l USING (symbol, date);"
)
SAMPLES_WITH_CONTEXT = MODEL_INPUTS_WITH_CONTEXT + "\n" + SAMPLES


def model_inputs_sql(columns: Sequence[str], newest: bool) -> str:
    """SELECT symbol, date and `columns` (catalog and context names, in that order) from
    `model_inputs`: each symbol's newest row when `newest`, else the rows of `symbol = ?
    AND date = ?` (two parameters). Names are checked to be plain identifiers."""
    for name in columns:
        if not _COLUMN_NAME.fullmatch(name):
            raise ValueError(f"bad model input column name {name!r}")
    select = ", ".join(f'"{c}"' for c in columns)
    if newest:
        return (
            f"SELECT symbol, date, {select} FROM model_inputs "
            "QUALIFY date = max(date) OVER (PARTITION BY symbol) ORDER BY symbol"
        )
    return f"SELECT symbol, date, {select} FROM model_inputs WHERE symbol = ? AND date = ?"


def initialise(con) -> None:
    """Create the core tables (idempotent), first bringing a store made by an earlier version
    to this schema, in one transaction: `model_metrics` gained the "window" column (older
    rows were single-split figures, kept as 'pooled'), `signals` gained `threshold` and
    `profile`, `signal_trades` gained `entry_date`, `entry_price` and `costs`
    (SIGNAL_TRADES_PLACED), and the `model_inputs` view came between `features` and
    `samples`."""

    def columns(table: str) -> set[str]:
        rows = con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]
        ).fetchall()
        return {r[0] for r in rows}

    con.begin()
    try:
        old_metrics = bool(columns("model_metrics")) and "window" not in columns("model_metrics")
        if old_metrics:
            con.execute("ALTER TABLE model_metrics RENAME TO model_metrics_v1")
        con.execute(CORE_DDL)
        con.execute(EXPLANATION_DDL)
        con.execute(INGEST_DDL)
        con.execute(TRADING_DDL)
        if old_metrics:
            con.execute(
                "INSERT INTO model_metrics SELECT run_id, 'pooled', model, metric, value "
                "FROM model_metrics_v1; DROP TABLE model_metrics_v1;"
            )
        if "threshold" not in columns("signals"):
            con.execute(
                "ALTER TABLE signals ADD COLUMN threshold DOUBLE; "
                "ALTER TABLE signals ADD COLUMN profile VARCHAR;"
            )
        if "costs" not in columns("signal_trades"):
            con.execute(SIGNAL_TRADES_PLACED)
        # Stores made before the `model_inputs` view: their `samples` read `features`
        # directly; both views are made again over the tables the store has.
        views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
        if columns("features") and "model_inputs" not in views:
            if columns("context_features"):
                con.execute(MODEL_INPUTS_WITH_CONTEXT)
            else:
                con.execute(MODEL_INPUTS)
            con.execute(SAMPLES)
    except BaseException:
        con.rollback()
        raise
    con.commit()
