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
