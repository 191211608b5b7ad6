"""The speech networks (features -> per-step class log-probabilities) and the seeded training batches.

``"lstm"``: a stacked, by default bidirectional :class:`lstmkit.nn.LSTM` and a linear layer to ``C`` classes (the CTC
blank and one per character); ``"conv"``: the non-recurrent baseline, a frame classifier: 1-D convolutions over the
stacked frames (ReLU), each output seeing a fixed window of ``conv_layers * (conv_kernel - 1) + 1`` steps, then the
same linear layer.

Shapes: ``B`` batch, ``T`` network steps, ``I`` input features per step, ``C`` classes.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from ....data import SeededBatches, bucketed
from ....nn import LSTM
from ..ctc import pack_targets

__all__ = ["SpeechBatches", "SpeechNetwork", "pad_features", "spec_mask"]


class SpeechNetwork(nn.Module):
    """Features -> per-step class log-probabilities. ``"lstm"``: LSTM stack + linear; ``"conv"``: 1-D convolutions
    over time (the padded steps zeroed after every layer, so a padded batch gives each utterance's own numbers).

    Shape: x (B, T, I), lengths (B,) -> log_probs (B, T, C).
    """

    def __init__(
        self, input_size: int, num_classes: int, *, architecture: Literal["lstm", "conv"] = "lstm",
        hidden_size: int = 128, num_layers: int = 2, bidirectional: bool = True, dropout: float = 0.1,
        conv_channels: int = 256, conv_layers: int = 3, conv_kernel: int = 5,
    ) -> None:  # fmt: skip
        super().__init__()
        self.architecture = architecture
        self.drop = nn.Dropout(dropout)
        if architecture == "lstm":
            self.lstm = LSTM(input_size, hidden_size, num_layers, bidirectional=bidirectional,
                             dropout=dropout if num_layers > 1 else 0.0)  # fmt: skip
            width = hidden_size * (2 if bidirectional else 1)
        else:
            sizes = [input_size] + [conv_channels] * conv_layers
            self.convs = nn.ModuleList(nn.Conv1d(a, b, conv_kernel, padding=conv_kernel // 2)
                                       for a, b in zip(sizes, sizes[1:], strict=False))  # fmt: skip
            width = conv_channels
        self.output = nn.Linear(width, num_classes)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        if self.architecture == "lstm":
            full = bool((lengths == x.shape[1]).all())  # no padding: PyTorch's fused kernel
            hidden, _ = self.lstm(x, lengths=None if full else lengths)  # (B, T, D*H)
        else:
            steps = torch.arange(x.shape[1], device=x.device)  # (T,)
            mask = (steps[None, :] < lengths[:, None]).to(x.dtype)[:, None, :]  # (B, 1, T)
            hidden = x.transpose(1, 2) * mask  # (B, I, T)
            for conv in self.convs:
                hidden = torch.relu(conv(hidden)) * mask  # (B, K, T)
            hidden = hidden.transpose(1, 2)  # (B, T, K)
        return torch.log_softmax(self.output(self.drop(hidden)), dim=-1)  # (B, T, C)

    def step(self, x_t: Tensor, state: Any) -> tuple[Tensor, Any]:
        """One step of a unidirectional LSTM: x_t (B, I) -> log_probs (B, C), state carried."""
        y_t, state = self.lstm.step(x_t, state)  # (B, H)
        return torch.log_softmax(self.output(y_t), dim=-1), state


def pad_features(feats: list[np.ndarray], with_background: bool = False) -> tuple[Tensor, Tensor]:
    """(B, T, I) batch and (B,) lengths. ``with_background``: each utterance is extended by repeating its first step
    (the background noise before the speech) and every length is T: more audio with nothing said in it."""
    lengths = torch.tensor([len(f) for f in feats])
    x = torch.zeros(len(feats), int(lengths.max()), feats[0].shape[1])  # (B, T, I)
    for i, f in enumerate(feats):
        x[i, : len(f)] = torch.from_numpy(f)
        if with_background:
            x[i, len(f) :] = torch.from_numpy(f[0])
    return x, torch.full_like(lengths, x.shape[1]) if with_background else lengths


class SpeechBatches(SeededBatches):
    """Shuffled batches ``(x, lengths, targets, target_lengths)``, bucketed by length like seq2seq's, re-iterable,
    with its own generators (the order's and the masks', saved in checkpoints for an exact resume).

    Training batches (``with_background``) are padded with each utterance's own background (see
    :func:`pad_features`), not masked: bucketing keeps the padding to a step or two, and an unmasked batch takes
    PyTorch's fused LSTM kernel, 1.6x faster than the masked bidirectional layer here. Validation and decoding are
    exact (masked)."""

    POOL = 50

    def __init__(self, feats: list[np.ndarray], labels: list[list[int]], batch_size: int, seed: int,
                 shuffle: bool = True, with_background: bool = False,
                 masks: tuple[int, int] | None = None) -> None:  # fmt: skip
        order = bucketed([len(f) for f in feats], self.POOL)
        super().__init__(feats, labels, batch_size=batch_size, seed=seed, shuffle=shuffle, order=order,
                         generators=("mask_generator",))  # fmt: skip
        self.feats, self.labels = feats, labels
        self.with_background = with_background
        self.masks = masks  # (n_mels, stack): SpecAugment masks on every batch (see spec_mask)
        self.mask_generator = self.generators["mask_generator"]

    def collate(self, index: list[int]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        x, lengths = pad_features([self.feats[i] for i in index], self.with_background)
        if self.masks is not None:
            x = spec_mask(x, lengths, *self.masks, self.mask_generator)
        targets, target_lengths = pack_targets([self.labels[i] for i in index])
        return x, lengths, targets, target_lengths


def spec_mask(x: Tensor, lengths: Tensor, n_mels: int, stack: int, gen: torch.Generator) -> Tensor:
    """SpecAugment-style (Park et al. 2019), light: per utterance one block of up to 6 mel bands (in every stacked
    frame) and one block of up to 5 steps set to 0 (the normalised mean)."""
    x = x.clone()
    for b in range(x.shape[0]):
        width = int(torch.randint(0, 7, (1,), generator=gen))
        start = int(torch.randint(0, n_mels - width + 1, (1,), generator=gen))
        for k in range(stack):
            x[b, :, k * n_mels + start : k * n_mels + start + width] = 0
        span = int(torch.randint(0, 6, (1,), generator=gen))
        t0 = int(torch.randint(0, max(1, int(lengths[b]) - span), (1,), generator=gen))
        x[b, t0 : t0 + span] = 0
    return x
