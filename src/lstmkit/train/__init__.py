"""lstmkit.train: a plain training loop that knows nothing of LSTMs.

Full and truncated BPTT, gradient clipping, optimizers and learning-rate schedules, early stopping, a metrics CSV and a
progress bar; crash-safe checkpoints with exact resume (:func:`resume`), and guards against non-finite steps. The task
supplies ``loss_fn(model, batch, state) -> StepOutput``; see :class:`Trainer`.
"""

from lstmkit.config import TrainConfig
from lstmkit.train.callbacks import Callback, GateStatistics
from lstmkit.train.checkpoint import CheckpointError, ResumeError
from lstmkit.train.devices import resolve_device
from lstmkit.train.guards import DivergenceError
from lstmkit.train.loop import EvalFn, LossFn, StepOutput, Trainer, seed_everything, split_time
from lstmkit.train.metrics import MetricsLogger
from lstmkit.train.optim import LRSchedule, build_optimizer, build_schedule
from lstmkit.train.resume import register_resumer, resume
from lstmkit.train.tensors import detach_state

__all__ = [
    "resolve_device",
    "Callback",
    "CheckpointError",
    "DivergenceError",
    "EvalFn",
    "GateStatistics",
    "LRSchedule",
    "LossFn",
    "MetricsLogger",
    "ResumeError",
    "StepOutput",
    "TrainConfig",
    "Trainer",
    "build_optimizer",
    "build_schedule",
    "detach_state",
    "register_resumer",
    "resume",
    "seed_everything",
    "split_time",
]
