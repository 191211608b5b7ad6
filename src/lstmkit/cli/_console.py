"""The CLI's rich console and logging set-up: progress and logs go to stderr, results (JSON) to stdout."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from rich.console import Console
from rich.logging import RichHandler

err = Console(stderr=True)


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False, show_time=False)], force=True,
    )  # fmt: skip


def print_json(document: Any) -> None:
    """The machine-readable result, alone on stdout, last."""
    sys.stdout.write(json.dumps(document, indent=2) + "\n")
    sys.stdout.flush()


def fail(message: str, code: int = 2) -> None:
    """One clear sentence on stderr and a non-zero exit, never a traceback, for a user's mistake."""
    import typer

    err.print(f"[bold red]error:[/] {message}", soft_wrap=True, highlight=False)
    raise typer.Exit(code)


USER_ERRORS: tuple[type[Exception], ...] = (ValueError, KeyError, FileNotFoundError, FileExistsError, ImportError)
"""The exceptions a user's mistake raises in the library (bad input, a missing file, a missing extra): each becomes
one sentence and exit code 2 in the CLI, never a traceback."""


def user_message(e: Exception) -> str:
    """The sentence of a user error (a KeyError's own text, without the quotes ``str`` would add)."""
    return str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
