"""The chorale model's config: the network (``net``), the training (``train``) and how the chorales are cut.

Torch-free, so the command line reads its defaults (``lstmkit music train --help``) without loading the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ...config import ConfigError, StrictConfig, TrainConfig

__all__ = ["MusicModelConfig", "MusicNet", "MusicTrain"]


@dataclass(frozen=True)
class MusicNet(StrictConfig):
    """The network: an embedding, stacked LSTM layers and a linear decoder over the chorale tokens."""

    embedding_size: int = 64  # about 150 tokens: a small embedding is plenty
    hidden_size: int = 256
    num_layers: int = 2
    dropout: float = 0.3  # 300 chorales overfit fast; dropout between layers and before the decoder

    def validate(self) -> None:
        for name in ("embedding_size", "hidden_size", "num_layers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"MusicNet.{name} must be at least 1, got {getattr(self, name)}.")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"MusicNet.dropout must lie in [0, 1), got {self.dropout}.")


@dataclass(frozen=True)
class MusicTrain(TrainConfig):
    """Training of a chorale model: the defaults it changes from :class:`~lstmkit.config.TrainConfig`.

    ``batch_size`` is the number of parallel token streams (char-rnn style: the state flows from batch to batch)."""

    epochs: int = 30
    lr: float = 2e-3
    schedule: Literal["constant", "cosine", "step", "plateau"] = "cosine"  # ends at max_steps if set
    carry_state_across_batches: bool = True
    early_stopping_patience: int | None = 5  # epochs without a better validation loss; the best weights are kept
    # the recorded run (docs/results/music.md) trained 23 epochs in 21 minutes on one core: 30 take about half an hour
    max_minutes: float | None = 60.0


@dataclass(frozen=True)
class MusicModelConfig(StrictConfig):
    """A chorale model: ``net`` and ``train`` sections, and how the chorales are cut (the encoding is fixed: see
    :mod:`lstmkit.tasks.music.data`). Flat keys (``hidden_size``, ``epochs``) are read into their section."""

    net: MusicNet = field(default_factory=MusicNet)
    train: MusicTrain = field(default_factory=MusicTrain)
    bptt: int = 200  # tokens per truncated-BPTT chunk: 40 sixteenths, two and a half bars of 4/4
    val_fraction: float = 0.1  # of the chorales (whole pieces), for validation, then test
    test_fraction: float = 0.1

    def validate(self) -> None:
        if self.bptt < 1:
            raise ConfigError(f"MusicModelConfig.bptt must be at least 1, got {self.bptt}.")
        if not (0 <= self.val_fraction < 0.5 and 0 <= self.test_fraction < 0.5):
            raise ConfigError("val_fraction and test_fraction must each lie in [0, 0.5).")
