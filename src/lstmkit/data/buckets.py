"""Batches bucketed by length: little padding per batch, a different mix every epoch, reproducible from a generator.

Used by every task that trains on variable-length examples (translation pairs, speech, handwriting). The indices are
shuffled, cut into pools of ``pool`` batches, each pool sorted by its examples' keys (lengths) and cut into batches,
and the batches shuffled: a batch holds examples of similar length, and each example lands in one batch per epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["bucketed_batches"]


def bucketed_batches(
    keys: Sequence[Any], batch_size: int, pool: int = 50, generator: torch.Generator | None = None
) -> list[list[int]]:
    """Batches of indices into ``keys``, bucketed by key (see the module docstring).

    Args:
        keys: one sort key per example (its length, or a tuple of lengths).
        batch_size: examples per batch (the last batch of a pool may hold fewer).
        pool: batches per pool; larger pools give batches of more similar length and less randomness.
        generator: draws the two permutations (indices, then batches), so a saved generator state replays an epoch;
            None keeps the examples' order (no shuffling, still bucketed).
    """
    if batch_size < 1 or pool < 1:
        raise ValueError(f"batch_size and pool must be at least 1, got {batch_size} and {pool}.")
    n = len(keys)
    order = torch.randperm(n, generator=generator).tolist() if generator is not None else list(range(n))
    span = pool * batch_size
    batches: list[list[int]] = []
    for start in range(0, n, span):
        chunk = sorted(order[start : start + span], key=keys.__getitem__)
        batches += [chunk[s : s + batch_size] for s in range(0, len(chunk), batch_size)]
    if generator is None:
        return batches
    return [batches[b] for b in torch.randperm(len(batches), generator=generator).tolist()]
