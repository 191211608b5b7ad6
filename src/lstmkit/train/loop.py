"""The training loop: a plain loop over batches that knows nothing of LSTMs.

The task supplies ``loss_fn(model, batch, state) -> StepOutput``; the loop does the rest: full or truncated BPTT,
gradient clipping, the optimizer and its schedule, validation, early stopping, metrics CSV, progress and seeding.

Example:
    >>> import torch
    >>> from lstmkit.train import StepOutput, TrainConfig, Trainer
    >>> model = torch.nn.Linear(3, 1)
    >>> def loss_fn(model, batch, state):
    ...     x, y = batch                                            # x: (B, 3), y: (B, 1)
    ...     loss = torch.nn.functional.mse_loss(model(x), y)
    ...     return StepOutput(loss=loss, n_items=x.shape[0])
    >>> data = [(torch.randn(8, 3), torch.randn(8, 1)) for _ in range(4)]
    >>> history = Trainer(model, loss_fn, TrainConfig(epochs=2, progress=False)).fit(data)
    >>> [row["epoch"] for row in history]
    [1, 2]
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from lstmkit.config import TrainConfig
from lstmkit.train.metrics import MetricsLogger
from lstmkit.train.optim import build_optimizer, build_schedule
from lstmkit.train.progress import ProgressBar

__all__ = [
    "Callback",
    "EvalFn",
    "LossFn",
    "StepOutput",
    "Trainer",
    "detach_state",
    "seed_everything",
    "split_time",
]

logger = logging.getLogger(__name__)

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


class Callback(Protocol):
    """A training callback. Every method is optional; the loop only calls the ones an object has."""

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, Any]) -> bool | None:
        """Called after each epoch with its metrics row (``epoch`` is 1-based); return True to stop training."""
        ...


def seed_everything(seed: int) -> None:
    """Seed ``random``, ``numpy`` and ``torch`` (all devices) with ``seed``."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def detach_state(state: Any) -> Any:
    """Detach every tensor in ``state`` from the graph, keeping the nesting (tuples, lists, dicts, named tuples).

    Raises:
        TypeError: for anything that is not None, a tensor, or a tuple/list/dict of those.
    """
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.detach()
    if isinstance(state, tuple) and hasattr(state, "_fields"):  # named tuple
        return type(state)(*(detach_state(s) for s in state))
    if isinstance(state, (tuple, list)):
        return type(state)(detach_state(s) for s in state)
    if isinstance(state, dict):
        return {k: detach_state(v) for k, v in state.items()}
    raise TypeError(
        f"Cannot detach a recurrent state of type {type(state).__name__}. StepOutput.state must be None, a tensor, or "
        "a tuple/list/dict of tensors (e.g. (h_n, c_n)). Return the state in one of those forms from loss_fn."
    )


def split_time(batch: Batch, chunk_steps: int) -> list[Batch]:
    """Split a batch into consecutive chunks of ``chunk_steps`` time steps for truncated BPTT.

    ``T`` is ``batch[0].shape[1]``; every tensor whose dim 1 has size ``T`` is cut along dim 1, every other item
    (targets without a time axis, lengths, ...) is passed whole to each chunk. The last chunk is shorter when
    ``chunk_steps`` does not divide ``T``.

    Args:
        batch: tuple of batch-first tensors; ``batch[0]`` has shape ``(B, T, ...)``.
        chunk_steps: time steps per chunk, ``k``.

    Returns:
        ``ceil(T / k)`` tuples, each like ``batch`` with time sliced to ``[s, s + k)``.

    Raises:
        ValueError: if ``batch[0]`` has no time dimension.
    """
    first = batch[0]
    if first.dim() < 2:
        raise ValueError(
            f"Truncated BPTT needs batch[0] shaped (B, T, ...) with time on dim 1, got shape {tuple(first.shape)}. "
            "Put the sequence tensor first in each batch, or set tbptt_steps=None for full BPTT."
        )
    T = first.shape[1]
    chunks = []
    for start in range(0, T, chunk_steps):
        stop = min(start + chunk_steps, T)
        chunks.append(
            tuple(
                t[:, start:stop] if isinstance(t, torch.Tensor) and t.dim() >= 2 and t.shape[1] == T else t
                for t in batch
            )
        )
    return chunks


def _as_batch(batch: Any, device: torch.device | None) -> Batch:
    """Normalise one batch to a tuple of tensors on ``device`` (a bare tensor becomes a 1-tuple)."""
    if isinstance(batch, torch.Tensor):
        batch = (batch,)
    elif isinstance(batch, (tuple, list)):
        batch = tuple(batch)
    else:
        raise TypeError(
            f"Each batch must be a tuple (or list) of tensors, batch-first, got {type(batch).__name__}. "
            "Yield (x, y) tuples from train_data / val_data, as a DataLoader over a TensorDataset does."
        )
    if not batch or not isinstance(batch[0], torch.Tensor):
        raise TypeError(
            "Each batch must start with a tensor (the model input, batch-first), "
            f"got {type(batch[0]).__name__ if batch else 'an empty tuple'}."
        )
    if device is not None:
        batch = tuple(t.to(device) if isinstance(t, torch.Tensor) and t.device != device else t for t in batch)
    return batch


def _iterate(data: Any, name: str) -> Iterator[Any]:
    """Start one pass over ``data``: a re-iterable (list, DataLoader) or a callable returning a fresh iterable."""
    if callable(data) and not hasattr(data, "__iter__"):
        data = data()
    try:
        return iter(data)
    except TypeError:
        raise TypeError(
            f"{name} must be an iterable of batches (e.g. a DataLoader or a list) or a callable returning one, got "
            f"{type(data).__name__}."
        ) from None


def _length(data: Any) -> int | None:
    """``len(data)`` for sized re-iterables; None for callables and for loaders whose length is unknown."""
    if callable(data) and not hasattr(data, "__iter__"):
        return None
    try:
        return len(data)
    except TypeError:  # no __len__, or a DataLoader over an IterableDataset
        return None


def _to_float(value: Any, what: str) -> float:
    """Read a metric value (Python number, 0-d / one-element tensor, numpy scalar) as a float."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{what} must be a scalar, got a tensor of shape {tuple(value.shape)}. Reduce it first.")
        return float(value.detach().item())
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a number or a scalar tensor, got {type(value).__name__} {value!r}.") from None


class _Mean:
    """Weighted running means of named values."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.weight = 0.0

    def add(self, values: Mapping[str, float], weight: float) -> None:
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + v * weight
        self.weight += weight

    def means(self) -> dict[str, float]:
        return {k: (s / self.weight if self.weight > 0 else math.nan) for k, s in self.sums.items()}


class Trainer:
    """Trains ``model`` by minimising ``loss_fn`` over batches.

    Args:
        model: any ``torch.nn.Module``; batches are moved to the device of its first parameter.
        loss_fn: ``loss_fn(model, batch, state) -> StepOutput``. ``batch`` is a tuple of batch-first tensors (time on
            dim 1 for sequences). ``state`` is None under full BPTT; under truncated BPTT it is the previous chunk's
            ``StepOutput.state``, detached, and None at the start of each batch (and of each epoch).
        config: the :class:`TrainConfig`.
        run_dir: if set, ``metrics.csv`` (one row per epoch) and, with ``log_every_steps``, ``steps.csv`` are
            appended there. Weights are saved by the caller (see :func:`lstmkit.runs.save_run`).
        eval_fn: ``eval_fn(model, val_data) -> dict`` of validation metrics, called in eval mode under
            ``torch.no_grad()``. None: the mean of ``loss_fn`` over ``val_data`` as ``val_loss`` (plus ``val_<name>``
            for each ``StepOutput.metrics`` entry).
        callbacks: objects with an optional ``on_epoch_end(trainer, epoch, metrics) -> bool | None``; True stops.

    Attributes:
        optimizer: the ``torch.optim`` optimizer, built from ``config``.
        schedule: the :class:`lstmkit.train.optim.LRSchedule`.
        global_step: optimizer steps taken so far (across ``fit`` calls).
        history: one metrics dict per epoch, as returned by :meth:`fit`.
        best_epoch, best_value: the epoch (1-based) and value of the best ``monitor`` seen with early stopping on.
        stop_reason: why the last ``fit`` ended early (``"max_steps"``, ``"early_stopping"``, ``"callback"``) or None.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        loss_fn: LossFn,
        config: TrainConfig,
        run_dir: str | os.PathLike[str] | None = None,
        eval_fn: EvalFn | None = None,
        callbacks: Sequence[Any] | None = None,
    ) -> None:
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"Trainer needs a torch.nn.Module as model, got {type(model).__name__}.")
        if not callable(loss_fn):
            raise TypeError(
                f"Trainer needs a callable loss_fn(model, batch, state) -> StepOutput, got {type(loss_fn).__name__}."
            )
        if not isinstance(config, TrainConfig):
            raise TypeError(
                f"Trainer needs a TrainConfig, got {type(config).__name__}. "
                "Build one with TrainConfig(...) or TrainConfig.from_dict({...})."
            )
        self.model = model
        self.loss_fn = loss_fn
        self.config = config
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.eval_fn = eval_fn
        self.callbacks = list(callbacks or [])
        self._params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(self._params, config)
        self.schedule = build_schedule(config)
        self.global_step = 0
        self.history: list[dict[str, Any]] = []
        self.best_epoch: int | None = None
        self.best_value: float | None = None
        self.stop_reason: str | None = None
        self._best_state: dict[str, torch.Tensor] | None = None
        self._bad_epochs = 0
        self._fit_start = 0.0

    # ------------------------------------------------------------------ fit

    def fit(self, train_data: Any, val_data: Any = None) -> list[dict[str, Any]]:
        """Train for ``config.epochs`` epochs (or until ``max_steps``, early stopping or a callback stops it).

        Args:
            train_data: an iterable of batches re-iterated each epoch (a DataLoader, a list), or a callable returning
                a fresh iterable per epoch (for freshly generated synthetic sequences).
            val_data: the same kinds, evaluated after each epoch; None skips validation.

        Returns:
            The metrics of each epoch of this call: ``epoch`` (1-based), ``step`` (optimizer steps so far),
            ``train_loss``, ``train_<metric>``, validation metrics, ``lr`` (last used), ``grad_norm`` (mean pre-clip
            global norm) and ``grad_norm_max``, ``items_per_sec`` (training only), ``seconds`` (whole epoch).
            With early stopping on, the model ends with the weights of the best epoch.

        Raises:
            ValueError: if ``train_data`` (or ``val_data``) yields no batches, or the monitored metric is missing.
            FloatingPointError: if the loss is NaN or infinite; the message names the epoch and step.
        """
        cfg = self.config
        needs_monitor = cfg.early_stopping_patience is not None or cfg.schedule == "plateau"
        if needs_monitor and cfg.monitor.startswith("val_") and val_data is None:
            user = "early stopping" if cfg.early_stopping_patience is not None else "schedule='plateau'"
            raise ValueError(
                f"TrainConfig.monitor={cfg.monitor!r} is a validation metric (used by {user}), but fit() got no "
                "val_data. Pass val_data, or monitor a training metric such as 'train_loss'."
            )
        seed_everything(cfg.seed)
        self.history = []
        self.stop_reason = None
        self.best_epoch, self.best_value, self._best_state = None, None, None
        self._bad_epochs = 0
        self._fit_start = time.perf_counter()
        device = self._params[0].device
        epoch_log = MetricsLogger(self.run_dir / "metrics.csv") if self.run_dir is not None else None
        step_log = (
            MetricsLogger(self.run_dir / "steps.csv")
            if self.run_dir is not None and cfg.log_every_steps is not None
            else None
        )
        try:
            with ProgressBar(enabled=cfg.progress) as bar:
                for epoch in range(1, cfg.epochs + 1):
                    row, stop = self._run_epoch(epoch, train_data, val_data, device, bar, step_log)
                    self.history.append(row)
                    if epoch_log is not None:
                        epoch_log.log(row)
                    logger.info(
                        "epoch %d/%d: %s",
                        epoch,
                        cfg.epochs,
                        ", ".join(f"{k}={v:.5g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
                    )
                    stop = self._after_epoch(epoch, row) or stop
                    if stop:
                        break
        finally:
            for log in (epoch_log, step_log):
                if log is not None:
                    log.close()
        if self._best_state is not None:
            self.model.load_state_dict(self._best_state)
            logger.info("restored the weights of epoch %d (%s=%.5g)", self.best_epoch, cfg.monitor, self.best_value)
        return self.history

    def _run_epoch(
        self,
        epoch: int,
        train_data: Any,
        val_data: Any,
        device: torch.device,
        bar: ProgressBar,
        step_log: MetricsLogger | None,
    ) -> tuple[dict[str, Any], bool]:
        """One pass over ``train_data`` and the validation after it. Returns the metrics row and whether to stop."""
        cfg = self.config
        t0 = time.perf_counter()
        self.model.train()
        total_batches = _length(train_data)
        bar.start_epoch(epoch, cfg.epochs, total_batches)
        means, grad_norms, items, lr = _Mean(), [], 0, math.nan
        state: Any = None  # reset at every epoch, carried or not
        prev_batch_size: int | None = None
        n_batches = 0
        stop = False
        for raw in _iterate(train_data, "train_data"):
            batch = _as_batch(raw, device)
            n_batches += 1
            batch_size = batch[0].shape[0]
            if not cfg.carry_state_across_batches or batch_size != prev_batch_size:
                state = None
            prev_batch_size = batch_size
            chunks = split_time(batch, cfg.tbptt_steps) if cfg.tbptt_steps is not None else [batch]
            if self.schedule.total_steps is None:
                self._infer_total_steps(total_batches, len(chunks))
            for chunk_index, chunk in enumerate(chunks):
                out, grad_norm, lr = self._optimizer_step(chunk, state, epoch, n_batches, chunk_index, len(chunks))
                if cfg.tbptt_steps is not None or cfg.carry_state_across_batches:
                    state = detach_state(out.state)
                n = out.n_items if out.n_items is not None else chunk[0].shape[0]
                means.add({"loss": float(out.loss.detach().item()), **self._read_metrics(out)}, n)
                grad_norms.append(grad_norm)
                items += n
                if step_log is not None and self.global_step % cfg.log_every_steps == 0:
                    step_log.log(
                        {
                            "epoch": epoch,
                            "step": self.global_step,
                            "loss": float(out.loss.detach().item()),
                            "lr": lr,
                            "grad_norm": grad_norm,
                            "seconds": time.perf_counter() - self._fit_start,
                        }
                    )
                if cfg.max_steps is not None and self.global_step >= cfg.max_steps:
                    self.stop_reason, stop = "max_steps", True
                    break
            elapsed = time.perf_counter() - t0
            bar.update(loss=means.means()["loss"], items_per_sec=items / elapsed if elapsed > 0 else 0.0)
            if stop:
                break
        if n_batches == 0:
            raise ValueError(
                f"train_data yielded no batches in epoch {epoch}. "
                + (
                    "It was consumed in epoch 1: it is probably a one-shot iterator (e.g. a generator). Pass a "
                    "callable returning a fresh iterator each epoch, or a re-iterable such as a list or a DataLoader."
                    if epoch > 1
                    else "Pass a non-empty iterable of batches (check the dataset size against batch_size and "
                    "drop_last)."
                )
            )
        train_seconds = time.perf_counter() - t0
        train_means = means.means()
        row: dict[str, Any] = {"epoch": epoch, "step": self.global_step, "train_loss": train_means.pop("loss")}
        row.update({f"train_{k}": v for k, v in train_means.items()})
        if val_data is not None:
            for k, v in self.evaluate(val_data, device).items():
                if k in row:
                    raise ValueError(
                        f"Validation metric {k!r} clashes with a training column of the same name. "
                        "Rename it in eval_fn (validation metrics usually start with 'val_')."
                    )
                row[k] = v
        row.update(
            {
                "lr": lr,
                "grad_norm": sum(grad_norms) / len(grad_norms) if grad_norms else math.nan,
                "grad_norm_max": max(grad_norms) if grad_norms else math.nan,
                "items_per_sec": items / train_seconds if train_seconds > 0 else math.nan,
                "seconds": time.perf_counter() - t0,
            }
        )
        return row, stop

    def _infer_total_steps(self, total_batches: int | None, chunks_per_batch: int) -> None:
        """Fill in the run length for the cosine schedule once the first batch shows the chunks per batch."""
        cfg = self.config
        known = [cfg.max_steps] if cfg.max_steps is not None else []
        if total_batches is not None:
            known.append(cfg.epochs * total_batches * chunks_per_batch)
        if known:
            self.schedule.total_steps = min(known)

    def _optimizer_step(
        self, chunk: Batch, state: Any, epoch: int, batch_index: int, chunk_index: int, n_chunks: int
    ) -> tuple[StepOutput, float, float]:
        """Forward, backward, clip and step on one chunk. Returns the output, the pre-clip grad norm and the lr."""
        cfg = self.config
        self.optimizer.zero_grad(set_to_none=True)
        out = self.loss_fn(self.model, chunk, state)
        if not isinstance(out, StepOutput):
            raise TypeError(
                f"loss_fn must return a StepOutput, got {type(out).__name__}. "
                "Return StepOutput(loss=..., state=..., metrics={...}, n_items=...)."
            )
        if not isinstance(out.loss, torch.Tensor) or out.loss.numel() != 1:
            got = f"shape {tuple(out.loss.shape)}" if isinstance(out.loss, torch.Tensor) else type(out.loss).__name__
            raise ValueError(f"StepOutput.loss must be a scalar tensor, got {got}. Reduce it (e.g. .mean()) first.")
        loss_value = float(out.loss.detach().item())
        if not math.isfinite(loss_value):
            where = f"batch {batch_index} of the epoch" + (
                f", chunk {chunk_index + 1}/{n_chunks}" if n_chunks > 1 else ""
            )
            raise FloatingPointError(
                f"Non-finite loss ({loss_value}) at epoch {epoch}, step {self.global_step + 1} ({where}). "
                "Lower lr, keep clip_grad_norm on, and check the batch for NaN or infinite inputs."
            )
        lr = self.schedule.lr_at(self.global_step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        out.loss.backward()
        if cfg.clip_grad_norm is not None:
            grad_norm = torch.nn.utils.clip_grad_norm_(self._params, cfg.clip_grad_norm)  # returns the pre-clip norm
        else:
            grads = [p.grad for p in self._params if p.grad is not None]
            grad_norm = torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())
        self.optimizer.step()
        self.global_step += 1
        return out, float(grad_norm.item()), lr

    @staticmethod
    def _read_metrics(out: StepOutput) -> dict[str, float]:
        return {str(k): _to_float(v, f"StepOutput.metrics[{k!r}]") for k, v in out.metrics.items()}

    # ------------------------------------------------------------------ evaluation and stopping

    def evaluate(self, val_data: Any, device: torch.device | None = None) -> dict[str, float]:
        """Validation metrics of the current model: ``eval_fn(model, val_data)``, or the mean ``loss_fn`` as
        ``val_loss`` (and ``val_<name>`` for each ``StepOutput.metrics`` entry), in eval mode without gradients.

        Raises:
            ValueError: if the default evaluation finds no batches in ``val_data``.
        """
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                if self.eval_fn is not None:
                    result = self.eval_fn(self.model, val_data)
                    if not isinstance(result, Mapping):
                        raise TypeError(
                            f"eval_fn must return a dict of metric name -> value, got {type(result).__name__}."
                        )
                    return {str(k): _to_float(v, f"eval_fn result[{k!r}]") for k, v in result.items()}
                return self._default_eval(val_data, device or self._params[0].device)
        finally:
            self.model.train(was_training)

    def _default_eval(self, val_data: Any, device: torch.device) -> dict[str, float]:
        """Mean ``loss_fn`` over ``val_data``: whole sequences; state carried only with carry_state_across_batches."""
        means = _Mean()
        state: Any = None
        prev_batch_size: int | None = None
        n_batches = 0
        for raw in _iterate(val_data, "val_data"):
            batch = _as_batch(raw, device)
            n_batches += 1
            if not self.config.carry_state_across_batches or batch[0].shape[0] != prev_batch_size:
                state = None
            prev_batch_size = batch[0].shape[0]
            out = self.loss_fn(self.model, batch, state)
            if self.config.carry_state_across_batches:
                state = detach_state(out.state)
            n = out.n_items if out.n_items is not None else batch[0].shape[0]
            means.add({"loss": _to_float(out.loss, "StepOutput.loss"), **self._read_metrics(out)}, n)
        if n_batches == 0:
            raise ValueError(
                "val_data yielded no batches. Pass a non-empty iterable (re-iterable, or a callable returning a fresh "
                "iterator each epoch), or val_data=None to skip validation."
            )
        return {f"val_{k}": v for k, v in means.means().items()}

    def _after_epoch(self, epoch: int, row: dict[str, Any]) -> bool:
        """Early stopping, the plateau schedule and callbacks. Returns True to stop."""
        cfg = self.config
        stop = False
        needs_monitor = cfg.early_stopping_patience is not None or cfg.schedule == "plateau"
        value: float | None = None
        if needs_monitor:
            if cfg.monitor not in row:
                raise ValueError(
                    f"TrainConfig.monitor={cfg.monitor!r} is not among this epoch's metrics ({', '.join(row)}). "
                    "Set monitor to one of them, or make eval_fn return it."
                )
            value = float(row[cfg.monitor])
        if cfg.early_stopping_patience is not None and value is not None:
            improved = not math.isnan(value) and (
                self.best_value is None
                or (value < self.best_value if cfg.monitor_mode == "min" else value > self.best_value)
            )
            if improved:
                self.best_value, self.best_epoch, self._bad_epochs = value, epoch, 0
                self._best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            else:
                self._bad_epochs += 1
                if self._bad_epochs >= cfg.early_stopping_patience:
                    logger.info(
                        "early stopping at epoch %d: %s has not improved for %d epochs (best %.5g at epoch %d)",
                        epoch,
                        cfg.monitor,
                        self._bad_epochs,
                        self.best_value if self.best_value is not None else math.nan,
                        self.best_epoch or 0,
                    )
                    self.stop_reason, stop = "early_stopping", True
        self.schedule.on_epoch_end(value)
        for callback in self.callbacks:
            hook = getattr(callback, "on_epoch_end", None)
            if hook is not None and hook(self, epoch, dict(row)) is True:
                logger.info("callback %s stopped training at epoch %d", type(callback).__name__, epoch)
                self.stop_reason = self.stop_reason or "callback"
                stop = True
        return stop
