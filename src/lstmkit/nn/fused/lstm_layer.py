"""lstmkit's own fast LSTM layer: every variant, one autograd.Function with a hand-written backward.

Same signature and numbers as :func:`lstmkit.nn.functional.lstm_layer`, pinned by
``tests/nn/test_fused_matches_reference.py``.
Why it is faster than autograd over the reference loop:

- the input projection of all T steps is one GEMM, (T*B, I) @ (I, 4H), before the loop;
- the forward loop records no autograd graph: per step one GEMM (B, S) @ (S, 4H) and a few in-place
  element-wise ops, writing straight into preallocated (T, B, ...) buffers;
- the backward loop computes only what is recurrent (the gate gradients and dh @ W_hh); the weight gradients
  dW_ih, dW_hh, dW_hr and dx are each one large GEMM over all T*B rows after the loop.

Masks arrive already combined: ``keep_h`` / ``keep_c`` are the weights of the previous state
(zoneout and padding: ``keep = 1 - (1 - zoneout) * valid``), ``out_mask`` zeroes outputs past a sequence's end.

Mixed precision (``torch.autocast``, the policy of :mod:`lstmkit.nn.functional`): with a low dtype ``lp`` (bfloat16
or float16) every matrix product runs in ``lp`` (the input projection, the per-step recurrent product, the
projection, and in backward dh @ W_hh and the weight-gradient GEMMs), and everything element-wise stays float32:
the gates, layer norm, the cell state c and the carried h, whose ``lp`` copy is what the next product reads.
The output sequence is returned in ``lp``; h_n and c_n in float32; weight gradients in float32 (from ``lp``
products). The layer gets ``lp`` as an argument and runs with autocast switched off, casting explicitly:
``torch.amp.custom_fwd(cast_inputs=lp)`` would cast c0, the masks and the layer-norm gains too and run the whole
cell in ``lp``, and ``custom_fwd`` without it would leave autocast on inside, where the ``out=`` buffers and
in-place updates meet mixed dtypes; both also fix one device type per Function.
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..functional import LN_EPS, LSTMLayerWeights, StepMasks, autocast_dtype


def _ln(x: Tensor, weight: Tensor, bias: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    """Layer norm over the last dim in one fused op: (y, mean, rstd), mean and rstd shaped (..., 1)."""
    return torch.native_layer_norm(x, (x.shape[-1],), weight, bias, LN_EPS)


def _ln_backward(
    dy: Tensor, x: Tensor, mean: Tensor, rstd: Tensor, weight: Tensor, bias: Tensor | None
) -> tuple[Tensor, Tensor, Tensor | None]:
    """PyTorch's fused layer-norm backward: (dx, dweight, dbias)."""
    return torch.ops.aten.native_layer_norm_backward(
        dy, x, (x.shape[-1],), mean, rstd, weight, bias, [True, True, bias is not None]
    )


def _step_of(mask: Tensor | None, t: int) -> Tensor | None:
    """Mask at step t; masks of leading size 1 are the same at every step."""
    if mask is None:
        return None
    return mask[t] if mask.shape[0] > 1 else mask[0]


class _LSTMLayerFunction(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx,
        x: Tensor,
        h0: Tensor,
        c0: Tensor,
        weight_ih: Tensor,
        weight_hh: Tensor,
        bias_ih: Tensor | None,
        bias_hh: Tensor | None,
        weight_hr: Tensor | None,
        weight_peephole: Tensor | None,
        ln_ih_weight: Tensor | None,
        ln_hh_weight: Tensor | None,
        ln_cell_weight: Tensor | None,
        ln_cell_bias: Tensor | None,
        recurrent_mask: Tensor | None,
        keep_h: Tensor | None,
        keep_c: Tensor | None,
        out_mask: Tensor | None,
        lp: torch.dtype | None,
    ):
        # fmt: off
        T, B, I = x.shape
        H = weight_hh.shape[0] // 4
        S = weight_hh.shape[1]
        layer_norm = ln_ih_weight is not None
        peephole = weight_peephole is not None
        ctx.lp = lp
        if lp is None:
            x_proj = (x.reshape(T * B, I) @ weight_ih.T).view(T, B, 4 * H)             # (T, B, 4H)
        else:  # x arrives in lp (and autocast is off): an lp product, then float32 from here on
            x_proj = (x.reshape(T * B, I) @ weight_ih.to(lp).T).view(T, B, 4 * H).to(c0.dtype)
        x_raw = x_mean = x_rstd = None
        if layer_norm:
            x_raw = x_proj
            x_proj, x_mean, x_rstd = _ln(x_raw, ln_ih_weight, None)                     # (T, B, 4H), (T, B, 1) x2
        if bias_ih is not None:
            x_proj += bias_ih
        if bias_hh is not None:
            x_proj += bias_hh
        # Transposed copies made once per call: MKL runs the per-step (B, S) @ (S, 4H) product up to 1.5x faster
        # on a contiguous operand than on a transposed view (measured 383 vs 575 us at B=32, H=512).
        contiguous = torch.contiguous_format
        w_hh_t = weight_hh.T.to(lp or weight_hh.dtype, memory_format=contiguous)        # (S, 4H)
        w_hr_t = None if weight_hr is None else weight_hr.T.to(lp or weight_hr.dtype, memory_format=contiguous)
        gates = c0.new_empty(T, B, 4 * H)       # activated i, f, g, o
        c_seq = c0.new_empty(T + 1, B, H)       # c_seq[t] is c_{t-1} of step t (after zoneout / padding)
        c_new_seq = c0.new_empty(T, B, H)       # the cell before zoneout / padding: what the gates produced
        tanh_c = c0.new_empty(T, B, H)          # tanh of the (normalised) cell
        h_in = x.new_empty(T, B, S)             # h_{t-1} as fed to the recurrent product (after dropout), in lp
        output = x.new_empty(T, B, S)
        h_raw = h_mean = h_rstd = c_mean = c_rstd = None
        if layer_norm:  # the un-normalised recurrent projections and every normalisation's statistics
            h_raw, h_mean, h_rstd = c0.new_empty(T, B, 4 * H), c0.new_empty(T, B, 1), c0.new_empty(T, B, 1)
            c_mean, c_rstd = c0.new_empty(T, B, 1), c0.new_empty(T, B, 1)
        c_seq[0] = c0
        h = h0
        for t in range(T):
            c = c_seq[t]
            if recurrent_mask is not None:
                torch.mul(h, recurrent_mask, out=h_in[t])
            else:
                h_in[t] = h
            if layer_norm:
                if lp is None:
                    torch.mm(h_in[t], w_hh_t, out=h_raw[t])                             # (B, 4H)
                else:
                    h_raw[t] = h_in[t] @ w_hh_t
                h_norm, h_mean[t], h_rstd[t] = _ln(h_raw[t], ln_hh_weight, None)
                z = h_norm.add_(x_proj[t])
            elif lp is None:
                z = torch.addmm(x_proj[t], h_in[t], w_hh_t)                             # (B, 4H)
            else:
                z = torch.add(x_proj[t], h_in[t] @ w_hh_t)                              # lp product, float32 sum
            if peephole:
                z[:, :H].addcmul_(weight_peephole[0], c)
                z[:, H:2 * H].addcmul_(weight_peephole[1], c)
            act = gates[t]
            torch.sigmoid(z, out=act)
            torch.tanh(z[:, 2 * H:3 * H], out=act[:, 2 * H:3 * H])
            i, f, g = act[:, :H], act[:, H:2 * H], act[:, 2 * H:3 * H]
            c_new = c_new_seq[t]
            torch.mul(f, c, out=c_new).addcmul_(i, g)                                   # (B, H)
            if peephole:
                torch.sigmoid(z[:, 3 * H:].addcmul_(weight_peephole[2], c_new), out=act[:, 3 * H:])
            o = act[:, 3 * H:]
            if layer_norm:
                c_norm, c_mean[t], c_rstd[t] = _ln(c_new, ln_cell_weight, ln_cell_bias)
                torch.tanh(c_norm, out=tanh_c[t])
            else:
                torch.tanh(c_new, out=tanh_c[t])
            h_new = o * tanh_c[t]                                                       # (B, H)
            if w_hr_t is not None:
                h_new = (h_new.to(w_hr_t.dtype) @ w_hr_t).to(c0.dtype)                  # (B, P)
            kc, kh = _step_of(keep_c, t), _step_of(keep_h, t)
            if kc is not None:
                torch.lerp(c_new, c, kc, out=c_seq[t + 1])                              # kc * c + (1 - kc) * c_new
            else:
                c_seq[t + 1] = c_new
            if kh is not None:
                h_new = torch.lerp(h_new, h, kh)
            om = _step_of(out_mask, t)
            if om is not None:
                torch.mul(h_new, om, out=output[t])
            else:
                output[t] = h_new
            h = h_new
        # fmt: on
        ctx.save_for_backward(
            x,
            weight_ih,
            weight_hh,
            weight_hr,
            weight_peephole,
            ln_ih_weight,
            ln_hh_weight,
            ln_cell_weight,
            recurrent_mask,
            keep_h,
            keep_c,
            out_mask,
            gates,
            c_seq,
            c_new_seq,
            tanh_c,
            h_in,
            ln_cell_bias,
            x_raw,
            x_mean,
            x_rstd,
            h_raw,
            h_mean,
            h_rstd,
            c_mean,
            c_rstd,
        )  # fmt: skip
        ctx.has_bias = (bias_ih is not None, bias_hh is not None)
        ctx.device_type = x.device.type
        return output, h, c_seq[T].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, d_output: Tensor | None, d_h_n: Tensor | None, d_c_n: Tensor | None):  # type: ignore[override]
        # A backward called inside an autocast region must not have its products lowered behind its back.
        if not torch.is_autocast_enabled(ctx.device_type):
            return _backward(ctx, d_output, d_h_n, d_c_n)
        with torch.autocast(ctx.device_type, enabled=False):
            return _backward(ctx, d_output, d_h_n, d_c_n)


def _backward(ctx, d_output: Tensor | None, d_h_n: Tensor | None, d_c_n: Tensor | None) -> tuple:
    """The backward of :class:`_LSTMLayerFunction`; with ``ctx.lp`` its products run in lp (x and h_in are lp)."""
    # fmt: off
    (x, weight_ih, weight_hh, weight_hr, weight_peephole, ln_ih_weight, ln_hh_weight, ln_cell_weight,
     recurrent_mask, keep_h, keep_c, out_mask, gates, c_seq, c_new_seq, tanh_c, h_in,
     ln_cell_bias, x_raw, x_mean, x_rstd, h_raw, h_mean, h_rstd, c_mean, c_rstd) = ctx.saved_tensors
    T, B, I = x.shape
    H = weight_hh.shape[0] // 4
    S = weight_hh.shape[1]
    layer_norm = ln_ih_weight is not None
    peephole = weight_peephole is not None
    lp = ctx.lp
    dtype = gates.dtype                             # the state's dtype: the parameters' (float32 under autocast)
    w_ih, w_hh = (weight_ih, weight_hh) if lp is None else (weight_ih.to(lp), weight_hh.to(lp))
    w_hr = weight_hr if lp is None or weight_hr is None else weight_hr.to(lp)
    dh = d_h_n.clone() if d_h_n is not None else gates.new_zeros(B, S)
    dc = d_c_n.clone() if d_c_n is not None else gates.new_zeros(B, H)
    dz_all = gates.new_empty(T, B, 4 * H)         # dL/d(gate pre-activations)
    d_rec = gates.new_empty(T, B, 4 * H) if layer_norm else dz_all   # dL/d(h_in @ W_hh^T)
    d_rec_lp = d_rec if lp is None else x.new_empty(T, B, 4 * H)    # its lp copy, the products' operand
    d_proj = x.new_empty(T, B, S) if weight_hr is not None else None   # dL/d(projected h), in x's dtype
    d_peep = gates.new_zeros(3, H) if peephole else None
    d_ln_hh = gates.new_zeros(4 * H) if layer_norm else None
    d_ln_c_w = gates.new_zeros(H) if layer_norm else None
    d_ln_c_b = gates.new_zeros(H) if layer_norm else None
    for t in reversed(range(T)):
        if d_output is not None:
            om = _step_of(out_mask, t)
            dh = dh + (d_output[t] if om is None else d_output[t] * om)
        kh, kc = _step_of(keep_h, t), _step_of(keep_c, t)
        dh_new = dh if kh is None else dh * (1 - kh)
        dc_new = dc.clone() if kc is None else dc * (1 - kc)
        if weight_hr is not None:
            d_proj[t] = dh_new
            dh_new = (d_proj[t] @ w_hr).to(dtype)                                   # (B, H)
        act = gates[t]
        i, f, g, o = act[:, :H], act[:, H:2 * H], act[:, 2 * H:3 * H], act[:, 3 * H:]
        tc = tanh_c[t]
        c_prev = c_seq[t]
        dz = dz_all[t]
        torch.mul(dh_new, tc, out=dz[:, 3 * H:]).mul_(o * (1 - o))                  # dz_o
        d_cell = dh_new * o * (1 - tc * tc)                                         # dL/d(normalised cell)
        if layer_norm:
            d_c_in, d_w, d_b = _ln_backward(
                d_cell, c_new_seq[t], c_mean[t], c_rstd[t], ln_cell_weight, ln_cell_bias
            )
            d_ln_c_w += d_w
            d_ln_c_b += d_b
            dc_new += d_c_in
        else:
            dc_new += d_cell
        if peephole:
            dz_o = dz[:, 3 * H:]
            dc_new.addcmul_(dz_o, weight_peephole[2])
            d_peep[2] += (dz_o * c_new_seq[t]).sum(0)
        torch.mul(dc_new, g, out=dz[:, :H]).mul_(i * (1 - i))                       # dz_i
        torch.mul(dc_new, c_prev, out=dz[:, H:2 * H]).mul_(f * (1 - f))             # dz_f
        torch.mul(dc_new, i, out=dz[:, 2 * H:3 * H]).mul_(1 - g * g)                # dz_g
        dc_prev = dc_new * f
        if kc is not None:
            dc_prev.addcmul_(dc, kc)
        if peephole:
            dc_prev.addcmul_(dz[:, :H], weight_peephole[0]).addcmul_(dz[:, H:2 * H], weight_peephole[1])
            d_peep[0] += (dz[:, :H] * c_prev).sum(0)
            d_peep[1] += (dz[:, H:2 * H] * c_prev).sum(0)
        if layer_norm:
            d_rec[t], d_w, _ = _ln_backward(dz, h_raw[t], h_mean[t], h_rstd[t], ln_hh_weight, None)
            d_ln_hh += d_w
        if lp is not None:
            d_rec_lp[t] = d_rec[t]
        dh_prev = (d_rec_lp[t] @ w_hh).to(dtype)                                    # (B, S)
        if recurrent_mask is not None:
            dh_prev.mul_(recurrent_mask)
        if kh is not None:
            dh_prev.addcmul_(dh, kh)
        dh, dc = dh_prev, dc_prev
    # Weight gradients: one GEMM each over all T*B rows (in lp under autocast, returned in float32).
    needs = ctx.needs_input_grad
    d_rec2 = d_rec_lp.view(T * B, 4 * H)
    d_w_hh = (d_rec2.T @ h_in.view(T * B, S)).to(dtype) if needs[4] else None       # (4H, S)
    d_bias = dz_all.sum((0, 1))                                                     # (4H,)
    d_ln_ih = None
    dx_proj = d_rec_lp                                                              # without layer norm: dz_all
    if layer_norm:
        dx_proj, d_ln_ih, _ = _ln_backward(dz_all, x_raw, x_mean, x_rstd, ln_ih_weight, None)
        dx_proj = dx_proj.to(x.dtype)
    dx_proj2 = dx_proj.reshape(T * B, 4 * H)
    d_w_ih = (dx_proj2.T @ x.reshape(T * B, I)).to(dtype) if needs[3] else None     # (4H, I)
    dx = (dx_proj2 @ w_ih).view(T, B, I) if needs[0] else None                      # (T, B, I), x's dtype
    d_w_hr = None
    if weight_hr is not None and needs[7]:
        h_pre = (gates[:, :, 3 * H:] * tanh_c).view(T * B, H).to(x.dtype)          # o * tanh(c), (T*B, H)
        d_w_hr = (d_proj.view(T * B, S).T @ h_pre).to(dtype)                        # (P, H)
    # fmt: on
    has_bias_ih, has_bias_hh = ctx.has_bias
    return (
        dx, dh, dc, d_w_ih, d_w_hh,
        d_bias if has_bias_ih else None, d_bias if has_bias_hh else None,
        d_w_hr, d_peep, d_ln_ih, d_ln_hh, d_ln_c_w, d_ln_c_b,
        None, None, None, None, None,
    )  # fmt: skip


def combine_keep(zoneout: Tensor | float | None, valid: Tensor | None, like: Tensor) -> Tensor | None:
    """Weights of the previous state: zoneout's keep-previous and padding's keep-all, in one tensor.

    ``keep = 1 - (1 - zoneout) * valid``: zoneout alone, padding alone (``1 - valid``), or both.
    """
    if zoneout is None and valid is None:
        return None
    if zoneout is None:
        return 1 - valid
    if not isinstance(zoneout, Tensor):
        zoneout = like.new_full((1, 1, 1), float(zoneout))
    if valid is None:
        return zoneout
    return 1 - (1 - zoneout) * valid


def lstm_layer(
    x: Tensor,
    state: tuple[Tensor, Tensor],
    w: LSTMLayerWeights,
    masks: StepMasks | None = None,
    *,
    record: bool = False,
) -> tuple[Tensor, tuple[Tensor, Tensor], None]:
    """Fast :func:`lstmkit.nn.functional.lstm_layer`: same arguments, same results. ``record`` is not supported.

    Under ``torch.autocast`` (float32 parameters) the products run in the autocast dtype and the output comes back
    in it; h_n and c_n stay float32 (see the module docstring).
    """
    if record:
        raise ValueError("the fast LSTM layer does not record gates; record=True runs the reference path")
    m = masks or StepMasks()
    h0, c0 = state
    lp = autocast_dtype(x.device, w.weight_ih.dtype)
    if lp is not None:  # x (and a carried state) may arrive in lp or float32: x goes to lp, the state to float32
        x, h0, c0 = x.to(lp), h0.to(w.weight_ih.dtype), c0.to(w.weight_ih.dtype)
    keep_h = combine_keep(m.zoneout_h, m.valid, c0)
    keep_c = combine_keep(m.zoneout_c, m.valid, c0)
    with torch.autocast(x.device.type, enabled=False) if lp is not None else contextlib.nullcontext():
        output, h_n, c_n = _LSTMLayerFunction.apply(
            x, h0, c0, w.weight_ih, w.weight_hh, w.bias_ih, w.bias_hh, w.weight_hr, w.weight_peephole,
            w.ln_ih_weight, w.ln_hh_weight, w.ln_cell_weight, w.ln_cell_bias, m.recurrent, keep_h, keep_c, m.valid,
            lp,
        )  # fmt: skip
    return output, (h_n, c_n), None
