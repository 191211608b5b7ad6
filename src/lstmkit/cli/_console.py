"""The CLI's rich console and logging set-up: progress and logs go to stderr, results (JSON) to stdout."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

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


def print_result(task: str, run_dir: Any, metrics: dict[str, Any], baselines: dict[str, Any], **extra: Any) -> None:
    """The one JSON shape every training command prints with ``--json``: ``{"task", "run_dir", "metrics",
    "baselines", ...}``; a command adds its own keys after those (forecast: ``"forecast"``, classify:
    ``"predictions"``). ``baselines`` maps each baseline's name to its metrics, computed in the same run; ``run_dir``
    is null for a run that wrote none. ``task`` is the run's kind, as its config.json and ``lstmkit.load`` name it."""
    from ..runs import BUILTIN_KINDS

    if task not in BUILTIN_KINDS:
        raise TypeError(f"print_result: task {task!r} is not a run kind ({', '.join(sorted(BUILTIN_KINDS))}).")
    clash = {"task", "run_dir", "metrics", "baselines"} & set(extra)
    if clash:
        raise TypeError(f"print_result: {sorted(clash)} are the shape's own keys, not extras.")
    run_dir = None if run_dir is None else str(run_dir)
    print_json({"task": task, "run_dir": run_dir, "metrics": metrics, "baselines": baselines, **extra})


MAX_MESSAGE = 1000
"""The most characters of an error message printed: a message that quotes the user's data (a cell, a line) is cut
there, so a 52 MB cell is not echoed back whole."""


def capped(message: str, limit: int = MAX_MESSAGE) -> str:
    """``message``, cut to ``limit`` characters with a note of how much was left out."""
    if len(message) <= limit:
        return message
    return f"{message[:limit]}... ({len(message) - limit:,} more characters)"


def fail(message: str, code: int = 2) -> None:
    """One clear sentence on stderr and a non-zero exit, never a traceback, for a user's mistake."""
    import typer

    err.print(f"[bold red]error:[/] {escape(capped(message))}", soft_wrap=True, highlight=False)
    raise typer.Exit(code)


USER_ERRORS: tuple[type[Exception], ...] = (ValueError, KeyError, FileNotFoundError, FileExistsError, ImportError)
"""The exceptions a user's mistake raises in the library (bad input, a missing file, a missing extra): each becomes
one sentence and exit code 2 in the CLI, never a traceback."""


def user_message(e: Exception) -> str:
    """The sentence of a user error (a KeyError's own text, without the quotes ``str`` would add)."""
    return str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)


def user_error_message(exc: BaseException) -> str | None:
    """The sentence for an exception a user can act on (bad input, a missing file or extra, a finished or unknown run,
    a checkpoint that cannot be resumed, a model too large for memory), capped; None for anything else (a bug)."""
    from ..train import CheckpointError, ResumeError

    if isinstance(exc, ImportError) and (
        str(exc).startswith("cannot import name") or (exc.name or "").split(".")[0] == "lstmkit"
    ):
        return None  # a broken import inside lstmkit is a bug, not a missing extra
    if isinstance(exc, (*USER_ERRORS, CheckpointError, ResumeError, NotADirectoryError, IsADirectoryError)):
        return escape(capped(user_message(exc)))  # type: ignore[arg-type]
    if type(exc).__name__ in ("NotFittedError", "ExportMismatchError", "UnknownKindError"):
        return escape(capped(user_message(exc)))  # type: ignore[arg-type]
    text = str(exc)
    if isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and "can't allocate memory" in text):
        return escape(capped(
            f"Not enough memory for this model or batch ({text.strip() or 'MemoryError'}). Choose a smaller "
            "--hidden-size, --layers or --batch-size."
        ))  # fmt: skip
    if isinstance(exc, PermissionError):
        return escape(capped(f"{exc.strerror or 'Permission denied'}: {exc.filename}. Choose a path you may write."))
    return None
