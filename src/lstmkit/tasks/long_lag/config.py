"""The config of a long-lag experiment: the task and its budget, ``net`` (the recurrent network) and ``train`` (how it
trains). Torch-free, so the command line reads its defaults without importing torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ...config import ConfigError, StrictConfig, TrainConfig

__all__ = ["ExperimentConfig", "LongLagNet", "LongLagTrain"]


@dataclass(frozen=True)
class LongLagNet(StrictConfig):
    """The recurrent network a long-lag experiment trains."""

    cell: Literal["lstm", "gru", "rnn"] = "lstm"
    hidden_size: int = 64
    num_layers: int = 1
    # LSTM forget-gate bias at init. 1.0 (Gers et al. 2000) suits most tasks; the 1997 cell had no forget gate
    # at all (a constant error carousel), which a large bias such as 5.0 (sigma(5) = 0.993) approaches.
    forget_bias: float = 1.0

    def validate(self) -> None:
        for name in ("hidden_size", "num_layers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"LongLagNet: {name} must be at least 1, got {getattr(self, name)}.")


@dataclass(frozen=True)
class LongLagTrain(TrainConfig):
    """How a long-lag experiment trains: the defaults it changes from :class:`lstmkit.config.TrainConfig`.

    An epoch here is ``eval_every`` optimizer steps on fresh sequences, ended by a validation check; a run stops when
    the task is solved, or at the first of ``max_sequences``, ``epochs`` and ``max_minutes`` (both checked at epoch
    ends, so a run ends on a judged state, and a resumed run counts the minutes spent before it stopped).
    """

    epochs: int = 100_000  # max_sequences (the paper's budget unit) ends a run long before this
    batch_size: int = 64
    lr: float = 3e-3  # Adam; a larger step than Keras' 1e-3 reaches the adding solution in fewer sequences
    # Arjovsky et al. 2016 clip LSTM and RNN gradients at 1 (TrainConfig's default too)
    max_minutes: float | None = 10.0  # the recorded results (docs/results/long-lag.md) ran with 5 minutes
    progress: bool = False


@dataclass(frozen=True)
class ExperimentConfig(StrictConfig):
    """One long-lag experiment: the task, the network (``net``) and the training budget (``train``)."""

    task: str = "adding"
    length: int | None = None  # None: the task's paper length (T=100 for adding)
    max_sequences: int = 400_000  # budget in training sequences; the 1997 LSTM needed 74,000 on adding T=100
    eval_every: int = 50  # optimizer steps between validation checks (one epoch)
    val_size: int = 512
    test_size: int = 2560  # H&S 1997 test on 2,560 sequences
    net: LongLagNet = field(default_factory=LongLagNet)
    train: LongLagTrain = field(default_factory=LongLagTrain)

    def validate(self) -> None:
        from .problems import get_task  # torch: imported when a config is built, not when the CLI reads defaults

        spec = get_task(self.task)  # raises with the list of tasks
        if self.length is not None and self.length < spec.min_length:
            raise ConfigError(
                f"ExperimentConfig: task {self.task!r} needs length >= {spec.min_length}, got {self.length}."
            )
        for name in ("max_sequences", "eval_every", "val_size", "test_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"ExperimentConfig: {name} must be at least 1, got {getattr(self, name)}.")

    @property
    def resolved_length(self) -> int:
        from .problems import get_task

        return self.length if self.length is not None else get_task(self.task).default_length
