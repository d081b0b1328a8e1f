"""What the CLI's modules share: a message to the terminal's stderr, several click options as one."""
from __future__ import annotations

import click

from ..io.console import terminal


def echo_err(msg: str) -> None:
    click.echo(msg, file=terminal())  # the terminal's stderr, also while -q sends library output to a log


def stack(*options):
    """One decorator from several click options (declared once, used by several commands)."""
    def wrap(f):
        for opt in reversed(options):
            f = opt(f)
        return f
    return wrap
