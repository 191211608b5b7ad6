"""A CSV metrics logger: one row per call, header fixed by the first row, flushed after every row.

Rows are appended, so a crashed run keeps every row written before the crash, and a file that already exists keeps its
header: new rows must fit it.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from lstmkit.train._closing import ClosesOnExit

__all__ = ["MetricsLogger"]


def _cell(value: Any) -> Any:
    """Format one value for the CSV: None -> empty, tensors/numpy scalars -> Python numbers."""
    if value is None:
        return ""
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value  # floats are written with repr(), so they read back exactly


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
