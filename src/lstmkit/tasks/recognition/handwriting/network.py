"""The handwriting network (points -> per-point CTC class log-probabilities), its batches and the saved n-gram."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from ....data import SeededBatches, bucketed
from ....nn import LSTM
from ...text.ngram import OrderCounts, WittenBellLM
from ..ctc import pack_targets

__all__ = ["N_FEATURES", "HandwritingBatches", "HandwritingNetwork", "lm_from_tensors", "lm_tensors", "ngram_ids",
           "pad_points"]  # fmt: skip

N_FEATURES = 4  # dx, dy, y, pen_up


class HandwritingNetwork(nn.Module):
    """Bidirectional stacked LSTM and a linear layer to CTC classes at every point.

    Shapes: points (B, T, 4) and lengths (B,) -> log-probabilities (B, T, C), C = 1 + len(alphabet).
    """

    def __init__(self, num_classes: int, *, hidden_size: int = 192, num_layers: int = 1, dropout: float = 0.1,
                 output_dropout: float = 0.0) -> None:  # fmt: skip
        super().__init__()
        H = hidden_size
        self.lstm = LSTM(N_FEATURES, H, num_layers, bidirectional=True,
                         dropout=dropout if num_layers > 1 else 0.0)  # fmt: skip
        self.drop = nn.Dropout(output_dropout)
        self.out = nn.Linear(2 * H, num_classes)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        if lengths is not None and bool((lengths == x.shape[1]).all()):
            lengths = None  # no padding: the plain path
        h, _ = self.lstm(x, None, lengths)  # (B, T, 2H)
        return torch.log_softmax(self.out(self.drop(h)), dim=-1)  # (B, T, C)


def pad_points(feats: list[np.ndarray]) -> tuple[Tensor, Tensor]:
    lengths = torch.tensor([len(f) for f in feats], dtype=torch.long)
    x = torch.zeros(len(feats), int(lengths.max()), N_FEATURES)  # (B, T, 4)
    for i, f in enumerate(feats):
        x[i, : len(f)] = torch.from_numpy(f)
    return x, lengths


class HandwritingBatches(SeededBatches):
    """Shuffled batches (x (B, T, 4), lengths (B,), targets (sum S,), target_lengths (B,)), bucketed by length so a
    batch pads little; re-iterable, with its own generator (exact resume)."""

    POOL = 50

    def __init__(self, feats: list[np.ndarray], labels: list[list[int]], batch_size: int, seed: int,
                 shuffle: bool = True) -> None:  # fmt: skip
        order = bucketed([len(f) for f in feats], self.POOL)
        super().__init__(feats, labels, batch_size=batch_size, seed=seed, shuffle=shuffle, order=order)
        self.feats, self.labels = feats, labels

    def collate(self, index: list[int]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        x, lengths = pad_points([self.feats[i] for i in index])
        targets, target_lengths = pack_targets([self.labels[i] for i in index])
        return x, lengths, targets, target_lengths


def ngram_ids(labels: list[list[int]]) -> np.ndarray:
    """The n-gram's training layout of label sequences: 0, labels, 0, labels, ..., 0 (0 marks each start and end)."""
    ids = [0]
    for y in labels:
        ids += [*y, 0]
    return np.array(ids, dtype=np.int64)


def lm_tensors(lm: WittenBellLM) -> dict[str, Tensor]:
    """The n-gram's counts as tensors (``lm.<order>.<table>``) for a run's extra.safetensors."""
    out = {}
    for k, o in enumerate(lm.orders, start=1):
        for name in ("ngrams", "ngram_counts", "contexts", "context_counts", "context_types"):
            out[f"lm.{k}.{name}"] = torch.from_numpy(np.ascontiguousarray(getattr(o, name), dtype=np.int64))
    return out


def lm_from_tensors(tensors: dict[str, Tensor], order: int, vocab_size: int) -> WittenBellLM:
    """The n-gram that :func:`lm_tensors` wrote."""
    lm = WittenBellLM(order, vocab_size)
    names = ("ngrams", "ngram_counts", "contexts", "context_counts", "context_types")
    lm.orders = [OrderCounts(*(tensors[f"lm.{k}.{n}"].numpy() for n in names)) for k in range(1, order + 1)]
    return lm
