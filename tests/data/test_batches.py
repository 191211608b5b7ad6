"""The one resumable seeded batch source (lstmkit.data.batches): seeded order, epochs that differ, exact resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstmkit.data import SeededBatches, SeededDraws, bucketed


def _ids(source) -> list[list[int]]:
    """One epoch's batches as lists of example ids (the data is ``torch.arange``)."""
    return [b[0].tolist() for b in source]


def _source(seed: int = 0, **kwargs) -> SeededBatches:
    return SeededBatches(torch.arange(23), batch_size=5, seed=seed, **kwargs)


def test_the_order_depends_on_the_seed_only() -> None:
    assert _ids(_source(1)) == _ids(_source(1))
    assert _ids(_source(1)) != _ids(_source(2))


def test_epochs_differ_and_each_covers_every_example_once() -> None:
    source = _source()
    first, second = _ids(source), _ids(source)
    assert first != second
    for epoch in (first, second):
        assert sorted(i for b in epoch for i in b) == list(range(23))
        assert [len(b) for b in epoch] == [5, 5, 5, 5, 3]


def test_the_state_taken_before_an_epoch_replays_it_in_a_fresh_source() -> None:
    source = _source(generators=("extra",))
    _ids(source)
    start = source.state_dict()
    assert set(start) == {"generator", "extra"}
    epoch, following = _ids(source), _ids(source)
    resumed = _source(generators=("extra",))
    resumed.load_state_dict(start)
    assert _ids(resumed) == epoch
    assert _ids(resumed) == following


def test_a_resume_mid_epoch_skips_to_the_same_batches() -> None:
    """What the Trainer does: load the epoch-start state, read the epoch again and skip the batches done."""
    source = _source(7)
    _ids(source)
    start = source.state_dict()
    epoch = _ids(source)
    resumed = _source(7)
    resumed.load_state_dict(start)
    it = iter(resumed)
    for _ in range(2):
        next(it)
    assert [b[0].tolist() for b in it] == epoch[2:]


def test_a_state_without_its_generators_is_refused() -> None:
    with pytest.raises(KeyError, match="extra"):
        _source(generators=("extra",)).load_state_dict(_source().state_dict())


@pytest.mark.parametrize(("drop_last", "expected"), [(False, 5), (True, 4)])
def test_len_and_drop_last(drop_last: bool, expected: int) -> None:
    source = _source(drop_last=drop_last)
    assert len(source) == expected
    batches = _ids(source)
    assert len(batches) == expected
    assert all(len(b) == 5 for b in batches[:4])


def test_without_shuffle_the_order_is_the_examples_and_draws_nothing() -> None:
    source = _source(shuffle=False)
    state = source.state_dict()["generator"]
    assert _ids(source) == [list(range(s, min(s + 5, 23))) for s in range(0, 23, 5)]
    assert torch.equal(source.state_dict()["generator"], state)


def test_every_data_item_is_indexed_alike() -> None:
    x, arr, names = torch.arange(10) * 10, np.arange(10) + 100, [f"n{i}" for i in range(10)]
    for bx, barr, bnames in SeededBatches(x, arr, names, batch_size=4, seed=3):
        ids = (bx // 10).tolist()
        assert isinstance(barr, np.ndarray)
        assert barr.tolist() == [i + 100 for i in ids]
        assert bnames == [f"n{i}" for i in ids]


def test_the_order_and_collate_hooks() -> None:
    lengths = [int(n) for n in np.random.default_rng(0).integers(1, 30, 200)]
    seqs = [[1] * n for n in lengths]
    source = SeededBatches(seqs, batch_size=10, seed=0, order=bucketed(lengths, pool=5),
                           collate=lambda index: [len(seqs[i]) for i in index])  # fmt: skip
    batches = list(source)
    assert sorted(n for b in batches for n in b) == sorted(lengths)
    assert sum(max(b) - min(b) for b in batches) < 0.3 * sum(max(lengths) - min(lengths) for _ in batches)
    start = source.state_dict()
    epoch = list(source)
    source.load_state_dict(start)
    assert list(source) == epoch


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="different numbers"):
        SeededBatches(torch.zeros(3), torch.zeros(4), batch_size=2, seed=0)
    with pytest.raises(ValueError, match="batch_size"):
        SeededBatches(torch.zeros(3), batch_size=0, seed=0)
    with pytest.raises(ValueError, match="drop_last"):
        SeededBatches(torch.zeros(3), batch_size=2, seed=0, drop_last=True, order=bucketed([1, 2, 3]))


def test_drawn_batches_are_seeded_and_resume_exactly() -> None:
    def draw(g: torch.Generator) -> tuple[torch.Tensor]:
        return (torch.randn(2, generator=g),)

    source = SeededDraws(draw, n_batches=3, seed=4)
    assert len(source) == 3
    first = [b[0] for b in source]
    start = source.state_dict()
    second = [b[0] for b in source]
    assert not torch.equal(first[0], second[0])
    again = SeededDraws(draw, n_batches=3, seed=4)
    assert all(torch.equal(a[0], b) for a, b in zip(again, first, strict=True))
    again.load_state_dict(start)
    assert all(torch.equal(a[0], b) for a, b in zip(again, second, strict=True))
