"""The validation after each epoch: the task's ``eval_fn``, or the mean of ``loss_fn`` over the validation data."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any

import torch

from lstmkit.train.batching import as_batch, iterate
from lstmkit.train.metrics import WeightedMeans, to_float
from lstmkit.train.step import EvalFn, LossFn, step_metrics
from lstmkit.train.tensors import detach_state

__all__ = ["add_validation", "evaluate", "mean_loss"]


def evaluate(
    model: torch.nn.Module,
    val_data: Any,
    *,
    loss_fn: LossFn,
    eval_fn: EvalFn | None,
    device: torch.device,
    carry_state: bool,
    autocast: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
) -> dict[str, float]:
    """Validation metrics of ``model``: ``eval_fn(model, val_data)``, or :func:`mean_loss`, in eval mode without
    gradients (and under ``autocast()``); the model's training mode is restored after.

    Raises:
        TypeError: ``eval_fn`` returned something other than a dict.
        ValueError: the default evaluation finds no batches in ``val_data``.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), autocast():
            if eval_fn is not None:
                result = eval_fn(model, val_data)
                if not isinstance(result, Mapping):
                    raise TypeError(f"eval_fn must return a dict of metric name -> value, got {type(result).__name__}.")
                return {str(k): to_float(v, f"eval_fn result[{k!r}]") for k, v in result.items()}
            return mean_loss(model, val_data, loss_fn=loss_fn, device=device, carry_state=carry_state)
    finally:
        model.train(was_training)


def add_validation(row: dict[str, Any], metrics: Mapping[str, float]) -> None:
    """Add the validation ``metrics`` to an epoch's ``row``; a name the row already has is an error."""
    for k, v in metrics.items():
        if k in row:
            raise ValueError(
                f"Validation metric {k!r} clashes with a training column of the same name. "
                "Rename it in eval_fn (validation metrics usually start with 'val_')."
            )
        row[k] = v


def mean_loss(
    model: torch.nn.Module, val_data: Any, *, loss_fn: LossFn, device: torch.device, carry_state: bool
) -> dict[str, float]:
    """Mean ``loss_fn`` over ``val_data`` as ``val_loss`` (and ``val_<name>`` for each ``StepOutput.metrics``
    entry): whole sequences; the state is carried from batch to batch only with ``carry_state`` (and while the batch
    size stays the same)."""
    means = WeightedMeans()
    state: Any = None
    prev_batch_size: int | None = None
    n_batches = 0
    for raw in iterate(val_data, "val_data"):
        batch = as_batch(raw, device)
        n_batches += 1
        if not carry_state or batch[0].shape[0] != prev_batch_size:
            state = None
        prev_batch_size = batch[0].shape[0]
        out = loss_fn(model, batch, state)
        if carry_state:
            state = detach_state(out.state)
        n = out.n_items if out.n_items is not None else batch[0].shape[0]
        means.add({"loss": to_float(out.loss, "StepOutput.loss"), **step_metrics(out)}, n)
    if n_batches == 0:
        raise ValueError(
            "val_data yielded no batches. Pass a non-empty iterable (re-iterable, or a callable returning a fresh "
            "iterator each epoch), or val_data=None to skip validation."
        )
    return {f"val_{k}": v for k, v in means.means().items()}
