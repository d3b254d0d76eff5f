"""The `stockml` console command: parse flags, call one function per command, print.

Each command lives in `stockml/commands/<name>.py` with a `register(app)` function;
heavy imports (numba, ray, sklearn) happen inside the command bodies so `--help` is fast.
User errors (`StockmlError`) are printed as one line and exit non-zero; Ctrl-C exits 130.
Process-wide settings are made here, in `main`, not on import: Numba's kernel cache folder.
"""

from __future__ import annotations

import sys

import typer

from features.cache import configure_numba_cache
from stockml.commands import COMMAND_MODULES
from stockml.errors import StockmlError, StoreError, damaged_store_message, no_space_message

app = typer.Typer(
    name="stockml",
    help="Yahoo daily bars -> features -> triple-barrier labels -> honestly evaluated models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

for _module in COMMAND_MODULES:
    _module.register(app)


def main() -> None:
    configure_numba_cache()
    # Click handles its own usage errors (one message, exit 2); ours are StockmlErrors.
    try:
        app(standalone_mode=True)
    except StockmlError as exc:
        print(f"stockml: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("stockml: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:
        # A full disk or a damaged store file is the machine's, not a bug.
        message = no_space_message(exc) or damaged_store_message(exc)
        if message is None:
            raise
        print(f"stockml: error: {message}", file=sys.stderr)
        sys.exit(StoreError.exit_code)


if __name__ == "__main__":
    main()
