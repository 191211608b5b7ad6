"""Next-symbol prediction on the embedded Reber grammar: Hochreiter & Schmidhuber (1997), Exp. 1."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .common import IGNORE_INDEX, Batch, Scores, Success, check_int, check_length, valid_steps

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
    check_int("batch_size", batch_size, 1)
    steps = check_length("embedded_reber", length, 8, "the padded number of steps (strings longer are redrawn)")
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
    valid = valid_steps(lengths, steps)  # (B, T)
    x = F.one_hot(inputs, num_symbols).float() * valid[..., None]  # (B, T, 7)
    return {"x": x, "y": targets, "lengths": lengths, "mask": valid, "legal": legal}


def reber_success(pred: Tensor, batch: Batch, scores: Scores) -> Success:
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
