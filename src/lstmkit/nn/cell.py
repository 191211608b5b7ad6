"""``LSTMCell``: one time step, with torch.nn.LSTMCell's parameters and call, computed by the reference."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from . import functional, init


class LSTMCell(nn.Module):
    """One LSTM step: ``h, c = cell(x, (h, c))``; equations in :func:`lstmkit.nn.functional.lstm_cell`.

    Args:
        input_size: I.
        hidden_size: H.
        bias: keep ``bias_ih`` and ``bias_hh``.
        forget_bias: initial forget-gate bias; None keeps torch's uniform init.

    Shape: x (B, I); state ``(h, c)`` each (B, H), zeros when None; returns ``(h', c')``.

    Attributes:
        weight_ih: (W_ii|W_if|W_ig|W_io), shape (4H, I). weight_hh: shape (4H, H). bias_ih, bias_hh: shape (4H,).
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, forget_bias: float | None = 1.0) -> None:
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise ValueError(
                f"LSTMCell: sizes must be positive, got input_size={input_size}, hidden_size={hidden_size}."
            )
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(4 * hidden_size)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(4 * hidden_size)) if bias else None
        init.uniform_(list(self.parameters()), hidden_size)
        if bias and forget_bias is not None:
            init.forget_bias_(self.bias_ih, self.bias_hh, hidden_size, forget_bias)

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        if x.dim() != 2 or x.shape[1] != self.input_size:
            raise ValueError(f"LSTMCell: expected input shaped (B, {self.input_size}), got {tuple(x.shape)}.")
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_size)
            state = (zeros, zeros)
        w = functional.LSTMLayerWeights(self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        (h, c), _ = functional.lstm_cell(x, state, w)
        return h, c

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"
