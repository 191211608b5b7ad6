"""The speech recogniser's config: the features (top level), the network (``net``) and the training (``train``).

Torch-free, so the command line reads its defaults (``lstmkit speech train --help``) without loading torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ....config import ConfigError, StrictConfig, TrainConfig

__all__ = ["SpeechConfig", "SpeechNet", "SpeechTrain"]


@dataclass(frozen=True)
class SpeechNet(StrictConfig):
    """The network: a stacked LSTM, or the convolutional frame-classifier baseline, and a linear layer to the
    classes (:class:`lstmkit.tasks.recognition.speech.network.SpeechNetwork`)."""

    architecture: Literal["lstm", "conv"] = "lstm"  # conv: the non-recurrent frame-classifier baseline
    bidirectional: bool = True  # False: a causal model that can stream (with normalisation="running")
    hidden_size: int = 128  # per direction
    num_layers: int = 2
    dropout: float = 0.1  # between stacked layers and before the output layer
    conv_channels: int = 256
    conv_layers: int = 3
    conv_kernel: int = 5  # odd: each layer sees (kernel - 1) / 2 steps on either side

    def validate(self) -> None:
        for name in ("hidden_size", "num_layers", "conv_channels", "conv_layers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"SpeechNet.{name} must be at least 1, got {getattr(self, name)}.")
        if self.conv_kernel < 1 or self.conv_kernel % 2 == 0:
            raise ConfigError(f"SpeechNet.conv_kernel must be odd and positive, got {self.conv_kernel}.")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"SpeechNet.dropout must lie in [0, 1), got {self.dropout}.")


@dataclass(frozen=True)
class SpeechTrain(TrainConfig):
    """Training of a speech recogniser: the defaults it changes from :class:`~lstmkit.config.TrainConfig`. With
    validation voices the epoch with the lowest validation CER (``monitor``) is kept."""

    epochs: int = 8  # with the defaults: 3.4 % CER on unseen voices' digit strings (docs/results/speech.md)
    batch_size: int = 16  # small batches: CTC needs many updates to leave its all-blank start
    lr: float = 3e-3
    clip_grad_norm: float | None = 5.0
    schedule: Literal["constant", "cosine", "step", "plateau"] = "cosine"
    monitor: str = "val_cer"
    # the recorded runs (docs/results/speech.md) trained 4-7 minutes on one core, with budgets of 15-40 minutes
    max_minutes: float | None = 60.0


@dataclass(frozen=True)
class SpeechConfig(StrictConfig):
    """A speech recogniser: the features (top level), ``net`` and ``train`` sections, and the n-gram's order.
    Flat keys (``hidden_size``, ``epochs``) are read into their section."""

    net: SpeechNet = field(default_factory=SpeechNet)
    train: SpeechTrain = field(default_factory=SpeechTrain)
    n_mels: int = 40
    stack: int = 3  # 10 ms frames per network step
    normalisation: Literal["utterance", "running"] = "utterance"
    prior_frames: float = 30.0  # running normalisation: weight of the training statistics, in frames
    augment: bool = True  # SpecAugment-style masks in training: one band block and one time block per utterance
    lm_order: int = 5  # the character n-gram used by decoding with lm_weight > 0

    def validate(self) -> None:
        for name in ("n_mels", "stack", "lm_order"):
            if getattr(self, name) < 1:
                raise ConfigError(f"SpeechConfig.{name} must be at least 1, got {getattr(self, name)}.")
        if self.prior_frames < 0:
            raise ConfigError(f"SpeechConfig.prior_frames must be >= 0, got {self.prior_frames}.")

    @property
    def can_stream(self) -> bool:
        return self.net.architecture == "lstm" and not self.net.bidirectional and self.normalisation == "running"
