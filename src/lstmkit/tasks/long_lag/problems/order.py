"""The temporal order problem: Hochreiter & Schmidhuber (1997), Exp. 6a and 6b."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .common import (
    Batch,
    Scores,
    Success,
    check_int,
    check_length,
    last_step_mask,
    mostly_right,
    one_hot_error,
    valid_steps,
)

TEMPORAL_ORDER_SYMBOLS = "abcdEBXY"  # a-d: distractors, E: start, B: end (classification trigger), X/Y: the signal
TEMPORAL_ORDER_ERROR = 0.3  # H&S 1997 Exp. 6: correct if every output unit's abs(error) < 0.3


def _temporal_order_windows(length: int, num_positions: int) -> list[tuple[int, int]]:
    """Inclusive position windows for the X/Y symbols; at T = 100 exactly the paper's."""
    if num_positions == 2:  # Exp. 6a: [10, 20], [50, 60]
        return [(length // 10, length // 5), (length // 2, 3 * length // 5)]
    # Exp. 6b: [10, 20], [33, 43], [66, 76]
    return [
        (length // 10, length // 5),
        (33 * length // 100, 43 * length // 100),
        (66 * length // 100, 76 * length // 100),
    ]


def temporal_order(
    batch_size: int, length: int = 100, generator: torch.Generator | None = None, *, num_positions: int = 2
) -> Batch:
    """The temporal order problem, Hochreiter & Schmidhuber (1997), Exp. 6.

    Symbols {a, b, c, d, E, B, X, Y}, one-hot in that order. A sequence has a random length in ``[T, T + T//10]``
    (100–110 in the paper), starts with E, ends with B (the trigger for classification) and is otherwise uniform over
    {a, b, c, d}, except at ``num_positions`` positions that hold X or Y. The class is the X/Y pattern, read as
    binary with X = 0, Y = 1, first position most significant: 6a (2 positions) Q=XX 0, R=XY 1, S=YX 2, U=YY 3; 6b
    (3 positions) XXX 0 … YYY 7. Positions count from 0 (E at 0) and are uniform in the windows [10, 20] and [50, 60]
    (6a) or [10, 20], [33, 43] and [66, 76] (6b) at T = 100; for other T the windows scale with T. A sequence is
    correct if every output unit is within 0.3 of the one-hot target.

    Args:
        batch_size: B.
        length: T >= 10, the minimal sequence length.
        generator: the source of every random number.
        num_positions: 2 (Exp. 6a, 4 classes) or 3 (Exp. 6b, 8 classes).

    Returns:
        A ``Batch``: ``x`` (B, T + T//10, 8), ``y`` (B,) int64 class in [0, 2**num_positions), ``lengths`` (B,),
        ``mask`` (B, T + T//10) True at each sequence's last step (the B).
    """
    check_int("batch_size", batch_size, 1)
    name = "temporal_order" if num_positions == 2 else "temporal_order_3"
    if num_positions not in (2, 3):
        raise ValueError(f"`num_positions` must be 2 (Exp. 6a) or 3 (Exp. 6b), got {num_positions!r}.")
    min_steps = check_length(name, length, 10, "the minimal sequence length T (lengths lie in [T, T+T/10])")
    max_steps = min_steps + min_steps // 10
    rows = torch.arange(batch_size)
    lengths = torch.randint(min_steps, max_steps + 1, (batch_size,), generator=generator)  # (B,)
    symbols = torch.randint(0, 4, (batch_size, max_steps), generator=generator)  # (B, T_max) over a-d
    symbols[:, 0] = TEMPORAL_ORDER_SYMBOLS.index("E")
    symbols[rows, lengths - 1] = TEMPORAL_ORDER_SYMBOLS.index("B")
    label = torch.zeros(batch_size, dtype=torch.long)  # (B,)
    for low, high in _temporal_order_windows(min_steps, num_positions):
        position = torch.randint(low, high + 1, (batch_size,), generator=generator)  # (B,)
        is_y = torch.randint(0, 2, (batch_size,), generator=generator)  # (B,) 0 = X, 1 = Y
        symbols[rows, position] = TEMPORAL_ORDER_SYMBOLS.index("X") + is_y
        label = 2 * label + is_y
    valid = valid_steps(lengths, max_steps)  # (B, T_max)
    x = F.one_hot(symbols, len(TEMPORAL_ORDER_SYMBOLS)).float() * valid[..., None]  # (B, T_max, 8)
    return {"x": x, "y": label, "lengths": lengths, "mask": last_step_mask(lengths, max_steps)}


def temporal_order_success(pred: Tensor, batch: Batch, scores: Scores) -> Success:
    wrong = one_hot_error(pred, batch, scores) >= TEMPORAL_ORDER_ERROR  # (B,)
    return Success(mostly_right(wrong), float(wrong.float().mean()))
