"""The adding problem: Hochreiter & Schmidhuber (1997) Exp. 4 and its modern form (Arjovsky, Shah & Bengio 2016)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from .common import Batch, Scores, Success, at_end, check_int, check_length, last_step_mask, mostly_right, valid_steps

# adding is solved at test MSE <= 0.1 x baseline: our CPU-fair threshold (published-results §1b)
ADDING_SOLVED_FRACTION = 0.1
ADDING_1997_ERROR = 0.04  # H&S 1997 Exp. 4: a sequence is "correct" if abs(error) < 0.04


def adding(
    batch_size: int,
    length: int = 100,
    generator: torch.Generator | None = None,
    *,
    form: Literal["arjovsky", "1997"] = "arjovsky",
) -> Batch:
    """The adding problem, in its modern form (default) or as in the 1997 paper.

    ``form="arjovsky"`` (Arjovsky, Shah & Bengio 2016, §4.2; after Hochreiter & Schmidhuber 1997): each step is a pair
    (value ~ U[0, 1], marker). Exactly one marker (1.0) falls in each half, at a position uniform in ``[0, T//2)`` and
    one uniform in ``[T//2, T)``; all other markers are 0. The target, read at the last step, is the sum of the two
    marked values. Always predicting 1 gives MSE Var(U1 + U2) = 1/6 ≈ 0.167.

    ``form="1997"`` (Hochreiter & Schmidhuber 1997, Exp. 4): values ~ U[-1, 1]; each sequence has a random length in
    ``[T, T + T//10]``. X1 is marked (1.0) at one of the first 10 pairs, X2 at one of the first ``T//2 - 1`` still
    unmarked pairs. The first and the last pair have marker -1.0 (unless the first is marked), the rest 0.
    "In the rare case where the first pair of the sequence gets marked, we set X1 to zero": here that pair's value is
    set to 0.0 and its marker stays 1.0, so the target is still 0.5 + (sum of the values marked 1.0) / 4. The target
    0.5 + (X1 + X2) / 4 lies in [0, 1]; a sequence is "correct" if abs(error) < 0.04.

    Args:
        batch_size: B, the number of sequences.
        length: T. Arjovsky: the sequence length, >= 2. 1997: the minimal length, >= 20 (so the first 10 pairs, where
            X1 is marked, lie in the first half).
        generator: the source of every random number; seed it for identical batches.
        form: ``"arjovsky"`` or ``"1997"``.

    Returns:
        A ``Batch``. Arjovsky: ``x`` (B, T, 2) = (value, marker), ``y`` (B, 1), ``lengths`` None, ``mask`` (B, T) True
        at step T-1. 1997: ``x`` (B, T + T//10, 2), ``y`` (B, 1), ``lengths`` (B,) in [T, T + T//10], ``mask`` True at
        each sequence's last step.

    Raises:
        ValueError: on an unknown ``form`` or a length below the minimum.
    """
    check_int("batch_size", batch_size, 1)
    if form == "arjovsky":
        return _adding_arjovsky(batch_size, length, generator)
    if form == "1997":
        return _adding_1997(batch_size, length, generator)
    raise ValueError(f"Unknown adding form {form!r}; expected one of 'arjovsky', '1997'.")


def _adding_arjovsky(batch_size: int, length: int, generator: torch.Generator | None) -> Batch:
    steps = check_length("adding", length, 2, "the sequence length T (one marker in each half)")
    half = steps // 2
    rows = torch.arange(batch_size)
    values = torch.rand(batch_size, steps, generator=generator)  # (B, T)
    first = torch.randint(0, half, (batch_size,), generator=generator)  # (B,) in [0, T//2)
    second = torch.randint(half, steps, (batch_size,), generator=generator)  # (B,) in [T//2, T)
    markers = torch.zeros(batch_size, steps)  # (B, T)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = torch.stack([values, markers], dim=-1)  # (B, T, 2)
    y = (values[rows, first] + values[rows, second]).unsqueeze(-1)  # (B, 1)
    mask = torch.zeros(batch_size, steps, dtype=torch.bool)  # (B, T)
    mask[:, -1] = True
    return {"x": x, "y": y, "lengths": None, "mask": mask}


def _adding_1997(batch_size: int, length: int, generator: torch.Generator | None) -> Batch:
    min_steps = check_length("adding_1997", length, 20, "the minimal sequence length T (lengths lie in [T, T+T/10])")
    max_steps = min_steps + min_steps // 10
    rows = torch.arange(batch_size)
    lengths = torch.randint(min_steps, max_steps + 1, (batch_size,), generator=generator)  # (B,) in [T, T + T//10]
    valid = valid_steps(lengths, max_steps)  # (B, T_max)
    values = (torch.rand(batch_size, max_steps, generator=generator) * 2.0 - 1.0) * valid  # (B, T_max), U[-1, 1]
    first = torch.randint(0, 10, (batch_size,), generator=generator)  # (B,) X1 among the first 10 pairs
    slot = torch.randint(0, min_steps // 2 - 1, (batch_size,), generator=generator)  # (B,) among T//2 - 1 unmarked
    second = slot + (slot >= first).long()  # (B,) skip X1's pair: the slot-th still unmarked pair
    markers = torch.zeros(batch_size, max_steps)  # (B, T_max)
    markers[:, 0] = -1.0  # first pair
    markers[rows, lengths - 1] = -1.0  # last pair
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    values[:, 0] = torch.where(markers[:, 0] == 1.0, 0.0, values[:, 0])  # a marked first pair counts as zero
    x = torch.stack([values, markers], dim=-1)  # (B, T_max, 2)
    y = (0.5 + (values[rows, first] + values[rows, second]) / 4.0).unsqueeze(-1)  # (B, 1)
    return {"x": x, "y": y, "lengths": lengths, "mask": last_step_mask(lengths, max_steps)}


def adding_1997_baseline(length: int) -> float:
    # Constant output 0.5 is wrong when abs(X1 + X2) / 4 >= 0.04, i.e. abs(S) >= a with a = 0.16.
    # S = X1 + X2 is triangular on [-2, 2]: P(|S| < a) = a - a^2/4. When the first pair is marked (probability q), one
    # term is zero and S ~ U[-1, 1]: P(|S| < a) = a. q = P(X1 at pair 0) + P(X1 elsewhere) * P(X2 at pair 0).
    a = 4.0 * ADDING_1997_ERROR
    q = 1 / 10 + (9 / 10) / (length // 2 - 1)
    return 1.0 - ((1.0 - q) * (a - a * a / 4.0) + q * a)


def adding_success(pred: Tensor, batch: Batch, scores: Scores) -> Success:
    pred = at_end(pred, batch).float()  # (B, 1)
    mse = float(((pred - batch["y"]) ** 2).mean())
    return Success(mse <= ADDING_SOLVED_FRACTION * (1.0 / 6.0), mse)


def adding_1997_success(pred: Tensor, batch: Batch, scores: Scores) -> Success:
    pred = at_end(pred, batch).float()  # (B, 1)
    wrong = ((pred - batch["y"]).abs() >= ADDING_1997_ERROR).reshape(-1)  # (B,)
    return Success(mostly_right(wrong), float(wrong.float().mean()))
