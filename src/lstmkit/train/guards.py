"""Numerical guards: where did the first NaN or infinity come from?

When a step's loss or gradient is not finite, :func:`locate_nonfinite` runs the forward pass again on the same
batch with a forward hook on every module and reports the first module (in the order modules finish) whose inputs
were all finite and whose output was not: the place the overflow arose, not the places it spread to. For outputs with
a time axis it names the first time step with a non-finite value. A module may describe itself more precisely by
defining ``locate_nonfinite(*inputs) -> str | None`` (lstmkit's LSTM names the layer, direction and step).

The loop knows nothing of LSTMs: everything here works on any ``torch.nn.Module``.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch

from lstmkit.config import TrainConfig
from lstmkit.train import checkpoint as ckpt
from lstmkit.train import distributed

__all__ = [
    "DIVERGENCE_FACTOR",
    "DIVERGENCE_FLOOR",
    "DivergenceError",
    "LossWatch",
    "NonfinitePolicy",
    "all_finite",
    "divergence_error",
    "format_lr",
    "has_diverged",
    "iter_tensors",
    "locate_nonfinite",
    "nonfinite_grads",
]

logger = logging.getLogger(__name__)

# A finite loss has diverged when it exceeds DIVERGENCE_FACTOR times the loss of the run's first step (the untrained
# model's) and DIVERGENCE_FLOOR. Four orders of magnitude: the noise and the spikes of a healthy run stay within one
# or two (a batch harder than the first, a learning-rate warm-up), while an update that overshoots grows the loss
# geometrically, so a diverging run crosses the line within a few steps of leaving the healthy range. The floor keeps
# a run that starts near zero (a loss of 1e-6, say) from being stopped at a harmless absolute value; 100 is above any
# sane cross-entropy (log of the vocabulary) or mean squared error of standardised targets.
DIVERGENCE_FACTOR = 1e4
DIVERGENCE_FLOOR = 100.0


class DivergenceError(ValueError, FloatingPointError):
    """Training stopped because the loss diverged: it became NaN or infinite (and the non-finite policy says stop),
    or it rose orders of magnitude above where it started (see :func:`has_diverged`). A ``ValueError`` so that the
    command line prints its message as one sentence; a ``FloatingPointError`` as the non-finite guard always raised.
    """


def available_memory() -> int | None:
    """Bytes of memory this process can still use: the smaller of the kernel's MemAvailable and the cgroup's limit
    minus its use; None where neither can be read (not Linux)."""
    found = []
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
                    break
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open("/sys/fs/cgroup/memory.max", encoding="ascii") as f:
            limit = f.read().strip()
        if limit != "max":
            with open("/sys/fs/cgroup/memory.current", encoding="ascii") as f:
                found.append(int(limit) - int(f.read().strip()))
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def check_training_memory(model: torch.nn.Module, copies: int) -> None:
    """Refuse, before the first step, a model whose training state alone cannot fit in the memory left: the weights,
    their gradients and the optimizer's state (``copies`` of the parameters in all; Adam: 4), activations not counted.

    Raises:
        ValueError: naming the estimate, the memory left and the fix.
    """
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    need, left = copies * param_bytes, available_memory()
    if left is not None and need > left:
        raise ValueError(
            f"Training this model needs at least {_size(need)} ({_size(param_bytes)} of weights, with their gradients "
            f"and the optimizer's state), more than the {_size(left)} of memory left here. Choose a smaller "
            "--hidden-size or fewer --layers."
        )


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} TB"


def has_diverged(loss: float, first_loss: float) -> bool:
    """True when the finite ``loss`` is more than ``DIVERGENCE_FACTOR`` times ``first_loss`` (the run's first step)
    and more than ``DIVERGENCE_FLOOR``."""
    return loss > DIVERGENCE_FLOOR and loss > DIVERGENCE_FACTOR * abs(first_loss)


def format_lr(lr: float) -> str:
    """A learning rate as people write it: 0.002, 1e-05 -> 1e-5, 1e+09 -> 1e9."""
    text = f"{lr:.3g}"
    mantissa, _, exponent = text.partition("e")
    return f"{mantissa}e{int(exponent)}" if exponent else text


def iter_tensors(obj: Any) -> Iterator[torch.Tensor]:
    """Every floating-point tensor inside ``obj`` (tensors, tuples, lists, dicts, dataclass-like objects skipped)."""
    if isinstance(obj, torch.Tensor):
        if obj.is_floating_point() or obj.is_complex():
            yield obj
    elif isinstance(obj, (tuple, list)):
        for item in obj:
            yield from iter_tensors(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from iter_tensors(item)


def all_finite(obj: Any) -> bool:
    """True if every floating-point tensor in ``obj`` holds only finite values."""
    return all(bool(torch.isfinite(t).all()) for t in iter_tensors(obj))


def _first_bad_step(t: torch.Tensor, time_dim: int) -> int | None:
    """The first index along ``time_dim`` holding a non-finite value, or None."""
    if t.dim() <= time_dim:
        return None
    bad = ~torch.isfinite(t.detach())
    other = [d for d in range(t.dim()) if d != time_dim]
    per_step = bad.any(dim=other) if other else bad
    idx = torch.nonzero(per_step).flatten()
    return int(idx[0]) if idx.numel() else None


def nonfinite_grads(model: torch.nn.Module, limit: int = 5) -> list[str]:
    """Names of parameters whose gradient holds a NaN or infinity (at most ``limit``)."""
    names = []
    for name, p in model.named_parameters():
        if p.grad is not None and not bool(torch.isfinite(p.grad).all()):
            names.append(name)
            if len(names) >= limit:
                break
    return names


def locate_nonfinite(model: torch.nn.Module, forward: Callable[[], Any], batch: Any = None) -> str:
    """Describe where the first non-finite value arises when ``forward()`` runs ``model``.

    Args:
        model: the model; every submodule gets a temporary forward hook.
        forward: runs the model once on the offending batch (called under ``torch.no_grad()``).
        batch: the batch itself, checked first: non-finite inputs are reported as such.

    Returns:
        One sentence, e.g. ``"first non-finite value in module 'rnn' (LSTM), output time step 37 of 100, its inputs
        finite"``; or that the forward pass is finite (the overflow is then in the backward pass).
    """
    if batch is not None:
        for i, t in enumerate(iter_tensors(batch)):
            if not bool(torch.isfinite(t).all()):
                step = _first_bad_step(t, 1) if t.dim() >= 3 else None  # (B, T, ...) has a time axis
                at = f" at time step {step}" if step is not None else ""
                return f"the batch itself holds NaN or infinite values (tensor {i}, shape {tuple(t.shape)}{at})"
    found: list[str] = []
    busy: list[bool] = []  # set while a module describes itself: its own forward calls must not re-enter the hooks

    def hook(name: str) -> Callable[..., None]:
        def fn(module: torch.nn.Module, inputs: Any, output: Any) -> None:
            if busy or found or all_finite(output) or not all_finite(inputs):
                return
            where = f"module '{name or '<model>'}' ({type(module).__name__})"
            describe = getattr(module, "locate_nonfinite", None)
            detail = None
            if callable(describe):
                busy.append(True)
                try:
                    with contextlib.suppress(Exception):
                        detail = describe(*inputs)
                finally:
                    busy.clear()
            if detail is None:
                first = next(iter_tensors(output), None)
                if first is not None and first.dim() >= 2 and not bool(torch.isfinite(first).all()):
                    time_dim = 1 if getattr(module, "batch_first", True) else 0
                    step = _first_bad_step(first, time_dim)
                    if step is not None and first.dim() >= 3:
                        detail = f"output time step {step} of {first.shape[time_dim]}"
            found.append(where + (f", {detail}" if detail else "") + ", its inputs finite")

        return fn

    handles = [m.register_forward_hook(hook(name)) for name, m in model.named_modules()]
    try:
        with torch.no_grad():
            try:
                forward()
            except Exception as e:  # noqa: BLE001  (a diagnosis must not hide the original problem)
                if not found:
                    return f"the forward pass raised {type(e).__name__}: {e}"
    finally:
        for h in handles:
            h.remove()
    if found:
        return "first non-finite value in " + found[0]
    return "the forward pass is finite on this batch, so the overflow is in the backward pass"


def divergence_error(
    loss: float, first: float | None, lowest: float | None, lr: float, step: int, epoch: int, distributed_run: bool
) -> DivergenceError:
    """The sentence for a loss that rose orders of magnitude: where (``step`` is the one that diverged), from what
    to what, and which learning rate to try."""
    lowest = lowest if lowest is not None else first
    here = f"{loss:.3g}" if not distributed_run or has_diverged(loss, first or 0.0) else "(another rank)"
    return DivergenceError(
        f"Training diverged at step {step} (epoch {epoch}): the loss rose from {lowest:.3g} to "
        f"{here} with learning rate {format_lr(lr)}. Try a learning rate 10 to 100 times smaller "
        f"({format_lr(lr / 100)} to {format_lr(lr / 10)})."
    )


class LossWatch:
    """The run's step losses as the divergence guard sees them: the first finite one (where divergence is measured
    from) and the lowest so far (named when the run diverges)."""

    def __init__(self) -> None:
        self.first: float | None = None
        self.lowest: float | None = None

    def judge(self, loss: float, dist: distributed.DistInfo | None) -> tuple[bool, bool]:
        """(not finite, diverged) for a step's loss; in a distributed run, agreed by every rank (one rank's bad step
        is everyone's), since every rank must skip backward (or stop) together, or DDP's all-reduce would hang."""
        bad = not math.isfinite(loss)
        diverged = not bad and self.first is not None and has_diverged(loss, self.first)
        if dist is not None:
            n_bad, n_diverged = distributed.all_reduce_sum([float(bad), float(diverged)])
            bad, diverged = n_bad > 0, n_bad == 0 and n_diverged > 0
        return bad, diverged

    def error(self, loss: float, lr: float, step: int, epoch: int, distributed_run: bool) -> DivergenceError:
        """The :class:`DivergenceError` for a diverged ``loss`` at ``step``."""
        return divergence_error(loss, self.first, self.lowest, lr, step, epoch, distributed_run)

    def add(self, loss: float) -> None:
        """Record a finite step loss that is being trained on."""
        if self.first is None:
            self.first = loss
        self.lowest = loss if self.lowest is None else min(self.lowest, loss)

    def state_dict(self) -> dict[str, float | None]:
        return {"first": self.first, "lowest": self.lowest}

    def load_state_dict(self, state: Mapping[str, float | None] | None) -> None:
        state = state or {}
        self.first, self.lowest = state.get("first"), state.get("lowest")


class NonfinitePolicy:
    """What to do with a non-finite step, as ``config.on_nonfinite`` says: diagnose it, then raise, skip it or roll
    back to the last checkpoint; more than ``max_nonfinite_steps`` in a row raise.

    Attributes:
        in_a_row: non-finite steps in a row (reset by :meth:`step_ok`).
    """

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.in_a_row = 0

    def step_ok(self) -> None:
        self.in_a_row = 0

    def handle(
        self,
        what: str,
        model: torch.nn.Module,
        forward: Callable[[], Any],
        batch: Any,
        autocast: Callable[[], Any],
        dist: distributed.DistInfo | None,
        rollback: Callable[[], str | None],
    ) -> str:
        """Diagnose the step (``forward()`` re-runs it; ``batch`` names the time step), then raise
        :class:`DivergenceError` or skip / roll back (``rollback()`` restores the last checkpoint and returns its
        name, or None when there is none). Returns the sentence logged for the event."""
        cfg = self.config
        # The diagnosis re-runs the forward pass; it must move neither the RNGs nor running statistics (BatchNorm).
        rng = ckpt.capture_rng()
        buffers = {k: v.clone() for k, v in model.named_buffers()}
        try:
            with autocast():
                cause = locate_nonfinite(model, forward, batch)
        finally:
            ckpt.restore_rng(rng)
            with torch.no_grad():
                for k, v in model.named_buffers():
                    v.copy_(buffers[k])
        message = f"{what}: {cause}."
        if dist is not None:  # report the rank whose rows went wrong (rank 0 logs and keeps the events)
            reports = distributed.gather_objects((what.startswith("Non-finite loss ("), message))
            culprit = next((r for r, (own, _) in enumerate(reports) if own), 0)
            message = f"{reports[culprit][1][:-1]} (on rank {culprit})."
        self.in_a_row += 1
        if cfg.on_nonfinite == "raise" or self.in_a_row > cfg.max_nonfinite_steps:
            if cfg.on_nonfinite != "raise":
                message += f" That is {self.in_a_row} non-finite steps in a row (max_nonfinite_steps), so stop."
            raise DivergenceError(
                message + f" Lower the learning rate (now {format_lr(cfg.lr)}; try 10 to 100 times smaller, --lr), "
                "keep gradient clipping on and check the data for NaN or huge values; from Python, "
                "TrainConfig(on_nonfinite='skip' or 'rollback') trains through rare spikes."
            )
        if cfg.on_nonfinite == "rollback":
            name = rollback()
            if name is None:
                raise DivergenceError(
                    message + " on_nonfinite='rollback' needs a checkpoint to go back to: give the Trainer a run_dir "
                    "(with checkpoint=True), or use on_nonfinite='skip'."
                )
            message += f" Rolled back to {name} and went on with the next batch."
        else:
            message += " Skipped this update."
        logger.warning("%s", message)
        return message
