"""The speech recogniser's config (torch-free, so the command line reads its defaults without loading torch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ....config import StrictConfig

__all__ = ["SpeechConfig"]


@dataclass(frozen=True)
class SpeechConfig(StrictConfig):
    """Features, network and training of a speech recogniser."""

    architecture: Literal["lstm", "conv"] = "lstm"  # conv: the non-recurrent frame-classifier baseline
    bidirectional: bool = True  # False: a causal model that can stream (with normalisation="running")
    hidden_size: int = 128
    num_layers: int = 2
    dropout: float = 0.1  # between stacked layers and before the output layer
    conv_channels: int = 256
    conv_layers: int = 3
    conv_kernel: int = 5  # odd: each layer sees (kernel - 1) / 2 steps on either side
    n_mels: int = 40
    stack: int = 3  # 10 ms frames per network step
    normalisation: Literal["utterance", "running"] = "utterance"
    prior_frames: float = 30.0  # running normalisation: weight of the training statistics, in frames
    augment: bool = True  # SpecAugment-style masks in training: one band block and one time block per utterance
    lm_order: int = 5  # the character n-gram used by decoding with lm_weight > 0
    epochs: int = 8  # with the defaults: 3.6 % CER on unseen voices' digit strings (docs/results/speech.md)
    max_minutes: float | None = None  # and/or stop after this much wall-clock training time
    batch_size: int = 16  # small batches: CTC needs many updates to leave its all-blank start
    lr: float = 3e-3
    clip_grad_norm: float = 5.0
    seed: int = 0
    progress: bool = True

    def validate(self) -> None:
        for name in ("hidden_size", "num_layers", "conv_channels", "conv_layers", "n_mels", "stack", "epochs",
                     "batch_size", "lm_order"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"SpeechConfig.{name} must be at least 1, got {getattr(self, name)}.")
        if self.conv_kernel < 1 or self.conv_kernel % 2 == 0:
            raise ValueError(f"SpeechConfig.conv_kernel must be odd and positive, got {self.conv_kernel}.")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"SpeechConfig.dropout must lie in [0, 1), got {self.dropout}.")
        if self.prior_frames < 0:
            raise ValueError(f"SpeechConfig.prior_frames must be >= 0, got {self.prior_frames}.")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ValueError(f"SpeechConfig.max_minutes must be positive (or None), got {self.max_minutes}.")

    @property
    def can_stream(self) -> bool:
        return self.architecture == "lstm" and not self.bidirectional and self.normalisation == "running"
