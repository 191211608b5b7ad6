"""The handwriting recogniser's config (torch-free, so the command line reads its defaults without loading torch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ....config import StrictConfig
from ..ctc import Alphabet

__all__ = ["HandwritingConfig"]


@dataclass(frozen=True)
class HandwritingConfig(StrictConfig):
    """Features, network, language model and training of a handwriting recogniser."""

    alphabet: str = "abcdefghijklmnopqrstuvwxyz"  # the characters it can write out; texts outside it are an error
    step: float = 0.3  # resampling distance in ink heights: about 10-15 points per letter
    # Strokes that go over ink already written, within this many ink heights, are dropped before resampling (a
    # retraced line, the extra lines of a thick stroke in a "complex" font: handwriting_data.drop_overlapping);
    # 0 keeps every stroke. Measured in docs/results/handwriting.md (setup mixed-overlap).
    overlap: float = 0.0
    # One bidirectional layer, as in Graves et al. (2009): in trials on the Hershey words, stacks of 2-3 layers of 128
    # at lr 3e-3 sat on CTC's early plateau (greedy output mostly blank) for over 500 steps; one layer of 192 at
    # lr 1e-2, batch 16, left it after about 400 steps.
    hidden_size: int = 192  # per direction
    num_layers: int = 1
    dropout: float = 0.1  # between stacked layers
    # on the last layer's outputs, before the classifier: dropout on an LSTM's feed-forward connections only, as in
    # Pham et al. (2014, "Dropout improves recurrent neural networks for handwriting recognition")
    output_dropout: float = 0.0
    lm_order: int = 4  # the character n-gram used by beam search with a language model (0: none)
    epochs: int = 10
    max_minutes: float | None = None  # and/or stop after this much wall-clock training time
    batch_size: int = 16
    lr: float = 1e-2
    clip_grad_norm: float = 5.0
    # a step whose gradient overflows (a rare spike at lr 1e-2): stop with an error, skip the step, or roll back
    on_nonfinite: Literal["raise", "skip", "rollback"] = "raise"
    # Average the weights over every step from this epoch on (dense stochastic weight averaging, TrainConfig's
    # average_from_epoch) and keep the average instead of the best epoch; None: keep the epoch with the lowest
    # validation CER. Measured in docs/results/handwriting.md (setup mixed-swa).
    average_from_epoch: int | None = None
    # Training batches are bucketed by length, so a batch pads only a few points. False: they run padded through
    # PyTorch's fused kernel (1.7x faster on one CPU thread; CTC still reads only the real points, but the backward
    # direction starts on those few zero points). True: the LSTM skips padding exactly (lengths=). Recognition
    # always skips padding exactly.
    exact_padding: bool = False
    seed: int = 0
    progress: bool = True

    def validate(self) -> None:
        for name in ("hidden_size", "num_layers", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"HandwritingConfig.{name} must be at least 1, got {getattr(self, name)}.")
        if not self.step > 0:
            raise ValueError(f"HandwritingConfig.step must be positive (a distance in ink heights), got {self.step}.")
        if not 0 <= self.overlap < 1:
            raise ValueError(f"HandwritingConfig.overlap is a distance in ink heights, at least 0 (0: keep every "
                             f"stroke) and under 1, got {self.overlap}.")  # fmt: skip
        for name in ("dropout", "output_dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"HandwritingConfig.{name} must lie in [0, 1), got {getattr(self, name)}.")
        if self.lm_order < 0:
            raise ValueError(f"HandwritingConfig.lm_order must be 0 (no language model) or more, got {self.lm_order}.")
        if self.average_from_epoch is not None and not 1 <= self.average_from_epoch <= self.epochs:
            raise ValueError(f"HandwritingConfig.average_from_epoch must be an epoch from 1 to epochs={self.epochs} "
                             f"(or None), got {self.average_from_epoch}.")  # fmt: skip
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ValueError(f"HandwritingConfig.max_minutes must be positive (or None), got {self.max_minutes}.")
        Alphabet(self.alphabet)  # duplicates / empty
