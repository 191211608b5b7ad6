"""What a classification run reads from its table and how its classifier is built and trained: :class:`ClassifyConfig`.

Torch-free, so that ``lstmkit classify train --help`` reads the defaults without loading the model."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ...config import ConfigError, StrictConfig, TrainConfig
from ..sequence.config import CLASSIFIER_MIN_STEPS, SequenceNet

if TYPE_CHECKING:
    from ..sequence.estimators import SequenceClassifier

__all__ = ["ClassifyConfig", "ClassifyTrain", "Selection"]

Selection = Literal["auto", "off"]


@dataclass(frozen=True)
class ClassifyTrain(TrainConfig):
    """How a classifier trains: :class:`lstmkit.config.TrainConfig` with the classifier's length and budget.

    ``epochs``: None, so the length is ``min_steps`` optimiser steps (300, rounded up to whole epochs; the estimator's
    default too), whatever the number of series; an int trains that many epochs instead. ``max_minutes``: 5, the
    whole run's budget on 2 cores, the selection's cross-validation included (a few hundred series of a few hundred
    steps fit in it). The rest is TrainConfig's: Adam at 1e-3, batch 32, the gradient norm clipped at 1.0 (keeps the
    occasional steep step on tiny data sets from undoing training)."""

    epochs: int | None = None
    min_steps: int = CLASSIFIER_MIN_STEPS
    max_minutes: float | None = 5.0

    def validate(self) -> None:
        if self.min_steps < 0:
            raise ConfigError(f"train.min_steps must be >= 0, got {self.min_steps}. Use 0 to train by epochs alone.")
        if self.epochs is None:
            if self.min_steps < 1:
                raise ConfigError(
                    "train.epochs=None trains train.min_steps optimiser steps, so min_steps must be >= 1; set one."
                )
            dataclasses.replace(self, epochs=1)  # a copy with an int checks the rest as TrainConfig does
            return
        super().validate()


@dataclass(frozen=True)
class ClassifyConfig(StrictConfig):
    """A classification run: how the table maps to series, the network (``net``, the estimator's
    :class:`~lstmkit.tasks.sequence.config.SequenceNet`) and its training (``train``). Saved with the run;
    ``from_dict`` also reads the flat layout runs saved before the sections."""

    # the table
    id: str = "id"  # the column naming each series
    label: str = "label"  # the class of each series (one value on all its rows)
    step: str | None = None  # orders the rows within a series; None: the file's order
    split: str | None = None  # "train" / "test" per row; None: every series trains (see test_fraction)
    features: tuple[str, ...] = ()  # the channels; (): every numeric column but id, label, step and split
    test_fraction: float = 0.0  # without a split column: hold out this fraction of series (stratified) to test on
    # what the classifier does with the data (lstmkit.SequenceClassifier)
    class_weight: Literal["none", "balanced"] = "none"
    normalize: bool = True  # per-channel standardisation fitted on the training series only
    validation_split: float = 0.0  # of the training series, for early stopping (the test split is never used)
    # "auto": choose the network by stratified cross-validation on the training series (lstmkit.tasks.timeseries.
    # classify_select: LSTM-FCN, plain LSTM, attention pooling, ...), then refit the winner on all of them; "off": the
    # net section as given. Net settings that the portfolio varies, given by hand, turn it off (the run says so).
    selection: Selection = "auto"
    net: SequenceNet = field(default_factory=SequenceNet)
    train: ClassifyTrain = field(default_factory=ClassifyTrain)

    def validate(self) -> None:
        if not 0.0 <= self.test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in [0, 1), got {self.test_fraction}.")
        for name in ("hidden_size", "num_layers"):
            if getattr(self.net, name) < 1:
                raise ValueError(f"net.{name} must be at least 1, got {getattr(self.net, name)}.")
        if not 0.0 <= self.net.head_dropout < 1.0:
            raise ValueError(f"head_dropout must be in [0, 1), got {self.net.head_dropout}. Use 0.0 to turn it off.")
        if not 0.0 <= self.net.pooled_dropout < 1.0:
            raise ValueError(
                f"pooled_dropout must be in [0, 1), got {self.net.pooled_dropout}. Use 0.0 to turn it off."
            )
        if self.train.early_stopping_patience is not None and self.validation_split == 0.0:
            raise ValueError(
                "early_stopping_patience needs a validation split of the training series to watch; set "
                "validation_split (e.g. 0.2) or drop early stopping."
            )

    def classifier(self) -> SequenceClassifier:
        """The estimator this config trains: every field of the config (and of its sections) named like one of the
        estimator's parameters, passed as is.

        Raises:
            ValueError: for a training setting changed from its default that the estimator does not take (it would
                be ignored). ``train.max_minutes`` and ``train.device`` are the estimator's own parameters.
        """
        from ..sequence.estimators import SequenceClassifier

        takes = set(SequenceClassifier().get_params())
        params: dict[str, Any] = {}
        for part in (self, self.net, self.train):
            params.update({f.name: getattr(part, f.name) for f in dataclasses.fields(part) if f.name in takes})
        params["class_weight"] = None if self.class_weight == "none" else self.class_weight
        default = ClassifyTrain()
        ignored = [
            k for k in ClassifyTrain.field_names() if k not in takes and getattr(self.train, k) != getattr(default, k)
        ]
        if ignored:
            raise ValueError(
                f"The classifier does not take {', '.join('train.' + k for k in ignored)} yet; leave "
                f"{'it' if len(ignored) == 1 else 'them'} at the default."
            )
        return SequenceClassifier(**params)
