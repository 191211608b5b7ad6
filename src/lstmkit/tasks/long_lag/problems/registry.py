"""The registry of long-lag problems: ``TaskSpec`` (sizes, output kind, baseline, success criterion), ``TASKS``,
``get_task`` and ``make_batch``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .arithmetic import ADDING_SOLVED_FRACTION, adding, adding_1997_baseline, adding_1997_success, adding_success
from .common import Batch, Scores, Success, TaskKind
from .memory import (
    COPY_DELIMITER,
    COPY_SOLVED_FRACTION,
    COPY_SYMBOLS,
    NOISE_FREE_LAG_ERROR,
    copy,
    copy_baseline,
    copy_success,
    noise_free_lag,
    noise_free_lag_success,
)
from .order import TEMPORAL_ORDER_SYMBOLS, temporal_order, temporal_order_success
from .reber import REBER_SYMBOLS, embedded_reber, reber_success


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
            _success=adding_success,
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
            _baseline=adding_1997_baseline,
            _success=adding_1997_success,
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
            _baseline=copy_baseline,
            _success=copy_success,
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
            _success=temporal_order_success,
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
            _success=temporal_order_success,
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
            _success=reber_success,
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
            _success=noise_free_lag_success,
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
