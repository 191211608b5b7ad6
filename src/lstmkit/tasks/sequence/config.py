"""The estimators' config, in the task shape: ``net`` (the network's sizes and variants) and ``train`` (a
:class:`lstmkit.config.TrainConfig`), built at ``fit`` from the estimator's flat scikit-learn parameters.

The defaults are declared here, once: the estimators' signatures read them (scikit-learn needs flat ``__init__``
parameters, so that ``get_params`` / ``set_params`` / ``clone`` work)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ...config import StrictConfig, TrainConfig

# declared here, torch-free, so that a command's help can read SequenceNet without importing torch (model.py uses them)
Cell = Literal["lstm", "gru", "rnn"]
Pooling = Literal["last", "mean", "max", "attention"]


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

    clip_grad_norm: float | None = None
    max_minutes: float | None = 30.0
    progress: bool = True


@dataclass(frozen=True)
class SequenceConfig(StrictConfig):
    """An estimator's whole config: what it does to the data, its network and its training."""

    normalize: bool = False  # standardise each channel with the training data's statistics
    validation_split: float = 0.0  # fraction of the sequences held out for validation (and early stopping)
    net: SequenceNet = field(default_factory=SequenceNet)
    train: SequenceTrain = field(default_factory=SequenceTrain)
