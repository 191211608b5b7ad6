"""PyTorch's own fused LSTM kernel (oneDNN on CPU, cuDNN on GPU), called with lstmkit's parameters.

lstmkit's plain LSTM has torch.nn.LSTM's parameter names, shapes and gate order, so the same flat weight list
drives ``torch._VF.lstm``, the kernel behind ``torch.nn.LSTM.forward``. Pinned to the reference by
``tests/nn/test_lstm_torch_equivalence.py``.

Under autocast the kernel runs in the autocast dtype itself (``compute_dtype``): inputs, states and weights are
cast (autograd carries float32 gradients back to the parameters) and autocast is switched off for the call.
Left to autocast, the CPU would do the same (``aten::mkldnn_rnn_layer`` is on its lower-precision list, and oneDNN
has a bfloat16 LSTM), but CUDA would not: its autocast wrapper of ``aten::_cudnn_rnn`` casts to float16 whatever
dtype was asked for, and bfloat16 training without a gradient scaler would then underflow in float16.
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


def is_available(device: torch.device) -> bool:
    """The fused kernel runs on CPU (oneDNN or the native fallback) and on CUDA (cuDNN)."""
    return device.type in ("cpu", "cuda")


def lstm(
    x: Tensor,
    state: tuple[Tensor, Tensor],
    flat_weights: list[Tensor],
    *,
    has_bias: bool,
    num_layers: int,
    dropout: float,
    training: bool,
    bidirectional: bool,
    batch_first: bool,
    lengths: Tensor | None,
    compute_dtype: torch.dtype | None = None,
) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """Run the whole stack in one call.

    Args:
        x: (B, T, I) if batch_first else (T, B, I).
        state: (h0, c0), (L*D, B, S) and (L*D, B, H).
        flat_weights: per layer and direction: weight_ih, weight_hh, [bias_ih, bias_hh], [weight_hr].
        lengths: (B,) valid lengths, or None for full sequences.
        compute_dtype: run the kernel in this dtype (the autocast dtype), or None for the inputs' own.

    Returns:
        ``(output, (h_n, c_n))`` with torch.nn.LSTM's shapes, in ``compute_dtype`` if given; with lengths,
        outputs past each end are zero.
    """
    autocast_off = contextlib.nullcontext()
    if compute_dtype is not None:
        # The CPU kernel (oneDNN) would take a float32 c0 with bfloat16 data, but its fallbacks (projection, packed
        # input, CPUs without bfloat16) and cuDNN take one dtype: c0 is cast too, and c_n returned in that dtype.
        x, h0_, c0_, *flat_weights = (t.to(compute_dtype) for t in (x, *state, *flat_weights))
        state = (h0_, c0_)
        autocast_off = torch.autocast(x.device.type, enabled=False)
    with autocast_off:
        return _run(x, state, flat_weights, has_bias, num_layers, dropout, training, bidirectional, batch_first,
                    lengths)  # fmt: skip


def _run(x, state, flat_weights, has_bias, num_layers, dropout, training, bidirectional, batch_first, lengths):
    """The kernel call itself, on tensors already in the compute dtype (see :func:`lstm`)."""
    h0, c0 = state
    if lengths is None:
        output, h_n, c_n = torch._VF.lstm(
            x, (h0, c0), flat_weights, has_bias, num_layers, dropout, training, bidirectional, batch_first
        )
        return output, (h_n, c_n)
    total_length = x.shape[1] if batch_first else x.shape[0]
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=batch_first, enforce_sorted=False)
    order, unorder = packed.sorted_indices, packed.unsorted_indices
    hx = (h0.index_select(1, order), c0.index_select(1, order))
    data, h_n, c_n = torch._VF.lstm(
        packed.data, packed.batch_sizes, hx, flat_weights, has_bias, num_layers, dropout, training, bidirectional
    )
    packed_out = torch.nn.utils.rnn.PackedSequence(data, packed.batch_sizes, order, unorder)
    output, _ = pad_packed_sequence(packed_out, batch_first=batch_first, total_length=total_length)
    return output, (h_n.index_select(1, unorder), c_n.index_select(1, unorder))
