"""The streaming step of a plain LSTM layer with projection (LSTMP), at small batch, without autograd.

Without projection ``LSTM.step`` calls PyTorch's C++ ``torch.lstm_cell``, which has no projection; this is the
same step in Python ops with the projection added. A one-step call through a fused sequence kernel pays for
reordering its weights on every call (oneDNN); here a layer step is two matrix products straight from the live
parameters and six element-wise ops. The weights are deliberately not packed into a cached copy: an optimizer
that updates parameters without bumping their version counters (fused Adam, updates through ``p.data``) would
leave such a cache silently stale. Pinned to the reference cell by ``tests/nn/test_streaming.py``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..functional import LSTMLayerWeights


def step(x: Tensor, h: Tensor, c: Tensor, w: LSTMLayerWeights) -> tuple[Tensor, Tensor]:
    """x (B, I), h (B, S), c (B, H) -> (h', c'), for the plain cell (projection allowed)."""
    # fmt: off
    H = w.hidden_size
    if w.bias_ih is not None:
        z = torch.addmm(w.bias_ih, x, w.weight_ih.T)                             # (B, 4H)
    else:
        z = torch.mm(x, w.weight_ih.T)
    z.addmm_(h, w.weight_hh.T)
    if w.bias_hh is not None:
        z += w.bias_hh
    g = torch.tanh(z[:, 2 * H:3 * H])
    z = z.sigmoid_()
    c = torch.addcmul(z[:, H:2 * H] * c, z[:, :H], g)                          # f * c + i * g
    h = z[:, 3 * H:] * torch.tanh(c)                                            # (B, H)
    if w.weight_hr is not None:
        h = h @ w.weight_hr.T                                                   # (B, P)
    # fmt: on
    return h, c
