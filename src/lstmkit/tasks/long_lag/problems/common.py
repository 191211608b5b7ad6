"""What every long-lag problem shares: the batch layout, the verdict of a success criterion, argument checks and
the helpers the criteria read predictions with."""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

Batch = dict[str, Tensor | None]
TaskKind = Literal["regression", "classification per step", "classification at end"]
Scores = Literal["logits", "probabilities"]

IGNORE_INDEX = -100  # target on padded steps; torch.nn.functional.cross_entropy ignores it by default
PAPER_TEST_SIZE = 2560  # H&S 1997 test 2,560 sequences and report at most 1-2 wrong (Tab. 7, 9)


class Success(NamedTuple):
    """The verdict of a success criterion: ``solved, value = spec.success(pred, batch)``."""

    solved: bool
    value: float  # the metric named by TaskSpec.metric


def check_int(name: str, value: object, minimum: int, hint: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r} ({type(value).__name__}).{hint}")
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value}.{hint}")
    return value


def check_length(task: str, length: object, minimum: int, meaning: str) -> int:
    hint = f" For {task!r}, `length` is {meaning}; pass a value >= {minimum}."
    return check_int("length", length, minimum, hint)


def valid_steps(lengths: Tensor, steps: int) -> Tensor:
    """``(B,)`` lengths -> ``(B, steps)`` bool, True on each sequence's valid steps."""
    return torch.arange(steps) < lengths[:, None]  # (B, T)


def last_step_mask(lengths: Tensor, steps: int) -> Tensor:
    """``(B,)`` lengths -> ``(B, steps)`` bool, True only at each sequence's last valid step."""
    return torch.arange(steps) == (lengths[:, None] - 1)  # (B, T)


def at_end(pred: Tensor, batch: Batch) -> Tensor:
    """Accept ``(B, T, O)`` full outputs (gathered at the mask), ``(B, O)`` or ``(B,)`` -> ``(B, O)``."""
    batch_size = batch["x"].shape[0]
    if pred.dim() == 3:
        pred = pred[batch["mask"]]  # (B, O): exactly one masked step per row
    elif pred.dim() == 1:
        pred = pred.unsqueeze(-1)  # (B, 1)
    if pred.dim() != 2 or pred.shape[0] != batch_size:
        raise ValueError(
            f"Expected predictions of shape (B, O) or (B, T, O) with B = {batch_size}, got {tuple(pred.shape)}."
        )
    return pred


def probabilities(pred: Tensor, scores: Scores) -> Tensor:
    if scores == "logits":
        return pred.float().softmax(dim=-1)
    if scores == "probabilities":
        return pred.float()
    raise ValueError(f"`scores` must be 'logits' or 'probabilities', got {scores!r}.")


def check_classes(pred: Tensor, num_classes: int) -> None:
    if pred.shape[-1] != num_classes:
        raise ValueError(f"Expected {num_classes} class scores in the last dimension, got shape {tuple(pred.shape)}.")


def mostly_right(wrong: Tensor) -> bool:
    # H&S 1997 report at most 1 wrong in 2,560 test sequences (Tab. 7 and 9): allow that rate, and none below 2,560.
    return int(wrong.sum()) * PAPER_TEST_SIZE <= wrong.numel()


def one_hot_error(pred: Tensor, batch: Batch, scores: Scores) -> Tensor:
    """Largest abs(output - one-hot target) per sequence, ``(B,)``."""
    pred = at_end(pred, batch)  # (B, K)
    probs = probabilities(pred, scores)  # (B, K)
    target = F.one_hot(batch["y"], pred.shape[-1]).float()  # (B, K)
    return (probs - target).abs().amax(dim=-1)  # (B,)
