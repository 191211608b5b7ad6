"""Optimizer and learning-rate schedule builders for :class:`lstmkit.train.Trainer`.

The schedule is a plain function of the optimizer step (plus, for ``"plateau"``, a factor updated once per epoch), so
the learning rate at any step can be read without running anything: ``build_schedule(cfg, total_steps).lr_at(step)``.

Schedules (``step`` counts optimizer steps from 0; ``W = warmup_steps``; ``s = step - W`` after warm-up):

- warm-up (any schedule, ``step < W``): ``lr * (step + 1) / W``
- ``"constant"``: ``lr``
- ``"cosine"``: ``min_lr + (lr - min_lr) * (1 + cos(pi * min(s / decay_steps, 1))) / 2``
- ``"step"``: ``lr * gamma ** (s // step_size)``
- ``"plateau"``: ``max(lr * factor, min_lr)``, ``factor`` multiplied by ``gamma`` each time ``monitor`` fails to improve
  for more than ``plateau_patience`` epochs in a row.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch

from lstmkit.config import TrainConfig

__all__ = ["LRSchedule", "build_optimizer", "build_schedule", "clip_gradients"]


def build_optimizer(params: Iterable[torch.nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    """Build the optimizer named by ``config.optimizer`` with ``lr``, ``weight_decay`` and ``momentum``.

    Args:
        params: the parameters to optimise; those with ``requires_grad=False`` are skipped.
        config: the training config.

    Returns:
        A ``torch.optim`` optimizer: ``Adam``, ``AdamW``, ``SGD`` or ``RMSprop``.

    Raises:
        ValueError: if there is no trainable parameter.
    """
    trainable = [p for p in params if p.requires_grad]
    if not trainable:
        raise ValueError(
            "build_optimizer got no trainable parameters (none with requires_grad=True). "
            "Pass model.parameters() of a model with at least one trainable parameter."
        )
    if config.optimizer == "adam":
        return torch.optim.Adam(trainable, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "sgd":
        return torch.optim.SGD(trainable, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(trainable, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    raise ValueError(  # unreachable for a validated TrainConfig; kept for configs built around the checks
        f"Unknown optimizer {config.optimizer!r}. Expected one of 'adam', 'adamw', 'sgd', 'rmsprop'."
    )


class LRSchedule:
    """Learning rate as a function of the optimizer step, with the per-epoch ``"plateau"`` rule.

    Args:
        config: the training config (``lr``, ``schedule``, ``warmup_steps``, ``decay_steps``, ``min_lr``,
            ``step_size``, ``gamma``, ``plateau_patience``, ``monitor_mode``).
        total_steps: total optimizer steps of the run, used by ``"cosine"`` when ``decay_steps`` is None. May be set
            later through the attribute (the Trainer fills it in once it has seen the first batch).
    """

    def __init__(self, config: TrainConfig, total_steps: int | None = None) -> None:
        self.config = config
        self.total_steps = total_steps
        self.factor = 1.0  # "plateau" multiplier, reduced by gamma on each plateau
        self._best: float | None = None
        self._bad_epochs = 0

    @property
    def decay_steps(self) -> int | None:
        """Steps after warm-up over which ``"cosine"`` decays, or None if not known yet."""
        if self.config.decay_steps is not None:
            return self.config.decay_steps
        if self.total_steps is None:
            return None
        return max(1, self.total_steps - self.config.warmup_steps)

    def lr_at(self, step: int) -> float:
        """The learning rate for optimizer step ``step`` (0-based).

        Raises:
            ValueError: for ``"cosine"`` when neither ``decay_steps`` nor ``total_steps`` is known.
        """
        c = self.config
        if step < c.warmup_steps:
            return c.lr * (step + 1) / c.warmup_steps * (self.factor if c.schedule == "plateau" else 1.0)
        s = step - c.warmup_steps
        if c.schedule == "constant":
            return c.lr
        if c.schedule == "cosine":
            decay = self.decay_steps
            if decay is None:
                raise ValueError(
                    "schedule='cosine' needs the run length, but it is unknown: train_data has no len() and neither "
                    "max_steps nor decay_steps is set. Set TrainConfig.decay_steps (or max_steps), or pass train_data "
                    "that has a len() (e.g. a DataLoader)."
                )
            progress = min(s / decay, 1.0)
            return c.min_lr + (c.lr - c.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
        if c.schedule == "step":
            return c.lr * c.gamma ** (s // c.step_size)
        if c.schedule == "plateau":
            return max(c.lr * self.factor, c.min_lr)
        raise ValueError(f"Unknown schedule {c.schedule!r}. Expected 'constant', 'cosine', 'step' or 'plateau'.")

    def infer_total_steps(self, total_batches: int | None, chunks_per_batch: int) -> None:
        """Fill in the run length (for ``"cosine"``) once the first batch shows the chunks per batch: the smaller of
        ``max_steps`` and ``epochs * total_batches * chunks_per_batch``, where known."""
        c = self.config
        known = [c.max_steps] if c.max_steps is not None else []
        if total_batches is not None:
            known.append(c.epochs * total_batches * chunks_per_batch)
        if known:
            self.total_steps = min(known)

    def on_epoch_end(self, value: float | None) -> None:
        """Feed the monitored metric at the end of an epoch; only ``"plateau"`` uses it.

        A NaN or missing value counts as no improvement.
        """
        if self.config.schedule != "plateau":
            return
        improved = value is not None and not math.isnan(value)
        if improved and self._best is not None:
            improved = value < self._best if self.config.monitor_mode == "min" else value > self._best
        if improved:
            self._best = value
            self._bad_epochs = 0
            return
        self._bad_epochs += 1
        if self._bad_epochs > self.config.plateau_patience:
            self.factor *= self.config.gamma
            self._bad_epochs = 0

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps: the plateau factor and its bookkeeping, and the run length."""
        return {
            "factor": self.factor,
            "best": self._best,
            "bad_epochs": self._bad_epochs,
            "total_steps": self.total_steps,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.factor, self._best = state["factor"], state["best"]
        self._bad_epochs, self.total_steps = state["bad_epochs"], state["total_steps"]


def build_schedule(config: TrainConfig, total_steps: int | None = None) -> LRSchedule:
    """Build the learning-rate schedule named by ``config.schedule``.

    Args:
        config: the training config.
        total_steps: total optimizer steps of the run, if known (needed by ``"cosine"`` without ``decay_steps``).

    Returns:
        An :class:`LRSchedule`; read it with ``lr_at(step)``.

    Example:
        >>> cfg = TrainConfig(lr=0.1, schedule="step", step_size=10, gamma=0.5)
        >>> [build_schedule(cfg).lr_at(s) for s in (0, 9, 10, 25)]
        [0.1, 0.1, 0.05, 0.025]
    """
    return LRSchedule(config, total_steps)


def clip_gradients(params: list[torch.nn.Parameter], max_norm: float | None) -> float:
    """The global norm of the gradients of ``params`` before clipping, clipping them to ``max_norm`` (None: no
    clipping); NaN or inf when a gradient is not finite."""
    if max_norm is not None:
        grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)  # returns the pre-clip norm
    else:
        grads = [p.grad for p in params if p.grad is not None]
        grad_norm = torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())
    return float(grad_norm.item())
