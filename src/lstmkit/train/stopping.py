"""The monitored metric across epochs: the best epoch so far, its weights, and early stopping when it stops
improving."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import torch

from lstmkit.config import TrainConfig

__all__ = ["BestEpoch"]

logger = logging.getLogger(__name__)


class BestEpoch:
    """Tracks ``config.monitor`` over the epochs' rows: the best epoch and value, the epochs since it improved and,
    with early stopping on, a copy of the best epoch's weights.

    Attributes:
        epoch, value: the best epoch (1-based) and its value of ``monitor``, or None before any row held it.
        bad_epochs: epochs since the last improvement.
        weights: the best epoch's ``state_dict`` (with early stopping on), or None.
    """

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.reset()

    def reset(self) -> None:
        self.epoch: int | None = None
        self.value: float | None = None
        self.bad_epochs = 0
        self.weights: dict[str, torch.Tensor] | None = None

    @property
    def needs_monitor(self) -> bool:
        """Whether something decides from the monitored metric: early stopping or the plateau schedule."""
        return self.config.early_stopping_patience is not None or self.config.schedule == "plateau"

    def check_val_data(self, has_val_data: bool) -> None:
        """Refuse to monitor a validation metric without validation data (before training starts)."""
        cfg = self.config
        if self.needs_monitor and cfg.monitor.startswith("val_") and not has_val_data:
            user = "early stopping" if cfg.early_stopping_patience is not None else "schedule='plateau'"
            raise ValueError(
                f"TrainConfig.monitor={cfg.monitor!r} is a validation metric (used by {user}), but fit() got no "
                "val_data. Pass val_data, or monitor a training metric such as 'train_loss'."
            )

    def update(self, epoch: int, row: Mapping[str, Any], model: torch.nn.Module) -> tuple[float | None, bool, bool]:
        """Read the monitored value from an epoch's row and keep the best.

        Returns:
            (value, improved, stop): the monitored value (None when the row lacks it), whether this epoch is the
            best so far, and whether early stopping says stop.

        Raises:
            ValueError: if early stopping or the plateau schedule needs ``monitor`` and the row lacks it.
        """
        cfg = self.config
        if self.needs_monitor and cfg.monitor not in row:
            raise ValueError(
                f"TrainConfig.monitor={cfg.monitor!r} is not among this epoch's metrics ({', '.join(row)}). "
                "Set monitor to one of them, or make eval_fn return it."
            )
        value = float(row[cfg.monitor]) if cfg.monitor in row else None
        improved = (
            value is not None
            and not math.isnan(value)
            and (self.value is None or (value < self.value if cfg.monitor_mode == "min" else value > self.value))
        )
        stop = False
        if improved:
            self.value, self.epoch, self.bad_epochs = value, epoch, 0
            if cfg.early_stopping_patience is not None:
                self.weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
        elif value is not None:
            self.bad_epochs += 1
        if cfg.early_stopping_patience is not None and value is not None and not improved:
            if self.bad_epochs >= cfg.early_stopping_patience:
                logger.info(
                    "early stopping at epoch %d: %s has not improved for %d epochs (best %.5g at epoch %d)",
                    epoch,
                    cfg.monitor,
                    self.bad_epochs,
                    self.value if self.value is not None else math.nan,
                    self.epoch or 0,
                )
                stop = True
        return value, improved, stop

    def restore(self, model: torch.nn.Module) -> None:
        """With early stopping on, give ``model`` the best epoch's weights (if any were kept)."""
        if self.weights is not None and self.config.early_stopping_patience is not None:
            model.load_state_dict(self.weights)
            logger.info("restored the weights of epoch %d (%s=%.5g)", self.epoch, self.config.monitor, self.value)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "value": self.value, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.epoch, self.value, self.bad_epochs = state["epoch"], state["value"], state["bad_epochs"]
