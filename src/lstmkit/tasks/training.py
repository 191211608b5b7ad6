"""How every task trains: its :class:`~lstmkit.train.Trainer` and the device its network trains on.

The one module of ``tasks/`` outside the families: each family's task built the same Trainer (its run config, the
gate-statistics columns, its kind) and moved its network to the training device and back by hand, and a copy that
drifts changes what a resume accepts. Both are written once here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import torch

from ..config import TrainConfig
from ..train import GateStatistics, Trainer

__all__ = ["RESUME_MAY_CHANGE", "TaskConfig", "on_training_device", "task_run_config", "task_trainer"]

RESUME_MAY_CHANGE = ("progress", "max_minutes")
"""Fields of the train section a resume may change without changing what is computed: how a run shows itself, and
the time budget (a resumed fit starts a new one; a run cut by its budget is resumed with a larger one)."""


class TaskConfig(Protocol):
    """A task's config: a ``train:`` section and a plain ``to_dict()`` (every task config is a StrictConfig)."""

    @property
    def train(self) -> TrainConfig: ...

    def to_dict(self) -> dict[str, Any]: ...


def task_run_config(
    cfg: TaskConfig, *, resume_may_change: Iterable[str] = (), extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """What a resume of the task must match: ``cfg.to_dict()`` without the train section's presentation fields
    (:data:`RESUME_MAY_CHANGE`) and ``resume_may_change`` (more train fields a resume may change), then ``extra``
    (entries that replace or add to the config's, e.g. what the task trained on beyond its config)."""
    dropped = {*RESUME_MAY_CHANGE, *resume_may_change}
    run_config = cfg.to_dict()
    run_config["train"] = {k: v for k, v in run_config["train"].items() if k not in dropped}
    run_config.update(extra or {})
    return run_config


def task_trainer(
    model: torch.nn.Module,
    loss_fn: Callable[..., Any],
    cfg: TaskConfig,
    *,
    kind: str,
    run_dir: str | os.PathLike[str] | None = None,
    train: TrainConfig | None = None,
    eval_fn: Callable[..., dict[str, float]] | None = None,
    callbacks: Sequence[Any] = (),
    resume_may_change: Iterable[str] = (),
    run_config_extra: Mapping[str, Any] | None = None,
) -> Trainer:
    """The task's Trainer: ``train`` (default ``cfg.train``; a ``cfg.train.replace(...)`` for the fields the task
    computes), ``callbacks`` then :class:`GateStatistics`, and the run config of :func:`task_run_config` (the task's
    whole config, so that a resume with a different one is refused) saved under ``kind``."""
    return Trainer(
        model,
        loss_fn,
        cfg.train if train is None else train,
        run_dir=run_dir,
        eval_fn=eval_fn,
        callbacks=[*callbacks, GateStatistics()],
        run_config=task_run_config(cfg, resume_may_change=resume_may_change, extra=run_config_extra),
        kind=kind,
    )


@contextmanager
def on_training_device(model: torch.nn.Module, device: torch.device) -> Iterator[torch.nn.Module]:
    """``model`` on ``device`` (``resolve_device(cfg.train.device)``, resolved by the task before its data work) for
    the block, and back on the CPU after it, even when training fails: predicting, evaluating and saving run there."""
    model.to(device)
    try:
        yield model
    finally:
        model.cpu()
