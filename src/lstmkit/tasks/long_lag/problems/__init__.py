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

from .arithmetic import ADDING_1997_ERROR, ADDING_SOLVED_FRACTION, adding
from .common import IGNORE_INDEX, PAPER_TEST_SIZE, Batch, Success
from .memory import (
    COPY_BLANK,
    COPY_DELIMITER,
    COPY_RECALL,
    COPY_SOLVED_FRACTION,
    COPY_SYMBOLS,
    NOISE_FREE_LAG_ERROR,
    copy,
    noise_free_lag,
)
from .order import TEMPORAL_ORDER_ERROR, TEMPORAL_ORDER_SYMBOLS, temporal_order
from .reber import (
    REBER_GRAMMAR,
    REBER_SYMBOLS,
    embedded_reber,
    embedded_reber_string,
    is_reber,
    reber_legal_next,
    reber_string,
)
from .registry import TASKS, TaskSpec, get_task, make_batch

__all__ = [
    "ADDING_1997_ERROR",
    "ADDING_SOLVED_FRACTION",
    "COPY_BLANK",
    "COPY_DELIMITER",
    "COPY_RECALL",
    "COPY_SOLVED_FRACTION",
    "COPY_SYMBOLS",
    "IGNORE_INDEX",
    "NOISE_FREE_LAG_ERROR",
    "PAPER_TEST_SIZE",
    "REBER_GRAMMAR",
    "REBER_SYMBOLS",
    "TASKS",
    "TEMPORAL_ORDER_ERROR",
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
