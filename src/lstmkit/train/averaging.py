"""Weight averaging: the running mean of the weights over the optimizer steps from ``average_from_epoch`` on (as in
stochastic weight averaging), which the model takes at the end of ``fit``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch

__all__ = ["WeightAverage"]

logger = logging.getLogger(__name__)


class WeightAverage:
    """The running mean of ``model``'s weights (a copy of the model); it starts empty and is filled from
    ``from_epoch`` (1-based) on, one update per optimizer step."""

    def __init__(self, model: torch.nn.Module, from_epoch: int) -> None:
        self.from_epoch = from_epoch
        self.averaged = torch.optim.swa_utils.AveragedModel(model)

    def update(self, model: torch.nn.Module, epoch: int) -> None:
        """Add the current weights after an optimizer step of ``epoch``, if averaging has started."""
        if epoch >= self.from_epoch:
            self.averaged.update_parameters(model)

    @property
    def steps(self) -> int:
        """Optimizer steps averaged so far."""
        return int(self.averaged.n_averaged.item())

    def state_dict(self) -> dict[str, Any]:
        return self.averaged.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.averaged.load_state_dict(state)

    def apply(self, model: torch.nn.Module, stop_reason: str | None) -> int:
        """Give ``model`` the averaged weights (or leave its last ones, with a warning, if no step was averaged);
        return the number of steps averaged."""
        steps = self.steps
        if steps == 0:
            logger.warning(
                "training stopped (%s) before epoch %d, where weight averaging starts: the model keeps its last "
                "weights", stop_reason or "at its last epoch", self.from_epoch,
            )  # fmt: skip
            return 0
        with torch.no_grad():
            for mine, mean in zip(model.parameters(), self.averaged.module.parameters(), strict=True):
                mine.copy_(mean)
        logger.info("the model ends with the mean of its weights over the last %d steps", steps)
        return steps
