"""One module per command, each with `register(app)`; this list is the order of `--help`."""

from importlib import import_module
from types import ModuleType

_NAMES = [
    "ingest",
    "serve",
    "features",
    "backtest",
    "sql",
    "train",
    "signals",
    "web",
    "demo",
]

COMMAND_MODULES: list[ModuleType] = [import_module(f"stockml.commands.{n}") for n in _NAMES]
