"""The label-profile flags `stockml backtest` and `stockml train` share, defined once.

Each is a function returning a fresh `typer.Option`, used as a parameter default. The
profiles' barriers live in `backtest.labels.PROFILES` only; importing it here would load
polars and DuckDB on every `--help`, so the help names the profiles and the commands print
the barriers they use.
"""

from __future__ import annotations

import typer

from stockml.defaults import DEFAULT_PROFILE


def profile_option():
    return typer.Option(
        DEFAULT_PROFILE,
        "--profile",
        help="Label profile: swing or options (their barriers are printed with the results).",
    )


def hold_days_option():
    return typer.Option(
        None, "--hold-days", help="Override the profile's holding period (trading days)."
    )


def take_profit_option():
    return typer.Option(None, "--take-profit", help="Override the target, a fraction (0.08 = +8%).")


def stop_loss_option():
    return typer.Option(
        None, "--stop-loss", help="Override the stop, a negative fraction (-0.04 = -4%)."
    )
