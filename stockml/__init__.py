"""stockml: Yahoo daily bars to honestly evaluated trading-signal models.

This package holds what every stage shares: the CLI, the DuckDB store (the only
place with DDL), errors, logging and progress display. The stages themselves live
in the top-level packages ingest/, features/, backtest/ and training/.
"""

__version__ = "0.1.0"
