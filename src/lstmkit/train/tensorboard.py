"""TensorBoard event files beside the metrics CSV, when the ``tensorboard`` package is installed.

``metrics.csv`` is always written (see :mod:`lstmkit.train.metrics`); TensorBoard is an extra view of the same rows:
``pip install 'lstmkit[tb]'``, then ``tensorboard --logdir runs/`` shows every run directory as one run.

Tags: epoch rows under ``epoch/<column>``, step rows under ``step/<column>``, both against the global optimizer step
(the row's ``step``), so per-epoch and per-step curves share one x axis. ``epoch`` and ``step`` themselves are the x
axis, not scalars; empty and non-numeric cells are left out.

Example:
    >>> import tempfile
    >>> if tensorboard_available():
    ...     with TensorBoardLogger(tempfile.mkdtemp()) as tb:
    ...         tb.log_epoch({"epoch": 1, "step": 10, "train_loss": 0.5, "lr": 0.001})
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lstmkit.train._closing import ClosesOnExit

__all__ = ["TensorBoardLogger", "tensorboard_available"]

logger = logging.getLogger(__name__)

_X_AXES = ("epoch", "step")


@functools.cache
def tensorboard_available() -> bool:
    """True when ``torch.utils.tensorboard`` imports, i.e. the ``tensorboard`` package is installed and usable."""
    try:
        import torch.utils.tensorboard  # noqa: F401  (raises ImportError without the tensorboard package)
    except ImportError as exc:
        logger.debug("TensorBoard logging is off: %s", exc)
        return False
    return True


def _scalar(value: Any) -> float | None:
    """A cell as a float, or None for empty cells, strings and other non-numbers."""
    if value is None or isinstance(value, bool | str):
        return None
    if hasattr(value, "item") and callable(value.item):  # 0-d tensors and numpy scalars
        value = value.item()
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class TensorBoardLogger(ClosesOnExit):
    """Write metrics rows as TensorBoard scalars into ``run_dir`` (``events.out.tfevents.*`` files).

    Args:
        run_dir: the run directory; created if missing.

    Raises:
        ImportError: if the ``tensorboard`` package is not installed. Check :func:`tensorboard_available` first, or
            install it with ``pip install 'lstmkit[tb]'``.
    """

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        if not tensorboard_available():
            raise ImportError(
                "TensorBoardLogger needs the tensorboard package, which is not installed (or does not import). "
                "Install it with: pip install 'lstmkit[tb]' (metrics.csv is written either way)."
            )
        from torch.utils.tensorboard import SummaryWriter

        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._writer: Any = SummaryWriter(log_dir=str(self.run_dir))

    def _write(self, prefix: str, row: Mapping[str, Any]) -> None:
        if self._writer is None:
            raise ValueError(f"TensorBoardLogger for {self.run_dir} is closed; create a new one to log more rows.")
        step = _scalar(row.get("step"))
        if step is None or math.isnan(step):
            step = _scalar(row.get("epoch"))
        global_step = int(step) if step is not None and math.isfinite(step) else None
        for key, value in row.items():
            number = _scalar(value)
            if key in _X_AXES or number is None:
                continue
            self._writer.add_scalar(f"{prefix}/{key}", number, global_step=global_step)

    def log_epoch(self, row: Mapping[str, Any]) -> None:
        """Write one epoch's metrics (a ``metrics.csv`` row) as ``epoch/<column>`` and flush to disk."""
        self._write("epoch", row)
        self._writer.flush()  # one flush per epoch: a crashed run keeps every finished epoch

    def log_step(self, row: Mapping[str, Any]) -> None:
        """Write one step's metrics (a ``steps.csv`` row) as ``step/<column>``; flushed by the writer every 2 min."""
        self._write("step", row)

    def close(self) -> None:
        """Flush and close the event file; safe to call twice."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
