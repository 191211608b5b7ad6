"""Problems of pure memory: the copy task (Arjovsky, Shah & Bengio 2016) and the noise-free long time lag
(Hochreiter & Schmidhuber 1997, Exp. 2a)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .common import Batch, Scores, Success, at_end, check_classes, check_int, check_length, one_hot_error, probabilities

COPY_SYMBOLS = 8  # a0..a7, the symbols to remember
COPY_BLANK = 8  # a8
COPY_DELIMITER = 9  # a9
COPY_RECALL = 10  # how many symbols are copied
COPY_SOLVED_FRACTION = 0.9  # copy solved at CE < 0.9 x baseline: "beat the baseline" with a 10% margin (our choice)


def copy(batch_size: int, length: int = 100, generator: torch.Generator | None = None) -> Batch:
    """The copy (memory) task of Arjovsky, Shah & Bengio (2016), §4.1.

    Input: 10 symbols drawn uniformly from a0..a7, then T-1 blanks (a8), the delimiter a9, then 10 blanks: T + 20 steps.
    Target: T + 10 blanks, then the 10 symbols. Cross-entropy applies at every step. A memoryless predictor (blank
    until the delimiter's run ends, then uniform over the 8 symbols) scores 10·ln 8 / (T + 20) nats per step.

    Args:
        batch_size: B.
        length: T >= 1, the lag: the sequence has T + 20 steps.
        generator: the source of every random number.

    Returns:
        A ``Batch``: ``x`` (B, T + 20, 10) one-hot over a0..a9, ``y`` (B, T + 20) int64 in 0..8 (the delimiter never
        appears in a target, so 9 output classes suffice), ``lengths`` None, ``mask`` (B, T + 20) all True.
    """
    check_int("batch_size", batch_size, 1)
    lag = check_length("copy", length, 1, "the lag T (the sequence has T + 20 steps)")
    steps = lag + 2 * COPY_RECALL
    symbols = torch.randint(0, COPY_SYMBOLS, (batch_size, COPY_RECALL), generator=generator)  # (B, 10)
    inputs = torch.full((batch_size, steps), COPY_BLANK)  # (B, T + 20)
    inputs[:, :COPY_RECALL] = symbols
    inputs[:, COPY_RECALL + lag - 1] = COPY_DELIMITER  # after T - 1 blanks
    targets = torch.full((batch_size, steps), COPY_BLANK)  # (B, T + 20)
    targets[:, lag + COPY_RECALL :] = symbols  # after T + 10 blanks
    x = F.one_hot(inputs, COPY_DELIMITER + 1).float()  # (B, T + 20, 10)
    mask = torch.ones(batch_size, steps, dtype=torch.bool)  # (B, T + 20)
    return {"x": x, "y": targets, "lengths": None, "mask": mask}


def copy_baseline(length: int) -> float:
    return COPY_RECALL * math.log(COPY_SYMBOLS) / (length + 2 * COPY_RECALL)


def copy_success(pred: Tensor, batch: Batch, scores: Scores) -> Success:
    batch_size, steps = batch["y"].shape
    if pred.shape[:2] != (batch_size, steps):
        raise ValueError(
            f"Expected copy predictions of shape (B, T + 20, 9) = ({batch_size}, {steps}, 9), got {tuple(pred.shape)}."
        )
    check_classes(pred, COPY_SYMBOLS + 1)
    log_p = pred.float().log_softmax(-1) if scores == "logits" else probabilities(pred, scores).clamp_min(1e-12).log()
    nll = -log_p.gather(-1, batch["y"].unsqueeze(-1)).squeeze(-1)  # (B, T + 20)
    cross_entropy = float(nll[batch["mask"]].mean())
    return Success(cross_entropy < COPY_SOLVED_FRACTION * copy_baseline(steps - 2 * COPY_RECALL), cross_entropy)


NOISE_FREE_LAG_ERROR = 0.25  # H&S 1997 Exp. 2a: success = max abs(error) < 0.25


def noise_free_lag(batch_size: int, length: int = 100, generator: torch.Generator | None = None) -> Batch:
    """The noise-free long-time-lag task, Hochreiter & Schmidhuber (1997), Exp. 2a.

    p + 1 symbols, one-hot: index 0 = x, 1 = y, i + 1 = a_i for i = 1 .. p-1. The two training sequences are
    (y, a1, …, a_{p-1}, y) and (x, a1, …, a_{p-1}, x), each drawn with probability 1/2. The input is the first p
    symbols; the target is the last one, which only a memory of the first symbol, p steps back, can predict. (The paper
    also asks for the easy next-symbol predictions in between; only the last step matters for the long lag.) Success:
    max abs(error) < 0.25 over every output unit and sequence; a network that cannot remember outputs 1/2 for x and y.

    Args:
        batch_size: B.
        length: p >= 1, the time lag; the alphabet has p + 1 symbols.
        generator: the source of every random number.

    Returns:
        A ``Batch``: ``x`` (B, p, p + 1), ``y`` (B,) int64 in {0 (x), 1 (y)} out of K = p + 1 classes, ``lengths`` None,
        ``mask`` (B, p) True at step p - 1.
    """
    check_int("batch_size", batch_size, 1)
    lag = check_length("noise_free_lag", length, 1, "the time lag p (the alphabet has p + 1 symbols)")
    first = torch.randint(0, 2, (batch_size,), generator=generator)  # (B,) 0 = x, 1 = y
    symbols = torch.arange(1, lag + 1).expand(batch_size, lag).clone()  # (B, p): a_t at step t has index t + 1
    symbols[:, 0] = first
    x = F.one_hot(symbols, lag + 1).float()  # (B, p, p + 1)
    mask = torch.zeros(batch_size, lag, dtype=torch.bool)  # (B, p)
    mask[:, -1] = True
    return {"x": x, "y": first, "lengths": None, "mask": mask}


def noise_free_lag_success(pred: Tensor, batch: Batch, scores: Scores) -> Success:
    check_classes(at_end(pred, batch), batch["x"].shape[-1])
    max_error = float(one_hot_error(pred, batch, scores).max())
    return Success(max_error < NOISE_FREE_LAG_ERROR, max_error)
