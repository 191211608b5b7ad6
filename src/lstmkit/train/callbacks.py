"""Training callbacks: the :class:`Callback` protocol and :class:`GateStatistics`, the gate-saturation columns.

The loop calls each hook a callback has (every one is optional): ``on_fit_start(trainer)`` before the first epoch,
``on_epoch_start(trainer, epoch)`` before its first batch, ``epoch_metrics(trainer, epoch) -> dict`` for extra columns
of the epoch's row (after the validation columns), ``on_epoch_end(trainer, epoch, metrics) -> bool | None`` (True
stops training) and ``on_fit_end(trainer)`` when ``fit`` ends, however it ends. A callback with ``state_dict()`` /
``load_state_dict()`` has its state checkpointed.

The loop knows nothing of LSTMs: :class:`GateStatistics` finds the modules to report on by duck typing (any module
with a ``gate_saturation(*inputs)`` method, as lstmkit's LSTM has), and the task adds it.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Protocol

import torch

from lstmkit.train import checkpoint as ckpt
from lstmkit.train.tensors import detached

__all__ = ["Callback", "GateStatistics", "call_hook", "epoch_columns"]

logger = logging.getLogger(__name__)


class Callback(Protocol):
    """A training callback. Every method is optional; the loop only calls the ones an object has (see the module)."""

    def on_epoch_end(self, trainer: Any, epoch: int, metrics: dict[str, Any]) -> bool | None:
        """Called after each epoch with its metrics row (``epoch`` is 1-based); return True to stop training."""
        ...


def call_hook(callbacks: list[Any], hook: str, trainer: Any, *args: Any) -> None:
    """Call ``hook(trainer, *args)`` on every callback that has it."""
    for callback in callbacks:
        method = getattr(callback, hook, None)
        if method is not None:
            method(trainer, *args)


def epoch_columns(callbacks: list[Any], trainer: Any, epoch: int) -> dict[str, Any]:
    """The extra columns of an epoch's row from every callback with ``epoch_metrics``, in the callbacks' order."""
    columns: dict[str, Any] = {}
    for callback in callbacks:
        extra = getattr(callback, "epoch_metrics", None)
        if extra is not None:
            columns.update(extra(trainer, epoch))
    return columns


class GateStatistics:
    """Per gate, the fraction of saturated activations on each epoch's first training batch, for each module of the
    model that has ``gate_saturation(*inputs)``: columns ``gate_sat_i`` ... ``gate_sat_o`` (``<module>.gate_sat_i``
    when the model has several). Every column comes every epoch (NaN when unknown), so the CSV header is fixed by the
    first row; the statistics move neither the RNGs nor the weights."""

    def __init__(self) -> None:
        self._inputs: dict[str, tuple[Any, Any]] = {}  # first training input of each gate-reporting module
        self._handles: list[Any] = []

    @staticmethod
    def modules(model: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
        """Submodules that can report gate saturation."""
        return [(n, m) for n, m in model.named_modules() if callable(getattr(m, "gate_saturation", None))]

    def on_fit_start(self, trainer: Any) -> None:
        """Forward pre-hooks that keep each gate-reporting module's first training input of the epoch."""

        def probe(name: str):
            def hook(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
                if module.training and name not in self._inputs:
                    self._inputs[name] = (detached(args), detached(kwargs))

            return hook

        self._handles = [
            m.register_forward_pre_hook(probe(n), with_kwargs=True) for n, m in self.modules(trainer.model)
        ]

    def on_epoch_start(self, trainer: Any, epoch: int) -> None:
        self._inputs = {}

    def on_fit_end(self, trainer: Any) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def epoch_metrics(self, trainer: Any, epoch: int) -> dict[str, float]:
        modules = dict(self.modules(trainer.model))
        out: dict[str, float] = {}
        for name in modules:
            prefix = "gate_sat" if len(modules) == 1 else f"{name}.gate_sat"
            out.update({f"{prefix}_{gate}": math.nan for gate in "ifgo"})
        rng = ckpt.capture_rng()
        for name, (args, kwargs) in self._inputs.items():
            module = modules[name]
            was_training = module.training
            module.eval()
            try:
                with torch.no_grad():
                    stats = module.gate_saturation(*args, **kwargs)
            except Exception as e:  # noqa: BLE001  (statistics must never stop training)
                logger.debug("gate statistics of %s skipped: %s", name, e)
                continue
            finally:
                module.train(was_training)
            prefix = "gate_sat" if len(modules) == 1 else f"{name}.gate_sat"
            out.update({f"{prefix}_{gate}": float(v) for gate, v in stats.items() if f"{prefix}_{gate}" in out})
        ckpt.restore_rng(rng)
        return out
