"""Batches as the loop sees them: one pass over the data, each batch a tuple of tensors on the model's device, cut
along time into chunks for truncated BPTT."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from lstmkit.train.step import Batch

__all__ = ["as_batch", "iterate", "known_length", "no_batches_error", "split_time"]


def split_time(batch: Batch, chunk_steps: int) -> list[Batch]:
    """Split a batch into consecutive chunks of ``chunk_steps`` time steps for truncated BPTT.

    ``T`` is ``batch[0].shape[1]``; every tensor whose dim 1 has size ``T`` is cut along dim 1, every other item
    (targets without a time axis, lengths, ...) is passed whole to each chunk. The last chunk is shorter when
    ``chunk_steps`` does not divide ``T``.

    Args:
        batch: tuple of batch-first tensors; ``batch[0]`` has shape ``(B, T, ...)``.
        chunk_steps: time steps per chunk, ``k``.

    Returns:
        ``ceil(T / k)`` tuples, each like ``batch`` with time sliced to ``[s, s + k)``.

    Raises:
        ValueError: if ``batch[0]`` has no time dimension.
    """
    first = batch[0]
    if first.dim() < 2:
        raise ValueError(
            f"Truncated BPTT needs batch[0] shaped (B, T, ...) with time on dim 1, got shape {tuple(first.shape)}. "
            "Put the sequence tensor first in each batch, or set tbptt_steps=None for full BPTT."
        )
    T = first.shape[1]
    chunks = []
    for start in range(0, T, chunk_steps):
        stop = min(start + chunk_steps, T)
        chunks.append(
            tuple(
                t[:, start:stop] if isinstance(t, torch.Tensor) and t.dim() >= 2 and t.shape[1] == T else t
                for t in batch
            )
        )
    return chunks


def as_batch(batch: Any, device: torch.device | None) -> Batch:
    """Normalise one batch to a tuple of tensors on ``device`` (a bare tensor becomes a 1-tuple)."""
    if isinstance(batch, torch.Tensor):
        batch = (batch,)
    elif isinstance(batch, (tuple, list)):
        batch = tuple(batch)
    else:
        raise TypeError(
            f"Each batch must be a tuple (or list) of tensors, batch-first, got {type(batch).__name__}. "
            "Yield (x, y) tuples from train_data / val_data, as a DataLoader over a TensorDataset does."
        )
    if not batch or not isinstance(batch[0], torch.Tensor):
        raise TypeError(
            "Each batch must start with a tensor (the model input, batch-first), "
            f"got {type(batch[0]).__name__ if batch else 'an empty tuple'}."
        )
    if device is not None:
        batch = tuple(t.to(device) if isinstance(t, torch.Tensor) and t.device != device else t for t in batch)
    return batch


def iterate(data: Any, name: str) -> Iterator[Any]:
    """Start one pass over ``data``: a re-iterable (list, DataLoader) or a callable returning a fresh iterable."""
    if callable(data) and not hasattr(data, "__iter__"):
        data = data()
    try:
        return iter(data)
    except TypeError:
        raise TypeError(
            f"{name} must be an iterable of batches (e.g. a DataLoader or a list) or a callable returning one, got "
            f"{type(data).__name__}."
        ) from None


def known_length(data: Any) -> int | None:
    """``len(data)`` for sized re-iterables; None for callables and for loaders whose length is unknown."""
    if callable(data) and not hasattr(data, "__iter__"):
        return None
    try:
        return len(data)
    except TypeError:  # no __len__, or a DataLoader over an IterableDataset
        return None


def no_batches_error(epoch: int) -> ValueError:
    """The error for training data that yielded no batches in ``epoch``, with the likely cause."""
    return ValueError(
        f"train_data yielded no batches in epoch {epoch}. "
        + (
            "It was consumed in epoch 1: it is probably a one-shot iterator (e.g. a generator). Pass a "
            "callable returning a fresh iterator each epoch, or a re-iterable such as a list or a DataLoader."
            if epoch > 1
            else "Pass a non-empty iterable of batches (check the dataset size against batch_size and drop_last)."
        )
    )
