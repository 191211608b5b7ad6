"""The estimators' config, in the task shape: ``net`` (the network's sizes and variants) and ``train`` (a
:class:`lstmkit.config.TrainConfig`), built at ``fit`` from the estimator's flat scikit-learn parameters.

The defaults are declared here, once: the estimators' signatures read them (scikit-learn needs flat ``__init__``
parameters, so that ``get_params`` / ``set_params`` / ``clone`` work)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Literal

from ...config import ConfigError, StrictConfig, TrainConfig

# declared here, torch-free, so that a command's help can read SequenceNet without importing torch (model.py uses them)
Cell = Literal["lstm", "gru", "rnn"]
Pooling = Literal["last", "mean", "max", "attention"]

# The classifier's training length when ``epochs`` is None (its default): at least this many optimiser steps, whole
# epochs, so 36 series train as long as 3,000 do (a fixed epoch count gives a few dozen series a few dozen steps).
# Chosen on hold-outs of the bundled training splits (docs/results/classification.md, experiments/classification.py
# --validate); the time budget (max_minutes) still stops a fit that would run longer.
CLASSIFIER_MIN_STEPS = 300


def training_epochs(epochs: int | None, min_steps: int, batches_per_epoch: int) -> int:
    """The epochs a fit runs: ``epochs`` when given, else the fewest whole epochs that make ``min_steps`` optimiser
    steps (at least one)."""
    if epochs is not None:
        return epochs
    return max(1, math.ceil(min_steps / max(1, batches_per_epoch)))


@dataclass(frozen=True)
class SequenceNet(StrictConfig):
    """The network of an estimator; the sizes of input and output come from the data at ``fit``."""

    cell: Cell = "lstm"
    hidden_size: int = 64
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0  # between stacked layers
    pooling: Pooling = "last"
    head_dropout: float = 0.0
    conv_branch: bool = False
    dimension_shuffle: bool = False
    pooled_dropout: float = 0.0


@dataclass(frozen=True)
class SequenceTrain(TrainConfig):
    """How an estimator trains: the Keras example's recipe (10 epochs of Adam at 1e-3, batch 32), unclipped, on
    ``TrainConfig.device`` (the CPU by default).

    ``max_minutes``: every fit stops cleanly after 30 minutes of training (the weights it has then are the model). The
    recorded classification results (docs/results/classification.md: 100-200 epochs on small UCR/UEA sets) take 11 to
    118 s on one thread, so the budget is 15 times the longest; it is the classification CLI's
    (``ClassifyTrain.max_minutes``) too, so Python and the CLI stop at the same time. None: no budget."""

    epochs: int | None = 10  # None: as many whole epochs as make min_steps optimiser steps (the classifier's default)
    min_steps: int = 0
    clip_grad_norm: float | None = None
    max_minutes: float | None = 30.0
    progress: bool = True

    def validate(self) -> None:
        if self.min_steps < 0:
            raise ConfigError(f"min_steps must be >= 0, got {self.min_steps}. Use 0 to train by epochs alone.")
        if self.epochs is None:  # TrainConfig checks an int; the rest of its checks hold as they are
            if self.min_steps < 1:
                raise ConfigError("epochs=None trains min_steps optimiser steps, so min_steps must be >= 1; give both.")
            dataclasses.replace(self, epochs=1)  # a copy with an int checks the rest as TrainConfig does
            return
        super().validate()


@dataclass(frozen=True)
class SequenceConfig(StrictConfig):
    """An estimator's whole config: what it does to the data, its network and its training."""

    normalize: bool = False  # standardise each channel with the training data's statistics
    validation_split: float = 0.0  # fraction of the sequences held out for validation (and early stopping)
    net: SequenceNet = field(default_factory=SequenceNet)
    train: SequenceTrain = field(default_factory=SequenceTrain)
