"""Synthetic long-time-lag tasks: Hochreiter & Schmidhuber (1997) §5 and Arjovsky, Shah & Bengio (2016).

Every generator is plain torch and draws every random number from the ``torch.Generator`` it is given, so a seeded
generator gives identical batches. Each returns a batch dict (``Batch``):

- ``x``: ``(B, T, I)`` float32 inputs, all zero past a sequence's length.
- ``y``: the targets. ``(B, 1)`` float32 for regression at the end (adding), ``(B,)`` int64 class for classification
  at the end (temporal order, noise-free lag), ``(B, T)`` int64 class per step (copy, embedded Reber; padded steps hold
  ``IGNORE_INDEX``).
- ``lengths``: ``(B,)`` int64 valid steps per sequence for variable-length tasks, else ``None``.
- ``mask``: ``(B, T)`` bool, True where the loss applies. At-end tasks have exactly one True per row (the last valid
  step), so ``output[batch["mask"]]`` turns a ``(B, T, O)`` output into ``(B, O)`` rows that line up with ``y``.
- ``legal`` (embedded Reber only): ``(B, T, 7)`` bool, the symbols that may legally come next at each step.

Dimension letters: ``B`` batch, ``T`` time steps of ``x``, ``I`` input size, ``O`` output size, ``K`` classes.

``TASKS`` maps a name to a ``TaskSpec`` (sizes, output kind, baseline and its formula, success criterion);
``make_batch(name, batch_size, length, generator)`` draws a batch of any of them. The sources and the CPU-fair
thresholds are those of ``/work/shared/reference/published-results.md`` §1 and §1b.

Example:
    >>> g = torch.Generator().manual_seed(0)
    >>> batch = make_batch("adding", batch_size=4, length=50, generator=g)
    >>> batch["x"].shape, batch["y"].shape, batch["mask"].shape
    (torch.Size([4, 50, 2]), torch.Size([4, 1]), torch.Size([4, 50]))
    >>> solved, mse = TASKS["adding"].success(batch["y"], batch)
    >>> solved, mse
    (True, 0.0)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "ADDING_1997_ERROR",
    "ADDING_SOLVED_FRACTION",
    "COPY_BLANK",
    "COPY_DELIMITER",
    "COPY_SOLVED_FRACTION",
    "IGNORE_INDEX",
    "PAPER_TEST_SIZE",
    "REBER_GRAMMAR",
    "REBER_SYMBOLS",
    "TASKS",
    "TEMPORAL_ORDER_SYMBOLS",
    "Batch",
    "Success",
    "TaskSpec",
    "adding",
    "copy",
    "embedded_reber",
    "embedded_reber_string",
    "get_task",
    "is_reber",
    "make_batch",
    "noise_free_lag",
    "reber_legal_next",
    "reber_string",
    "temporal_order",
]

Batch = dict[str, Tensor | None]
TaskKind = Literal["regression", "classification per step", "classification at end"]
Scores = Literal["logits", "probabilities"]

IGNORE_INDEX = -100  # target on padded steps; torch.nn.functional.cross_entropy ignores it by default
PAPER_TEST_SIZE = 2560  # H&S 1997 test 2,560 sequences and report at most 1-2 wrong (Tab. 7, 9)
ADDING_SOLVED_FRACTION = (
    0.1  # adding solved at test MSE <= 0.1 x baseline: our CPU-fair threshold (published-results §1b)
)
COPY_SOLVED_FRACTION = 0.9  # copy solved at CE < 0.9 x baseline: "beat the baseline" with a 10% margin (our choice)
ADDING_1997_ERROR = 0.04  # H&S 1997 Exp. 4: a sequence is "correct" if abs(error) < 0.04
TEMPORAL_ORDER_ERROR = 0.3  # H&S 1997 Exp. 6: correct if every output unit's abs(error) < 0.3
NOISE_FREE_LAG_ERROR = 0.25  # H&S 1997 Exp. 2a: success = max abs(error) < 0.25


class Success(NamedTuple):
    """The verdict of a success criterion: ``solved, value = spec.success(pred, batch)``."""

    solved: bool
    value: float  # the metric named by TaskSpec.metric


def _check_int(name: str, value: object, minimum: int, hint: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r} ({type(value).__name__}).{hint}")
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value}.{hint}")
    return value


def _check_length(task: str, length: object, minimum: int, meaning: str) -> int:
    hint = f" For {task!r}, `length` is {meaning}; pass a value >= {minimum}."
    return _check_int("length", length, minimum, hint)


def _valid_steps(lengths: Tensor, steps: int) -> Tensor:
    """``(B,)`` lengths -> ``(B, steps)`` bool, True on each sequence's valid steps."""
    return torch.arange(steps) < lengths[:, None]  # (B, T)


def _last_step_mask(lengths: Tensor, steps: int) -> Tensor:
    """``(B,)`` lengths -> ``(B, steps)`` bool, True only at each sequence's last valid step."""
    return torch.arange(steps) == (lengths[:, None] - 1)  # (B, T)


# ---------------------------------------------------------------------------------------------------------------------
# Adding
# ---------------------------------------------------------------------------------------------------------------------


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
    _check_int("batch_size", batch_size, 1)
    if form == "arjovsky":
        return _adding_arjovsky(batch_size, length, generator)
    if form == "1997":
        return _adding_1997(batch_size, length, generator)
    raise ValueError(f"Unknown adding form {form!r}; expected one of 'arjovsky', '1997'.")


def _adding_arjovsky(batch_size: int, length: int, generator: torch.Generator | None) -> Batch:
    steps = _check_length("adding", length, 2, "the sequence length T (one marker in each half)")
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
    min_steps = _check_length("adding_1997", length, 20, "the minimal sequence length T (lengths lie in [T, T+T/10])")
    max_steps = min_steps + min_steps // 10
    rows = torch.arange(batch_size)
    lengths = torch.randint(min_steps, max_steps + 1, (batch_size,), generator=generator)  # (B,) in [T, T + T//10]
    valid = _valid_steps(lengths, max_steps)  # (B, T_max)
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
    return {"x": x, "y": y, "lengths": lengths, "mask": _last_step_mask(lengths, max_steps)}


def _adding_1997_baseline(length: int) -> float:
    # Constant output 0.5 is wrong when abs(X1 + X2) / 4 >= 0.04, i.e. abs(S) >= a with a = 0.16.
    # S = X1 + X2 is triangular on [-2, 2]: P(|S| < a) = a - a^2/4. When the first pair is marked (probability q), one
    # term is zero and S ~ U[-1, 1]: P(|S| < a) = a. q = P(X1 at pair 0) + P(X1 elsewhere) * P(X2 at pair 0).
    a = 4.0 * ADDING_1997_ERROR
    q = 1 / 10 + (9 / 10) / (length // 2 - 1)
    return 1.0 - ((1.0 - q) * (a - a * a / 4.0) + q * a)


# ---------------------------------------------------------------------------------------------------------------------
# Copy
# ---------------------------------------------------------------------------------------------------------------------

COPY_SYMBOLS = 8  # a0..a7, the symbols to remember
COPY_BLANK = 8  # a8
COPY_DELIMITER = 9  # a9
COPY_RECALL = 10  # how many symbols are copied


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
    _check_int("batch_size", batch_size, 1)
    lag = _check_length("copy", length, 1, "the lag T (the sequence has T + 20 steps)")
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


def _copy_baseline(length: int) -> float:
    return COPY_RECALL * math.log(COPY_SYMBOLS) / (length + 2 * COPY_RECALL)


# ---------------------------------------------------------------------------------------------------------------------
# Temporal order
# ---------------------------------------------------------------------------------------------------------------------

TEMPORAL_ORDER_SYMBOLS = "abcdEBXY"  # a-d: distractors, E: start, B: end (classification trigger), X/Y: the signal


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
    _check_int("batch_size", batch_size, 1)
    name = "temporal_order" if num_positions == 2 else "temporal_order_3"
    if num_positions not in (2, 3):
        raise ValueError(f"`num_positions` must be 2 (Exp. 6a) or 3 (Exp. 6b), got {num_positions!r}.")
    min_steps = _check_length(name, length, 10, "the minimal sequence length T (lengths lie in [T, T+T/10])")
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
    valid = _valid_steps(lengths, max_steps)  # (B, T_max)
    x = F.one_hot(symbols, len(TEMPORAL_ORDER_SYMBOLS)).float() * valid[..., None]  # (B, T_max, 8)
    return {"x": x, "y": label, "lengths": lengths, "mask": _last_step_mask(lengths, max_steps)}


# ---------------------------------------------------------------------------------------------------------------------
# Embedded Reber grammar
# ---------------------------------------------------------------------------------------------------------------------

REBER_SYMBOLS = "BTSXPVE"  # one-hot order of the 7 symbols
# The Reber grammar (H&S 1997 Exp. 1, after Reber 1967 and Cleeremans et al. 1989) as a finite
# automaton: state -> ((symbol emitted, next state), ...), each choice equally likely. None ends the string.
REBER_GRAMMAR: dict[int, tuple[tuple[str, int | None], ...]] = {
    0: (("B", 1),),
    1: (("T", 2), ("P", 3)),
    2: (("S", 2), ("X", 4)),
    3: (("T", 3), ("V", 5)),
    4: (("X", 3), ("S", 6)),
    5: (("P", 4), ("V", 6)),
    6: (("E", None),),
}


def reber_string(generator: torch.Generator | None = None) -> str:
    """One string of the (plain) Reber grammar, e.g. ``"BTSSXXTVVE"``; every branch is a fair coin."""
    state: int | None = 0
    out = []
    while state is not None:
        options = REBER_GRAMMAR[state]
        choice = 0 if len(options) == 1 else int(torch.randint(0, len(options), (1,), generator=generator))
        symbol, state = options[choice]
        out.append(symbol)
    return "".join(out)


def embedded_reber_string(generator: torch.Generator | None = None) -> str:
    """One embedded Reber string (H&S 1997 Exp. 1): ``B``, T or P, a Reber string, the same T or P, ``E``.

    Example: ``"BTBTSSXXTVVETE"``. The second and second-to-last symbols match, across the whole inner string: that
    is the long time lag.
    """
    branch = "TP"[int(torch.randint(0, 2, (1,), generator=generator))]
    return "B" + branch + reber_string(generator) + branch + "E"


def _plain_legal_next(string: str) -> list[frozenset[str]]:
    state: int | None = 0
    legal: list[frozenset[str]] = []
    for position, symbol in enumerate(string):
        if state is None:
            raise ValueError(f"{string!r} is not a Reber string: it goes on after the final E (position {position}).")
        moves = dict(REBER_GRAMMAR[state])
        if symbol not in moves:
            raise ValueError(
                f"{string!r} is not a Reber string: {symbol!r} at position {position} is illegal; "
                f"expected one of {sorted(moves)}."
            )
        state = moves[symbol]
        if state is not None:
            legal.append(frozenset(s for s, _ in REBER_GRAMMAR[state]))
    if state is not None:
        raise ValueError(f"{string!r} is not a Reber string: it stops before the final E.")
    return legal


def reber_legal_next(string: str, embedded: bool = True) -> list[frozenset[str]]:
    """The symbols that may legally follow each prefix of a (embedded) Reber string.

    Entry t is the set of symbols that may come after ``string[: t + 1]``; there are ``len(string) - 1`` entries, one
    per prediction step. A network solves the task (H&S 1997 Exp. 1) when its most likely next symbol is in the set
    at every step: the grammar branches at random, so only the set, not the symbol, is predictable.

    Example:
        >>> [''.join(sorted(s)) for s in reber_legal_next("BTBPVVETE")]
        ['PT', 'B', 'PT', 'TV', 'PV', 'E', 'T', 'E']

    Raises:
        ValueError: if ``string`` is not in the grammar, naming the first illegal symbol.
    """
    if not embedded:
        return _plain_legal_next(string)
    if len(string) < 4 or string[0] != "B" or string[1] not in "TP" or string[-1] != "E":
        raise ValueError(
            f"{string!r} is not an embedded Reber string: expected 'B', 'T' or 'P', a Reber string, the same 'T' or "
            "'P', then 'E'."
        )
    if string[-2] != string[1]:
        raise ValueError(
            f"{string!r} is not an embedded Reber string: its second-to-last symbol {string[-2]!r} must repeat its "
            f"second symbol {string[1]!r}."
        )
    inner = _plain_legal_next(string[2:-2])
    return [frozenset("TP"), frozenset("B"), *inner, frozenset(string[1]), frozenset("E")]


def is_reber(string: str, embedded: bool = True) -> bool:
    """True if ``string`` belongs to the (embedded) Reber grammar."""
    try:
        reber_legal_next(string, embedded=embedded)
    except ValueError:
        return False
    return True


def embedded_reber(batch_size: int, length: int = 50, generator: torch.Generator | None = None) -> Batch:
    """Next-symbol prediction on the embedded Reber grammar, Hochreiter & Schmidhuber (1997), Exp. 1.

    Each string (see ``embedded_reber_string``) gives inputs ``string[:-1]`` and targets ``string[1:]``, 7 symbols
    one-hot in ``REBER_SYMBOLS`` order. Success: at every step of every string the network's most likely next symbol
    is a legal one (``batch["legal"]``). An otherwise perfect predictor without long-term memory must guess the
    second-to-last symbol (T or P) and gets half the strings wrong.

    Args:
        batch_size: B.
        length: T >= 8, the padded number of steps; strings with more than T + 1 symbols are redrawn (the shortest has
            9 symbols, the mean 12; at T = 50 fewer than 1 in 100,000 is redrawn, so the distribution is unchanged).
        generator: the source of every random number.

    Returns:
        A ``Batch``: ``x`` (B, T, 7), ``y`` (B, T) int64 next-symbol index (``IGNORE_INDEX`` on padding), ``lengths``
        (B,) = len(string) - 1, ``mask`` (B, T) True on valid steps, ``legal`` (B, T, 7) bool legal next symbols
        (all False on padding).
    """
    _check_int("batch_size", batch_size, 1)
    steps = _check_length("embedded_reber", length, 8, "the padded number of steps (strings longer are redrawn)")
    num_symbols = len(REBER_SYMBOLS)
    index = {s: i for i, s in enumerate(REBER_SYMBOLS)}
    inputs = torch.zeros(batch_size, steps, dtype=torch.long)  # (B, T)
    targets = torch.full((batch_size, steps), IGNORE_INDEX, dtype=torch.long)  # (B, T)
    legal = torch.zeros(batch_size, steps, num_symbols, dtype=torch.bool)  # (B, T, 7)
    lengths = torch.zeros(batch_size, dtype=torch.long)  # (B,)
    for row in range(batch_size):
        string = embedded_reber_string(generator)
        while len(string) - 1 > steps:
            string = embedded_reber_string(generator)
        n = len(string) - 1
        lengths[row] = n
        inputs[row, :n] = torch.tensor([index[s] for s in string[:-1]])
        targets[row, :n] = torch.tensor([index[s] for s in string[1:]])
        for t, allowed in enumerate(reber_legal_next(string)):
            legal[row, t, [index[s] for s in allowed]] = True
    valid = _valid_steps(lengths, steps)  # (B, T)
    x = F.one_hot(inputs, num_symbols).float() * valid[..., None]  # (B, T, 7)
    return {"x": x, "y": targets, "lengths": lengths, "mask": valid, "legal": legal}


# ---------------------------------------------------------------------------------------------------------------------
# Noise-free long time lag
# ---------------------------------------------------------------------------------------------------------------------


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
    _check_int("batch_size", batch_size, 1)
    lag = _check_length("noise_free_lag", length, 1, "the time lag p (the alphabet has p + 1 symbols)")
    first = torch.randint(0, 2, (batch_size,), generator=generator)  # (B,) 0 = x, 1 = y
    symbols = torch.arange(1, lag + 1).expand(batch_size, lag).clone()  # (B, p): a_t at step t has index t + 1
    symbols[:, 0] = first
    x = F.one_hot(symbols, lag + 1).float()  # (B, p, p + 1)
    mask = torch.zeros(batch_size, lag, dtype=torch.bool)  # (B, p)
    mask[:, -1] = True
    return {"x": x, "y": first, "lengths": None, "mask": mask}


# ---------------------------------------------------------------------------------------------------------------------
# Success criteria: pred in, Success(solved, metric value) out
# ---------------------------------------------------------------------------------------------------------------------


def _at_end(pred: Tensor, batch: Batch) -> Tensor:
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


def _probabilities(pred: Tensor, scores: Scores) -> Tensor:
    if scores == "logits":
        return pred.float().softmax(dim=-1)
    if scores == "probabilities":
        return pred.float()
    raise ValueError(f"`scores` must be 'logits' or 'probabilities', got {scores!r}.")


def _check_classes(pred: Tensor, num_classes: int) -> None:
    if pred.shape[-1] != num_classes:
        raise ValueError(f"Expected {num_classes} class scores in the last dimension, got shape {tuple(pred.shape)}.")


def _mostly_right(wrong: Tensor) -> bool:
    # H&S 1997 report at most 1 wrong in 2,560 test sequences (Tab. 7 and 9): allow that rate, and none below 2,560.
    return int(wrong.sum()) * PAPER_TEST_SIZE <= wrong.numel()


def _adding_success(pred: Tensor, batch: Batch, scores: Scores) -> Success:
    pred = _at_end(pred, batch).float()  # (B, 1)
    mse = float(((pred - batch["y"]) ** 2).mean())
    return Success(mse <= ADDING_SOLVED_FRACTION * (1.0 / 6.0), mse)


def _adding_1997_success(pred: Tensor, batch: Batch, scores: Scores) -> Success:
    pred = _at_end(pred, batch).float()  # (B, 1)
    wrong = ((pred - batch["y"]).abs() >= ADDING_1997_ERROR).reshape(-1)  # (B,)
    return Success(_mostly_right(wrong), float(wrong.float().mean()))


def _copy_success(pred: Tensor, batch: Batch, scores: Scores) -> Success:
    batch_size, steps = batch["y"].shape
    if pred.shape[:2] != (batch_size, steps):
        raise ValueError(
            f"Expected copy predictions of shape (B, T + 20, 9) = ({batch_size}, {steps}, 9), got {tuple(pred.shape)}."
        )
    _check_classes(pred, COPY_SYMBOLS + 1)
    log_p = pred.float().log_softmax(-1) if scores == "logits" else _probabilities(pred, scores).clamp_min(1e-12).log()
    nll = -log_p.gather(-1, batch["y"].unsqueeze(-1)).squeeze(-1)  # (B, T + 20)
    cross_entropy = float(nll[batch["mask"]].mean())
    return Success(cross_entropy < COPY_SOLVED_FRACTION * _copy_baseline(steps - 2 * COPY_RECALL), cross_entropy)


def _one_hot_error(pred: Tensor, batch: Batch, scores: Scores) -> Tensor:
    """Largest abs(output - one-hot target) per sequence, ``(B,)``."""
    pred = _at_end(pred, batch)  # (B, K)
    probs = _probabilities(pred, scores)  # (B, K)
    target = F.one_hot(batch["y"], pred.shape[-1]).float()  # (B, K)
    return (probs - target).abs().amax(dim=-1)  # (B,)


def _temporal_order_success(pred: Tensor, batch: Batch, scores: Scores) -> Success:
    wrong = _one_hot_error(pred, batch, scores) >= TEMPORAL_ORDER_ERROR  # (B,)
    return Success(_mostly_right(wrong), float(wrong.float().mean()))


def _noise_free_lag_success(pred: Tensor, batch: Batch, scores: Scores) -> Success:
    _check_classes(_at_end(pred, batch), batch["x"].shape[-1])
    max_error = float(_one_hot_error(pred, batch, scores).max())
    return Success(max_error < NOISE_FREE_LAG_ERROR, max_error)


def _reber_success(pred: Tensor, batch: Batch, scores: Scores) -> Success:
    legal, mask = batch["legal"], batch["mask"]  # (B, T, 7), (B, T)
    if pred.shape != legal.shape:
        raise ValueError(
            f"Expected Reber predictions of shape (B, T, 7) = {tuple(legal.shape)}, got {tuple(pred.shape)}."
        )
    choice = pred.argmax(dim=-1, keepdim=True)  # (B, T, 1)
    ok = legal.gather(-1, choice).squeeze(-1) | ~mask  # (B, T)
    wrong = ~ok.all(dim=1)  # (B,) a string is wrong if any step predicts an illegal symbol
    fraction = float(wrong.float().mean())
    return Success(fraction == 0.0, fraction)


# ---------------------------------------------------------------------------------------------------------------------
# Task specs and the registry
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TaskSpec:
    """A long-time-lag task: sizes, output kind, baseline and success criterion.

    Attributes:
        name: the registry key.
        kind: ``"regression"`` (one value at the end), ``"classification at end"`` or ``"classification per step"``.
        input_size: I, features per step (at ``default_length``; see ``sizes`` for noise_free_lag).
        output_size: O, regression outputs or K classes (at ``default_length``).
        default_length: the paper's length T (or lag p).
        min_length: the smallest valid ``length``.
        metric: what ``success`` returns as its value, e.g. ``"mse"``.
        baseline_formula: the baseline of ``metric`` and how it arises.
        criterion: when the task counts as solved.
        citation: where the setup comes from.
    """

    name: str
    kind: TaskKind
    input_size: int
    output_size: int
    default_length: int
    min_length: int
    metric: str
    baseline_formula: str
    criterion: str
    citation: str
    _generate: Callable[[int, int, torch.Generator | None], Batch] = field(repr=False)
    _baseline: Callable[[int], float] = field(repr=False)
    _success: Callable[[Tensor, Batch, Scores], Success] = field(repr=False)
    _sizes: Callable[[int], tuple[int, int]] | None = field(default=None, repr=False)

    def sizes(self, length: int | None = None) -> tuple[int, int]:
        """``(input_size, output_size)`` at ``length`` (they depend on it only for noise_free_lag)."""
        if self._sizes is None:
            return self.input_size, self.output_size
        return self._sizes(self.default_length if length is None else length)

    def baseline(self, length: int | None = None) -> float:
        """The baseline value of ``metric`` at ``length`` (default ``default_length``); see ``baseline_formula``."""
        return self._baseline(self.default_length if length is None else length)

    def success(self, pred: Tensor, batch: Batch, scores: Scores = "logits") -> Success:
        """Judge predictions on a batch: ``solved, value = spec.success(pred, batch)``.

        Args:
            pred: the model's outputs. At-end tasks: ``(B, T, O)`` (read at ``batch["mask"]``) or ``(B, O)``; per-step
                tasks: ``(B, T, O)``.
            batch: the ``Batch`` the predictions are for.
            scores: for classification, whether ``pred`` holds ``"logits"`` (softmax is applied) or
                ``"probabilities"`` (sigmoid or softmax outputs, compared as they are, as in the 1997 paper).

        Returns:
            ``Success(solved, value)``: ``value`` is the ``metric``; ``solved`` applies ``criterion``.
        """
        with torch.no_grad():
            on_cpu = {key: value.detach().cpu() if isinstance(value, Tensor) else value for key, value in batch.items()}
            return self._success(pred.detach().cpu(), on_cpu, scores)

    def make_batch(self, batch_size: int, length: int | None = None, generator: torch.Generator | None = None) -> Batch:
        """Draw a batch of this task; see ``make_batch``."""
        return self._generate(batch_size, self.default_length if length is None else length, generator)


def _make_tasks() -> dict[str, TaskSpec]:
    specs = [
        TaskSpec(
            name="adding",
            kind="regression",
            input_size=2,
            output_size=1,
            default_length=100,
            min_length=2,
            metric="mse",
            baseline_formula="1/6 ≈ 0.167: always predict 1, MSE = Var(U1 + U2) = 2/12",
            criterion=f"test MSE <= {ADDING_SOLVED_FRACTION} x 1/6 (our CPU-fair threshold)",
            citation="Arjovsky, Shah & Bengio 2016, §4.2 (after Hochreiter & Schmidhuber 1997, Exp. 4)",
            _generate=lambda b, t, g: adding(b, t, g, form="arjovsky"),
            _baseline=lambda t: 1.0 / 6.0,
            _success=_adding_success,
        ),
        TaskSpec(
            name="adding_1997",
            kind="regression",
            input_size=2,
            output_size=1,
            default_length=100,
            min_length=20,
            metric="fraction wrong (abs error >= 0.04)",
            baseline_formula="constant 0.5: 1 - ((1-q)(a - a²/4) + q·a), a = 0.16, q = 1/10 + (9/10)/(T//2 - 1) "
            "(≈ 0.846 at T = 100); its MSE is (1-q)/24 + q/48 ≈ 0.039 (1/24 ≈ 0.042 without the zeroed first pair)",
            criterion="at most 1 in 2,560 sequences with abs(error) >= 0.04 (H&S 1997 Tab. 7: 1 of 2,560 wrong)",
            citation="Hochreiter & Schmidhuber 1997, Exp. 4",
            _generate=lambda b, t, g: adding(b, t, g, form="1997"),
            _baseline=_adding_1997_baseline,
            _success=_adding_1997_success,
        ),
        TaskSpec(
            name="copy",
            kind="classification per step",
            input_size=COPY_DELIMITER + 1,
            output_size=COPY_SYMBOLS + 1,
            default_length=100,
            min_length=1,
            metric="cross-entropy (nats per step)",
            baseline_formula="10·ln 8 / (T + 20): memoryless, blanks then uniform over the 8 symbols",
            criterion=f"cross-entropy < {COPY_SOLVED_FRACTION} x baseline (beat the memoryless baseline)",
            citation="Arjovsky, Shah & Bengio 2016, §4.1",
            _generate=copy,
            _baseline=_copy_baseline,
            _success=_copy_success,
        ),
        TaskSpec(
            name="temporal_order",
            kind="classification at end",
            input_size=len(TEMPORAL_ORDER_SYMBOLS),
            output_size=4,
            default_length=100,
            min_length=10,
            metric="fraction wrong (some output off by >= 0.3)",
            baseline_formula="1 - 1/K = 0.75: a constant output is within 0.3 of one class's target only",
            criterion="at most 1 in 2,560 sequences wrong (H&S 1997 Tab. 9: 1 of 2,560)",
            citation="Hochreiter & Schmidhuber 1997, Exp. 6a",
            _generate=lambda b, t, g: temporal_order(b, t, g, num_positions=2),
            _baseline=lambda t: 1.0 - 1.0 / 4.0,
            _success=_temporal_order_success,
        ),
        TaskSpec(
            name="temporal_order_3",
            kind="classification at end",
            input_size=len(TEMPORAL_ORDER_SYMBOLS),
            output_size=8,
            default_length=100,
            min_length=10,
            metric="fraction wrong (some output off by >= 0.3)",
            baseline_formula="1 - 1/K = 0.875: a constant output is within 0.3 of one class's target only",
            criterion="at most 1 in 2,560 sequences wrong (H&S 1997 Tab. 9: 2 of 2,560)",
            citation="Hochreiter & Schmidhuber 1997, Exp. 6b",
            _generate=lambda b, t, g: temporal_order(b, t, g, num_positions=3),
            _baseline=lambda t: 1.0 - 1.0 / 8.0,
            _success=_temporal_order_success,
        ),
        TaskSpec(
            name="embedded_reber",
            kind="classification per step",
            input_size=len(REBER_SYMBOLS),
            output_size=len(REBER_SYMBOLS),
            default_length=50,
            min_length=8,
            metric="fraction of strings with an illegal prediction",
            baseline_formula="1/2: without long-term memory the second-to-last symbol (T or P) is a coin toss",
            criterion="0: the most likely next symbol is legal at every step of every string",
            citation="Hochreiter & Schmidhuber 1997, Exp. 1",
            _generate=embedded_reber,
            _baseline=lambda t: 0.5,
            _success=_reber_success,
        ),
        TaskSpec(
            name="noise_free_lag",
            kind="classification at end",
            input_size=101,
            output_size=101,
            default_length=100,
            min_length=1,
            metric="max abs error",
            baseline_formula="1/2: without memory of the first symbol, output 1/2 for x and for y",
            criterion=f"max abs(error) < {NOISE_FREE_LAG_ERROR} over every output and sequence",
            citation="Hochreiter & Schmidhuber 1997, Exp. 2a",
            _generate=noise_free_lag,
            _baseline=lambda t: 0.5,
            _success=_noise_free_lag_success,
            _sizes=lambda t: (t + 1, t + 1),
        ),
    ]
    return {spec.name: spec for spec in specs}


TASKS: dict[str, TaskSpec] = _make_tasks()


def get_task(name: str) -> TaskSpec:
    """The ``TaskSpec`` registered as ``name``.

    Raises:
        ValueError: for an unknown name, listing the valid ones.
    """
    if name not in TASKS:
        raise ValueError(f"Unknown task {name!r}; expected one of {', '.join(sorted(TASKS))}.")
    return TASKS[name]


def make_batch(
    task: str | TaskSpec, batch_size: int, length: int | None = None, generator: torch.Generator | None = None
) -> Batch:
    """Draw a batch of a long-time-lag task.

    Args:
        task: a name in ``TASKS`` (``adding``, ``adding_1997``, ``copy``, ``embedded_reber``, ``noise_free_lag``,
            ``temporal_order``, ``temporal_order_3``) or a ``TaskSpec``.
        batch_size: B >= 1.
        length: the task's length T (its meaning per task is in the generator's docstring); default
            ``spec.default_length``.
        generator: a ``torch.Generator``; the same seed gives the same batch.

    Returns:
        ``dict(x=(B, T, I) float32, y=targets, lengths=(B,) int64 or None, mask=(B, T) bool)``, plus ``legal`` for
        embedded_reber. See the module docstring for the layout.

    Raises:
        ValueError: for an unknown task name or a length or batch size out of range, naming the valid values.
    """
    if isinstance(task, str):
        task = get_task(task)
    elif not isinstance(task, TaskSpec):
        raise ValueError(
            f"`task` must be a task name or a TaskSpec, got {type(task).__name__}; names: {sorted(TASKS)}."
        )
    return task.make_batch(batch_size, length, generator)
