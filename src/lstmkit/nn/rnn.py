"""``GRU`` and ``RNN`` (tanh): the comparison models, with torch's contract ``output, h_n = layer(x, state)``.

Parameters have torch.nn.GRU / torch.nn.RNN names, shapes and gate order (GRU: r, z, n), so state_dicts load
both ways. ``backend="auto"`` runs PyTorch's fused kernel; ``"reference"`` the per-step loop of
:func:`lstmkit.nn.functional.gru_cell` / :func:`~lstmkit.nn.functional.rnn_tanh_cell`, which also records the
per-step states for gradient-flow pictures.

Under ``torch.autocast`` (float32 parameters) the output and h_n come back in the autocast dtype, as from
:class:`lstmkit.nn.LSTM`; inputs and states may be passed in either dtype. PyTorch's kernel runs in the autocast
dtype (cast explicitly, autocast off: left alone, CUDA's autocast would run cuDNN in float16 whatever was asked
for); the reference runs as written (products lowered by autocast, the state update promoted to float32).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from . import _common, functional, init


class _SingleStateRNN(nn.Module):
    """Shared plumbing of GRU and RNN: one state tensor h, torch's parameters, fused or reference path."""

    _gates: int  # gate blocks in weight_ih: 3 for GRU (r, z, n), 1 for the tanh RNN
    _name: str
    _cell_fn: Callable[..., Tensor]  # the reference step: (x, h, weight_ih, weight_hh, bias_ih, bias_hh) -> h'
    _kernel: Callable[..., tuple[Tensor, Tensor]]  # PyTorch's fused kernel, torch._VF.gru / torch._VF.rnn_tanh

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = True,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        backend: Literal["auto", "torch", "reference"] = "auto",
    ) -> None:
        super().__init__()
        for arg, value in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{self._name}: {arg} must be a positive integer, got {value!r}.")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"{self._name}: dropout is a probability in [0, 1), got {dropout!r}.")
        if backend not in ("auto", "torch", "reference"):
            raise ValueError(f"{self._name}: backend must be 'auto', 'torch' or 'reference', got {backend!r}.")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.backend = bidirectional, backend
        D, G = self.num_directions, self._gates
        self._flat_weights_names: list[str] = []
        n_params = sum(G * hidden_size * ((input_size if layer == 0 else hidden_size * D) + hidden_size + 2 * bias)
                       for layer in range(num_layers)) * D  # fmt: skip
        _common.check_parameter_memory(self._name, n_params, f"{num_layers} layer(s) of hidden size {hidden_size:,}")
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * D
            for direction in range(D):
                sfx = f"_l{layer}" + ("_reverse" if direction else "")
                shapes = {
                    f"weight_ih{sfx}": (G * hidden_size, layer_input),
                    f"weight_hh{sfx}": (G * hidden_size, hidden_size),
                }
                if bias:
                    shapes |= {f"bias_ih{sfx}": (G * hidden_size,), f"bias_hh{sfx}": (G * hidden_size,)}
                for name, shape in shapes.items():
                    self.register_parameter(name, nn.Parameter(torch.empty(shape)))
                self._flat_weights_names.extend(shapes)
        self.reset_parameters()

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def reset_parameters(self) -> None:
        """torch's init: every weight and bias ~ U(-k, k), k = 1/sqrt(hidden_size)."""
        init.uniform_(list(self.parameters()), self.hidden_size)

    def forward(self, x: Tensor, state: Tensor | None = None, lengths: Tensor | None = None, *, record: bool = False):
        """Run the stack. x: (B, T, I) if batch_first else (T, B, I); state h_0: (L*D, B, H).

        Returns ``output, h_n`` (output (B, T, D*H), h_n (L*D, B, H)), plus ``h_steps[layer][direction]``, the list
        of per-step state tensors, with record=True (reference path).
        """
        lp = functional.autocast_dtype(self.weight_ih_l0.device, self.weight_ih_l0.dtype)
        if lp is not None:  # accept an input or state in the autocast dtype; the paths below lower what they need
            if isinstance(x, Tensor) and x.dtype == lp:
                x = x.to(self.weight_ih_l0.dtype)
            if isinstance(state, Tensor) and state.dtype == lp:
                state = state.to(self.weight_ih_l0.dtype)
        single = _common.unbatched(x)
        if single:
            x = x.unsqueeze(0 if self.batch_first else 1)
            state = state.unsqueeze(1) if state is not None else None
        _common.check_input(self._name, x, self.input_size, self.batch_first, self.weight_ih_l0.dtype)
        batch, time = (x.shape[0], x.shape[1]) if self.batch_first else (x.shape[1], x.shape[0])
        lengths = _common.check_lengths(self._name, lengths, batch, time, x.device)
        LD = self.num_layers * self.num_directions
        if state is None:
            state = x.new_zeros(LD, batch, self.hidden_size)
        _common.check_state(self._name, "h_0", state, (LD, batch, self.hidden_size), x.dtype)
        if record and self.backend == "torch":
            raise ValueError(f"{self._name}: record=True needs backend='auto' or 'reference'.")
        h_steps = None
        if self.backend == "reference" or record:
            output, h_n, h_steps = self._reference(x, state, lengths, record)
        elif lp is not None:
            with torch.autocast(x.device.type, enabled=False):
                output, h_n = self._run_fused(x.to(lp), state.to(lp), lengths, lp)
        else:
            output, h_n = self._run_fused(x, state, lengths)
        if lp is not None:
            output, h_n = output.to(lp), h_n.to(lp)
        if single:
            output, h_n = output.squeeze(0 if self.batch_first else 1), h_n.squeeze(1)
        return (output, h_n, h_steps) if record else (output, h_n)

    def _run_fused(
        self, x: Tensor, h0: Tensor, lengths: Tensor | None, lp: torch.dtype | None = None
    ) -> tuple[Tensor, Tensor]:
        weights = [getattr(self, n) for n in self._flat_weights_names]
        if lp is not None:
            weights = [w.to(lp) for w in weights]
        args = (self.bias, self.num_layers, self.dropout, self.training, self.bidirectional)
        if lengths is None:
            output, h_n = self._kernel(x, h0, weights, *args, self.batch_first)
            return output, h_n
        total = x.shape[1] if self.batch_first else x.shape[0]
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=self.batch_first, enforce_sorted=False)
        data, h_n = self._kernel(
            packed.data, packed.batch_sizes, h0.index_select(1, packed.sorted_indices), weights, *args
        )
        out = PackedSequence(data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices)
        output, _ = pad_packed_sequence(out, batch_first=self.batch_first, total_length=total)
        return output, h_n.index_select(1, packed.unsorted_indices)

    def _reference(self, x: Tensor, h0: Tensor, lengths: Tensor | None, record: bool):
        # fmt: off
        x = x.transpose(0, 1) if self.batch_first else x                          # (T, B, I)
        time = x.shape[0]
        valid = _common.valid_mask(lengths, time, x.dtype)                        # (T, B, 1) or None
        if valid is not None:  # padding may hold anything (NaN too); 0 * NaN would leak into the kept state
            x = x.masked_fill(valid == 0, 0.0)
        h_n, all_steps, layer_input = [], [], x
        for layer in range(self.num_layers):
            outputs, layer_steps = [], []
            for direction in range(self.num_directions):
                seq = layer_input if direction == 0 else _common.reverse_padded(layer_input, lengths)
                h = h0[layer * self.num_directions + direction]
                outs, steps = [], []
                for t in range(time):
                    h_new = self._cell_fn(seq[t], h, *self._weights(layer, direction))   # (B, H)
                    if valid is not None:
                        h_new = valid[t] * h_new + (1 - valid[t]) * h
                    h = h_new
                    steps.append(h)
                    outs.append(h if valid is None else h * valid[t])
                out = torch.stack(outs)                                           # (T, B, H)
                outputs.append(out if direction == 0 else _common.reverse_padded(out, lengths))
                h_n.append(h)
                layer_steps.append(steps)
            all_steps.append(layer_steps)
            layer_input = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=-1)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
        output = layer_input.transpose(0, 1) if self.batch_first else layer_input
        # fmt: on
        return output, torch.stack(h_n), (all_steps if record else None)

    def _weights(self, layer: int, direction: int) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        sfx = f"_l{layer}" + ("_reverse" if direction else "")
        return tuple(getattr(self, f"{n}{sfx}", None) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if self.bidirectional:
            text += ", bidirectional=True"
        if self.backend != "auto":
            text += f", backend={self.backend!r}"
        return text


class GRU(_SingleStateRNN):
    """Gated recurrent unit layers (Cho et al. 2014) with torch.nn.GRU's parameters; equations in
    :func:`lstmkit.nn.functional.gru_cell`. Same arguments and shapes as :class:`RNN`."""

    _gates = 3
    _name = "GRU"
    _cell_fn = staticmethod(functional.gru_cell)
    _kernel = staticmethod(torch._VF.gru)


class RNN(_SingleStateRNN):
    """Elman tanh RNN layers with torch.nn.RNN's parameters; equations in :func:`lstmkit.nn.functional.rnn_tanh_cell`.

    Args: input_size, hidden_size, num_layers, bias, batch_first (default True), dropout, bidirectional, backend.
    Shape: x (B, T, I); state h_0 (L*D, B, H); output (B, T, D*H); h_n (L*D, B, H).
    """

    _gates = 1
    _name = "RNN"
    _cell_fn = staticmethod(functional.rnn_tanh_cell)
    _kernel = staticmethod(torch._VF.rnn_tanh)
