r"""The reference: LSTM, GRU and tanh-RNN equations in plain torch ops. This file is the spec.

Every fast path in :mod:`lstmkit.nn.fused` has the signature of :func:`lstm_layer` and a test pinning it here.
Nothing in this file imports the fast paths.

The LSTM cell (gate order ``i, f, g, o``, the order of ``torch.nn.LSTM``, cuDNN and Keras):

.. math::

    \begin{aligned}
    i_t &= \sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi} + w_{ci} \odot c_{t-1}) \\
    f_t &= \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf} + w_{cf} \odot c_{t-1}) \\
    g_t &= \tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}) \\
    c_t &= f_t \odot c_{t-1} + i_t \odot g_t \\
    o_t &= \sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho} + w_{co} \odot c_t) \\
    h_t &= o_t \odot \tanh(c_t)
    \end{aligned}

where :math:`\sigma` is the logistic sigmoid and :math:`\odot` the element-wise product. The peephole terms
:math:`w_{c\cdot}` (Gers & Schmidhuber 2000) are present only with ``peephole=True``. The variants, each optional:

- layer normalisation (Ba, Kiros & Hinton 2016, eqs. 20-22): the input and recurrent projections are normalised
  separately over all four gates, ``z = LN(W_i x) * gamma_ih + b_ih + LN(W_h h) * gamma_hh + b_hh`` (the LN shift
  is the bias), and the cell is normalised before the output squashing: ``h = o * tanh(LN(c) * gamma_c + beta_c)``;
- projection (LSTMP, Sak et al. 2014; ``proj_size`` in torch): ``h_t = W_hr (o_t * tanh(c_t))``, shape (B, P);
- variational recurrent dropout (Gal & Ghahramani 2016): ``h_{t-1}`` is multiplied by one dropout mask per
  sequence, the same at every step, before the recurrent product;
- zoneout (Krueger et al. 2016): each unit keeps its previous value with probability ``z``:
  ``c_t = m_c * c_{t-1} + (1 - m_c) * c_t'`` and likewise for ``h``; masks are Bernoulli draws per step while
  training and the constant ``z`` (the expectation) at evaluation;
- padded batches: a step past a sequence's end keeps the state (``valid = 0``) and outputs zeros.

Shape letters: B batch, T time, I input size, H hidden size, P projection size (P = H without projection),
S = P the recurrent-state size of ``h``. Layers run time-major inside the engine: ``x`` is (T, B, I).

Mixed precision (``torch.autocast``): this file runs as written. Autocast lowers its matrix products
(``aten::mm`` / ``matmul``) to the autocast dtype, and the element-wise updates promote back to the parameters'
float32, so the cell state ``c`` stays float32; :func:`layer_norm` takes its statistics in float32. The fast paths
follow the same policy explicitly (:func:`autocast_dtype`): products in the low dtype, state in float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

LN_EPS = 1e-5  # the epsilon of torch.nn.LayerNorm; used by every layer-normalised path
_LOW_PRECISION = (torch.float16, torch.bfloat16)


def autocast_dtype(device: torch.device, params_dtype: torch.dtype) -> torch.dtype | None:
    """The dtype ``torch.autocast`` asks for on ``device`` (e.g. bfloat16), or None when it is off there.

    Autocast lowers only float32 work: with float64 (or already low-precision) parameters this is None too.
    """
    if params_dtype != torch.float32 or not torch.is_autocast_enabled(device.type):
        return None
    return torch.get_autocast_dtype(device.type)


@dataclass(frozen=True)
class LSTMLayerWeights:
    """The parameters of one LSTM layer in one direction, in torch's layout.

    Attributes:
        weight_ih: (W_ii|W_if|W_ig|W_io), shape (4H, I).
        weight_hh: (W_hi|W_hf|W_hg|W_ho), shape (4H, S).
        bias_ih: shape (4H,) or None. Two bias vectors, as torch and cuDNN keep them, so state_dicts load both ways.
        bias_hh: shape (4H,) or None.
        weight_hr: projection, shape (P, H), or None.
        weight_peephole: (w_ci|w_cf|w_co), shape (3, H), or None.
        ln_ih_weight: gain of the normalised input projection, shape (4H,), or None (no layer norm).
        ln_hh_weight: gain of the normalised recurrent projection, shape (4H,).
        ln_cell_weight: gain of the normalised cell, shape (H,).
        ln_cell_bias: shift of the normalised cell, shape (H,).
    """

    weight_ih: Tensor
    weight_hh: Tensor
    bias_ih: Tensor | None = None
    bias_hh: Tensor | None = None
    weight_hr: Tensor | None = None
    weight_peephole: Tensor | None = None
    ln_ih_weight: Tensor | None = None
    ln_hh_weight: Tensor | None = None
    ln_cell_weight: Tensor | None = None
    ln_cell_bias: Tensor | None = None

    @property
    def hidden_size(self) -> int:
        return self.weight_hh.shape[0] // 4

    @property
    def state_size(self) -> int:
        """Size S of the recurrent state h: P with projection, else H."""
        return self.weight_hh.shape[1]

    @property
    def layer_norm(self) -> bool:
        return self.ln_ih_weight is not None


@dataclass(frozen=True)
class StepMasks:
    """Per-layer masks for one sequence batch. Each is optional; None means "not applied".

    Attributes:
        recurrent: variational dropout mask on h_{t-1}, already scaled by 1/(1-p), shape (B, S); the same every step.
        zoneout_h: keep-previous weights for h, shape (T, B, S) or a float (the expectation at evaluation).
        zoneout_c: keep-previous weights for c, shape (T, B, H) or a float.
        valid: 1.0 where the step is inside the sequence, 0.0 past its end, shape (T, B, 1).
    """

    recurrent: Tensor | None = None
    zoneout_h: Tensor | float | None = None
    zoneout_c: Tensor | float | None = None
    valid: Tensor | None = None


def layer_norm(x: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float = LN_EPS) -> Tensor:
    """Layer normalisation over the last dimension: ``(x - mean) / sqrt(var + eps) * weight + bias``.

    A float16 / bfloat16 ``x`` (a product under autocast) is normalised in float32; the result has the dtype of
    ``x`` promoted with ``weight``'s.
    """
    dtype = x.dtype if weight is None else torch.promote_types(x.dtype, weight.dtype)
    if x.dtype in _LOW_PRECISION:  # a mean and variance over 4H values in bfloat16 would lose ~2 digits
        x = x.float()
    mean = x.mean(dim=-1, keepdim=True)
    var = x.var(dim=-1, unbiased=False, keepdim=True)
    y = (x - mean) / torch.sqrt(var + eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y.to(dtype)


def lstm_cell(
    x: Tensor,
    state: tuple[Tensor, Tensor],
    w: LSTMLayerWeights,
    *,
    recurrent_mask: Tensor | None = None,
    zoneout_h: Tensor | float | None = None,
    zoneout_c: Tensor | float | None = None,
    valid: Tensor | None = None,
) -> tuple[tuple[Tensor, Tensor], Tensor]:
    """One LSTM time step, exactly the equations of this module's docstring.

    Args:
        x: input at this step, (B, I).
        state: ``(h_prev, c_prev)``, shapes (B, S) and (B, H).
        w: the layer's weights.
        recurrent_mask: dropout mask multiplied into h_prev before the recurrent product, (B, S).
        zoneout_h: keep-previous weight for h, (B, S) or float.
        zoneout_c: keep-previous weight for c, (B, H) or float.
        valid: (B, 1); 0 keeps the whole state (a step past the end of a padded sequence).

    Returns:
        ``((h, c), gates)`` with h (B, S), c (B, H) and the activated gates (B, 4, H) in order i, f, g, o.
    """
    # fmt: off
    h_prev, c_prev = state
    H = w.hidden_size
    h_in = h_prev if recurrent_mask is None else h_prev * recurrent_mask         # (B, S)
    x_proj = x @ w.weight_ih.T                                                    # (B, 4H)
    h_proj = h_in @ w.weight_hh.T                                                 # (B, 4H)
    if w.layer_norm:
        x_proj = layer_norm(x_proj, w.ln_ih_weight, None)
        h_proj = layer_norm(h_proj, w.ln_hh_weight, None)
    z = x_proj + h_proj                                                           # (B, 4H)
    if w.bias_ih is not None:
        z = z + w.bias_ih
    if w.bias_hh is not None:
        z = z + w.bias_hh
    z_i, z_f, z_g, z_o = z.split(H, dim=1)                                        # 4 x (B, H)
    if w.weight_peephole is not None:
        z_i = z_i + w.weight_peephole[0] * c_prev
        z_f = z_f + w.weight_peephole[1] * c_prev
    i = torch.sigmoid(z_i)
    f = torch.sigmoid(z_f)
    g = torch.tanh(z_g)
    c_new = f * c_prev + i * g                                                    # (B, H)
    if w.weight_peephole is not None:
        z_o = z_o + w.weight_peephole[2] * c_new
    o = torch.sigmoid(z_o)
    c_out = c_new
    if w.layer_norm:
        c_out = layer_norm(c_new, w.ln_cell_weight, w.ln_cell_bias)
    h_new = o * torch.tanh(c_out)                                                 # (B, H)
    if w.weight_hr is not None:
        h_new = h_new @ w.weight_hr.T                                             # (B, P)
    if zoneout_c is not None:
        c_new = zoneout_c * c_prev + (1 - zoneout_c) * c_new
    if zoneout_h is not None:
        h_new = zoneout_h * h_prev + (1 - zoneout_h) * h_new
    if valid is not None:
        c_new = valid * c_new + (1 - valid) * c_prev
        h_new = valid * h_new + (1 - valid) * h_prev
    gates = torch.stack((i, f, g, o), dim=1)                                      # (B, 4, H)
    # fmt: on
    return (h_new, c_new), gates


def _at(mask: Tensor | float | None, t: int) -> Tensor | float | None:
    """The step-t slice of a per-step mask; floats and None pass through."""
    return mask[t] if isinstance(mask, Tensor) else mask


def lstm_layer(
    x: Tensor,
    state: tuple[Tensor, Tensor],
    w: LSTMLayerWeights,
    masks: StepMasks | None = None,
    *,
    record: bool = False,
) -> tuple[Tensor, tuple[Tensor, Tensor], tuple[Tensor, Tensor, list[Tensor]] | None]:
    """Run one LSTM layer over a sequence, one :func:`lstm_cell` per step.

    Args:
        x: (T, B, I), time-major.
        state: ``(h0, c0)``, (B, S) and (B, H).
        w: the layer's weights.
        masks: dropout, zoneout and padding masks (see :class:`StepMasks`).
        record: also return every step's activated gates and cell state.

    Returns:
        ``(output, (h_n, c_n), recorded)``: output (T, B, S), zero at steps past a sequence's end; h_n (B, S) and
        c_n (B, H) at each sequence's own last step; recorded = (gates (T, B, 4, H), cells (T, B, H), h_steps) or
        None, where h_steps is the list of the T state tensors h_t (B, S) as carried from step to step, so that
        ``torch.autograd.grad(loss, h_steps)`` gives the total derivative dL/dh_t at every step.
    """
    m = masks or StepMasks()
    h, c = state
    outputs, gates_seq, cells, h_steps = [], [], [], []
    for t in range(x.shape[0]):
        valid = None if m.valid is None else m.valid[t]
        (h, c), gates = lstm_cell(
            x[t], (h, c), w, recurrent_mask=m.recurrent,
            zoneout_h=_at(m.zoneout_h, t), zoneout_c=_at(m.zoneout_c, t), valid=valid,
        )  # fmt: skip
        outputs.append(h if valid is None else h * valid)
        if record:
            gates_seq.append(gates)
            cells.append(c)
            h_steps.append(h)
    output = torch.stack(outputs)  # (T, B, S)
    recorded = (torch.stack(gates_seq), torch.stack(cells), h_steps) if record else None
    return output, (h, c), recorded


def gru_cell(
    x: Tensor, h_prev: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias_ih: Tensor | None, bias_hh: Tensor | None
) -> Tensor:
    r"""One GRU step in torch's formulation (gate order r, z, n).

    .. math::

        r = \sigma(W_{ir} x + b_{ir} + W_{hr} h + b_{hr}),\quad z = \sigma(W_{iz} x + b_{iz} + W_{hz} h + b_{hz}),\\
        n = \tanh(W_{in} x + b_{in} + r \odot (W_{hn} h + b_{hn})),\quad h' = (1 - z) \odot n + z \odot h

    Shapes: x (B, I), h_prev (B, H), weight_ih (3H, I), weight_hh (3H, H); returns (B, H).
    """
    x_proj = x @ weight_ih.T  # (B, 3H)
    h_proj = h_prev @ weight_hh.T  # (B, 3H)
    if bias_ih is not None:
        x_proj = x_proj + bias_ih
    if bias_hh is not None:
        h_proj = h_proj + bias_hh
    x_r, x_z, x_n = x_proj.chunk(3, dim=1)
    h_r, h_z, h_n = h_proj.chunk(3, dim=1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return (1 - z) * n + z * h_prev


def rnn_tanh_cell(
    x: Tensor, h_prev: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias_ih: Tensor | None, bias_hh: Tensor | None
) -> Tensor:
    r"""One Elman step: :math:`h' = \tanh(W_{ih} x + b_{ih} + W_{hh} h + b_{hh})`. x (B, I), h (B, H) -> (B, H)."""
    z = x @ weight_ih.T + h_prev @ weight_hh.T  # (B, H)
    if bias_ih is not None:
        z = z + bias_ih
    if bias_hh is not None:
        z = z + bias_hh
    return torch.tanh(z)
