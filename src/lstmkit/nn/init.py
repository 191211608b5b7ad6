"""Named initialisers for recurrent layers."""

from __future__ import annotations

import math

import torch
from torch import Tensor


@torch.no_grad()
def uniform_(tensors: list[Tensor], hidden_size: int) -> None:
    """torch.nn.LSTM's default: every weight and bias ~ U(-k, k), k = 1 / sqrt(hidden_size)."""
    bound = 1.0 / math.sqrt(hidden_size)
    for t in tensors:
        t.uniform_(-bound, bound)


@torch.no_grad()
def forget_bias_(bias_ih: Tensor, bias_hh: Tensor | None, hidden_size: int, value: float) -> None:
    """Set the forget-gate bias so that ``bias_ih + bias_hh`` is ``value`` in the forget slice (gate order i,f,g,o).

    A positive forget bias (1.0 by default) keeps the cell's memory open at the start of training, which lets
    gradients flow across long lags (Gers, Schmidhuber & Cummins 2000; Jozefowicz, Zaremba & Sutskever 2015).
    """
    bias_ih[hidden_size : 2 * hidden_size].fill_(value)
    if bias_hh is not None:
        bias_hh[hidden_size : 2 * hidden_size].zero_()


@torch.no_grad()
def orthogonal_recurrent_(weight_hh: Tensor, gates: int) -> None:
    """Orthogonal init of each gate's (H, S) block of a recurrent matrix (Saxe et al. 2014)."""
    for block in weight_hh.chunk(gates, dim=0):
        torch.nn.init.orthogonal_(block)
