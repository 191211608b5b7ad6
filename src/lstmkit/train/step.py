"""What the loop calls and what it gets back: :class:`StepOutput`, the ``loss_fn`` / ``eval_fn`` signatures, and
reading a step's numbers."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import torch

from lstmkit.train.metrics import to_float

__all__ = ["Batch", "EvalFn", "LossFn", "StepOutput", "check_step_output", "step_metrics"]

Batch = tuple[torch.Tensor, ...]


@dataclasses.dataclass
class StepOutput:
    """What ``loss_fn`` returns for one batch (or one truncated-BPTT chunk).

    Attributes:
        loss: scalar tensor to minimise (a 0-d or one-element tensor with a graph back to the parameters).
        state: the recurrent state after this chunk, e.g. ``(h_n, c_n)``; the loop carries it (detached) to the next
            chunk under truncated BPTT. Any nesting of tuples, lists and dicts of tensors; None when unused.
        metrics: extra values to average over the epoch, logged as ``train_<name>`` (and ``val_<name>`` by the
            default evaluation). Tensors are detached and read with ``.item()``.
        n_items: the weight of this chunk in epoch averages and throughput (sequences, or tokens); None means
            ``batch[0].shape[0]``.
    """

    loss: torch.Tensor
    state: Any = None
    metrics: dict[str, torch.Tensor | float] = dataclasses.field(default_factory=dict)
    n_items: int | None = None


LossFn = Callable[[torch.nn.Module, Batch, Any], StepOutput]
"""``loss_fn(model, batch, state) -> StepOutput``; ``batch`` is a tuple of batch-first tensors."""

EvalFn = Callable[[torch.nn.Module, Any], Mapping[str, float | torch.Tensor]]
"""``eval_fn(model, val_data) -> {"val_loss": ..., ...}``; called in eval mode under ``torch.no_grad()``."""


def check_step_output(out: Any) -> StepOutput:
    """``out`` if it is a :class:`StepOutput` with a scalar tensor loss; else a TypeError / ValueError saying what
    ``loss_fn`` must return."""
    if not isinstance(out, StepOutput):
        raise TypeError(
            f"loss_fn must return a StepOutput, got {type(out).__name__}. "
            "Return StepOutput(loss=..., state=..., metrics={...}, n_items=...)."
        )
    if not isinstance(out.loss, torch.Tensor) or out.loss.numel() != 1:
        got = f"shape {tuple(out.loss.shape)}" if isinstance(out.loss, torch.Tensor) else type(out.loss).__name__
        raise ValueError(f"StepOutput.loss must be a scalar tensor, got {got}. Reduce it (e.g. .mean()) first.")
    return out


def step_metrics(out: StepOutput) -> dict[str, float]:
    """``out.metrics`` read as floats."""
    return {str(k): to_float(v, f"StepOutput.metrics[{k!r}]") for k, v in out.metrics.items()}
