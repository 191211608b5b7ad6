"""Training progress on stderr: a live rich bar on a terminal, one plain line per epoch anywhere else.

With ``TrainConfig.progress`` on, :func:`open_progress` gives the loop a :class:`ProgressBar` when stderr is an
interactive terminal, and :class:`EpochLines` otherwise (pytest capture, CI logs, pipes, ``TERM=dumb``): one line at
the end of each epoch with its step, metrics and the time since training started, and nothing per step, so a long
run in a log shows where it is. Both have the same methods, so the loop never needs to ask which it has.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from lstmkit.train._closing import ClosesOnExit

__all__ = ["EpochLines", "ProgressBar", "epoch_line", "is_interactive", "open_progress"]

# Columns of an epoch's row that the line shows in its own words (or not at all), not as ``name value``.
_NOT_METRICS = ("epoch", "step", "seconds")


def is_interactive(console: Console | None = None) -> bool:
    """Whether a live progress bar can be drawn: stderr is a terminal that understands cursor movement."""
    try:
        console = console or Console(stderr=True)
        return bool(console.is_terminal and not console.is_dumb_terminal)
    except Exception:  # a replaced or closed stderr (odd test harnesses, daemons): stay silent rather than fail
        return False


class ProgressBar(ClosesOnExit):
    """One bar per epoch showing batches done, the running loss and items per second.

    Args:
        enabled: show the bar if stderr is interactive; False makes every method a no-op.
        console: a rich console to draw on (default: stderr).
    """

    def __init__(self, enabled: bool = True, console: Console | None = None) -> None:
        console = console or (Console(stderr=True) if enabled else None)
        self.enabled = enabled and console is not None and is_interactive(console)
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        if self.enabled:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}"),
                TextColumn("{task.fields[speed]} items/s"),
                TimeElapsedColumn(),
                console=console,
                transient=False,
            )
            self._progress.start()

    def start_epoch(self, epoch: int, epochs: int, total_batches: int | None) -> None:
        """Start the bar for ``epoch`` (1-based) of ``epochs``; ``total_batches`` None gives an open-ended bar."""
        if self._progress is None:
            return
        if self._task is not None:
            self._progress.remove_task(self._task)
        self._task = self._progress.add_task(f"epoch {epoch}/{epochs}", total=total_batches, loss="-", speed="-")

    def update(self, loss: float, items_per_sec: float, advance: int = 1) -> None:
        """Advance by ``advance`` batches and show the running ``loss`` and ``items_per_sec``."""
        if self._progress is None or self._task is None:
            return
        self._progress.update(self._task, advance=advance, loss=f"{loss:.4g}", speed=f"{items_per_sec:,.0f}")

    def end_epoch(self, row: Mapping[str, Any], epochs: int, elapsed: float) -> None:
        """Nothing: the bar already shows the epoch."""

    def close(self) -> None:
        """Stop drawing; safe to call more than once."""
        if self._progress is not None:
            self._progress.stop()
        self._progress = None
        self._task = None


def _format(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _duration(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def epoch_line(row: Mapping[str, Any], epochs: int, elapsed: float) -> str:
    """One epoch's row as a line: ``epoch 3/10  step 120  train_loss 0.4213  val_loss 0.5 ...  elapsed 12.3s``."""
    metrics = "  ".join(f"{k} {_format(v)}" for k, v in row.items() if k not in _NOT_METRICS)
    head = f"epoch {row.get('epoch', '?')}/{epochs}  step {row.get('step', '?')}"
    return f"{head}  {metrics}  elapsed {_duration(elapsed)}" if metrics else f"{head}  elapsed {_duration(elapsed)}"


class EpochLines(ClosesOnExit):
    """One plain line per epoch on ``stream`` (default: ``sys.stderr`` at the time of writing); nothing per step.

    Args:
        enabled: False makes every method a no-op.
        stream: a text stream to write to.
    """

    def __init__(self, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self._stream = stream

    def start_epoch(self, epoch: int, epochs: int, total_batches: int | None) -> None:
        """Nothing: the line comes when the epoch ends."""

    def update(self, loss: float, items_per_sec: float, advance: int = 1) -> None:
        """Nothing: no output per step."""

    def end_epoch(self, row: Mapping[str, Any], epochs: int, elapsed: float) -> None:
        """Write the epoch's line (see :func:`epoch_line`) and flush it."""
        if not self.enabled:
            return
        stream = self._stream if self._stream is not None else sys.stderr
        try:
            stream.write(epoch_line(row, epochs, elapsed) + "\n")
            stream.flush()
        except (OSError, ValueError):  # a closed or broken stderr: progress must never stop training
            pass

    def close(self) -> None:
        """Nothing to release."""


def open_progress(enabled: bool, console: Console | None = None) -> ProgressBar | EpochLines:
    """The progress display for a run: a :class:`ProgressBar` when ``enabled`` and stderr (or ``console``) is an
    interactive terminal, :class:`EpochLines` when ``enabled`` and it is not, and a silent one when not ``enabled``."""
    if enabled and is_interactive(console):
        return ProgressBar(enabled=True, console=console)
    return EpochLines(enabled=enabled)
