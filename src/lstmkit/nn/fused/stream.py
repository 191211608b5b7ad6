"""The streaming step: one time step of a plain LSTM stack at small batch, with pre-packed weights.

A one-step call through a fused sequence kernel pays for reordering its weights on every call (oneDNN) and
dispatches a dozen ops; here each layer is one matrix product of ``[x, h]`` with the packed ``[W_ih | W_hh]``
and six element-wise ops. No autograd: this path runs under ``torch.no_grad`` / inference. Pinned to the
reference cell by ``tests/nn/test_streaming.py``.
"""

from __future__ import annotations

import torch
from torch import Tensor


class PackedLayer:
    """One layer's weights packed for the step: W (4H, I+S), bias (4H,), projection (H, P) transposed."""

    def __init__(self, weight_ih: Tensor, weight_hh: Tensor, bias: Tensor | None, weight_hr: Tensor | None):
        # fmt: off
        self.hidden_size = weight_hh.shape[0] // 4
        self.weight_t = torch.cat((weight_ih, weight_hh), dim=1).T.contiguous()   # (I+S, 4H)
        self.bias = (bias if bias is not None else weight_ih.new_zeros(weight_ih.shape[0])).reshape(1, -1)  # (1, 4H)
        self.weight_hr_t = weight_hr.T.contiguous() if weight_hr is not None else None    # (H, P)
        # fmt: on

    def step(self, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, I), h (B, S), c (B, H) -> (h', c')."""
        # fmt: off
        H = self.hidden_size
        z = torch.addmm(self.bias, torch.cat((x, h), dim=1), self.weight_t)     # (B, 4H)
        g = torch.tanh(z[:, 2 * H:3 * H])
        z = z.sigmoid_()
        c = torch.addcmul(z[:, H:2 * H] * c, z[:, :H], g)                      # f * c + i * g
        h = z[:, 3 * H:] * torch.tanh(c)                                        # (B, H)
        if self.weight_hr_t is not None:
            h = h @ self.weight_hr_t                                            # (B, P)
        # fmt: on
        return h, c


def weights_key(params: list[Tensor]) -> tuple:
    """Identity of a parameter list's current values: storage and in-place version of each tensor."""
    return tuple((p.data_ptr(), p._version, p.device, p.dtype) for p in params)
