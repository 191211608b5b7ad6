"""Writing lstmkit's networks as ONNX graphs, node by node (``onnx.helper``), with no tracing.

The plain LSTM layer becomes ONNX's own ``LSTM`` operator (gate order ``i, o, f, c``; the weights converted by
:func:`lstmkit.nn.weights.to_onnx_lstm_weights`), peepholes included (its ``P`` input, order ``i, o, f``). The
variants the operator cannot express (layer normalisation, projection, zoneout at evaluation) become a ``Scan`` over
time whose body is :func:`lstmkit.nn.functional.lstm_cell` written in standard operators. Evaluation mode only:
dropout and recurrent dropout are the identity, zoneout its expectation, exactly as the engine in ``eval()``.

Conventions of the graphs: batch first at the edges like the engine (``x (B, T, I)``), time-major inside;
``lengths (B,)`` int64 for padded batches; recurrent state as the engine's ``(h, c)``, each ``(L*D, B, S|H)``.

This toolkit sits in ``lstmkit.nn`` (not in ``lstmkit.export``) so that each task family can write its own graphs
(``tasks/<family>/onnx.py``) without importing the export layer above it. It imports numpy and, only when a graph is
built, the ``onnx`` package (the ``export`` extra); importing it costs nothing more than the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from .lstm import LSTM
from .rnn import GRU, RNN
from .weights import to_onnx_lstm_weights

__all__ = ["BOOL", "FLOAT", "INT64", "OPSET", "CheckedGraph", "Graph", "core_sequence", "dim", "lstm_sequence",
           "lstm_step", "sample_lengths"]  # fmt: skip

OPSET = 17
LN_EPS = 1e-5
FLOAT, INT64, BOOL = 1, 7, 9  # onnx.TensorProto's element types, without importing onnx


def _onnx() -> Any:
    try:
        import onnx
    except ImportError as e:
        raise ImportError("ONNX export needs the onnx package: pip install 'lstmkit[export]'.") from e
    return onnx


class Graph:
    """A growing ONNX graph: named constants, nodes with fresh output names, inputs and outputs."""

    def __init__(self, name: str) -> None:
        self.onnx = _onnx()
        self.name = name
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.inputs: list[Any] = []
        self.outputs: list[Any] = []
        self._count = 0

    def fresh(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, value: Any, stem: str = "const", dtype: Any = np.float32) -> str:
        """A constant (initializer) from a tensor, array or number; returns its name."""
        if isinstance(value, Tensor):
            value = value.detach().cpu().float().numpy() if value.is_floating_point() else value.cpu().numpy()
        array = np.asarray(value, dtype=dtype)
        name = self.fresh(stem)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def ints(self, values: list[int] | int, stem: str = "ints") -> str:
        return self.const(values, stem, np.int64)

    def op(self, op_type: str, inputs: list[str], n_out: int = 1, stem: str | None = None, **attrs: Any) -> Any:
        """Add a node; returns its output name, or a list of names when ``n_out`` > 1."""
        outs = [self.fresh(stem or op_type.lower()) for _ in range(n_out)]
        self.nodes.append(self.onnx.helper.make_node(op_type, inputs, outs, **attrs))
        return outs[0] if n_out == 1 else outs

    def input(self, name: str, elem: int, shape: list[int | str]) -> str:
        self.inputs.append(self.onnx.helper.make_tensor_value_info(name, elem, shape))
        return name

    def output(self, value: str, name: str, elem: int, shape: list[int | str] | None) -> None:
        self.nodes.append(self.onnx.helper.make_node("Identity", [value], [name]))
        self.outputs.append(self.onnx.helper.make_tensor_value_info(name, elem, shape))

    def graph(self) -> Any:
        return self.onnx.helper.make_graph(self.nodes, self.name, self.inputs, self.outputs, self.initializers)

    def model(self, doc: str = "", metadata: dict[str, str] | None = None) -> Any:
        """The checked ModelProto; ``metadata`` becomes its ``metadata_props`` (what the export records about itself:
        lstmkit's version, the kind, the run it came from)."""
        onnx = self.onnx
        model = onnx.helper.make_model(
            self.graph(), opset_imports=[onnx.helper.make_opsetid("", OPSET)], producer_name="lstmkit",
            doc_string=doc,
        )  # fmt: skip
        model.ir_version = min(model.ir_version, 9)  # readable by onnxruntime releases of the last two years
        if metadata:
            onnx.helper.set_model_props(model, metadata)
        onnx.checker.check_model(model)
        return model

    # ---- small layers ----------------------------------------------------------------------------------------
    def linear(self, x: str, module: torch.nn.Linear) -> str:
        """x (..., in) -> (..., out): MatMul with the transposed weight, plus the bias."""
        y = self.op("MatMul", [x, self.const(module.weight.T, "weight")])
        return self.op("Add", [y, self.const(module.bias, "bias")]) if module.bias is not None else y

    def sequential(self, x: str, module: torch.nn.Module) -> str:
        """An ``nn.Sequential`` head (or one layer) in eval mode: Linear, ReLU, Tanh, Sigmoid; Dropout and Identity
        are the identity."""
        layers = list(module) if isinstance(module, torch.nn.Sequential) else [module]
        for layer in layers:
            if isinstance(layer, torch.nn.Linear):
                x = self.linear(x, layer)
            elif isinstance(layer, torch.nn.ReLU | torch.nn.Tanh | torch.nn.Sigmoid):
                x = self.op(type(layer).__name__.replace("ReLU", "Relu"), [x])  # ONNX's Relu, Tanh, Sigmoid
            elif not isinstance(layer, torch.nn.Dropout | torch.nn.Identity):
                raise TypeError(f"ONNX export knows Linear, ReLU, Tanh, Sigmoid and Dropout layers, not {layer}.")
        return x

    def slice(self, x: str, starts: list[int], ends: list[int], axes: list[int]) -> str:
        return self.op("Slice", [x, self.ints(starts), self.ints(ends), self.ints(axes)])

    def embedding(self, ids: str, module: torch.nn.Embedding) -> str:
        return self.op("Gather", [self.const(module.weight, "embedding"), ids], axis=0)

    def valid_mask(self, lengths: str, time: str) -> str:
        """(B, T) bool: step t < lengths[b]. ``time``: a 1-element int64 tensor holding T."""
        steps = self.op("Range", [self.ints(0), self.op("Squeeze", [time, self.ints([0])]), self.ints(1)])  # (T,)
        return self.op("Less", [self.op("Unsqueeze", [steps, self.ints([0])]),
                                self.op("Unsqueeze", [lengths, self.ints([1])])])  # fmt: skip


class CheckedGraph(NamedTuple):
    """One graph an exportable object gives (its ``onnx_graphs`` method), with what checks it: ``samples`` (input
    feeds, numpy) and ``reference(feeds)`` (the source model's outputs for those feeds, in the graph's output order).
    ``suffix`` names the file beside the main one (``""``: the main file; Seq2Seq's decoder step ``-decoder-step``)."""

    graph: Graph
    samples: list[dict[str, np.ndarray]]
    reference: Callable[[dict[str, np.ndarray]], list[np.ndarray]]
    suffix: str = ""


def sample_lengths(rng: np.random.Generator, batch: int, time: int) -> np.ndarray:
    """Random sequence lengths in 1..time for a sample batch, the first one full (int64)."""
    lengths = rng.integers(1, time + 1, size=batch)
    lengths[0] = time
    return lengths.astype(np.int64)


def dim(g: Graph, x: str, axis: int) -> str:
    """A 1-element int64 tensor holding x.shape[axis]."""
    return g.op("Gather", [g.op("Shape", [x]), g.ints([axis])], axis=0)


def _plain_layer(lstm: LSTM) -> bool:
    """The ONNX LSTM operator computes this module's layers in eval mode (peepholes are its P input)."""
    return not (lstm.layer_norm or lstm.proj_size > 0 or lstm.zoneout > 0)


def _peephole_P(lstm: LSTM, layer: int) -> Tensor:
    """(D, 3H) peephole weights in ONNX's order i, o, f (the engine keeps rows i, f, o)."""
    rows = []
    for d in range(lstm.num_directions):
        p = lstm.layer_weights(layer, d).weight_peephole  # (3, H): i, f, o
        rows.append(torch.cat([p[0], p[2], p[1]]))
    return torch.stack(rows)


def _cell(g: Graph, lstm: LSTM, layer: int, direction: int, x: str, h: str, c: str,
          valid: str | None) -> tuple[str, str, str]:  # fmt: skip
    """One step of ``functional.lstm_cell`` in eval mode: x (B, I), h (B, S), c (B, H), valid (B, 1) float or None
    -> (h_new, c_new, y) where y = h_new * valid (0 past a sequence's end)."""
    w = lstm.layer_weights(layer, direction)
    H = w.hidden_size
    x_proj = g.op("MatMul", [x, g.const(w.weight_ih.T, "w_ih")])  # (B, 4H)
    h_proj = g.op("MatMul", [h, g.const(w.weight_hh.T, "w_hh")])  # (B, 4H)
    if w.layer_norm:
        x_proj = g.op("LayerNormalization", [x_proj, g.const(w.ln_ih_weight, "ln_ih")], axis=-1, epsilon=LN_EPS)
        h_proj = g.op("LayerNormalization", [h_proj, g.const(w.ln_hh_weight, "ln_hh")], axis=-1, epsilon=LN_EPS)
    z = g.op("Add", [x_proj, h_proj])
    if w.bias_ih is not None:
        z = g.op("Add", [z, g.const(w.bias_ih + w.bias_hh, "bias")])
    z_i, z_f, z_g, z_o = g.op("Split", [z, g.ints([H] * 4)], n_out=4, axis=1)  # 4 x (B, H)
    if w.weight_peephole is not None:
        z_i = g.op("Add", [z_i, g.op("Mul", [g.const(w.weight_peephole[0], "p_i"), c])])
        z_f = g.op("Add", [z_f, g.op("Mul", [g.const(w.weight_peephole[1], "p_f"), c])])
    i, f, gg = g.op("Sigmoid", [z_i]), g.op("Sigmoid", [z_f]), g.op("Tanh", [z_g])
    c_new = g.op("Add", [g.op("Mul", [f, c]), g.op("Mul", [i, gg])])  # (B, H)
    if w.weight_peephole is not None:
        z_o = g.op("Add", [z_o, g.op("Mul", [g.const(w.weight_peephole[2], "p_o"), c_new])])
    o = g.op("Sigmoid", [z_o])
    c_out = c_new
    if w.layer_norm:
        c_out = g.op("LayerNormalization", [c_new, g.const(w.ln_cell_weight, "ln_c"), g.const(w.ln_cell_bias, "ln_b")],
                     axis=-1, epsilon=LN_EPS)  # fmt: skip
    h_new = g.op("Mul", [o, g.op("Tanh", [c_out])])  # (B, H)
    if w.weight_hr is not None:
        h_new = g.op("MatMul", [h_new, g.const(w.weight_hr.T, "w_hr")])  # (B, P)
    if lstm.zoneout > 0:  # evaluation: the expectation of the keep-previous mask
        z_keep, z_new = g.const(lstm.zoneout, "zoneout"), g.const(1.0 - lstm.zoneout, "zoneout_new")
        c_new = g.op("Add", [g.op("Mul", [z_keep, c]), g.op("Mul", [z_new, c_new])])
        h_new = g.op("Add", [g.op("Mul", [z_keep, h]), g.op("Mul", [z_new, h_new])])
    if valid is None:
        return h_new, c_new, h_new
    keep = g.op("Sub", [g.const(1.0, "one"), valid])
    c_new = g.op("Add", [g.op("Mul", [valid, c_new]), g.op("Mul", [keep, c])])
    h_new = g.op("Add", [g.op("Mul", [valid, h_new]), g.op("Mul", [keep, h])])
    return h_new, c_new, g.op("Mul", [h_new, valid])


def _scan_direction(g: Graph, lstm: LSTM, layer: int, direction: int, x: str, valid: str, h0: str,
                    c0: str) -> tuple[str, str, str]:  # fmt: skip
    """A Scan over time of :func:`_cell`: x (T, B, I) (already reversed per sequence for the reverse direction),
    valid (T, B, 1) float, h0 (B, S), c0 (B, H) -> y (T, B, S), h_n, c_n."""
    onnx = g.onnx
    body = Graph(f"lstm_l{layer}_d{direction}_step")
    body._count = g._count + 100000 * (1 + layer * 2 + direction)  # distinct names from the outer graph
    elem = onnx.TensorProto.FLOAT
    h_in = body.input("h_prev", elem, ["B", "S"])
    c_in = body.input("c_prev", elem, ["B", "H"])
    x_t = body.input("x_t", elem, ["B", "I"])
    v_t = body.input("valid_t", elem, ["B", 1])
    h_new, c_new, y = _cell(body, lstm, layer, direction, x_t, h_in, c_in, v_t)
    body.output(h_new, "h_next", elem, ["B", "S"])
    body.output(c_new, "c_next", elem, ["B", "H"])
    body.output(y, "y_t", elem, ["B", "S"])
    g.initializers.extend(body.initializers)  # outer-scope constants, visible to the body
    body.initializers = []
    return g.op("Scan", [h0, c0, x, valid], n_out=3, stem="scan", num_scan_inputs=2, body=body.graph())


def lstm_sequence(g: Graph, lstm: LSTM, x: str, state: tuple[str, str] | None, lengths: str | None,
                  ) -> tuple[str, str, str]:  # fmt: skip
    """The engine's ``LSTM.forward`` in eval mode on a time-major x (T, B, I): returns output (T, B, D*S) (zero past
    each sequence's end), h_n (L*D, B, S) and c_n (L*D, B, H)."""
    D, H, S = lstm.num_directions, lstm.hidden_size, lstm.state_size
    T, B = dim(g, x, 0), dim(g, x, 1)
    lens32 = g.op("Cast", [lengths], to=g.onnx.TensorProto.INT32) if lengths is not None else ""
    valid_f = None
    h_list, c_list = [], []
    for layer in range(lstm.num_layers):
        if state is not None:
            lo, hi = g.ints([layer * D]), g.ints([(layer + 1) * D])
            h0 = g.op("Slice", [state[0], lo, hi, g.ints([0])])  # (D, B, S)
            c0 = g.op("Slice", [state[1], lo, hi, g.ints([0])])  # (D, B, H)
        else:
            h0 = c0 = ""
        if _plain_layer(lstm):
            W, R, Bias = to_onnx_lstm_weights(_PlainView(lstm), layer)
            inputs = [x, g.const(W, "W"), g.const(R, "R"), g.const(Bias, "B"), lens32, h0, c0]
            if lstm.peephole:
                inputs.append(g.const(_peephole_P(lstm, layer), "P"))
            while inputs[-1] == "":  # trailing optional inputs left out
                inputs.pop()
            y, h_n, c_n = g.op("LSTM", inputs, n_out=3, hidden_size=H,
                               direction="bidirectional" if D == 2 else "forward")  # fmt: skip
            # y (T, D, B, H) -> (T, B, D*H)
            y = g.op("Transpose", [y], perm=[0, 2, 1, 3])
            x = g.op("Reshape", [y, g.op("Concat", [T, B, g.ints([D * H])], axis=0)])
        else:
            if valid_f is None:
                if lengths is not None:
                    valid = g.op("Transpose", [g.valid_mask(lengths, T)], perm=[1, 0])  # (T, B)
                else:
                    valid = g.op("ConstantOfShape", [g.op("Concat", [T, B], axis=0)],
                                 value=g.onnx.numpy_helper.from_array(np.ones(1, dtype=bool)))  # fmt: skip
                valid_f = g.op("Unsqueeze", [g.op("Cast", [valid], to=g.onnx.TensorProto.FLOAT), g.ints([2])])
                full = g.op("Expand", [T, B]) if lengths is None else lengths
            outs, hs, cs = [], [], []
            for d in range(D):
                if state is not None:
                    pick = g.ints([d])
                    h_d = g.op("Squeeze", [g.op("Gather", [h0, pick], axis=0), g.ints([0])])  # (B, S)
                    c_d = g.op("Squeeze", [g.op("Gather", [c0, pick], axis=0), g.ints([0])])  # (B, H)
                else:
                    h_d = g.op("ConstantOfShape", [g.op("Concat", [B, g.ints([S])], axis=0)])
                    c_d = g.op("ConstantOfShape", [g.op("Concat", [B, g.ints([H])], axis=0)])
                x_d = x if d == 0 else g.op("ReverseSequence", [x, full], batch_axis=1, time_axis=0)
                h_n, c_n, y = _scan_direction(g, lstm, layer, d, x_d, valid_f, h_d, c_d)
                if d == 1:
                    y = g.op("ReverseSequence", [y, full], batch_axis=1, time_axis=0)
                outs.append(y)
                hs.append(g.op("Unsqueeze", [h_n, g.ints([0])]))
                cs.append(g.op("Unsqueeze", [c_n, g.ints([0])]))
            x = outs[0] if D == 1 else g.op("Concat", outs, axis=2)  # (T, B, D*S)
            h_n = hs[0] if D == 1 else g.op("Concat", hs, axis=0)  # (D, B, S)
            c_n = cs[0] if D == 1 else g.op("Concat", cs, axis=0)
        h_list.append(h_n)
        c_list.append(c_n)
    h_all = h_list[0] if len(h_list) == 1 else g.op("Concat", h_list, axis=0)  # (L*D, B, S)
    c_all = c_list[0] if len(c_list) == 1 else g.op("Concat", c_list, axis=0)
    return x, h_all, c_all


def lstm_step(g: Graph, lstm: LSTM, x: str, state: tuple[str, str]) -> tuple[str, str, str]:
    """One step of a unidirectional stack: x (B, I), state (L, B, S) / (L, B, H) -> y (B, S), h, c. Plain layers run
    ONNX's LSTM operator on a sequence of one step (the runtime the issue's streaming target names)."""
    if lstm.bidirectional:
        raise ValueError("A bidirectional LSTM cannot be stepped: its reverse direction needs the whole sequence.")
    x_seq = g.op("Unsqueeze", [x, g.ints([0])])  # (1, B, I)
    y, h, c = lstm_sequence(g, lstm, x_seq, state, None)
    return g.op("Squeeze", [y, g.ints([0])]), h, c


class _PlainView(torch.nn.Module):
    """The module's torch-named LSTM weights, without the peephole parameters (given to ONNX as its P input)."""

    def __init__(self, lstm: LSTM) -> None:
        super().__init__()
        for name, p in lstm.named_parameters():
            if not name.startswith("weight_peephole"):
                self.register_buffer(name, p.detach())


# ---- any of the engine's recurrent cores ----------------------------------------------------------------------------


def core_sequence(g: Graph, core: torch.nn.Module, x: str, state: Any, lengths: str | None) -> tuple[str, Any]:
    """Any lstmkit recurrent core over time-major x (T, B, I): output (T, B, D*S) and its final state."""
    if isinstance(core, LSTM):
        y, h, c = lstm_sequence(g, core, x, state, lengths)
        return y, (h, c)
    if isinstance(core, GRU | RNN):
        return _single_state_sequence(g, core, x, state, lengths)
    raise TypeError(f"ONNX export knows lstmkit's LSTM, GRU and RNN cores, not {type(core).__name__}.")


def _single_state_sequence(g: Graph, core: torch.nn.Module, x: str, state: str | None,
                           lengths: str | None) -> tuple[str, str]:  # fmt: skip
    """GRU (ONNX ``GRU``, gates z, r, h; torch's r, z, n; ``linear_before_reset=1`` is torch's formulation) or tanh
    RNN (ONNX ``RNN``), layer by layer."""
    is_gru = isinstance(core, GRU)
    D, H = core.num_directions, core.hidden_size
    T, B = dim(g, x, 0), dim(g, x, 1)
    lens32 = g.op("Cast", [lengths], to=g.onnx.TensorProto.INT32) if lengths is not None else ""
    hs = []
    for layer in range(core.num_layers):
        Ws, Rs, Bs = [], [], []
        for d in range(D):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            w_ih, w_hh = getattr(core, f"weight_ih{sfx}").detach(), getattr(core, f"weight_hh{sfx}").detach()
            b_ih = getattr(core, f"bias_ih{sfx}", None)
            b_hh = getattr(core, f"bias_hh{sfx}", None)
            if b_ih is None:
                b_ih = b_hh = torch.zeros(w_ih.shape[0])
            b_ih, b_hh = b_ih.detach(), b_hh.detach()
            if is_gru:  # torch r, z, n -> ONNX z, r, h
                order = lambda t: torch.cat([t[H : 2 * H], t[:H], t[2 * H :]])  # noqa: E731
                w_ih, w_hh, b_ih, b_hh = order(w_ih), order(w_hh), order(b_ih), order(b_hh)
            Ws.append(w_ih)
            Rs.append(w_hh)
            Bs.append(torch.cat([b_ih, b_hh]))
        h0 = ""
        if state is not None:
            h0 = g.op("Slice", [state, g.ints([layer * D]), g.ints([(layer + 1) * D]), g.ints([0])])
        inputs = [x, g.const(torch.stack(Ws), "W"), g.const(torch.stack(Rs), "R"), g.const(torch.stack(Bs), "B"),
                  lens32, h0]  # fmt: skip
        while inputs[-1] == "":
            inputs.pop()
        attrs: dict[str, Any] = {"hidden_size": H, "direction": "bidirectional" if D == 2 else "forward"}
        if is_gru:
            attrs["linear_before_reset"] = 1
        y, h_n = g.op("GRU" if is_gru else "RNN", inputs, n_out=2, **attrs)  # y (T, D, B, H)
        y = g.op("Transpose", [y], perm=[0, 2, 1, 3])
        x = g.op("Reshape", [y, g.op("Concat", [T, B, g.ints([D * H])], axis=0)])  # (T, B, D*H)
        hs.append(h_n)
    return x, hs[0] if len(hs) == 1 else g.op("Concat", hs, axis=0)
