"""A CSV metrics logger: one row per call, header fixed by the first row, flushed after every row.

Rows are appended, so a crashed run keeps every row written before the crash, and a file that already exists keeps its
header: new rows must fit it.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import torch

from lstmkit._atomic import atomic_write_bytes
from lstmkit.train._closing import ClosesOnExit
from lstmkit.train.tensorboard import TensorBoardLogger, tensorboard_available

__all__ = ["EpochSums", "MetricsLogger", "RunLogs", "WeightedMeans", "rewrite_csv", "to_float"]


def _cell(value: Any) -> Any:
    """Format one value for the CSV: None -> empty, tensors/numpy scalars -> Python numbers."""
    if value is None:
        return ""
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value  # floats are written with repr(), so they read back exactly


def to_float(value: Any, what: str) -> float:
    """Read a metric value (Python number, 0-d / one-element tensor, numpy scalar) as a float."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{what} must be a scalar, got a tensor of shape {tuple(value.shape)}. Reduce it first.")
        return float(value.detach().item())
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a number or a scalar tensor, got {type(value).__name__} {value!r}.") from None


class MetricsLogger(ClosesOnExit):
    """Append rows of metrics to a CSV file.

    The header is taken from the first row written (or from the existing file when appending to one). Later rows may
    leave columns out (written as empty cells) but may not add new ones.

    Args:
        path: the CSV file; its parent directory is created if missing.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "metrics.csv"
        >>> with MetricsLogger(p) as log:
        ...     log.log({"epoch": 1, "train_loss": 0.5})
        ...     log.log({"epoch": 2, "train_loss": 0.25})
        >>> p.read_text().splitlines()
        ['epoch,train_loss', '1,0.5', '2,0.25']
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.fieldnames: list[str] | None = None
        self._file: IO[str] | None = None
        self._writer: csv.DictWriter[str] | None = None
        if self.path.exists() and self.path.stat().st_size > 0:
            with self.path.open(newline="") as f:
                header = next(csv.reader(f), None)
            if header:
                self.fieldnames = header

    def log(self, row: Mapping[str, Any]) -> None:
        """Append one row and flush it to disk.

        Args:
            row: column name -> value. Numbers, strings, None (empty cell) and 0-d tensors are accepted.

        Raises:
            ValueError: if ``row`` is empty or has columns that are not in the header.
        """
        if not row:
            raise ValueError(f"MetricsLogger.log got an empty row for {self.path}. Pass at least one column.")
        if self.fieldnames is None:
            self.fieldnames = [str(k) for k in row]
        extra = [k for k in row if k not in self.fieldnames]
        if extra:
            raise ValueError(
                f"Metrics row has column(s) {extra} that are not in the header of {self.path} ({self.fieldnames}). "
                "The header is fixed by the first row: give every row the same columns (use None for a missing "
                "value), or write to a new file."
            )
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            is_new = not self.path.exists() or self.path.stat().st_size == 0
            self._file = self.path.open("a", newline="")
            self._writer = csv.DictWriter(self._file, fieldnames=self.fieldnames, restval="")
            if is_new:
                self._writer.writeheader()
        assert self._file is not None
        self._writer.writerow({k: _cell(v) for k, v in row.items()})
        self._file.flush()

    def close(self) -> None:
        """Close the file; a later :meth:`log` reopens it in append mode."""
        if self._file is not None:
            self._file.close()
        self._file = None
        self._writer = None


class RunLogs:
    """A run directory's logs: ``metrics.csv`` (one row per epoch), ``steps.csv`` (with ``steps``) and TensorBoard
    (when it is installed). Without a ``run_dir`` every method does nothing."""

    def __init__(self, run_dir: Path | None, *, steps: bool) -> None:
        self.epochs = MetricsLogger(run_dir / "metrics.csv") if run_dir is not None else None
        self.steps = MetricsLogger(run_dir / "steps.csv") if run_dir is not None and steps else None
        self.tensorboard = TensorBoardLogger(run_dir) if run_dir is not None and tensorboard_available() else None

    def log_epoch(self, row: Mapping[str, Any]) -> None:
        if self.epochs is not None:
            self.epochs.log(row)
        if self.tensorboard is not None:
            self.tensorboard.log_epoch(row)

    def log_step(self, row: Mapping[str, Any]) -> None:
        if self.steps is not None:
            self.steps.log(row)
            if self.tensorboard is not None:
                self.tensorboard.log_step(row)

    def close(self) -> None:
        for log in (self.epochs, self.steps, self.tensorboard):
            if log is not None:
                log.close()


def rewrite_csv(path: Path, keep: Callable[[dict[str, str]], bool]) -> None:
    """Atomically rewrite a CSV keeping the header and the rows ``keep`` accepts."""
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames
        rows = [row for row in reader if keep(row)]
    if fields is None:
        return
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, buf.getvalue().encode("utf-8"))


class WeightedMeans:
    """Weighted running means of named values."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.weight = 0.0

    def add(self, values: Mapping[str, float], weight: float) -> None:
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + v * weight
        self.weight += weight

    def means(self) -> dict[str, float]:
        return {k: (s / self.weight if self.weight > 0 else math.nan) for k, s in self.sums.items()}


class EpochSums:
    """Running sums of one epoch, kept across a resume so the epoch's row comes out the same."""

    def __init__(self) -> None:
        self.means = WeightedMeans()
        self.grad_norm_sum, self.grad_norm_count, self.grad_norm_max = 0.0, 0, math.nan
        self.items = 0
        self.lr = math.nan
        self.n_batches = 0
        self.nonfinite = 0
        self.seconds_before = 0.0  # training seconds of this epoch spent before a resume

    def add_step(self, values: Mapping[str, float], n_items: int, grad_norm: float, lr: float) -> None:
        """Add one optimizer step: its loss and metrics (weighted by ``n_items``), pre-clip grad norm and lr."""
        self.means.add(values, n_items)
        self.grad_norm_sum += grad_norm
        self.grad_norm_count += 1
        self.grad_norm_max = grad_norm if self.grad_norm_count == 1 else max(self.grad_norm_max, grad_norm)
        self.items += n_items
        self.lr = lr

    def summary(self, train_seconds: float) -> dict[str, Any]:
        """The epoch row's training columns after the metrics: lr, grad norms, non-finite steps, throughput."""
        return {
            "lr": self.lr,
            "grad_norm": self.grad_norm_sum / self.grad_norm_count if self.grad_norm_count else math.nan,
            "grad_norm_max": self.grad_norm_max,
            "nonfinite_steps": self.nonfinite,
            "items_per_sec": self.items / train_seconds if train_seconds > 0 else math.nan,
        }

    def sum_over(self, all_reduce_sum: Callable[[list[float]], list[float]]) -> None:
        """Replace the sums of the means, their weight and the items by their sums over every process."""
        keys = sorted(self.means.sums)
        summed = all_reduce_sum([self.means.sums[k] for k in keys] + [self.means.weight, self.items])
        self.means.sums = dict(zip(keys, summed[: len(keys)], strict=True))
        self.means.weight, self.items = summed[len(keys)], int(summed[len(keys) + 1])

    def state_dict(self) -> dict[str, Any]:
        return {
            "sums": dict(self.means.sums), "weight": self.means.weight,
            "grad_norm": [self.grad_norm_sum, self.grad_norm_count, self.grad_norm_max],
            "items": self.items, "lr": self.lr, "n_batches": self.n_batches, "nonfinite": self.nonfinite,
            "seconds": self.seconds_before,
        }  # fmt: skip

    @classmethod
    def from_state(cls, s: Mapping[str, Any]) -> EpochSums:
        acc = cls()
        acc.means.sums, acc.means.weight = dict(s["sums"]), s["weight"]
        acc.grad_norm_sum, acc.grad_norm_count, acc.grad_norm_max = s["grad_norm"]
        acc.items, acc.lr = s["items"], s["lr"]
        acc.n_batches, acc.nonfinite, acc.seconds_before = s["n_batches"], s["nonfinite"], s["seconds"]
        return acc
