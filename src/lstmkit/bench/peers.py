"""What several suites share: the torch pairs and their train / infer callables, the LSTMCell loop, JAX."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any

import torch

from .. import nn as lnn
from .core import Config, Skip


def import_jax():
    """``(jax, jax.numpy)``, float32 on CPU, or :class:`Skip` when the bench extra is not installed."""
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    try:
        jax = importlib.import_module("jax")
        jnp = importlib.import_module("jax.numpy")
    except ImportError as exc:
        raise Skip(f"JAX is not installed ({exc}); pip install -e '.[bench]' for this peer") from None
    return jax, jnp


def pair(cfg: Config, **variant: Any) -> tuple[lnn.LSTM, torch.nn.LSTM]:
    """lstmkit's LSTM and torch.nn.LSTM with the same plain weights (variant-only weights keep lstmkit's init)."""
    peer = torch.nn.LSTM(cfg.I, cfg.H, cfg.L, batch_first=True)
    mine = lnn.LSTM(cfg.I, cfg.H, cfg.L, batch_first=True, backend="auto", **variant)
    if not variant:
        mine.load_state_dict(peer.state_dict())
    return mine, peer


def train_fn(model: torch.nn.Module, x: torch.Tensor) -> Callable[[], None]:
    """One training step's work: forward, ``outputs.sum()``, backward (gradients reset to None first)."""
    params = list(model.parameters())
    model.train()

    def train() -> None:
        for p in params:
            p.grad = None
        out, _ = model(x)
        out.sum().backward()

    return train


def infer_fn(model: torch.nn.Module, x: torch.Tensor) -> Callable[[], None]:
    """A forward call under ``torch.inference_mode`` (the callable enters it; both sides pay the same)."""
    model.eval()

    def infer() -> None:
        with torch.inference_mode():
            model(x)

    return infer


class CellLoop(torch.nn.Module):
    """The hand-written reference peer: a Python loop over ``torch.nn.LSTMCell``, layer by layer."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int) -> None:
        super().__init__()
        self.cells = torch.nn.ModuleList(
            torch.nn.LSTMCell(input_size if k == 0 else hidden_size, hidden_size) for k in range(num_layers)
        )

    def forward(self, x: torch.Tensor):  # x (B, T, I)
        seq = x.unbind(1)
        for cell in self.cells:
            h = c = x.new_zeros(x.shape[0], cell.hidden_size)
            outs = []
            for x_t in seq:
                h, c = cell(x_t, (h, c))
                outs.append(h)
            seq = outs
        return torch.stack(seq, dim=1), None
