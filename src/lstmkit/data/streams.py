"""Long sequences in bounded memory, for truncated BPTT: a long series or a large file cut into B parallel streams.

The classic char-rnn / ``word_language_model`` layout: the sequence of length N is divided into ``batch_size``
contiguous streams of length ``N // batch_size``; batch ``j`` holds time steps ``[j*k, (j+1)*k)`` of every stream
(``k = chunk_steps``), so consecutive batches continue the same streams and the recurrent state is carried across
them (``TrainConfig(carry_state_across_batches=True)``). Targets are the inputs shifted by one step (next-step
prediction) unless the series source is given separate targets.

Nothing is read whole:

- :class:`SeriesStream` takes any array with ``__getitem__`` slicing, typically ``np.load(path, mmap_mode="r")`` or an
  ``np.memmap``: each batch copies ``batch_size`` slices of ``k + 1`` rows.
- :class:`ByteStream` reads a file of any size with ``os.pread`` (no memory map, so the process's resident memory
  does not grow with the pages touched): each batch reads ``batch_size`` runs of ``k + 1`` bytes. Tokens are bytes
  (a vocabulary of 256), which is how byte-level language models see text in any encoding.

Both are re-iterable (one pass per epoch), sized, and deterministic, so the Trainer's exact resume replays them; they
also implement ``iter_from(batch)`` so a resumed epoch starts at its batch without re-reading the ones before.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["ByteStream", "SeriesStream"]


def _check_layout(n: int, batch_size: int, chunk_steps: int, what: str) -> int:
    """Length of each stream; raises if the sequence is too short for one chunk per stream."""
    if batch_size < 1 or chunk_steps < 1:
        raise ValueError(f"batch_size and chunk_steps must be >= 1, got {batch_size} and {chunk_steps}.")
    stream_len = n // batch_size
    if stream_len < chunk_steps + 1:
        raise ValueError(
            f"{what} of length {n:,} is too short for {batch_size} streams of at least {chunk_steps + 1} steps "
            f"(chunk_steps + 1). Use a smaller batch_size or chunk_steps, or a longer sequence."
        )
    return stream_len


class SeriesStream:
    """Batches ``(x, y)`` of shape ``(B, k, F)`` from a long series ``(N, F)`` (or ``(N,)``, read as one feature).

    Args:
        series: the series, shape ``(N, F)`` or ``(N,)``; anything NumPy can slice (``np.load(..., mmap_mode="r")``).
        batch_size: ``B``, the number of parallel streams.
        chunk_steps: ``k``, the truncated-BPTT length of each batch.
        targets: optional ``(N, G)`` / ``(N,)`` targets aligned with ``series``; by default ``y`` is ``x`` one step
            ahead.
        dtype: the tensors' dtype.

    Example:
        >>> s = SeriesStream(np.arange(100.0), batch_size=4, chunk_steps=5)
        >>> len(s), [tuple(t.shape) for t in next(iter(s))]
        (4, [(4, 5, 1), (4, 5, 1)])
    """

    def __init__(
        self,
        series: Any,
        batch_size: int,
        chunk_steps: int,
        targets: Any = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if getattr(series, "ndim", None) not in (1, 2):
            raise ValueError(
                f"series must be an array shaped (N,) or (N, F), got {type(series).__name__} with ndim "
                f"{getattr(series, 'ndim', None)}. Pass a NumPy array or memmap."
            )
        if targets is not None and len(targets) != len(series):
            raise ValueError(f"targets have {len(targets):,} rows but series has {len(series):,}; align them.")
        self.series, self.targets = series, targets
        self.batch_size, self.chunk_steps, self.dtype = batch_size, chunk_steps, dtype
        self.stream_len = _check_layout(len(series), batch_size, chunk_steps, "The series")

    def __len__(self) -> int:
        return (self.stream_len - 1) // self.chunk_steps

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.iter_from(0)

    def _rows(self, array: Any, start: int, stop: int) -> np.ndarray:
        base = [b * self.stream_len for b in range(self.batch_size)]
        rows = [np.asarray(array[o + start : o + stop]) for o in base]
        out = np.stack(rows)  # (B, stop - start) or (B, stop - start, F)
        return out[..., None] if out.ndim == 2 else out

    def iter_from(self, batch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The epoch's batches from batch index ``batch`` on."""
        k = self.chunk_steps
        for j in range(batch, len(self)):
            start = j * k
            if self.targets is None:
                window = torch.as_tensor(self._rows(self.series, start, start + k + 1), dtype=self.dtype)
                yield window[:, :-1], window[:, 1:]  # (B, k, F) each
            else:
                x = torch.as_tensor(self._rows(self.series, start, start + k), dtype=self.dtype)
                y = torch.as_tensor(self._rows(self.targets, start, start + k), dtype=self.dtype)
                yield x, y


class ByteStream:
    """Batches ``(x, y)`` of byte tokens shaped ``(B, k)`` (int64), ``y`` one byte ahead, from a file of any size.

    Args:
        path: the file (text in any encoding, or any bytes).
        batch_size: ``B``, the number of parallel streams.
        chunk_steps: ``k``, the truncated-BPTT length of each batch.
        start, stop: byte range of the file to use (e.g. a validation tail); default the whole file.
    """

    vocab_size = 256

    def __init__(
        self, path: str | os.PathLike[str], batch_size: int, chunk_steps: int, start: int = 0, stop: int | None = None
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"No file at {self.path}. Pass the path of a text (or any) file to stream.")
        size = self.path.stat().st_size
        stop = size if stop is None else stop
        if not 0 <= start < stop <= size:
            raise ValueError(f"Byte range [{start}, {stop}) does not fit the file's {size:,} bytes.")
        self.start, self.stop = start, stop
        self.batch_size, self.chunk_steps = batch_size, chunk_steps
        self.stream_len = _check_layout(stop - start, batch_size, chunk_steps, f"{self.path.name}[{start}:{stop}]")

    def __len__(self) -> int:
        return (self.stream_len - 1) // self.chunk_steps

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.iter_from(0)

    def iter_from(self, batch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The epoch's batches from batch index ``batch`` on."""
        k, n = self.chunk_steps, self.chunk_steps + 1
        buf = np.empty((self.batch_size, n), dtype=np.uint8)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for j in range(batch, len(self)):
                for b in range(self.batch_size):
                    offset = self.start + b * self.stream_len + j * k
                    data = os.pread(fd, n, offset)
                    if len(data) != n:
                        raise OSError(f"{self.path} shrank while being read (short read at byte {offset:,}).")
                    buf[b] = np.frombuffer(data, dtype=np.uint8)
                window = torch.from_numpy(buf.astype(np.int64))  # (B, k + 1), a fresh copy each batch
                yield window[:, :-1], window[:, 1:]
        finally:
            os.close(fd)
