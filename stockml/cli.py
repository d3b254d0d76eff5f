"""The `stockml` console command: parse flags, call one function per command, print.

Each command lives in `stockml/commands/<name>.py` with a `register(app)` function;
heavy imports (numba, ray, sklearn) happen inside the command bodies so `--help` is fast.
Results go to stdout, everything else (progress, notes, errors) to stderr. Every error,
ours (`StockmlError`) or Click's (an unknown flag, a bad value), is one line on stderr
with a non-zero exit (2 for usage); Ctrl-C exits 130. (Typer's vendored Click is used
without its standalone mode, which draws usage errors as a box of several lines.)
Process-wide settings are made here, in `main`, not on import: Numba's kernel cache folder,
and structlog dropping events until a command names its log file (never onto stdout).
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import typer
from typer._click.exceptions import NoArgsIsHelpError, UsageError

from features.cache import configure_numba_cache
from stockml import __version__
from stockml.commands import COMMAND_MODULES
from stockml.errors import StockmlError, StoreError, damaged_store_message, no_space_message
from stockml.logs import configure_logging

app = typer.Typer(
    name="stockml",
    help="Yahoo daily bars -> features -> triple-barrier labels -> honestly evaluated models.",
    epilog="Example: stockml demo   (the whole pipeline, offline, on the built-in simulator)",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        print(f"stockml {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print stockml's version and exit.",
    ),
) -> None:
    """Yahoo daily bars -> features -> triple-barrier labels -> honestly evaluated models."""


for _module in COMMAND_MODULES:
    _module.register(app)


def error(text: str, code: int) -> NoReturn:
    """The one line every failure ends with, and its exit status."""
    print(f"stockml: error: {' '.join(text.split())}", file=sys.stderr)
    sys.exit(code)


def main() -> None:
    configure_logging(None)
    command = typer.main.get_command(app)
    try:
        configure_numba_cache()  # before any kernel import; InputError when no place can take it
        code = command.main(prog_name="stockml", standalone_mode=False)
    except NoArgsIsHelpError as exc:  # plain `stockml`: the help, as asked
        print(exc.format_message())
        sys.exit(0)
    except UsageError as exc:  # Click's own: a flag it does not know, a bad value...
        where = exc.ctx.command_path if exc.ctx is not None else "stockml"
        error(f"{exc.format_message()} (see {where} --help)", exc.exit_code)
    except StockmlError as exc:
        error(str(exc), exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        print("stockml: interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:  # `stockml signals | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)  # as a process killed by SIGPIPE
    except Exception as exc:
        # A full disk or a damaged store file is the machine's, not a bug.
        message = no_space_message(exc) or damaged_store_message(exc)
        if message is None:
            raise
        error(message, StoreError.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
