"""A rich progress bar for the training loop: batches, loss and throughput; silent when nobody is watching.

The bar draws on stderr only when it is an interactive terminal (not under pytest capture, CI logs, pipes or
``TERM=dumb``) and ``TrainConfig.progress`` is True. Otherwise every method is a no-op, so the loop never needs to ask.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from lstmkit.train._closing import ClosesOnExit

__all__ = ["ProgressBar", "is_interactive"]


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

    def close(self) -> None:
        """Stop drawing; safe to call more than once."""
        if self._progress is not None:
            self._progress.stop()
        self._progress = None
        self._task = None
