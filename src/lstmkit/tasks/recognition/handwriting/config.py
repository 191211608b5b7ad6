"""The handwriting recogniser's config: the features and the n-gram (top level), the network (``net``) and the
training (``train``).

Torch-free, so the command line reads its defaults (``lstmkit handwriting train --help``) without loading torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ....config import ConfigError, StrictConfig, TrainConfig

__all__ = ["HandwritingConfig", "HandwritingNet", "HandwritingTrain"]


@dataclass(frozen=True)
class HandwritingNet(StrictConfig):
    """The network: a stacked bidirectional LSTM over the points and a linear layer to the CTC classes
    (:class:`lstmkit.tasks.recognition.handwriting.network.HandwritingNetwork`)."""

    # One bidirectional layer, as in Graves et al. (2009): in trials on the Hershey words, stacks of 2-3 layers of 128
    # at lr 3e-3 sat on CTC's early plateau (greedy output mostly blank) for over 500 steps; one layer of 192 at
    # lr 1e-2, batch 16, left it after about 400 steps.
    hidden_size: int = 192  # per direction
    num_layers: int = 1
    dropout: float = 0.1  # between stacked layers
    # on the last layer's outputs, before the classifier: dropout on an LSTM's feed-forward connections only, as in
    # Pham et al. (2014, "Dropout improves recurrent neural networks for handwriting recognition")
    output_dropout: float = 0.0

    def validate(self) -> None:
        for name in ("hidden_size", "num_layers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"HandwritingNet.{name} must be at least 1, got {getattr(self, name)}.")
        for name in ("dropout", "output_dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"HandwritingNet.{name} must lie in [0, 1), got {getattr(self, name)}.")


@dataclass(frozen=True)
class HandwritingTrain(TrainConfig):
    """Training of a handwriting recogniser: the defaults it changes from :class:`~lstmkit.config.TrainConfig`.

    With validation words the epoch with the lowest validation CER (``monitor``) is kept, unless
    ``average_from_epoch`` averages the weights over every step from that epoch on (dense stochastic weight
    averaging; measured in docs/results/handwriting.md, setup mixed-swa). ``on_nonfinite``: a step whose gradient
    overflows (a rare spike at lr 1e-2) stops with an error, is skipped, or is rolled back."""

    batch_size: int = 16
    lr: float = 1e-2
    clip_grad_norm: float | None = 5.0
    schedule: Literal["constant", "cosine", "step", "plateau"] = "cosine"
    monitor: str = "val_cer"
    # the recorded runs (docs/results/handwriting.md) trained 15-33 minutes on one thread, with budgets up to 30
    max_minutes: float | None = 60.0


@dataclass(frozen=True)
class HandwritingConfig(StrictConfig):
    """A handwriting recogniser: the features and the n-gram (top level), ``net`` and ``train`` sections. Flat keys
    (``hidden_size``, ``epochs``) are read into their section."""

    net: HandwritingNet = field(default_factory=HandwritingNet)
    train: HandwritingTrain = field(default_factory=HandwritingTrain)
    alphabet: str = "abcdefghijklmnopqrstuvwxyz"  # the characters it can write out; texts outside it are an error
    step: float = 0.3  # resampling distance in ink heights: about 10-15 points per letter
    # Strokes that go over ink already written, within this many ink heights, are dropped before resampling (a
    # retraced line, the extra lines of a thick stroke in a "complex" font: strokes.drop_overlapping); 0 keeps every
    # stroke. Measured in docs/results/handwriting.md (setup mixed-overlap).
    overlap: float = 0.0
    lm_order: int = 4  # the character n-gram used by beam search with a language model (0: none)
    # Training batches are bucketed by length, so a batch pads only a few points. False: they run padded through
    # PyTorch's fused kernel (1.7x faster on one CPU thread; CTC still reads only the real points, but the backward
    # direction starts on those few zero points). True: the LSTM skips padding exactly (lengths=). Recognition
    # always skips padding exactly.
    exact_padding: bool = False

    def validate(self) -> None:
        if not self.step > 0:
            raise ConfigError(f"HandwritingConfig.step must be positive (a distance in ink heights), got {self.step}.")
        if not 0 <= self.overlap < 1:
            raise ConfigError(f"HandwritingConfig.overlap is a distance in ink heights, at least 0 (0: keep every "
                              f"stroke) and under 1, got {self.overlap}.")  # fmt: skip
        if self.lm_order < 0:
            raise ConfigError(f"HandwritingConfig.lm_order must be 0 (no language model) or more, got {self.lm_order}.")
        # the checks of ctc.Alphabet, here without importing torch
        duplicates = sorted({c for c in self.alphabet if self.alphabet.count(c) > 1})
        if duplicates:
            raise ConfigError(f"An alphabet lists each character once; {duplicates!r} appear more than once.")
        if not self.alphabet:
            raise ConfigError("An alphabet needs at least one character; got an empty one.")
