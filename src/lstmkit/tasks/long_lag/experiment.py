"""The long-time-lag proof: train LSTM, GRU or tanh RNN on the 1997 tasks and their modern forms, and judge them.

Each run trains on freshly generated sequences (as the paper did: no fixed training set), checks the task's
success criterion on a validation batch every ``eval_every`` steps, stops when solved or out of budget, and
reports the criterion on ``test_size`` fresh test sequences (2,560, the paper's test size). Pictures of the
gradient norm against time lag (at initialisation and after training) and of the gates go into the run directory.

Example:
    >>> cfg = ExperimentConfig.from_dict({"task": "adding", "cell": "lstm", "length": 20, "max_sequences": 2000})
    >>> result = run(cfg)  # doctest: +SKIP
    >>> result.summary()["solved"]  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ... import runs
from ..._atomic import atomic_write_bytes
from ...data import SeededDraws
from ...nn import hidden_grad_norms
from ...train import StepOutput, Trainer, register_resumer, resolve_device, seed_everything
from ...train.distributed import is_main_process
from ..sequence.model import ModelConfig, SequenceModel
from ..training import task_trainer
from . import problems as data
from .config import ExperimentConfig, LongLagNet, LongLagTrain

KIND = "long_lag"

__all__ = ["ExperimentConfig", "ExperimentResult", "LongLagNet", "LongLagRun", "LongLagTrain", "model_config", "run"]


def model_config(cfg: ExperimentConfig) -> ModelConfig:
    """The :class:`SequenceModel` config of an experiment: the task's sizes and readout, the ``net`` section's sizes."""
    spec = data.get_task(cfg.task)
    input_size, output_size = spec.sizes(cfg.resolved_length)
    readout = "all" if spec.kind == "classification per step" else "last"
    net = cfg.net
    return ModelConfig(
        input_size=input_size, output_size=output_size, cell=net.cell, hidden_size=net.hidden_size,
        num_layers=net.num_layers, readout=readout,
        **({"forget_bias": net.forget_bias} if net.cell == "lstm" else {}),
    )  # fmt: skip


def _as_tuple(batch: dict[str, Tensor | None]) -> tuple:
    """Trainer batches are tuples: (x, y, lengths, mask)."""
    return (batch["x"], batch["y"], batch["lengths"], batch["mask"])


def _loss(spec: data.TaskSpec, pred: Tensor, y: Tensor) -> Tensor:
    if spec.kind == "regression":
        return F.mse_loss(pred, y)
    if spec.kind == "classification at end":
        return F.cross_entropy(pred, y)
    return F.cross_entropy(pred.reshape(-1, pred.shape[-1]), y.reshape(-1), ignore_index=data.IGNORE_INDEX)


@dataclass
class ExperimentResult:
    """What a run found. ``summary()`` is the JSON document the CLI prints."""

    config: ExperimentConfig
    metric: str
    value: float
    baseline: float
    solved: bool
    sequences_seen: int
    sequences_to_solve: int | None
    seconds: float
    parameters: int
    criterion: str
    run_dir: str | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "task": self.config.task,
            "model": self.config.net.cell,
            "length": self.config.resolved_length,
            "metric": self.metric,
            "value": self.value,
            "baseline": self.baseline,
            "solved": self.solved,
            "criterion": self.criterion,
            "sequences_seen": self.sequences_seen,
            "sequences_to_solve": self.sequences_to_solve,
            "seconds": round(self.seconds, 2),
            "parameters": self.parameters,
            "hidden_size": self.config.net.hidden_size,
            "forget_bias": self.config.net.forget_bias if self.config.net.cell == "lstm" else None,
            "seed": self.config.train.seed,
            "run_dir": self.run_dir,
        }


class _SolvedCheck:
    """Trainer callback: stop when the validation batch meets the success criterion, or the budget is spent."""

    def __init__(self, cfg: ExperimentConfig, started: float) -> None:
        self.cfg, self.started = cfg, started
        self.solved_at: int | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"solved_at": self.solved_at, "elapsed": time.perf_counter() - self.started}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue a resumed run: the time budget counts the seconds spent before the crash."""
        self.solved_at = state["solved_at"]
        self.started = time.perf_counter() - state["elapsed"]

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, Any]) -> bool:
        seen = trainer.global_step * self.cfg.train.batch_size
        if metrics.get("val_solved", 0.0) >= 1.0 and self.solved_at is None:
            self.solved_at = seen
            return True
        minutes = self.cfg.train.max_minutes
        out_of_time = minutes is not None and time.perf_counter() - self.started >= 60.0 * minutes
        return seen >= self.cfg.max_sequences or out_of_time


def _on(batch: dict[str, Tensor | None], device: torch.device) -> dict[str, Tensor | None]:
    return {k: v.to(device) if isinstance(v, Tensor) else v for k, v in batch.items()}


def gradient_flow(model: SequenceModel, spec: data.TaskSpec, length: int, seed: int, batch_size: int = 64) -> Tensor:
    """||dL/dh_t|| of the top layer at every step on one batch, ordered by time lag T-1-t (index 0 = last step)."""
    device = next(model.parameters()).device
    batch = _on(spec.make_batch(batch_size, length, torch.Generator().manual_seed(seed)), device)
    was_training = model.training
    model.eval()
    pred, _, h_steps = model(batch["x"], None, batch["lengths"], record=True)
    loss = _loss(spec, pred, batch["y"])
    norms = hidden_grad_norms(loss, h_steps)
    model.train(was_training)
    return norms.flip(0).cpu()


class _TrainBatches(SeededDraws):
    """``eval_every`` fresh training batches per epoch from the task's generator, which it owns: its state is the
    data's state, checkpointed at each epoch start so a resumed run sees the same sequences."""

    def __init__(self, spec: data.TaskSpec, cfg: ExperimentConfig, length: int, seed: int) -> None:
        super().__init__(lambda g: _as_tuple(spec.make_batch(cfg.train.batch_size, length, g)), cfg.eval_every, seed)
        self.spec, self.cfg, self.length = spec, cfg, length


def run(
    cfg: ExperimentConfig, run_dir: str | os.PathLike[str] | None = None, *, resume: bool = False
) -> ExperimentResult:
    """Train and judge one model on one task. Writes a run directory when ``run_dir`` is given.

    With ``resume=True`` the run continues from the newest checkpoint in ``run_dir`` (after a crash or a kill) and
    ends as the uninterrupted run would have, bit for bit on CPU, unless the time budget (``train.max_minutes``) cut it.
    """
    spec = data.get_task(cfg.task)
    length = cfg.resolved_length
    seed_everything(cfg.train.seed)
    device = resolve_device(cfg.train.device)
    model = SequenceModel(model_config(cfg)).to(device)
    out = Path(run_dir) if run_dir is not None else None
    if out is not None:
        if runs.is_finished(out):
            raise FileExistsError(
                f"{out} already holds a finished run (config.json exists); choose another --out or delete that "
                "directory."
            )
        out.mkdir(parents=True, exist_ok=True)
    elif resume:
        raise ValueError("resume=True needs the run directory that holds the checkpoints (run_dir / --out).")
    seed = cfg.train.seed
    norms_init = gradient_flow(model, spec, length, seed + 7)

    train_data = _TrainBatches(spec, cfg, length, seed + 1)
    val_batch = _on(spec.make_batch(cfg.val_size, length, torch.Generator().manual_seed(seed + 2)), device)

    def loss_fn(model, batch, state):
        x, y, lengths, _ = batch
        pred, _ = model(x, None, lengths)
        return StepOutput(loss=_loss(spec, pred, y), n_items=x.shape[0])

    def eval_fn(model, _val):
        pred, _ = model(val_batch["x"], None, val_batch["lengths"])
        solved, value = spec.success(pred, val_batch)
        return {"val_loss": float(_loss(spec, pred, val_batch["y"])), f"val_{spec.metric}": value,
                "val_solved": float(solved)}  # fmt: skip

    started = time.perf_counter()
    check = _SolvedCheck(cfg, started)
    epochs = min(cfg.train.epochs, math.ceil(cfg.max_sequences / (cfg.train.batch_size * cfg.eval_every)))
    # the time budget is _SolvedCheck's (checked at epoch ends), not the Trainer's (checked after every step)
    train_cfg = cfg.train.replace(epochs=epochs, max_minutes=None)
    # a resume may move the run to another device (unlike the other tasks, whose run config keeps train.device)
    trainer = task_trainer(model, loss_fn, cfg, kind=KIND, run_dir=out, train=train_cfg, eval_fn=eval_fn,
                           callbacks=[check], resume_may_change=("device",))  # fmt: skip
    trainer.fit(train_data, val_data=[val_batch], resume=resume)
    seconds = time.perf_counter() - started

    test_batch = _on(spec.make_batch(cfg.test_size, length, torch.Generator().manual_seed(seed + 3)), device)
    model.eval()
    with torch.no_grad():
        pred, _ = model(test_batch["x"], None, test_batch["lengths"])
    solved, value = spec.success(pred, test_batch)
    result = ExperimentResult(
        config=cfg, metric=spec.metric, value=float(value), baseline=float(spec.baseline(length)),
        solved=bool(solved), sequences_seen=trainer.global_step * cfg.train.batch_size,
        sequences_to_solve=check.solved_at if solved else None, seconds=seconds,
        parameters=model.num_parameters(), criterion=spec.criterion,
        run_dir=str(out) if out is not None else None,
    )  # fmt: skip
    if out is not None and is_main_process():
        _write_run(out, cfg, model, result, spec, length, norms_init)
    return result


def _write_run(out: Path, cfg, model: SequenceModel, result: ExperimentResult, spec, length: int, norms_init) -> None:
    from ...viz.plots import plot_gates, plot_gradient_flow

    norms_trained = gradient_flow(model, spec, length, cfg.train.seed + 7)
    extra = {"gradient_norms_init": norms_init, "gradient_norms_trained": norms_trained}
    runs.save_run(out, KIND, {"experiment": cfg.to_dict(), "model": model_config(cfg).to_dict()}, model, extra)
    lags = torch.arange(norms_init.shape[0]).numpy()
    plot_gradient_flow(
        lags, {f"{cfg.net.cell} (init)": norms_init.numpy(), f"{cfg.net.cell} (trained)": norms_trained.numpy()},
        out / "gradient_flow.png", title=f"{cfg.task}, T={length}: ||dL/dh_t|| against time lag",
    )  # fmt: skip
    if cfg.net.cell == "lstm":
        batch = spec.make_batch(1, length, torch.Generator().manual_seed(cfg.train.seed + 11))
        with torch.no_grad():
            model.eval()
            on_device = _on(batch, next(model.parameters()).device)
            model(on_device["x"], None, on_device["lengths"], record=True)
        trace = model.last_trace
        plot_gates(
            trace.gates[-1][0][0].cpu().numpy(), trace.cells[-1][0][0].cpu().numpy(), out / "gates.png",
            inputs=batch["x"][0].numpy(),
        )  # fmt: skip
    tmp = out / "result.json.tmp"
    tmp.write_text(json.dumps(result.summary(), indent=2) + "\n")
    os.replace(tmp, out / "result.json")
    from ...report import write_report

    write_report(out)  # report.html: the curves, the config, the result and the pictures above


@runs.register_kind(KIND)
class LongLagRun:
    """A finished long-lag run, as ``lstmkit.load(run_dir)`` returns it: the config, the model and the result."""

    def __init__(self, config: ExperimentConfig, model: SequenceModel, result: dict[str, Any] | None) -> None:
        self.config, self.model, self.result = config, model, result

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LongLagRun:
        saved = runs.read_run_config(path)["config"]
        cfg = ExperimentConfig.from_dict(saved["experiment"])
        model = SequenceModel(ModelConfig.from_dict(saved["model"]))
        model.load_state_dict(runs.read_state_dict(path))
        model.eval()
        result_path = Path(path) / "result.json"
        result = json.loads(result_path.read_text()) if result_path.exists() else None
        return cls(cfg, model, result)

    def save(self, run_dir: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write this run to ``run_dir`` (config.json, model.safetensors and result.json) so that ``load`` reads it.

        Raises:
            FileExistsError: if ``run_dir`` holds a saved run and ``overwrite`` is false.
        """
        payload = {"experiment": self.config.to_dict(), "model": model_config(self.config).to_dict()}
        out = runs.save_run(run_dir, KIND, payload, self.model, overwrite=overwrite)
        if self.result is not None:
            atomic_write_bytes(out / "result.json", (json.dumps(self.result, indent=2) + "\n").encode())
        return out

    def evaluate(self, test_size: int = 2560, seed: int = 12345) -> dict[str, Any]:
        """Judge the model again on fresh sequences: ``{"metric", "value", "solved"}``."""
        spec = data.get_task(self.config.task)
        batch = spec.make_batch(test_size, self.config.resolved_length, torch.Generator().manual_seed(seed))
        with torch.no_grad():
            pred, _ = self.model(batch["x"], None, batch["lengths"])
        solved, value = spec.success(pred, batch)
        return {"metric": spec.metric, "value": float(value), "solved": bool(solved)}


def _resume(run_dir: Path, run_config: dict[str, Any]) -> ExperimentResult:
    return run(ExperimentConfig.from_dict(run_config), run_dir, resume=True)


register_resumer(KIND, _resume)
