"""lstmkit.data.buckets: every example in exactly one batch, batches of similar length, reproducible epochs."""

from __future__ import annotations

import pytest
import torch

from lstmkit.data.buckets import bucketed_batches


def test_every_index_once_similar_lengths_and_the_same_epoch_from_the_same_generator_state() -> None:
    lengths = [int(x) for x in torch.randint(1, 200, (1000,), generator=torch.Generator().manual_seed(0))]
    gen = torch.Generator().manual_seed(1)
    state = gen.get_state()
    batches = bucketed_batches(lengths, 16, pool=10, generator=gen)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    assert all(1 <= len(b) <= 16 for b in batches)
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 25  # a random batch of 16 spans ~175 of the 1..199 range
    replay = torch.Generator()
    replay.set_state(state)
    assert bucketed_batches(lengths, 16, pool=10, generator=replay) == batches
    assert bucketed_batches(lengths, 16, pool=10, generator=gen) != batches  # the next epoch mixes differently


def test_without_a_generator_the_order_is_kept_within_sorted_pools() -> None:
    assert bucketed_batches([3, 1, 2, 5, 4], 2, pool=1) == [[1, 0], [2, 3], [4]]  # pools of one batch
    assert bucketed_batches([(2, 1), (1, 9), (2, 0)], 3) == [[1, 2, 0]]  # tuple keys sort lexicographically
    with pytest.raises(ValueError, match="at least 1"):
        bucketed_batches([1], 0)
