"""``LSTM``: stacked, bidirectional, padded, streamable, with the variants users ask for, on the fastest valid path.

The equations are in :mod:`lstmkit.nn.functional` (the reference). This module owns the parameters (torch's
names, shapes and gate order, so ``state_dict``s load both ways with ``torch.nn.LSTM``), the loop over layers and
directions, and the choice of path:

==============  ======================================================================================
backend         what runs
==============  ======================================================================================
``"auto"``      ``"torch"`` when the configuration is plain, else ``"lstmkit"``; ``"reference"`` for record=True
``"torch"``     PyTorch's fused kernel (oneDNN on CPU, cuDNN on GPU). Plain LSTM only: no layer_norm, peephole,
                recurrent_dropout or zoneout, and no record=True.
``"lstmkit"``   lstmkit's own fast layer (:mod:`lstmkit.nn.fused.lstm_layer`): every variant.
``"reference"`` the readable per-step loop of :func:`lstmkit.nn.functional.lstm_layer`.
==============  ======================================================================================

Under ``torch.autocast`` (float32 parameters) every backend runs its matrix products in the autocast dtype and
keeps the cell state c in float32 where it owns the loop (``"lstmkit"``, ``"reference"``; PyTorch's kernel takes c0
and gives c_n in the autocast dtype). Whatever the backend, the output and h_n come back in the autocast dtype, like
``torch.nn.LSTM``'s, and c_n in float32; inputs and states may be passed in either dtype. Parameter gradients are
float32. Autocast saves time only where bfloat16 products are faster than float32 ones (GPUs, CPUs with AMX): on a
CPU with AVX-512 BF16 but no AMX, a bfloat16 matrix product ran at half the float32 rate (72 against 148 GFLOP/s
on one core, 2048^3), and the LSTM trained at 0.7-0.9x its float32 speed (``lstmkit bench --suite precision``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import _common, functional, init, introspect
from .fused import lstm_layer as fast_layer
from .fused import stream, torch_kernel

logger = logging.getLogger(__name__)

Backend = Literal["auto", "reference", "torch", "lstmkit"]
BACKENDS: tuple[str, ...] = ("auto", "reference", "torch", "lstmkit")


@dataclass
class LSTMTrace:
    """What ``record=True`` returns: every step's gates, cells and states, per layer and direction.

    Attributes:
        gates: ``gates[layer][direction]`` shaped (B, T, 4, H): the activated i, f, g, o at every step.
        cells: ``cells[layer][direction]`` shaped (B, T, H): c_t at every step.
        h_steps: ``h_steps[layer][direction]``: the T state tensors h_t (B, S) in processing order (reversed time
            for the backward direction), as carried from step to step, so ``torch.autograd.grad(loss, h_steps)``
            gives dL/dh_t through every path. See :func:`lstmkit.nn.introspect.hidden_grad_norms`.
    """

    gates: list[list[Tensor]] = field(default_factory=list)
    cells: list[list[Tensor]] = field(default_factory=list)
    h_steps: list[list[list[Tensor]]] = field(default_factory=list)


@dataclass(frozen=True)
class Explanation:
    """Which path a layer takes and why. ``str()`` gives one sentence."""

    backend: str
    kernel: str
    ruled_out_fused: tuple[str, ...]

    def __str__(self) -> str:
        text = f"backend '{self.backend}': {self.kernel}"
        if self.ruled_out_fused:
            text += f"; PyTorch's fused kernel is ruled out by {', '.join(self.ruled_out_fused)}"
        return text + "."


class LSTM(nn.Module):
    r"""Long Short-Term Memory layer(s), a drop-in for ``torch.nn.LSTM`` with variants and streaming.

    Equations: :func:`lstmkit.nn.functional.lstm_cell`.

    Args:
        input_size: I, features per time step.
        hidden_size: H, units per cell.
        num_layers: L, stacked layers.
        bias: keep ``bias_ih`` and ``bias_hh`` (two vectors, as torch and cuDNN keep them).
        batch_first: inputs and outputs are (B, T, ·) when True (the default here, unlike torch), else (T, B, ·).
        dropout: dropout on the outputs of every layer but the last (as torch).
        bidirectional: D = 2, a second layer reading each sequence backwards; outputs are concatenated.
        proj_size: P > 0 projects h to P units (LSTMP); h_n and outputs then have P units.
        layer_norm: layer-normalise the gate projections and the cell (Ba et al. 2016).
        peephole: gates see the cell state (Gers & Schmidhuber 2000).
        recurrent_dropout: variational dropout on h_{t-1}, one mask per sequence (Gal & Ghahramani 2016).
        zoneout: probability that a unit keeps its previous h and c at a step (Krueger et al. 2016).
        forget_bias: initial forget-gate bias (1.0 keeps memory open early on); None keeps torch's uniform init.
        backend: ``"auto"``, ``"torch"``, ``"lstmkit"`` or ``"reference"`` (see the module docstring).
        check_finite: raise a clear error on NaN or infinity in the inputs (costs one pass over the input).

    Shape:
        - x: (B, T, I) if batch_first else (T, B, I); a single sequence (T, I) also works.
        - state: ``(h_0, c_0)``, (L*D, B, S) and (L*D, B, H), where S = P if proj_size > 0 else H.
        - lengths: (B,) valid steps per sequence, in [1, T].
        - output: (B, T, D*S); ``h_n`` (L*D, B, S); ``c_n`` (L*D, B, H).

    Attributes:
        weight_ih_l[k]: (W_ii|W_if|W_ig|W_io), shape (4H, I) for k = 0, else (4H, D*S). ``_reverse`` for D = 2.
        weight_hh_l[k]: (W_hi|W_hf|W_hg|W_ho), shape (4H, S).
        bias_ih_l[k], bias_hh_l[k]: shape (4H,).
        weight_hr_l[k]: shape (P, H), with proj_size > 0.
        weight_peephole_l[k]: (w_ci|w_cf|w_co), shape (3, H), with peephole.
        layer_norm_{ih,hh}_weight_l[k]: shape (4H,); layer_norm_cell_{weight,bias}_l[k]: shape (H,), with layer_norm.
        Init: every weight and bias ~ U(-k, k), k = 1/sqrt(H) (torch's), then the forget bias; layer-norm gains 1.

    Example:
        >>> lstm = LSTM(8, 16, num_layers=2)
        >>> output, (h_n, c_n) = lstm(torch.randn(4, 10, 8))
        >>> tuple(output.shape), tuple(h_n.shape)
        ((4, 10, 16), (2, 4, 16))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = True,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        *,
        layer_norm: bool = False,
        peephole: bool = False,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
        forget_bias: float | None = 1.0,
        backend: Backend = "auto",
        check_finite: bool = False,
    ) -> None:
        super().__init__()
        for arg, value in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"LSTM: {arg} must be a positive integer, got {value!r}.")
        if not isinstance(proj_size, int) or proj_size < 0 or proj_size >= hidden_size:
            raise ValueError(
                f"LSTM: proj_size must be an integer in [0, hidden_size) = [0, {hidden_size}), got {proj_size!r}."
            )
        for arg, value in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout), ("zoneout", zoneout)):
            if not 0.0 <= float(value) < 1.0:
                raise ValueError(f"LSTM: {arg} is a probability in [0, 1), got {value!r}.")
        if backend not in BACKENDS:
            raise ValueError(f"LSTM: backend must be one of {', '.join(map(repr, BACKENDS))}, got {backend!r}.")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        self.layer_norm = layer_norm
        self.peephole = peephole
        self.recurrent_dropout = float(recurrent_dropout)
        self.zoneout = float(zoneout)
        self.forget_bias = forget_bias
        self.backend = backend
        self.check_finite = check_finite
        self._logged_fallback = False

        H, S, D = hidden_size, self.state_size, self.num_directions
        self._flat_weights_names: list[str] = []
        params: list[tuple[str, tuple[int, ...]]] = []  # every parameter's name and shape, checked before allocating
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else S * D
            for direction in range(D):
                sfx = self._suffix(layer, direction)
                shapes = {f"weight_ih{sfx}": (4 * H, layer_input), f"weight_hh{sfx}": (4 * H, S)}
                if bias:
                    shapes |= {f"bias_ih{sfx}": (4 * H,), f"bias_hh{sfx}": (4 * H,)}
                if proj_size > 0:
                    shapes[f"weight_hr{sfx}"] = (proj_size, H)
                self._flat_weights_names.extend(shapes)
                if peephole:
                    shapes[f"weight_peephole{sfx}"] = (3, H)
                if layer_norm:
                    shapes |= {
                        f"layer_norm_ih_weight{sfx}": (4 * H,),
                        f"layer_norm_hh_weight{sfx}": (4 * H,),
                        f"layer_norm_cell_weight{sfx}": (H,),
                        f"layer_norm_cell_bias{sfx}": (H,),
                    }
                params.extend(shapes.items())
        _common.check_parameter_memory(
            "LSTM", sum(math.prod(shape) for _, shape in params), f"{num_layers} layer(s) of hidden size {H:,}"
        )
        for name, shape in params:
            self.register_parameter(name, nn.Parameter(torch.empty(shape)))
        self._per_direction = 2 + 2 * bias + (proj_size > 0)  # flat weights per layer and direction, torch's order
        self.reset_parameters()

    # ---- parameters -------------------------------------------------------------------------------------------
    @staticmethod
    def _suffix(layer: int, direction: int) -> str:
        return f"_l{layer}" + ("_reverse" if direction == 1 else "")

    @property
    def _plain(self) -> bool:
        """The cell is the plain LSTM here and now (recurrent dropout acts only in training)."""
        return not (
            self.layer_norm or self.peephole or self.zoneout > 0 or (self.recurrent_dropout > 0 and self.training)
        )

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def state_size(self) -> int:
        """S, the size of h: proj_size if > 0, else hidden_size."""
        return self.proj_size if self.proj_size > 0 else self.hidden_size

    def reset_parameters(self) -> None:
        """torch.nn.LSTM's init, then layer-norm gains 1 and shifts 0, then the forget-gate bias."""
        init.uniform_(list(self.parameters()), self.hidden_size)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.startswith("layer_norm_") and "_bias" not in name:
                    p.fill_(1.0)
                elif name.startswith("layer_norm_cell_bias"):
                    p.zero_()
        if self.bias and self.forget_bias is not None:
            for layer in range(self.num_layers):
                for direction in range(self.num_directions):
                    sfx = self._suffix(layer, direction)
                    init.forget_bias_(
                        getattr(self, f"bias_ih{sfx}"), getattr(self, f"bias_hh{sfx}"), self.hidden_size,
                        self.forget_bias,
                    )  # fmt: skip

    def layer_weights(self, layer: int, direction: int = 0) -> functional.LSTMLayerWeights:
        """The weights of one layer and direction, as the reference and fast layers take them."""
        sfx = self._suffix(layer, direction)

        def get(name: str) -> Tensor | None:
            return getattr(self, f"{name}{sfx}", None)

        return functional.LSTMLayerWeights(
            weight_ih=get("weight_ih"), weight_hh=get("weight_hh"), bias_ih=get("bias_ih"), bias_hh=get("bias_hh"),
            weight_hr=get("weight_hr"), weight_peephole=get("weight_peephole"),
            ln_ih_weight=get("layer_norm_ih_weight"), ln_hh_weight=get("layer_norm_hh_weight"),
            ln_cell_weight=get("layer_norm_cell_weight"), ln_cell_bias=get("layer_norm_cell_bias"),
        )  # fmt: skip

    def _flat_weights(self) -> list[Tensor]:
        return [getattr(self, name) for name in self._flat_weights_names]

    # ---- path choice ------------------------------------------------------------------------------------------
    def _fused_blockers(self, record: bool) -> list[str]:
        """The arguments that keep PyTorch's fused kernel from running this configuration."""
        blockers = [
            f"{name}={value!r}"
            for name, value, plain in (
                ("layer_norm", self.layer_norm, False),
                ("peephole", self.peephole, False),
                ("recurrent_dropout", self.recurrent_dropout if self.training else 0.0, 0.0),
                ("zoneout", self.zoneout, 0.0),
            )
            if value != plain
        ]
        if record:
            blockers.append("record=True")
        device = self.weight_ih_l0.device
        if not torch_kernel.is_available(device):
            blockers.append(f"device {device.type!r}")
        return blockers

    def _choose(self, record: bool) -> str:
        blockers = self._fused_blockers(record)
        if self.backend == "torch" and blockers:
            raise ValueError(
                f"LSTM: backend='torch' was requested, but PyTorch's fused kernel cannot run this configuration "
                f"({', '.join(blockers)}). Pass backend='auto' to use lstmkit's own fast path for it."
            )
        if self.backend == "lstmkit" and record:
            raise ValueError(
                "LSTM: backend='lstmkit' does not record gates; record=True needs backend='auto' or 'reference'."
            )
        if self.backend != "auto":
            return self.backend
        if not blockers:
            return "torch"
        if record:
            if not self._logged_fallback:
                logger.info("LSTM: record=True runs the readable reference loop (slower than the fast paths).")
                self._logged_fallback = True
            return "reference"
        return "lstmkit"

    def explain(self, record: bool = False, padded: bool = False) -> Explanation:
        """Which path a forward call takes, and which arguments rule PyTorch's fused kernel out.

        Args:
            record: for a call with ``record=True``.
            padded: for a call with ``lengths`` that differ (a ragged batch).
        """
        backend = self._choose(record)
        device = self.weight_ih_l0.device
        fused = "PyTorch's fused LSTM kernel (" + ("cuDNN" if device.type == "cuda" else "oneDNN") + ")"
        kernels = {
            "torch": fused,
            "lstmkit": "lstmkit's own fast layer (one GEMM per step, hand-written backward)",
            "reference": "the readable reference loop (lstmkit.nn.functional)",
        }
        kernel = kernels[backend]
        if padded and backend == "torch":
            if self.backend == "torch":
                kernel = fused + " on packed sequences (slow on CPU: oneDNN takes no packed input)"
            elif self.bidirectional:
                backend, kernel = "lstmkit", kernels["lstmkit"] + " (a ragged bidirectional batch)"
            else:
                backend = "torch+lstmkit"
                kernel = fused + " up to the shortest length, then lstmkit's masked fast layer for the ragged rest"
        return Explanation(backend, kernel, tuple(self._fused_blockers(record)))

    # ---- forward ----------------------------------------------------------------------------------------------
    def _autocast_dtype(self) -> torch.dtype | None:
        """The autocast dtype (e.g. bfloat16) if autocast is on for the parameters' device, else None."""
        weight = self.weight_ih_l0
        return functional.autocast_dtype(weight.device, weight.dtype)

    def _from_autocast(self, lp: torch.dtype, x: Tensor, state):
        """Under autocast, accept an input and a state in the autocast dtype (e.g. a previous call's h_n, or a
        layer's output before this one): the engine takes them in the parameters' dtype and lowers them itself."""
        dtype = self.weight_ih_l0.dtype

        def up(t):
            return t.to(dtype) if isinstance(t, Tensor) and t.dtype == lp else t

        if isinstance(state, (tuple, list)):
            state = type(state)(up(s) for s in state)
        return up(x), state

    def _initial_state(self, state, batch: int, like: Tensor) -> tuple[Tensor, Tensor]:
        LD, H, S = self.num_layers * self.num_directions, self.hidden_size, self.state_size
        if state is None:
            return like.new_zeros(LD, batch, S), like.new_zeros(LD, batch, H)
        if not isinstance(state, (tuple, list)) or len(state) != 2:
            got = (
                f"a {type(state).__name__} of length {len(state)}"
                if isinstance(state, (tuple, list))
                else (
                    f"a {type(state).__name__}"
                    + (f" of shape {tuple(state.shape)}" if isinstance(state, Tensor) else "")
                )
            )
            raise ValueError(
                f"LSTM: state must be a tuple (h_0, c_0), as returned by a previous call, or None; got {got}."
            )
        h0, c0 = state
        _common.check_state("LSTM", "h_0", h0, (LD, batch, S), like.dtype)
        _common.check_state("LSTM", "c_0", c0, (LD, batch, H), like.dtype)
        return h0, c0

    def _masks(self, time: int, batch: int, like: Tensor, valid: Tensor | None) -> functional.StepMasks:
        """Sample this call's recurrent-dropout and zoneout masks (expectations in eval mode)."""
        H, S = self.hidden_size, self.state_size
        recurrent = zone_h = zone_c = None
        if self.training and self.recurrent_dropout > 0:
            keep = 1.0 - self.recurrent_dropout
            recurrent = like.new_empty(batch, S).bernoulli_(keep).div_(keep)
        if self.zoneout > 0:
            if self.training:
                zone_h = like.new_empty(time, batch, S).bernoulli_(self.zoneout)
                zone_c = like.new_empty(time, batch, H).bernoulli_(self.zoneout)
            else:
                zone_h = zone_c = self.zoneout
        return functional.StepMasks(recurrent=recurrent, zoneout_h=zone_h, zoneout_c=zone_c, valid=valid)

    def forward(
        self,
        x: Tensor,
        state: tuple[Tensor, Tensor] | None = None,
        lengths: Tensor | None = None,
        *,
        record: bool = False,
    ):
        """Run the stack over a batch of sequences.

        Args:
            x: (B, T, I) if batch_first else (T, B, I); or one sequence (T, I).
            state: ``(h_0, c_0)`` to continue from, or None for zeros.
            lengths: (B,) valid lengths of a right-padded batch; outputs past each end are zero and
                ``(h_n, c_n)`` are taken at each sequence's own last step, in both directions.
            record: also return an :class:`LSTMTrace` of every step's gates and cells (runs the reference).

        Returns:
            ``output, (h_n, c_n)``, or ``output, (h_n, c_n), trace`` with record=True.
        """
        lp = self._autocast_dtype()
        if lp is not None:
            x, state = self._from_autocast(lp, x, state)
        single = _common.unbatched(x)
        if single:
            x = x.unsqueeze(0 if self.batch_first else 1)
            if state is not None:
                state = tuple(s.unsqueeze(1) for s in state)
        _common.check_input("LSTM", x, self.input_size, self.batch_first, self.weight_ih_l0.dtype)
        batch, time = (x.shape[0], x.shape[1]) if self.batch_first else (x.shape[1], x.shape[0])
        lengths = _common.check_lengths("LSTM", lengths, batch, time, x.device)
        if self.check_finite:
            _common.check_finite("LSTM", x, lengths, self.batch_first)
        h0, c0 = self._initial_state(state, batch, x)
        if lengths is not None and int(lengths.min()) == time:
            lengths = None  # every sequence is full: nothing to mask
        path = self._choose(record)
        if path == "torch" and lengths is not None and self.backend == "auto":
            # PyTorch's packed-sequence kernel is far slower than its padded one on CPU (oneDNN takes no packed
            # input; measured 13x at B=64, T=110, H=64), so "auto" does not use it: a unidirectional stack runs
            # the fused kernel over the common prefix and lstmkit's masked layer over the ragged suffix;
            # a bidirectional one, whose backward direction starts at each sequence's own end, runs lstmkit's layer.
            path = "lstmkit" if self.bidirectional else "torch+lstmkit"
        trace = None
        if path == "torch":
            output, (h_n, c_n) = self._run_fused(x, (h0, c0), lengths, lp)
        elif path == "torch+lstmkit":
            output, (h_n, c_n) = self._run_prefix_suffix(x, (h0, c0), lengths, lp)
        else:
            layer_fn = functional.lstm_layer if path == "reference" else fast_layer.lstm_layer
            output, (h_n, c_n), trace = self._run_layers(layer_fn, x, (h0, c0), lengths, record)
        if lp is not None:  # one contract for every backend: output and h_n in the autocast dtype, c_n in float32
            output, h_n, c_n = output.to(lp), h_n.to(lp), c_n.to(x.dtype)
        if single:
            output, h_n, c_n = output.squeeze(0 if self.batch_first else 1), h_n.squeeze(1), c_n.squeeze(1)
        return (output, (h_n, c_n), trace) if record else (output, (h_n, c_n))

    def _run_fused(
        self, x: Tensor, state: tuple[Tensor, Tensor], lengths: Tensor | None, lp: torch.dtype | None = None
    ):
        return torch_kernel.lstm(
            x, state, self._flat_weights(), has_bias=self.bias, num_layers=self.num_layers, dropout=self.dropout,
            training=self.training, bidirectional=self.bidirectional, batch_first=self.batch_first, lengths=lengths,
            compute_dtype=lp,
        )  # fmt: skip

    def _run_prefix_suffix(
        self, x: Tensor, state: tuple[Tensor, Tensor], lengths: Tensor, lp: torch.dtype | None = None
    ):
        """Unidirectional padded batch: fused kernel over steps [0, min length), lstmkit's layer over the rest."""
        # fmt: off
        shortest = int(lengths.min())
        time_dim = 1 if self.batch_first else 0
        prefix, suffix = x.split((shortest, x.shape[time_dim] - shortest), dim=time_dim)
        out_prefix, carried = self._run_fused(prefix, state, None, lp)                # (B, m, S) if batch_first
        out_suffix, final, _ = self._run_layers(
            fast_layer.lstm_layer, suffix, carried, lengths - shortest, record=False
        )                                                                                # lengths may reach 0 here
        # fmt: on
        return torch.cat((out_prefix, out_suffix), dim=time_dim), final

    def _run_layers(self, layer_fn, x: Tensor, state: tuple[Tensor, Tensor], lengths: Tensor | None, record: bool):
        # fmt: off
        x = x.transpose(0, 1) if self.batch_first else x                           # (T, B, I)
        time, batch = x.shape[0], x.shape[1]
        valid = _common.valid_mask(lengths, time, x.dtype)                         # (T, B, 1) or None
        if valid is not None:  # padding may hold anything (NaN too); 0 * NaN would leak into the kept state
            x = x.masked_fill(valid == 0, 0.0)
        h0, c0 = state
        h_n, c_n = [], []
        trace = LSTMTrace() if record else None
        layer_input = x
        for layer in range(self.num_layers):
            outputs = []
            if trace is not None:
                trace.gates.append([]), trace.cells.append([]), trace.h_steps.append([])
            for direction in range(self.num_directions):
                index = layer * self.num_directions + direction
                masks = self._masks(time, batch, x, valid)
                seq = layer_input if direction == 0 else _common.reverse_padded(layer_input, lengths)
                out, (h, c), recorded = layer_fn(
                    seq, (h0[index], c0[index]), self.layer_weights(layer, direction), masks, record=record
                )                                                                  # out: (T, B, S)
                if direction == 1:
                    out = _common.reverse_padded(out, lengths)
                outputs.append(out)
                h_n.append(h)
                c_n.append(c)
                if trace is not None:
                    gates, cells, h_steps = recorded
                    if direction == 1:
                        gates = _common.reverse_padded(gates, lengths)
                        cells = _common.reverse_padded(cells, lengths)
                    trace.gates[layer].append(gates.transpose(0, 1))               # (B, T, 4, H)
                    trace.cells[layer].append(cells.transpose(0, 1))               # (B, T, H)
                    trace.h_steps[layer].append(h_steps)
            layer_input = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=-1)   # (T, B, D*S)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
        output = layer_input.transpose(0, 1) if self.batch_first else layer_input
        # fmt: on
        return output, (torch.stack(h_n), torch.stack(c_n)), trace

    # ---- looking inside ---------------------------------------------------------------------------------------
    def _record(self, x: Tensor, state, lengths: Tensor | None) -> LSTMTrace:
        """Every step's gates and cells on a batch, by the reference loop whatever the backend (no gradients)."""
        backend = self.backend
        self.backend = "reference"
        try:
            with torch.no_grad():
                _, _, trace = self(x, state, lengths, record=True)
        finally:
            self.backend = backend
        return trace

    def gate_saturation(
        self, x: Tensor, state=None, lengths: Tensor | None = None, *, margin: float = 0.05
    ) -> dict[str, float]:
        """Per gate (i, f, g, o), the fraction of saturated activations on a batch, over every layer and direction.

        See :func:`lstmkit.nn.introspect.gate_saturation`. The Trainer calls this on each epoch's first batch and
        logs ``gate_sat_i`` ... ``gate_sat_o``.
        """
        trace = self._record(x, state, lengths)
        gates = [g for layer in trace.gates for g in layer]  # each (B, T, 4, H)
        return introspect.gate_saturation(gates, lengths if x.dim() == 3 else None, margin)

    def locate_nonfinite(self, x: Tensor, state=None, lengths: Tensor | None = None) -> str | None:
        """Where inside the stack the first NaN or infinity arises on a batch: layer, direction and time step.

        Returns:
            e.g. ``"layer 1 (forward), time step 37 of 100, in the gates"``, or None if every gate and cell is
            finite. Used by the Trainer's numerical guard (:func:`lstmkit.train.guards.locate_nonfinite`).
        """
        trace = self._record(x, state, lengths)
        for layer, (layer_gates, layer_cells) in enumerate(zip(trace.gates, trace.cells, strict=True)):
            found = []
            for direction, (g, c) in enumerate(zip(layer_gates, layer_cells, strict=True)):
                bad_g = ~torch.isfinite(g).flatten(2).all(-1).all(0)  # (T,)
                bad_c = ~torch.isfinite(c).all(-1).all(0)  # (T,)
                steps = torch.nonzero(bad_g | bad_c).flatten()
                if steps.numel():
                    t = int(steps[0]) if direction == 0 else int(steps[-1])  # the backward direction runs T-1 .. 0
                    where = "the gates" if bool(bad_g[t]) else "the cell state"
                    found.append((direction, t, where, g.shape[1]))
            if found:
                direction, t, where, time = found[0]
                name = ("forward", "backward")[direction] if self.bidirectional else "forward"
                return f"layer {layer} ({name}), time step {t} of {time}, in {where}"
        return None

    # ---- streaming --------------------------------------------------------------------------------------------
    def step(
        self, x_t: Tensor, state: tuple[Tensor, Tensor] | None = None, reset: Tensor | None = None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """Advance every layer by one time step: the streaming form of :meth:`forward`.

        Feeding a sequence one step at a time, carrying ``state``, gives the numbers of one full-sequence call.
        Under ``torch.no_grad()`` / ``torch.inference_mode()`` a plain LSTM takes the streaming path
        (:mod:`lstmkit.nn.fused.stream`); otherwise the reference cell runs, with autograd.

        Args:
            x_t: (B, I), this step's input.
            state: ``(h, c)``, (L, B, S) and (L, B, H), or None for zeros.
            reset: (B,) bool; True zeroes that sample's state before the step (a stream that ended and restarted).

        Returns:
            ``(y_t, (h, c))``: y_t (B, S) is the top layer's output at this step. Under autocast the step runs in
            float32 (at batch 1 it reads each weight once: casting them would cost more than it saves) and returns
            y_t and h in the autocast dtype, c in float32, as :meth:`forward` does.
        """
        if isinstance(x_t, Tensor) and torch.is_autocast_enabled(x_t.device.type):
            lp = self._autocast_dtype()
            if lp is not None:
                x_t, state = self._from_autocast(lp, x_t, state)
                with torch.autocast(x_t.device.type, enabled=False):
                    y_t, (h, c) = self.step(x_t, state, reset)
                return y_t.to(lp), (h.to(lp), c)
        if self.bidirectional:
            raise ValueError(
                "LSTM.step: a bidirectional LSTM needs the whole sequence (its backward direction reads the future); "
                "call the layer on the full sequence, or build it with bidirectional=False for streaming."
            )
        if not isinstance(x_t, Tensor) or x_t.dim() != 2 or x_t.shape[1] != self.input_size:
            got = tuple(x_t.shape) if isinstance(x_t, Tensor) else type(x_t).__name__
            raise ValueError(f"LSTM.step: expected x_t shaped (B, {self.input_size}), got {got}.")
        batch = x_t.shape[0]
        h, c = self._initial_state(state, batch, x_t)
        if reset is not None:
            reset = torch.as_tensor(reset, device=x_t.device)
            if reset.shape != (batch,):
                raise ValueError(f"LSTM.step: reset must have shape ({batch},), got {tuple(reset.shape)}.")
            keep = (~reset.bool()).to(x_t.dtype)[None, :, None]  # (1, B, 1)
            h, c = h * keep, c * keep
        if self._plain and not torch.is_grad_enabled():
            hs, cs, inp = [], [], x_t
            for layer in range(self.num_layers):
                h_l, c_l = self._stream_step(layer, inp, h[layer], c[layer])
                if self.num_layers == 1:  # the common streaming case: no stack
                    return h_l, (h_l.unsqueeze(0), c_l.unsqueeze(0))
                hs.append(h_l)
                cs.append(c_l)
                inp = h_l
                if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                    inp = F.dropout(inp, self.dropout, training=True)
            return inp, (torch.stack(hs), torch.stack(cs))
        hs, cs, inp = [], [], x_t
        for layer in range(self.num_layers):
            m = self._masks(1, batch, x_t, None)
            (h_l, c_l), _ = functional.lstm_cell(
                inp, (h[layer], c[layer]), self.layer_weights(layer), recurrent_mask=m.recurrent,
                zoneout_h=m.zoneout_h[0] if isinstance(m.zoneout_h, Tensor) else m.zoneout_h,
                zoneout_c=m.zoneout_c[0] if isinstance(m.zoneout_c, Tensor) else m.zoneout_c,
            )  # fmt: skip
            hs.append(h_l)
            cs.append(c_l)
            inp = h_l
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                inp = F.dropout(inp, self.dropout, training=True)
        return inp, (torch.stack(hs), torch.stack(cs))

    def _stream_step(self, layer: int, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        """One plain step of one layer without autograd, reading the live parameters (never a cached copy).

        Parameters are looked up in ``_parameters`` directly: ``nn.Module.__getattr__`` for ten names costs more
        than the H = 256 matrix-vector product itself (16 us against 19 us measured).
        """
        p = self._parameters
        names = self._flat_weights_names[layer * self.num_directions * self._per_direction :][: self._per_direction]
        weights = [p[name] for name in names]  # weight_ih, weight_hh, [bias_ih, bias_hh], [weight_hr]
        if self.proj_size == 0:
            if not self.bias:
                weights += [None, None]
            return torch.lstm_cell(x, (h, c), *weights)  # PyTorch's C++ cell: one call, no Python-level ops
        w_ih, w_hh, *rest = weights
        b_ih, b_hh = (rest[0], rest[1]) if self.bias else (None, None)
        return stream.step(x, h, c, functional.LSTMLayerWeights(w_ih, w_hh, b_ih, b_hh, weight_hr=rest[-1]))

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        defaults = {
            "num_layers": 1, "bias": True, "batch_first": True, "dropout": 0.0, "bidirectional": False,
            "proj_size": 0, "layer_norm": False, "peephole": False, "recurrent_dropout": 0.0, "zoneout": 0.0,
            "forget_bias": 1.0, "backend": "auto",
        }  # fmt: skip
        for name, default in defaults.items():
            value = getattr(self, name)
            if value != default:
                text += f", {name}={value!r}"
        return text
