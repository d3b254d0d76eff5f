"""Placeholder registration; replaced by the real command in this session's next commit."""

import typer


def register(app: typer.Typer) -> None:
    return None
