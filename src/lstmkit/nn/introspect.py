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


GATE_NAMES = ("i", "f", "g", "o")


def gate_saturation(gates: list[Tensor], lengths: Tensor | None = None, margin: float = 0.05) -> dict[str, float]:
    """The fraction of gate activations that are saturated, per gate: where learning through that gate stalls.

    A sigmoid gate (i, f, o) counts as saturated below ``margin`` or above ``1 - margin`` (its derivative is under
    ``margin``); the tanh candidate g when ``|g| > 1 - 2 * margin``. A healthy LSTM has a forget gate that saturates
    open where it must remember; an input gate saturated everywhere has stopped learning.

    Args:
        gates: activated gates, each (B, T, 4, H) in the order i, f, g, o (``trace.gates[l][d]`` of
            ``LSTM(..., record=True)``), for every layer and direction; they are pooled.
        lengths: (B,) valid lengths; steps past a sequence's end are left out.
        margin: the distance from the bound that counts as saturated.

    Returns:
        ``{"i": frac, "f": frac, "g": frac, "o": frac}``, fractions in [0, 1].
    """
    counts = torch.zeros(4, dtype=torch.float64)
    total = 0.0
    for g in gates:
        g = g.detach().to(torch.float32)  # (B, T, 4, H)
        sat = torch.stack(
            [
                (g[:, :, k] < margin) | (g[:, :, k] > 1 - margin) if name != "g" else g[:, :, k].abs() > 1 - 2 * margin
                for k, name in enumerate(GATE_NAMES)
            ],
            dim=2,
        )  # (B, T, 4, H)
        if lengths is not None:
            valid = torch.arange(g.shape[1], device=g.device)[None, :] < lengths.to(g.device)[:, None]  # (B, T)
            sat = sat & valid[:, :, None, None]
            total += float(valid.sum()) * g.shape[3]
        else:
            total += g.shape[0] * g.shape[1] * g.shape[3]
        counts += sat.sum(dim=(0, 1, 3)).to(torch.float64).cpu()
    if total == 0:
        return dict.fromkeys(GATE_NAMES, float("nan"))
    return {name: float(counts[k]) / total for k, name in enumerate(GATE_NAMES)}
