"""What an :class:`~lstmkit.tasks.timeseries.anomaly.detector.AnomalyDetector` is built, trained and thresholded
with (:class:`AnomalyConfig`), and its kind in run directories."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ....config import StrictConfig, TrainConfig
from ..forecast_config import check_window_training

__all__ = ["KIND", "AnomalyConfig", "AnomalyNet", "AnomalyTrain", "NotFittedError"]

KIND = "anomaly_detector"


class NotFittedError(RuntimeError):
    """A detector (or the baseline) was asked to score before ``fit``."""


@dataclass(frozen=True)
class AnomalyNet(StrictConfig):
    """The network's sizes: the forecaster's LSTM (prediction) or the encoder's and the decoder's (reconstruction)."""

    hidden_size: int = 32
    num_layers: int = 1

    def validate(self) -> None:
        for name in ("hidden_size", "num_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"AnomalyNet.{name} must be at least 1, got {getattr(self, name)}.")


@dataclass(frozen=True)
class AnomalyTrain(TrainConfig):
    """How a detector's network trains (the forecaster's, or the encoder-decoder's): :class:`lstmkit.config.TrainConfig`
    with the defaults anomaly detection changes. The recorded results train in about 10 seconds; the budget is for
    long series."""

    epochs: int = 100
    lr: float = 3e-3
    max_minutes: float | None = 30.0
    progress: bool = False

    def validate(self) -> None:
        super().validate()
        check_window_training(self, "An anomaly detector")


@dataclass(frozen=True)
class AnomalyConfig(StrictConfig):
    """How an :class:`AnomalyDetector` is built (``net``), trained (``train``) and thresholded.

    ``AnomalyConfig.from_dict`` also reads the flat layout earlier runs saved (``{"hidden_size": 32, "epochs": 100}``).
    """

    method: Literal["prediction", "reconstruction"] = "prediction"
    target: str = "value"  # the column to watch when a table is passed (a 1-D array is named for you)
    time: str = "time"  # rows are put in this column's order when it exists
    # prediction: the forecaster's window; reconstruction: L, the window length. None: from the season at fit
    # (anomaly.period.derived_window: one period for reconstruction, two for prediction, 32 to 256 steps, at most
    # half the training points; 32 without a period).
    input_window: int | None = None
    # prediction only: forecast steps, the length of each error vector (LSTM-AD's l). None: from the season at fit
    # (an eighth of it, 2 to 10; 5 without a period).
    steps_ahead: int | None = None
    # The main period in steps (the window, the forecast steps and the forecaster's seasonal residual follow it).
    # None: detected at fit from the autocorrelation of the normal data (anomaly.period.detect_period), not from a
    # calendar; 1 when it shows none. 1: no period.
    season: int | None = None
    false_alarm_rate: float = 0.01  # share of held-out normal steps allowed above the threshold
    threshold_from: Literal["false_alarm_rate", "validation"] = "false_alarm_rate"
    beta: float = 0.1  # threshold_from="validation": the F-beta maximised; < 1 weighs precision more (both papers: 0.1)
    validation_fraction: float = 0.3  # the tail of the normal data held out for the Gaussian and the threshold
    net: AnomalyNet = field(default_factory=AnomalyNet)
    train: AnomalyTrain = field(default_factory=AnomalyTrain)

    def validate(self) -> None:
        if not 0 < self.false_alarm_rate < 1:
            raise ValueError(f"false_alarm_rate must be in (0, 1), got {self.false_alarm_rate}.")
        if not 0 < self.validation_fraction < 0.9:
            raise ValueError(f"validation_fraction must be in (0, 0.9), got {self.validation_fraction}.")
        if self.input_window is not None and self.input_window < 2:
            raise ValueError(f"input_window must be at least 2 steps, got {self.input_window}.")
        for name in ("steps_ahead", "season"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1 (or None: from the data), got {getattr(self, name)}.")
        if not self.beta > 0:
            raise ValueError(f"beta must be positive, got {self.beta}.")

    @property
    def window(self) -> int:
        """The reconstruction window L. A fitted detector's config names it; a run saved before the window was
        derived from the period (input_window None) used max(2 * season, 32)."""
        return self.input_window or max(2 * (self.season or 1), 32)
