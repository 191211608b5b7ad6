"""What a forecast reads and how its model is built and trained: :class:`ForecastConfig`, saved with every run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from ...config import ConfigError, StrictConfig, TrainConfig

__all__ = ["ForecastConfig", "ForecastNet", "ForecastTrain", "check_window_training"]


@dataclass(frozen=True)
class ForecastNet(StrictConfig):
    """The network's sizes: the LSTM encoder (and, for the direct strategy, the head's hidden layer)."""

    hidden_size: int = 64
    num_layers: int = 1
    dropout: float = 0.0  # between stacked layers (num_layers > 1)
    # A seed ensemble of this many networks, trained side by side, their quantiles averaged (1: one network). None:
    # the selection trains as many as its remaining budget allows at the speed it measured, up to 3; one otherwise.
    members: int | None = None

    def validate(self) -> None:
        for name in ("hidden_size", "num_layers", "members"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"ForecastNet.{name} must be at least 1, got {getattr(self, name)}.")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"ForecastNet.dropout must be in [0, 1), got {self.dropout}. Use 0.0 to turn it off.")


def check_window_training(train: TrainConfig, who: str) -> None:
    """Refuse the training settings a window model cannot use: its network reads each window whole from a zero state
    (no truncated BPTT, no state carried between batches), and early stopping watches the validation loss.

    Raises:
        ConfigError: naming each such setting given.
    """
    fixed = {"tbptt_steps": None, "carry_state_across_batches": False, "monitor": "val_loss"}
    changed = [f"train.{k}={getattr(train, k)!r}" for k, v in fixed.items() if getattr(train, k) != v]
    if changed:
        raise ConfigError(
            f"{who} cannot use {', '.join(changed)}: it trains on whole windows from a zero state and watches "
            "val_loss. Leave those settings at their defaults."
        )


@dataclass(frozen=True)
class ForecastTrain(TrainConfig):
    """How a forecaster trains: :class:`lstmkit.config.TrainConfig` with the defaults forecasting changes.

    ``early_stopping_patience``: validate on each series' last horizon and stop when it stops improving; None (the
    default) trains every epoch on all the data, which short series need more than a validation split. The time
    budget (``max_minutes``, 10 by default) holds for one :meth:`Forecaster.fit` (with ``calibrate_intervals``, both
    of its fits together); ``lstmkit forecast train`` and ``select_forecaster`` share it among the whole selection
    and the final fit.
    """

    epochs: int = 300
    lr: float = 3e-3
    max_minutes: float | None = 10.0
    progress: bool = False

    def validate(self) -> None:
        super().validate()
        check_window_training(self, "A forecaster")


@dataclass(frozen=True)
class ForecastConfig(StrictConfig):
    """What to forecast, from which columns, and how the model is built (``net``) and trained (``train``).

    ``ForecastConfig.from_dict`` also reads the flat layout older runs saved (``{"hidden_size": 64, "epochs": 300}``)
    and the former ``model`` (now ``strategy``)."""

    target: str
    horizon: int
    time: str = "time"
    id: str | None = None  # a column naming the series, for many series in one table
    past_covariates: tuple[str, ...] = ()  # known only up to the forecast origin
    future_covariates: tuple[str, ...] = ()  # known over the horizon too (calendar, planned values)
    # One value per series; needs ``id``. Numbers are standardised, anything else (text, booleans) is one-hot: pass
    # integer-coded categories (store type 1/2/3) as text, or they are read as quantities.
    static_covariates: tuple[str, ...] = ()
    # Seasonal period in steps: seasonal-naive baseline and residual, MASE's scale, the default window. None: the main
    # period the timestamps imply (monthly 12, hourly 24, ...; tasks.timeseries.seasonality), filled in at fit.
    season: int | None = None
    # None: max(2 * season, horizon), at most half the shortest history. Shorter windows give more training windows,
    # which small series need (airline: window 24 reached MASE 0.7-1.1, window 48 only 1.5-1.8; 3 seeds each).
    input_window: int | None = None
    # "log" for positive series whose swings grow with their level. "auto": chosen on validation by the selection
    # (lstmkit forecast train, select_forecaster); Forecaster.fit alone reads it as "none".
    transform: Literal["auto", "none", "log"] = "auto"
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)
    # The multi-step strategy. "direct": the whole horizon at once from the encoder's last state (MQ-RNN);
    # "recurrent": one step at a time, its own median fed back as the next input (autoregressive, as DeepAR; trained
    # with teacher forcing).
    strategy: Literal["direct", "recurrent"] = "direct"
    # "seasonal_naive": the network forecasts the deviation from repeating the window's last season (a residual on
    # the strongest simple baseline); "seasonal_mean": from the window's average seasonal profile (its full seasons,
    # each relative to its own mean: smoother than the last season); "none": it forecasts the values themselves.
    # "auto": chosen on validation by the selection; Forecaster.fit alone reads it as "seasonal_naive".
    residual_to: Literal["auto", "seasonal_naive", "seasonal_mean", "none"] = "auto"
    # The period of that residual in steps; None: the season. A longer one of the periods the timestamps imply (a week
    # of half-hours, 336, where the season is the day, 48) repeats the weekly shape; the window is at least as long.
    residual_period: int | None = None
    # Conformalised quantile regression (Romano et al. 2019): fit once without each series' last horizon, measure how
    # far the held-out values fall outside the outer quantiles, widen (or narrow) the interval by that much, then fit
    # on everything. Doubles the training time; pinball-trained quantiles alone cover far less than nominal out of
    # sample (airline: 17-58 % for a nominal 80 %).
    calibrate_intervals: bool = True
    # "statistical": the network's median averaged with AutoETS' and AutoTheta's forecasts (statsforecast, fitted on
    # the history at each predict; the quantiles move with the median); "none": the network alone. "auto": the
    # selection combines only where the combination beat the network alone on validation; Forecaster.fit alone: none.
    combine: Literal["auto", "none", "statistical"] = "auto"
    net: ForecastNet = field(default_factory=ForecastNet)
    train: ForecastTrain = field(default_factory=ForecastTrain)

    # ``model`` named the multi-step strategy, not the network (saved runs and keyword arguments still read).
    RENAMED: ClassVar[Mapping[str, tuple[str, Any]]] = {"model": ("strategy", None)}

    # the fields the selection chooses when they are "auto", and what Forecaster.fit reads "auto" as without one
    AUTO_RULE: ClassVar[Mapping[str, str]] = {"transform": "none", "residual_to": "seasonal_naive", "combine": "none"}

    def resolved(self) -> ForecastConfig:
        """This config with each "auto" field set as :meth:`Forecaster.fit` reads it when no selection chose it."""
        return self.replace(**{k: v for k, v in self.AUTO_RULE.items() if getattr(self, k) == "auto"})

    def validate(self) -> None:
        if self.horizon < 1:
            raise ValueError(f"The horizon (horizon=, --horizon) must be at least 1 step, got {self.horizon}.")
        if self.season is not None and self.season < 1:
            raise ValueError(f"The season (season=, --season) must be at least 1 step, got {self.season}.")
        if self.residual_period is not None and self.residual_period < 1:
            raise ValueError(f"ForecastConfig.residual_period must be at least 1 step, got {self.residual_period}.")
        if self.input_window is not None and self.input_window < 1:
            raise ValueError(f"ForecastConfig.input_window must be at least 1, got {self.input_window}.")
        if 0.5 not in self.quantiles or any(not 0 < q < 1 for q in self.quantiles):
            raise ValueError(
                "ForecastConfig.quantiles must lie in (0, 1) and include 0.5 (the point forecast), got "
                f"{self.quantiles}."
            )
        if list(self.quantiles) != sorted(set(self.quantiles)):
            raise ValueError(f"ForecastConfig.quantiles must be increasing and distinct, got {self.quantiles}.")
        if self.strategy == "recurrent" and self.past_covariates:
            raise ValueError(
                f"strategy='recurrent' feeds each step's inputs forward over the horizon, where past covariates "
                f"{list(self.past_covariates)} are unknown. Use strategy='direct', or drop them."
            )
        roles = [self.time, self.target, *self.past_covariates, *self.future_covariates, *self.static_covariates]
        roles += [self.id] if self.id is not None else []
        repeated = sorted({c for c in roles if roles.count(c) > 1})
        if repeated:
            raise ValueError(
                f"A column can play one role only: {repeated} is given twice among the time, id, target and "
                "past/future/static covariates. List each column once."
            )
        if self.static_covariates and self.id is None:
            raise ValueError(
                f"Static covariates {list(self.static_covariates)} describe each of many series: name the column "
                "that tells the series apart with id= (--id), or pass them as future covariates."
            )
