"""Looking inside a recurrent layer: gradient norm per time step (the vanishing-gradient picture)."""

from __future__ import annotations

import torch
from torch import Tensor


def hidden_grad_norms(loss: Tensor, h_steps: list[Tensor], retain_graph: bool = False) -> Tensor:
    """The norm of dL/dh_t at every step t, averaged over the batch.

    ``h_steps`` are the per-step state tensors as recorded by ``layer(x, record=True)`` (``trace.h_steps[l][d]``
    for an LSTM, ``h_steps[l][d]`` for GRU and RNN). The gradient is the total derivative: through the outputs and
    through every later step, so its decay with ``T - t`` is the vanishing-gradient curve of Hochreiter 1991 and
    Bengio et al. 1994.

    Args:
        loss: a scalar that depends on the recorded steps.
        h_steps: T tensors, each (B, S).
        retain_graph: keep the graph for another backward pass.

    Returns:
        (T,) tensor: mean over the batch of ||dL/dh_t||_2.
    """
    grads = torch.autograd.grad(loss, h_steps, retain_graph=retain_graph, allow_unused=True)
    norms = [g.norm(dim=-1).mean() if g is not None else loss.new_zeros(()) for g in grads]
    return torch.stack(norms).detach()
