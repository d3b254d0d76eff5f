"""The DuckDB store: the only package with DDL, and the only one that opens the file.

Every multi-row change a stage makes for one symbol happens in one transaction, so a crash
leaves the symbol as it was. Callers use the functions re-exported here
(`store.connect`, `store.write_batch`, `store.replace_features`, ...); the modules say
who owns what:

    schema      all the DDL: the tables and columns users query
    connection  connect, close (only once the writes are in the file), transaction,
                query_pl, the `settings` table
    prices      prices, corporate actions, ingest_status, symbols: what ingest writes and reads
    derived     features, labels, context_features, status tables, the samples view,
                symbol batches
    quality     price_flags: what ingest's price checks repaired or quarantined
    holes       price_holes: sessions an answer lacked, refetched until filled or permanent
    runs        training_runs, model_metrics, signals
    explanations  signal_explanations, signal_contributions: why each signal
    reading     reads while another process writes: the reading copy, dated
    locks       who holds DuckDB's lock on the file, asked without taking it
"""

from stockml.store.connection import (
    DEFAULT_DB,
    close,
    connect,
    get_setting,
    query_pl,
    registered,
    set_setting,
    transaction,
)
from stockml.store.derived import (
    append_context_scratch,
    context_state,
    delete_features,
    delete_labels,
    ensure_context_table,
    ensure_features_table,
    feature_rows,
    features_state,
    labels_state,
    model_inputs,
    read_vol_20,
    replace_context,
    replace_features,
    replace_labels,
    reset_context_scratch,
    swap_context,
    symbol_batches,
)
from stockml.store.explanations import replace_explanations
from stockml.store.prices import (
    IngestState,
    IngestStatusRecord,
    SymbolWrite,
    ingest_state,
    overlap_prices,
    prices_fingerprints,
    read_prices,
    read_splits,
    row_counts,
    stored_actions,
    upsert_symbols,
    write_batch,
)
from stockml.store.quality import flagged_symbols, quarantined_days, replace_price_flags
from stockml.store.reading import (
    Reading,
    keep_reading_copy,
    open_for_reading,
    private_copy,
    require_store,
)
from stockml.store.runs import append_metrics, record_training_run, replace_signals
from stockml.store.schema import FEATURE_SQL_TYPE

__all__ = [
    "DEFAULT_DB",
    "FEATURE_SQL_TYPE",
    "IngestState",
    "IngestStatusRecord",
    "Reading",
    "SymbolWrite",
    "append_context_scratch",
    "append_metrics",
    "close",
    "connect",
    "context_state",
    "delete_features",
    "delete_labels",
    "ensure_context_table",
    "ensure_features_table",
    "feature_rows",
    "features_state",
    "flagged_symbols",
    "get_setting",
    "ingest_state",
    "keep_reading_copy",
    "labels_state",
    "model_inputs",
    "open_for_reading",
    "overlap_prices",
    "prices_fingerprints",
    "private_copy",
    "quarantined_days",
    "query_pl",
    "read_prices",
    "read_splits",
    "read_vol_20",
    "record_training_run",
    "registered",
    "replace_context",
    "replace_explanations",
    "replace_features",
    "replace_labels",
    "replace_price_flags",
    "replace_signals",
    "require_store",
    "reset_context_scratch",
    "row_counts",
    "set_setting",
    "stored_actions",
    "swap_context",
    "symbol_batches",
    "transaction",
    "upsert_symbols",
    "write_batch",
]
