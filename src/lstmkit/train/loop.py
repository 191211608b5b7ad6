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

import contextlib
import dataclasses
import itertools
import logging
import math
import os
import random
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lstmkit import runs
from lstmkit.config import TrainConfig
from lstmkit.train import checkpoint as ckpt
from lstmkit.train import distributed
from lstmkit.train import state as run_state
from lstmkit.train.averaging import WeightAverage
from lstmkit.train.batching import as_batch, iterate, known_length, no_batches_error, split_time
from lstmkit.train.callbacks import Callback, call_hook, epoch_columns
from lstmkit.train.evaluation import add_validation, evaluate
from lstmkit.train.guards import LossWatch, NonfinitePolicy, check_training_memory, nonfinite_grads
from lstmkit.train.metrics import EpochSums, RunLogs
from lstmkit.train.optim import build_optimizer, build_schedule, clip_gradients
from lstmkit.train.progress import EpochLines, ProgressBar, open_progress
from lstmkit.train.step import Batch, EvalFn, LossFn, StepOutput, check_step_output, step_metrics
from lstmkit.train.stopping import BestEpoch
from lstmkit.train.tensors import detach_state

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


def seed_everything(seed: int) -> None:
    """Seed ``random``, ``numpy`` and ``torch`` (all devices) with ``seed``."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclasses.dataclass
class _Epoch:
    """Where one epoch stands: its number, running sums, clock start, carried state and last batch size."""

    number: int
    acc: EpochSums
    t0: float
    state: Any = None  # reset at every epoch, carried or not
    prev_batch_size: int | None = None


class Trainer:
    """Trains ``model`` by minimising ``loss_fn`` over batches.

    Args:
        model: any ``torch.nn.Module``; batches are moved to the device of its first parameter.
        loss_fn: ``loss_fn(model, batch, state) -> StepOutput``. ``batch`` is a tuple of batch-first tensors (time on
            dim 1 for sequences). ``state`` is None under full BPTT; under truncated BPTT it is the previous chunk's
            ``StepOutput.state``, detached, and None at the start of each batch (and of each epoch).
        config: the :class:`TrainConfig`.
        run_dir: if set, ``metrics.csv`` (one row per epoch) and, with ``log_every_steps``, ``steps.csv`` are
            appended there, and (with ``config.checkpoint``) crash-safe checkpoints are written to
            ``run_dir/checkpoints`` (see :mod:`lstmkit.train.checkpoint`). Final weights are saved by the caller
            (see :func:`lstmkit.runs.save_run`).
        eval_fn: ``eval_fn(model, val_data) -> dict`` of validation metrics, called in eval mode under
            ``torch.no_grad()``. None: the mean of ``loss_fn`` over ``val_data`` as ``val_loss`` (plus ``val_<name>``
            for each ``StepOutput.metrics`` entry).
        callbacks: objects with any of the hooks of :mod:`lstmkit.train.callbacks` (``on_epoch_end(trainer, epoch,
            metrics) -> bool | None``: True stops; ``epoch_metrics`` adds columns, e.g. :class:`GateStatistics`).
            A callback with ``state_dict()`` / ``load_state_dict()`` has its state checkpointed.
        run_config: the task's resolved config (a dict or an object with ``to_dict()``), saved in every checkpoint;
            resuming with a different one is refused.
        kind: the task's name, saved in checkpoints so :func:`lstmkit.train.resume` can find who rebuilds the run.
            With a ``run_dir``, ``fit`` also writes the run's ``config.json`` as training starts (kind, ``run_config``
            and ``"status": "training"``, see :func:`lstmkit.runs.start_run`); the task replaces it when it saves.

    Exact resume: a resumed run ends with the same weights, bit for bit on CPU, as an uninterrupted one, provided
    the training data repeats given the same RNG states: a list or tensor dataset, a ``DataLoader`` (it draws its
    shuffle seed from torch's RNG when an epoch starts), a callable that draws from its own ``torch.Generator`` with
    ``state_dict()`` / ``load_state_dict()`` (the data's state at each epoch start is checkpointed), or any
    iterable that is a pure function of the global RNG states at the epoch's start. A resumed epoch re-reads and
    skips the batches it had already trained on.

    Attributes:
        optimizer: the ``torch.optim`` optimizer, built from ``config``.
        schedule: the :class:`lstmkit.train.optim.LRSchedule`.
        global_step: optimizer steps taken so far (across ``fit`` calls).
        history: one metrics dict per epoch, as returned by :meth:`fit`.
        best_epoch, best_value: the epoch (1-based) and value of the best ``monitor`` seen (when the epochs' rows
            hold it).
        stop_reason: why the last ``fit`` ended early (``"max_steps"``, ``"max_minutes"``, ``"early_stopping"``,
            ``"callback"``) or None.
        last_checkpoint: the directory of the newest checkpoint written or resumed from, or None.
        nonfinite_events: one sentence per non-finite step met (skipped or rolled back).
        averaged_steps: with ``config.average_from_epoch``, how many optimizer steps' weights the model ended
            ``fit`` averaged over (0: training stopped before that epoch and the model kept its last weights).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        loss_fn: LossFn,
        config: TrainConfig,
        run_dir: str | os.PathLike[str] | None = None,
        eval_fn: EvalFn | None = None,
        callbacks: Sequence[Any] | None = None,
        *,
        run_config: Mapping[str, Any] | Any = None,
        kind: str | None = None,
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
        self.run_config = run_state.plain_run_config(run_config)
        self.kind = kind
        self._params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(self._params, config)
        self.schedule = build_schedule(config)
        self.global_step = 0
        self.history: list[dict[str, Any]] = []
        self.stop_reason: str | None = None
        self.nonfinite_events: list[str] = []
        self.averaged_steps = 0
        self._average: WeightAverage | None = None
        self._best = BestEpoch(config)
        self._fit_start = 0.0
        self._nonfinite = NonfinitePolicy(config)
        self._losses = LossWatch()  # the first and lowest step losses, for the divergence guard
        self._checkpoints = run_state.RunCheckpoints(self.run_dir, config, self.run_config, kind)
        self._logs = RunLogs(None, steps=False)
        self._dist: distributed.DistInfo | None = None
        self._train_model: torch.nn.Module = model  # the model loss_fn gets: DistributedDataParallel(model) or model

    @property
    def checkpointing(self) -> bool:
        """Whether this run keeps checkpoints (it has a run_dir and ``config.checkpoint`` is on)."""
        return self.run_dir is not None and self.config.checkpoint

    @property
    def last_checkpoint(self) -> Path | None:
        """The directory of the newest checkpoint written or resumed from, or None."""
        return self._checkpoints.last

    @property
    def is_main(self) -> bool:
        """True in a single process and on rank 0 of a distributed run: the process that writes files."""
        return self._dist is None or self._dist.rank == 0

    @property
    def best_epoch(self) -> int | None:
        """The epoch (1-based) of the best ``monitor`` seen, or None."""
        return self._best.epoch

    @property
    def best_value(self) -> float | None:
        """The best value of ``monitor`` seen, or None."""
        return self._best.value

    # ------------------------------------------------------------------ fit

    def fit(self, train_data: Any, val_data: Any = None, *, resume: bool = False) -> list[dict[str, Any]]:
        """Train for ``config.epochs`` epochs (or until ``max_steps``, ``max_minutes``, early stopping or a callback
        stops it).

        Args:
            train_data: an iterable of batches re-iterated each epoch (a DataLoader, a list), or a callable returning
                a fresh iterable per epoch (for freshly generated synthetic sequences).
            val_data: the same kinds, evaluated after each epoch; None skips validation.
            resume: continue from the newest checkpoint in ``run_dir/checkpoints`` (weights, optimizer, schedule,
                RNGs, data position, metrics so far) instead of starting afresh.

        Returns:
            The metrics of each epoch (of the whole run when resuming): ``epoch`` (1-based), ``step`` (optimizer
            steps so far), ``train_loss``, ``train_<metric>``, validation metrics, ``lr`` (last used), ``grad_norm``
            (mean pre-clip global norm) and ``grad_norm_max``, ``nonfinite_steps``, ``items_per_sec`` (training
            only), ``seconds`` (whole epoch). With early stopping on, the model ends with the weights of the best
            epoch.

        Raises:
            ValueError: if ``train_data`` (or ``val_data``) yields no batches, or the monitored metric is missing.
            lstmkit.train.guards.DivergenceError: (a ``ValueError`` and a ``FloatingPointError``) if the loss or a
                gradient is NaN or infinite (with ``on_nonfinite="raise"``, or too many in a row; the message says
                where it arose), or if the loss rose orders of magnitude above the first step's (see
                :func:`lstmkit.train.guards.has_diverged`); the message names the learning rate.
            lstmkit.train.checkpoint.ResumeError: ``resume=True`` without a usable checkpoint, or a checkpoint from a
                different config or lstmkit version; ``resume=False`` over another run's checkpoints.
            lstmkit.train.checkpoint.CheckpointError: the run directory cannot hold checkpoints (checked before
                training), or a write failed mid-run (the last good checkpoint is intact).
        """
        device, start_epoch, position = self._start_fit(train_data, val_data, resume)
        finished = position is not None and bool(position.get("finished"))
        try:
            with open_progress(self.config.progress and self.is_main and not finished) as bar:
                for epoch in range(start_epoch, self.config.epochs + 1) if not finished else ():
                    row, epoch_stop = self._run_epoch(
                        epoch, train_data, val_data, device, bar, position if epoch == start_epoch else None
                    )
                    if self._end_epoch(epoch, row, epoch_stop, train_data, bar):
                        break
        finally:
            self._logs.close()
            call_hook(self.callbacks, "on_fit_end", self)
        self._best.restore(self.model)
        if self._average is not None:
            self.averaged_steps = self._average.apply(self.model, self.stop_reason)
        return self.history

    def _start_fit(self, train_data: Any, val_data: Any, resume: bool) -> tuple[torch.device, int, dict | None]:
        """Check the arguments, reset the run's counters, join the process group, resume or claim the run directory,
        write the step-0 checkpoint and open the logs. Returns the device, the first epoch and the resumed
        position (None when starting afresh)."""
        cfg = self.config
        self._best.check_val_data(val_data is not None)
        if resume and self.run_dir is None:
            raise ckpt.ResumeError("fit(resume=True) needs the Trainer's run_dir: that is where checkpoints are.")
        # weights, gradients, the optimizer's moments (Adam and AdamW keep two, SGD with momentum one) and the average
        moments = 2 if cfg.optimizer in ("adam", "adamw") else 1
        check_training_memory(self.model, 2 + moments + (1 if cfg.average_from_epoch else 0))
        seed_everything(cfg.seed)
        self.history = []
        self.stop_reason = None
        self._best.reset()
        self._nonfinite.step_ok()
        self._losses = LossWatch()
        self._fit_start = time.perf_counter()
        device = self._params[0].device
        self._average = WeightAverage(self.model, cfg.average_from_epoch) if cfg.average_from_epoch else None
        self.averaged_steps = 0
        self._dist = distributed.init_from_env(device)
        self._train_model = distributed.wrap_model(self.model, self._dist, device)
        start_epoch, position = 1, None
        if resume:
            position = self._resume(device)
            start_epoch = position["epoch"]
        elif self.checkpointing and not self._checkpoints.wrote:
            self._checkpoints.claim(self.is_main)
        distributed.barrier()  # every rank has read the run directory before rank 0 writes to it
        if self.run_dir is not None and self.kind is not None and self.is_main:
            # config.json as training starts: `lstmkit report` draws the run in progress, `lstmkit resume` continues it
            runs.start_run(self.run_dir, self.kind, self.run_config or {})
        if self.checkpointing:
            if self.is_main:
                ckpt.check_writable(self.run_dir, self._checkpoints.bytes_estimate(self.model))
            if position is None:  # a step-0 checkpoint: something to roll back to from the first step on
                self._checkpoints.snapshot_epoch_start(train_data)
                self._save_checkpoint({"epoch": start_epoch, "batches_done": 0, "chunks_done": 0}, None, None)
        self._logs = RunLogs(self.run_dir if self.is_main else None, steps=cfg.log_every_steps is not None)
        call_hook(self.callbacks, "on_fit_start", self)
        return device, start_epoch, position

    def _end_epoch(
        self, epoch: int, row: dict[str, Any], epoch_stop: bool, train_data: Any, bar: ProgressBar | EpochLines
    ) -> bool:
        """Record the epoch's row (history, logs, progress), decide whether to stop, and checkpoint the epoch's end.
        Returns whether to stop."""
        cfg = self.config
        if self._dist is not None:  # early stopping and the schedule decide from rank 0's numbers
            row = distributed.broadcast_object(row)
        self.history.append(row)
        self._logs.log_epoch(row)
        logger.info(
            "epoch %d/%d: %s",
            epoch,
            cfg.epochs,
            ", ".join(f"{k}={v:.5g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
        )
        bar.end_epoch(row, cfg.epochs, time.perf_counter() - self._fit_start)
        stop, improved = self._after_epoch(epoch, row)
        stop = stop or epoch_stop
        if self._dist is not None:  # one rank's callback (a wall-clock budget) must stop every rank
            stop = distributed.any_flag(stop)
        if self.checkpointing:
            finished = stop or epoch == cfg.epochs
            self._checkpoints.snapshot_epoch_start(train_data)  # the next epoch starts from here
            self._save_checkpoint(
                {"epoch": epoch + 1, "batches_done": 0, "chunks_done": 0, "finished": finished},
                None,
                None,
                best=improved,
                epoch_end=True,
            )
        return stop

    # ------------------------------------------------------------------ one epoch

    def _run_epoch(
        self,
        epoch: int,
        train_data: Any,
        val_data: Any,
        device: torch.device,
        bar: ProgressBar | EpochLines,
        position: dict[str, Any] | None,
    ) -> tuple[dict[str, Any], bool]:
        """One pass over ``train_data`` and the validation after it. Returns the metrics row and whether to stop.

        ``position`` (when resuming into this epoch) says how many batches and chunks were already trained on, and
        holds the RNG / data state of the epoch's start, the running sums, the carried state and the RNG state now.
        """
        self.model.train()
        total_batches = known_length(train_data)
        ep, (skip_batches, skip_chunks) = self._open_epoch(epoch, train_data, position)
        call_hook(self.callbacks, "on_epoch_start", self, epoch)
        bar.start_epoch(epoch, self.config.epochs, total_batches)
        iterator, pending = run_state.skip_done_batches(
            lambda: iterate(train_data, "train_data"), train_data, epoch, skip_batches, skip_chunks
        )
        if position is not None and (skip_batches or skip_chunks):
            ckpt.restore_rng(position["rng"])  # the RNGs as they were when the checkpoint was taken
        # (raw batch, first chunk to train): a resume first finishes the half-done batch from its next chunk
        batches = itertools.chain(((raw, skip_chunks) for raw in pending), ((raw, 0) for raw in iterator))
        stop = False
        for raw, first_chunk in batches:
            stop = self._train_batch(ep, raw, first_chunk, device, total_batches)
            elapsed = time.perf_counter() - ep.t0
            means = ep.acc.means.means()
            bar.update(loss=means.get("loss", math.nan), items_per_sec=ep.acc.items / elapsed if elapsed > 0 else 0.0)
            if stop:
                break
        if ep.acc.n_batches == 0:
            raise no_batches_error(epoch)
        return self._epoch_row(ep, val_data, device), stop

    def _open_epoch(
        self, epoch: int, train_data: Any, position: dict[str, Any] | None
    ) -> tuple[_Epoch, tuple[int, int]]:
        """Snapshot the epoch's start (RNGs, data state) for later resumes, or, resuming into it, put that start
        back and take up its running sums and carried state. Returns the epoch and the (batches, chunks) done."""
        if position is None:
            self._checkpoints.snapshot_epoch_start(train_data)
            acc = EpochSums()
            return _Epoch(epoch, acc, time.perf_counter() - acc.seconds_before), (0, 0)
        self._checkpoints.epoch_start = position["epoch_start"]
        run_state.restore_epoch_start(train_data, position["epoch_start"])
        acc = EpochSums.from_state(position["acc"]) if position["acc"] is not None else EpochSums()
        ep = _Epoch(epoch, acc, time.perf_counter() - acc.seconds_before)
        ep.state, ep.prev_batch_size = position["carried_state"], position["prev_batch_size"]
        return ep, (position["batches_done"], position["chunks_done"])

    def _train_batch(
        self, ep: _Epoch, raw: Any, first_chunk: int, device: torch.device, total_batches: int | None
    ) -> bool:
        """Train on one batch, chunk by chunk from ``first_chunk`` (0 but for a half-done batch of a resume);
        checkpoint when due. Returns whether the run's budget (steps, minutes) is spent."""
        cfg = self.config
        batch = as_batch(raw, device)
        if self._dist is not None:
            batch = distributed.shard_batch(batch, self._dist.rank, self._dist.world_size)
        batch_size = batch[0].shape[0]
        if first_chunk == 0:  # a new batch: the state carries over only when asked and the rows line up
            ep.acc.n_batches += 1
            if not cfg.carry_state_across_batches or batch_size != ep.prev_batch_size:
                ep.state = None
        ep.prev_batch_size = batch_size
        chunks = split_time(batch, cfg.tbptt_steps) if cfg.tbptt_steps is not None else [batch]
        if self.schedule.total_steps is None:
            self.schedule.infer_total_steps(total_batches, len(chunks))
        for chunk_index in range(first_chunk, len(chunks)):
            out = self._train_chunk(ep, chunks[chunk_index], chunk_index, len(chunks))
            stop = self._budget_spent()
            every = cfg.checkpoint_every_steps
            if self.checkpointing and every is not None and out is not None and self.global_step % every == 0:
                if not stop:
                    self._checkpoint_mid_epoch(ep, chunk_index, len(chunks))
            if stop:
                return True
        return False

    def _train_chunk(self, ep: _Epoch, chunk: Batch, chunk_index: int, n_chunks: int) -> StepOutput | None:
        """One optimizer step on ``chunk``, added to the epoch's sums (and ``steps.csv``). Returns the step's output,
        or None for a non-finite step that was skipped or rolled back (the carried state is then dropped)."""
        cfg = self.config
        out, grad_norm, lr = self._optimizer_step(chunk, ep.state, ep.number, ep.acc.n_batches, chunk_index, n_chunks)
        if out is None:  # a non-finite step, skipped or rolled back: the carried state is not trusted
            ep.acc.nonfinite += 1
            ep.state = None
            return None
        if cfg.tbptt_steps is not None or cfg.carry_state_across_batches:
            ep.state = detach_state(out.state)
        n = out.n_items if out.n_items is not None else chunk[0].shape[0]
        loss_value = float(out.loss.detach().item())
        ep.acc.add_step({"loss": loss_value, **step_metrics(out)}, n, grad_norm, lr)
        if self._logs.steps is not None and self.global_step % cfg.log_every_steps == 0:
            step_row = {
                "epoch": ep.number,
                "step": self.global_step,
                "loss": loss_value,
                "lr": lr,
                "grad_norm": grad_norm,
                "seconds": time.perf_counter() - self._fit_start,
            }
            self._logs.log_step(step_row)
        return out

    def _budget_spent(self) -> bool:
        """Whether ``max_steps`` or ``max_minutes`` is reached (then ``stop_reason`` says which)."""
        cfg = self.config
        if cfg.max_steps is not None and self.global_step >= cfg.max_steps:
            self.stop_reason = "max_steps"
            return True
        if cfg.max_minutes is not None and time.perf_counter() - self._fit_start >= cfg.max_minutes * 60:
            self.stop_reason = "max_minutes"
            return True
        return False

    def _checkpoint_mid_epoch(self, ep: _Epoch, chunk_index: int, n_chunks: int) -> None:
        """A checkpoint after the step on chunk ``chunk_index`` of the epoch's current batch."""
        last = chunk_index == n_chunks - 1
        ep.acc.seconds_before = time.perf_counter() - ep.t0
        position = {
            "epoch": ep.number,
            "batches_done": ep.acc.n_batches if last else ep.acc.n_batches - 1,
            "chunks_done": 0 if last else chunk_index + 1,
            "prev_batch_size": ep.prev_batch_size,
        }
        self._save_checkpoint(position, ep.acc, ep.state)

    def _epoch_row(self, ep: _Epoch, val_data: Any, device: torch.device) -> dict[str, Any]:
        """The epoch's metrics row: training means (over every rank), validation, the callbacks' columns, then lr,
        grad norms, non-finite steps, throughput and seconds."""
        acc = ep.acc
        train_seconds = time.perf_counter() - ep.t0
        if self._dist is not None:  # the epoch's means over every rank's rows
            acc.sum_over(distributed.all_reduce_sum)
        train_means = acc.means.means()
        row: dict[str, Any] = {"epoch": ep.number, "step": self.global_step}
        row["train_loss"] = train_means.pop("loss", math.nan)
        row.update({f"train_{k}": v for k, v in train_means.items()})
        if val_data is not None:
            add_validation(row, self.evaluate(val_data, device))
        row.update(epoch_columns(self.callbacks, self, ep.number))  # gate statistics ..., between validation and lr
        row.update(acc.summary(train_seconds))
        row["seconds"] = time.perf_counter() - ep.t0
        return row

    # ------------------------------------------------------------------ one step

    def _autocast(self) -> Any:
        """``torch.autocast`` to bfloat16 on the model's device when ``config.precision == "bf16"``, else a no-op."""
        if self.config.precision != "bf16":
            return contextlib.nullcontext()
        return torch.autocast(self._params[0].device.type, dtype=torch.bfloat16)

    def _optimizer_step(
        self, chunk: Batch, state: Any, epoch: int, batch_index: int, chunk_index: int, n_chunks: int
    ) -> tuple[StepOutput | None, float, float]:
        """Forward, backward, clip and step on one chunk. Returns the output, the pre-clip grad norm and the lr;
        the output is None when the step was not finite and was skipped or rolled back."""
        cfg = self.config
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            out = self.loss_fn(self._train_model, chunk, state)
        check_step_output(out)
        lr = self.schedule.lr_at(self.global_step)
        where = f"epoch {epoch}, step {self.global_step + 1} (batch {batch_index} of the epoch" + (
            f", chunk {chunk_index + 1}/{n_chunks})" if n_chunks > 1 else ")"
        )
        loss_value = float(out.loss.detach().item())
        bad, diverged = self._losses.judge(loss_value, self._dist)
        if bad:
            finite_here = math.isfinite(loss_value)
            what = "Non-finite loss on another rank" if finite_here else f"Non-finite loss ({loss_value})"
            return self._on_nonfinite(f"{what} at {where}", chunk, state), math.nan, lr
        if diverged:
            self.optimizer.zero_grad(set_to_none=True)
            raise self._losses.error(loss_value, cfg.lr, self.global_step + 1, epoch, self._dist is not None)
        self._losses.add(loss_value)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        out.loss.backward()
        norm = clip_gradients(self._params, cfg.clip_grad_norm)
        if not math.isfinite(norm):
            bad = nonfinite_grads(self.model)
            what = f"Non-finite gradient (global norm {norm}) at {where}, in {', '.join(bad) or 'a parameter'}"
            return self._on_nonfinite(what, chunk, state), math.nan, lr
        self.optimizer.step()
        self.global_step += 1
        self._nonfinite.step_ok()
        if self._average is not None:
            self._average.update(self.model, epoch)
        return out, norm, lr

    def _on_nonfinite(self, what: str, chunk: Batch, state: Any) -> None:
        """Diagnose a non-finite step, then raise, skip it or roll back, as ``config.on_nonfinite`` says."""
        self.optimizer.zero_grad(set_to_none=True)

        def rollback() -> str | None:
            last = ckpt.latest_checkpoint(self.run_dir) if self.checkpointing else None
            if last is None:
                return None
            self._restore_weights(last)
            return last.name

        message = self._nonfinite.handle(
            what,
            self.model,
            lambda: self.loss_fn(self.model, chunk, state),
            chunk,
            self._autocast,
            self._dist,
            rollback,
        )
        self.nonfinite_events.append(message)

    # ------------------------------------------------------------------ checkpoints (see lstmkit.train.state)

    def _save_checkpoint(
        self,
        position: dict[str, Any],
        acc: EpochSums | None,
        state: Any,
        *,
        best: bool = False,
        epoch_end: bool = False,
    ) -> Path | None:
        """Write a checkpoint after ``self.global_step``; refuses (with a warning) to write non-finite weights."""

        def progress(tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
            average = self._average.state_dict() if self._average is not None else None
            return {
                "optimizer": ckpt.flatten_state(self.optimizer.state_dict(), tensors, "optimizer"),
                "schedule": self.schedule.state_dict(),
                "history": self.history,
                "best": self._best.state_dict(),
                "stop_reason": self.stop_reason,
                "nonfinite_events": self.nonfinite_events,
                "losses": self._losses.state_dict(),
                "average": ckpt.flatten_state(average, tensors, "average") if average is not None else None,
                "callbacks": run_state.callback_states(self.callbacks, tensors),
            }

        return self._checkpoints.save(
            self.model, self.global_step, position, acc, state, progress, self._dist, best=best, epoch_end=epoch_end
        )

    def _restore_weights(self, path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """Load weights, optimizer, schedule, step counter (and the running mean of the weights) from a checkpoint;
        return its meta and tensors."""
        meta, tensors = run_state.restore_weights(path, self.model, self.optimizer, self.schedule, self._average)
        self.global_step = meta["global_step"]
        return meta, tensors

    def _resume(self, device: torch.device) -> dict[str, Any]:
        """Restore everything from the newest checkpoint; return the position to continue from."""
        path, _ = self._checkpoints.newest()
        meta, tensors = self._restore_weights(path)
        self.history = list(meta["history"])
        self._best.load_state_dict(meta["best"])
        self.stop_reason = meta["stop_reason"]
        self.nonfinite_events = list(meta.get("nonfinite_events") or [])
        self._losses.load_state_dict(meta.get("losses"))
        if self._best.epoch is not None:
            marked = self._checkpoints.find_best(path, meta, self._best.epoch, self.is_main)
            if marked is not None and self.config.early_stopping_patience is not None:
                self._best.weights, _, _ = ckpt.read_checkpoint(marked)
        run_state.load_callback_states(self.callbacks, meta["callbacks"], tensors)
        if self.is_main:
            self._checkpoints.rewrite_logs(len(self.history), self.global_step)
        self._checkpoints.last, self._checkpoints.wrote = path, True
        position = run_state.rank_position(path, meta, tensors, self._dist, device)
        logger.info("resumed from %s (step %d, epoch %d)", path, self.global_step, position["epoch"])
        return position

    # ------------------------------------------------------------------ evaluation and stopping

    def evaluate(self, val_data: Any, device: torch.device | None = None) -> dict[str, float]:
        """Validation metrics of the current model: ``eval_fn(model, val_data)``, or the mean ``loss_fn`` as
        ``val_loss`` (and ``val_<name>`` for each ``StepOutput.metrics`` entry), in eval mode without gradients
        (see :func:`lstmkit.train.evaluation.evaluate`).

        Raises:
            ValueError: if the default evaluation finds no batches in ``val_data``.
        """
        return evaluate(
            self.model,
            val_data,
            loss_fn=self.loss_fn,
            eval_fn=self.eval_fn,
            device=device or self._params[0].device,
            carry_state=self.config.carry_state_across_batches,
            autocast=self._autocast,
        )

    def _after_epoch(self, epoch: int, row: dict[str, Any]) -> tuple[bool, bool]:
        """Best-epoch tracking, early stopping, the plateau schedule and callbacks.

        Returns:
            (stop, improved): whether to stop, and whether this epoch is the best so far by ``monitor``.
        """
        value, improved, stop = self._best.update(epoch, row, self.model)
        if stop:
            self.stop_reason = "early_stopping"
        self.schedule.on_epoch_end(value if self._best.needs_monitor else None)
        for callback in self.callbacks:
            hook = getattr(callback, "on_epoch_end", None)
            if hook is not None and hook(self, epoch, dict(row)) is True:
                logger.info("callback %s stopped training at epoch %d", type(callback).__name__, epoch)
                self.stop_reason = self.stop_reason or "callback"
                stop = True
        return stop, improved
