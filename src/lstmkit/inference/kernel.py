"""lstmkit's own one-step LSTM for inference at batch 1: numpy over the BLAS matrix-vector product.

A stream advances one observation at a time, so each step is one matrix-vector product per layer and a few
element-wise operations on vectors of 4H numbers. At H = 256 the product takes about 20 µs on one core; what a
framework adds around it (operator dispatch, checks, allocation: about 70 µs for a torch step through
``LSTM.step`` and a head, 20 µs for an onnxruntime ``run``) is most of a step's cost. This kernel spends about
10 µs there:

- the weights are packed once, at load, into one ``(4H, I + S + 1)`` matrix per layer: ``[W_ih | W_hh | b_ih + b_hh]``
  multiplied by ``[x_t, h_{t-1}, 1]``, so input, recurrent product and bias are one ``gemv``;
- every gate is one ``tanh``: the rows of i, f and o are halved at load, since sigmoid(z) = (tanh(z / 2) + 1) / 2
  (halving is exact in floating point); g keeps its rows;
- buffers are allocated once and written in place (``out=``);
- the product is numpy's ``dot`` for small layers and ``torch.mv`` on zero-copy views for large ones (whichever BLAS
  was faster here at that size).

This is the spec of :func:`lstmkit.nn.functional.lstm_cell` at evaluation (tested against it): gate order i, f, g, o;
peepholes (``w_ci, w_cf`` on c_{t-1}, ``w_co`` on c_t); projection ``h = W_hr (o * tanh(c))``; zoneout as its
expectation ``z * old + (1 - z) * new``; dropout off. Layer normalisation is not here (the torch runtime streams it).
The weights are a snapshot taken at load: an inference copy, not a view of a model still training.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["StreamKernel", "kernel_blockers"]

_TORCH_MV_FROM = 1 << 20  # weight entries (4 MiB of float32) from which the product runs in torch.mv


def kernel_blockers(lstm: Any) -> list[str]:
    """Why this layer cannot run in :class:`StreamKernel` (empty when it can)."""
    blockers = []
    if getattr(lstm, "bidirectional", False):
        blockers.append("a bidirectional layer reads the future")
    if getattr(lstm, "layer_norm", False):
        blockers.append("layer normalisation is not in lstmkit's numpy step (stream it on runtime='torch')")
    return blockers


def _array(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(torch.float32).cpu().numpy().astype(np.float32, copy=True)


class _Layer:
    def __init__(self, lstm: Any, layer: int, in_scale: np.ndarray | None, in_shift: np.ndarray | None) -> None:
        w = lstm.layer_weights(layer)
        H = w.weight_hh.shape[0] // 4
        S = w.weight_hh.shape[1]
        w_ih, w_hh = _array(w.weight_ih), _array(w.weight_hh)  # (4H, I), (4H, S)
        bias = np.zeros(4 * H, np.float32)
        for b in (w.bias_ih, w.bias_hh):
            if b is not None:
                bias += _array(b)
        if in_scale is not None:  # fold the input standardisation (x - shift) / scale into W_ih and the bias
            assert in_shift is not None
            w_ih = w_ih / in_scale[None, :]
            bias = bias - w_ih @ in_shift
        packed = np.concatenate([w_ih, w_hh, bias[:, None]], axis=1).astype(np.float32)  # (4H, I + S + 1)
        halve = np.r_[0 : 2 * H, 3 * H : 4 * H]  # rows of i, f and o: sigmoid(z) = (tanh(z / 2) + 1) / 2
        packed[halve] *= 0.5
        self.weight = np.ascontiguousarray(packed)
        self.I, self.H, self.S = w_ih.shape[1], H, S
        self.peephole = None if w.weight_peephole is None else _array(w.weight_peephole)  # (3, H)
        self.weight_hr = None if w.weight_hr is None else np.ascontiguousarray(_array(w.weight_hr))  # (P, H)
        self.xh = np.zeros(self.I + S + 1, np.float32)  # [x_t, h_{t-1}, 1]
        self.xh[-1] = 1.0
        self.gates = np.empty(4 * H, np.float32)
        self.tmp = np.empty(H, np.float32)
        # The product: numpy's BLAS (OpenBLAS) has the lower call overhead, which decides small layers; torch's
        # (oneDNN / MKL) streams a large matrix from memory about 5 % faster (H = 1024: 631 against 665 µs on one
        # core here). torch.mv writes into the same buffers through zero-copy views.
        if self.weight.size >= _TORCH_MV_FROM:
            w_t, xh_t, z_t = (torch.from_numpy(a) for a in (self.weight, self.xh, self.gates))
            self._product = lambda: torch.mv(w_t, xh_t, out=z_t)
        else:
            self._product = lambda: np.dot(self.weight, self.xh, out=self.gates)

    def step(self, x: np.ndarray, h: np.ndarray, c: np.ndarray, zoneout: float) -> tuple[np.ndarray, np.ndarray]:
        """x (I,), h (S,), c (H,) -> new (h (S,), c (H,)), fresh arrays (the caller keeps them as the state)."""
        H, I = self.H, self.I
        xh, z, tmp = self.xh, self.gates, self.tmp
        xh[:I] = x
        xh[I:-1] = h
        self._product()  # z = W [x, h, 1], (4H,): the halved i, f, o pre-activations and g's, bias included
        p = self.peephole
        if p is not None:  # i and f see c_{t-1}; their rows are halved, so are the peephole terms
            z[:H] += 0.5 * p[0] * c
            z[H : 2 * H] += 0.5 * p[1] * c
            np.tanh(z[: 3 * H], out=z[: 3 * H])
        else:
            np.tanh(z, out=z)
        ifg = z[: 2 * H]
        ifg *= 0.5
        ifg += 0.5  # i, f = sigmoid
        i, f, g = z[:H], z[H : 2 * H], z[2 * H : 3 * H]
        c_new = f * c
        np.multiply(i, g, out=tmp)
        c_new += tmp  # c_t = f * c_{t-1} + i * g
        o = z[3 * H :]
        if p is not None:  # o sees c_t
            o += 0.5 * p[2] * c_new
            np.tanh(o, out=o)
        o *= 0.5
        o += 0.5
        np.tanh(c_new, out=tmp)
        h_new = o * tmp  # (H,)
        if self.weight_hr is not None:
            h_new = self.weight_hr @ h_new  # (P,)
        if zoneout:
            c_new = zoneout * c + (1.0 - zoneout) * c_new
            h_new = zoneout * h + (1.0 - zoneout) * h_new
        return h_new, c_new


class StreamKernel:
    """One step of an :class:`lstmkit.nn.LSTM` stack at batch 1, in numpy (see the module docstring).

    Args:
        lstm: the trained layer (unidirectional, without layer norm: see :func:`kernel_blockers`).
        in_shift, in_scale: optional (I,) standardisation of the input, ``(x - in_shift) / in_scale``, folded into the
            first layer's weights.

    ``step(x (I,), h (L, 1, S), c (L, 1, H)) -> (y (S,), h (L, 1, S), c (L, 1, H))``: y is the top layer's h.
    """

    def __init__(self, lstm: Any, in_shift: Any = None, in_scale: Any = None) -> None:
        blockers = kernel_blockers(lstm)
        if blockers:
            raise ValueError(f"lstmkit's numpy step cannot run this layer: {'; '.join(blockers)}.")
        shift = None if in_shift is None else np.asarray(in_shift, np.float64).reshape(-1)
        scale = None if in_scale is None else np.asarray(in_scale, np.float64).reshape(-1)
        if (shift is None) != (scale is None):
            raise ValueError("Give both in_shift and in_scale, or neither.")
        self.layers = [
            _Layer(lstm, k, scale if k == 0 else None, shift if k == 0 else None) for k in range(lstm.num_layers)
        ]
        self.zoneout = float(getattr(lstm, "zoneout", 0.0))
        self.input_size = self.layers[0].I

    def step(self, x: np.ndarray, h: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        hs, cs = np.empty_like(h), np.empty_like(c)
        inp = x
        for k, layer in enumerate(self.layers):
            h_k, c_k = layer.step(inp, h[k, 0], c[k, 0], self.zoneout)
            hs[k, 0], cs[k, 0] = h_k, c_k
            inp = h_k
        return inp, hs, cs


class Linear:
    """``y = W x + b`` in numpy from an ``nn.Linear`` (a head or a decoder); ``softmax`` for probabilities."""

    def __init__(self, linear: torch.nn.Linear) -> None:
        self.weight = np.ascontiguousarray(_array(linear.weight))  # (O, D)
        self.bias = np.zeros(self.weight.shape[0], np.float32) if linear.bias is None else _array(linear.bias)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y = self.weight @ x
        y += self.bias
        return y

    @staticmethod
    def softmax(z: np.ndarray) -> np.ndarray:
        e = np.exp(z - z.max())
        e /= e.sum()
        return e
