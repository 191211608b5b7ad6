"""The one resumable, seeded batch source: the same seed gives the same batches, and a resumed fit sees them again.

Every task that trains through :class:`lstmkit.train.Trainer` hands it a re-iterable of batches. The Trainer's exact
resume (see ``docs/architecture.md``, "A resumed epoch replays its start") checkpoints the source's ``state_dict()``
as each epoch begins and, on resume, calls ``load_state_dict()`` and reads the epoch again, skipping the batches done.
So a source must draw all of its randomness from generators it owns, and its state must be those generators' states.
The two classes here are that contract, written once:

- :class:`SeededBatches` cuts examples (tensors, arrays or lists, indexed alike) into batches of indices, in an order
  drawn afresh each epoch (a plain shuffle, or an ``order`` hook such as :func:`bucketed` for variable-length
  examples), and turns each batch of indices into a batch with a ``collate`` hook (padding, packing, masks).
- :class:`SeededDraws` yields a fixed number of freshly generated batches per epoch (synthetic tasks).

Both keep their order generator as ``.generator`` and save it under the key ``"generator"``; extra named generators
(e.g. one for data augmentation, so the augmentation does not shift the order) are saved under their names.

Examples:
    >>> import torch
    >>> x, y = torch.arange(10.0).unsqueeze(1), torch.arange(10)
    >>> source = SeededBatches(x, y, batch_size=4, seed=0)
    >>> len(source), [len(b[1]) for b in source]
    (3, [4, 4, 2])
    >>> start = source.state_dict()
    >>> first = [b[1].tolist() for b in source]
    >>> source.load_state_dict(start)
    >>> [b[1].tolist() for b in source] == first
    True
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor

from lstmkit.data.buckets import bucketed_batches

__all__ = ["SeededBatches", "SeededDraws", "bucketed"]

Index = Any  # a 1-D int64 tensor or a list of ints: one batch's example indices
Order = Callable[[int, int, "torch.Generator | None"], Sequence[Index]]


def bucketed(keys: Sequence[Any], pool: int = 50) -> Order:
    """An ``order`` hook for :class:`SeededBatches`: batches of examples of similar key (length), from
    :func:`lstmkit.data.bucketed_batches` with ``pool`` batches per pool. ``keys`` holds one sort key per example."""

    def order(n: int, batch_size: int, generator: torch.Generator | None) -> list[list[int]]:
        if n != len(keys):
            raise ValueError(f"bucketed: {len(keys)} keys for {n} examples.")
        return bucketed_batches(keys, batch_size, pool, generator)

    return order


class _Seeded:
    """Named ``torch.Generator`` objects seeded alike, and their states as the source's state."""

    def __init__(self, seed: int, generators: Sequence[str]) -> None:
        names = ("generator", *generators)
        if len(set(names)) != len(names):
            raise ValueError(f"generator names must differ (and not be 'generator'), got {list(generators)}.")
        self.generators: dict[str, torch.Generator] = {name: torch.Generator().manual_seed(seed) for name in names}
        self.generator = self.generators["generator"]  # the order's generator (the Trainer also looks for it)

    def state_dict(self) -> dict[str, Tensor]:
        """Every generator's state: the Trainer checkpoints it as each epoch begins, so a resume replays that epoch."""
        return {name: g.get_state() for name, g in self.generators.items()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        missing = sorted(set(self.generators) - set(state))
        if missing:
            raise KeyError(f"The batch source's state has no {missing}; it holds {sorted(state)}.")
        for name, g in self.generators.items():
            g.set_state(state[name])


class SeededBatches(_Seeded):
    """Mini-batches of examples in an order drawn each epoch from the source's own generator; re-iterable.

    Each pass (epoch) first draws the whole epoch's order (lists of example indices), then yields
    ``collate(index)`` batch by batch. The order generator advances once per epoch, so epochs differ, and the same
    seed gives the same epochs in any process. ``state_dict()`` / ``load_state_dict()`` carry the generators' states:
    loading the state taken before an epoch replays that epoch exactly (the Trainer's exact resume).

    Args:
        *data: the examples, one or more equally long tensors, numpy arrays or sequences, example i at index i.
        batch_size: examples per batch.
        seed: seeds the order generator (and every extra generator).
        shuffle: False keeps the examples' order (epochs are then all alike); the ``order`` hook gets no generator.
        drop_last: drop the last, incomplete batch (only with the default order).
        order: ``order(n, batch_size, generator_or_None) -> list of index batches``, drawn at each epoch's start;
            None shuffles (``torch.randperm``) and cuts in runs of ``batch_size``. :func:`bucketed` groups by length.
        collate: ``collate(index) -> batch`` for one batch's indices (a 1-D int64 tensor from the default order,
            the hook's lists otherwise); None gives ``tuple(d[index] for d in data)`` (tensors and arrays indexed at
            once, sequences item by item into lists). Subclasses may override :meth:`collate` instead.
        generators: names of extra generators, seeded with ``seed`` and saved in the state, for randomness drawn
            while collating (e.g. augmentation masks), kept apart so it never shifts the order.

    ``len()`` is ``ceil(n / batch_size)`` (``floor`` with ``drop_last``) whatever the order; an ``order`` hook may
    yield more batches (bucketing leaves one short batch per pool), so with one ``len()`` is the nominal count.
    """

    def __init__(
        self,
        *data: Any,
        batch_size: int,
        seed: int,
        shuffle: bool = True,
        drop_last: bool = False,
        order: Order | None = None,
        collate: Callable[[Index], Any] | None = None,
        generators: Sequence[str] = (),
    ) -> None:
        if not data:
            raise ValueError("SeededBatches needs the examples: one or more tensors, arrays or sequences.")
        lengths = {len(d) for d in data}
        if len(lengths) != 1:
            raise ValueError(f"SeededBatches: the data hold different numbers of examples ({sorted(lengths)}).")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
        if drop_last and order is not None:
            raise ValueError("drop_last applies to the default order only; an order hook chooses its own batches.")
        super().__init__(seed, generators)
        self.data, self.n, self.batch_size = data, lengths.pop(), batch_size
        self.shuffle, self.drop_last, self.order = shuffle, drop_last, order
        self._collate = collate

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)

    def epoch_order(self) -> Sequence[Index]:
        """This epoch's batches of indices (draws from the order generator when shuffling)."""
        generator = self.generator if self.shuffle else None
        if self.order is not None:
            return self.order(self.n, self.batch_size, generator)
        perm = torch.randperm(self.n, generator=generator) if generator is not None else torch.arange(self.n)
        stop = len(self) * self.batch_size if self.drop_last else self.n
        return [perm[s : s + self.batch_size] for s in range(0, stop, self.batch_size)]

    def collate(self, index: Index) -> Any:
        """One batch from its example indices (the ``collate`` hook, or every data item at ``index``)."""
        if self._collate is not None:
            return self._collate(index)
        return tuple(_take(d, index) for d in self.data)

    def __iter__(self) -> Iterator[Any]:
        for index in self.epoch_order():
            yield self.collate(index)


def _take(d: Any, index: Index) -> Any:
    """``d`` at ``index``: tensors and arrays indexed at once, other sequences item by item into a list."""
    if isinstance(d, Tensor):
        return d[index]
    if hasattr(d, "__array__"):  # a numpy array
        return d[index.numpy() if isinstance(index, Tensor) else index]
    return [d[i] for i in (index.tolist() if isinstance(index, Tensor) else index)]


class SeededDraws(_Seeded):
    """``n_batches`` freshly generated batches per epoch, each ``draw(generator)``, from the source's own generator;
    re-iterable, and resumable like :class:`SeededBatches` (the state is the generator's). For synthetic tasks whose
    data is an endless stream of random examples.

    Args:
        draw: ``draw(generator) -> batch``; all of its randomness must come from ``generator``.
        n_batches: batches per epoch (``len()``).
        seed: seeds the generator.
    """

    def __init__(self, draw: Callable[[torch.Generator], Any], n_batches: int, seed: int) -> None:
        if n_batches < 1:
            raise ValueError(f"n_batches must be at least 1, got {n_batches}.")
        super().__init__(seed, ())
        self.draw, self.n_batches = draw, n_batches

    def __len__(self) -> int:
        return self.n_batches

    def __iter__(self) -> Iterator[Any]:
        for _ in range(self.n_batches):
            yield self.draw(self.generator)
