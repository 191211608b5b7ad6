"""``lstmkit export onnx``: a trained model as an ONNX file, checked against the source model before it is kept.

Every export builds the graph (:mod:`lstmkit.export.onnx_graph`), runs the source model (torch, eval mode) and the
exported one (onnxruntime) on sample inputs, and writes the file only when the largest absolute difference is within
``tolerance``; otherwise it raises :class:`ExportMismatchError` and writes nothing. The file is written atomically.

What each kind of model becomes (B batch, T steps; names are the graph's input and output names):

==========================  =====================================================================================
``lstmkit.nn.LSTM``         ``x (B, T, I)``, ``lengths (B,)``, ``h0``, ``c0`` -> ``output``, ``h_n``, ``c_n``
SequenceClassifier          ``x (B, T, I)`` raw features, ``lengths (B,)`` -> ``logits (B, K)``, ``probabilities``;
                            the training standardisation is part of the graph
SequenceRegressor           ``x``, ``lengths`` -> ``prediction (B, K)``
LanguageModel               ``ids (B, T)`` int64, ``h0``, ``c0`` -> ``logits (B, T, V)``, ``h_n``, ``c_n``: the state
                            is explicit, so the same graph streams (T = 1 per call, the state fed back)
TextClassifier              ``ids (B, T)`` int64 (tokenizer ids, 0-padded), ``lengths (B,)`` -> ``logits``,
                            ``probabilities``
==========================  =====================================================================================

``streaming=True`` (unidirectional recurrent models): the step graph, ``x_t (B, I)`` and the state in, the output
and the new state out, for one observation per call.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..nn import GRU, LSTM, RNN
from .onnx_graph import OPSET, Graph, lstm_sequence, lstm_step

__all__ = ["ExportMismatchError", "ExportReport", "export_onnx"]

FLOAT_TOLERANCE = 1e-4  # largest absolute difference accepted between torch and onnxruntime (float32)


class ExportMismatchError(RuntimeError):
    """The exported graph does not reproduce the source model within the tolerance (nothing was written)."""


@dataclass
class ExportReport:
    """What was exported and how well it matches: ``max_abs_diff`` over every output of every sample batch."""

    path: str
    kind: str
    streaming: bool
    opset: int
    inputs: list[str]
    outputs: list[str]
    max_abs_diff: float
    tolerance: float
    checks: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---- recurrent cores -------------------------------------------------------------------------------------------------


def _core_sequence(g: Graph, core: nn.Module, x: str, state: Any, lengths: str | None) -> tuple[str, Any]:
    """Any lstmkit recurrent core over time-major x (T, B, I): output (T, B, D*S) and its final state."""
    if isinstance(core, LSTM):
        y, h, c = lstm_sequence(g, core, x, state, lengths)
        return y, (h, c)
    if isinstance(core, GRU | RNN):
        return _single_state_sequence(g, core, x, state, lengths)
    raise TypeError(f"ONNX export knows lstmkit's LSTM, GRU and RNN cores, not {type(core).__name__}.")


def _single_state_sequence(g: Graph, core: nn.Module, x: str, state: str | None,
                           lengths: str | None) -> tuple[str, str]:  # fmt: skip
    """GRU (ONNX ``GRU``, gates z, r, h; torch's r, z, n; ``linear_before_reset=1`` is torch's formulation) or tanh
    RNN (ONNX ``RNN``), layer by layer."""
    is_gru = isinstance(core, GRU)
    D, H = core.num_directions, core.hidden_size
    T, B = _shape(g, x, 0), _shape(g, x, 1)
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


def _shape(g: Graph, x: str, axis: int) -> str:
    return g.op("Gather", [g.op("Shape", [x]), g.ints([axis])], axis=0)


# ---- the per-sequence model (forecast-free tasks: classification, regression, text classification) ------------------


def _sequence_model(g: Graph, model: nn.Module, x_bti: str, lengths: str | None) -> str:
    """``SequenceModel.forward(x, None, lengths)[0]`` in eval mode: x (B, T, I) -> (B, O), or (B, T, O) with
    readout "all"."""
    cfg = model.config
    x_tbi = g.op("Transpose", [x_bti], perm=[1, 0, 2])
    output, state = _core_sequence(g, model.core, x_tbi, None, lengths)  # (T, B, D*S)
    out_btf = g.op("Transpose", [output], perm=[1, 0, 2])  # (B, T, D*S)
    if cfg.readout == "all":
        return g.linear(out_btf, model.head)
    D = model.directions
    B = _shape(g, x_bti, 0)
    T = _shape(g, x_bti, 1)
    if cfg.pooling == "last":
        h_n = state[0] if isinstance(state, tuple) else state  # (L*D, B, S)
        last = g.op("Slice", [h_n, g.ints([-D]), g.ints([2**62]), g.ints([0])])  # (D, B, S)
        pooled = g.op("Reshape", [g.op("Transpose", [last], perm=[1, 0, 2]), g.op("Concat", [B, g.ints([-1])],
                                                                                     axis=0)])  # fmt: skip
    else:
        if lengths is not None:
            valid = g.valid_mask(lengths, T)  # (B, T) bool
        else:
            valid = g.op("ConstantOfShape", [g.op("Concat", [B, T], axis=0)],
                         value=g.onnx.numpy_helper.from_array(np.ones(1, dtype=bool)))  # fmt: skip
        valid3 = g.op("Unsqueeze", [valid, g.ints([2])])  # (B, T, 1)
        if cfg.pooling == "mean":
            mask = g.op("Cast", [valid3], to=g.onnx.TensorProto.FLOAT)
            pooled = g.op("Div", [g.op("ReduceSum", [g.op("Mul", [out_btf, mask]), g.ints([1])], keepdims=0),
                                  g.op("ReduceSum", [mask, g.ints([1])], keepdims=0)])  # fmt: skip
        elif cfg.pooling == "max":
            masked = g.op("Where", [valid3, out_btf, g.const(-np.inf, "neg_inf")])
            pooled = g.op("ReduceMax", [masked], axes=[1], keepdims=0)
        else:  # attention
            hidden = g.op("Tanh", [g.linear(out_btf, model.attention[0])])
            scores = g.op("Squeeze", [g.linear(hidden, model.attention[2]), g.ints([2])])  # (B, T)
            scores = g.op("Where", [valid, scores, g.const(-np.inf, "neg_inf")])
            weights = g.op("Softmax", [scores], axis=1)
            pooled = g.op("ReduceSum", [g.op("Mul", [out_btf, g.op("Unsqueeze", [weights, g.ints([2])])]),
                                        g.ints([1])], keepdims=0)  # fmt: skip
    if getattr(cfg, "conv_branch", False):
        pooled = g.op("Concat", [pooled, _conv_branch(g, model, x_bti, lengths)], axis=1)
    return g.linear(pooled, model.head)  # head dropout: identity in eval mode


def _conv_branch(g: Graph, model: nn.Module, x_bti: str, lengths: str | None) -> str:
    """``SequenceModel.conv_features`` in eval mode: (B, T, I) -> (B, C)."""
    T = _shape(g, x_bti, 1)
    mask = None
    if lengths is not None:
        valid = g.op("Cast", [g.valid_mask(lengths, T)], to=g.onnx.TensorProto.FLOAT)  # (B, T)
        mask = g.op("Unsqueeze", [valid, g.ints([1])])  # (B, 1, T)
    h = g.op("Transpose", [x_bti], perm=[0, 2, 1])  # (B, I, T)
    if mask is not None:
        h = g.op("Mul", [h, mask])
    for conv, norm in zip(model.conv, model.conv_norm, strict=True):
        k = conv.kernel_size[0]
        inputs = [h, g.const(conv.weight, "conv_w")] + ([g.const(conv.bias, "conv_b")] if conv.bias is not None else [])
        h = g.op("Conv", inputs, pads=[(k - 1) // 2, k // 2])  # (B, C, T), "same"
        h = g.op("BatchNormalization", [h, g.const(norm.weight, "bn_scale"), g.const(norm.bias, "bn_bias"),
                                        g.const(norm.running_mean, "bn_mean"), g.const(norm.running_var, "bn_var")],
                 epsilon=float(norm.eps))  # fmt: skip
        h = g.op("Relu", [h])
        if mask is not None:
            h = g.op("Mul", [h, mask])
    total = g.op("ReduceSum", [h, g.ints([2])], keepdims=0)  # (B, C)
    if lengths is None:
        return g.op("Div", [total, g.op("Cast", [T], to=g.onnx.TensorProto.FLOAT)])
    count = g.op("Unsqueeze", [g.op("Cast", [lengths], to=g.onnx.TensorProto.FLOAT), g.ints([1])])
    return g.op("Div", [total, count])


# ---- builders per kind: (graph, sample feeds, the source model's outputs for those feeds) ---------------------------

_F, _I64 = 1, 7  # TensorProto.FLOAT, INT64


def _sample_lengths(rng: np.random.Generator, batch: int, time: int) -> np.ndarray:
    lengths = rng.integers(1, time + 1, size=batch)
    lengths[0] = time
    return lengths.astype(np.int64)


def _build_lstm(module: LSTM, streaming: bool, rng: np.random.Generator) -> tuple[Graph, list[dict], Any]:
    module.eval()
    L, D, S, H, In = module.num_layers, module.num_directions, module.state_size, module.hidden_size, module.input_size
    g = Graph("lstmkit_lstm")
    if streaming:
        x = g.input("x_t", _F, ["B", In])
        h0, c0 = g.input("h", _F, [L, "B", S]), g.input("c", _F, [L, "B", H])
        y, h, c = lstm_step(g, module, x, (h0, c0))
        g.output(y, "y_t", _F, ["B", S])
    else:
        x = g.input("x", _F, ["B", "T", In])
        lengths = g.input("lengths", _I64, ["B"])
        h0, c0 = g.input("h0", _F, [L * D, "B", S]), g.input("c0", _F, [L * D, "B", H])
        y, h, c = lstm_sequence(g, module, g.op("Transpose", [x], perm=[1, 0, 2]), (h0, c0), lengths)
        g.output(g.op("Transpose", [y], perm=[1, 0, 2]), "output", _F, ["B", "T", D * S])
    g.output(h, "h_n" if not streaming else "h_next", _F, [L * D, "B", S])
    g.output(c, "c_n" if not streaming else "c_next", _F, [L * D, "B", H])

    def reference(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        with torch.no_grad():
            if streaming:
                y_t, (h_n, c_n) = module.step(torch.from_numpy(feeds["x_t"]),
                                              (torch.from_numpy(feeds["h"]), torch.from_numpy(feeds["c"])))  # fmt: skip
                return [y_t.numpy(), h_n.numpy(), c_n.numpy()]
            out, (h_n, c_n) = module(torch.from_numpy(feeds["x"]), (torch.from_numpy(feeds["h0"]),
                                     torch.from_numpy(feeds["c0"])), torch.from_numpy(feeds["lengths"]))  # fmt: skip
            return [out.numpy(), h_n.numpy(), c_n.numpy()]

    samples = []
    for batch, time in ((1, 1), (3, 7), (4, 20)):
        f32 = lambda *shape: rng.standard_normal(shape).astype(np.float32)  # noqa: E731
        if streaming:
            samples.append({"x_t": f32(batch, In), "h": f32(L, batch, S), "c": f32(L, batch, H)})
        else:
            samples.append({"x": f32(batch, time, In), "lengths": _sample_lengths(rng, batch, time),
                            "h0": f32(L * D, batch, S), "c0": f32(L * D, batch, H)})  # fmt: skip
    return g, samples, reference


def _build_estimator(est: Any, streaming: bool, rng: np.random.Generator) -> tuple[Graph, list[dict], Any]:
    from ..tasks.estimators import SequenceClassifier

    model = est._check_fitted().eval()
    if streaming:
        raise ValueError(
            f"A {type(est).__name__} reads whole sequences; export it without --streaming (a streaming graph steps a "
            "language model or a recurrent forecaster one observation at a time)."
        )
    I = est.input_size_  # noqa: E741
    g = Graph(f"lstmkit_{est._kind}")
    x = g.input("x", _F, ["B", "T", I])
    lengths = g.input("lengths", _I64, ["B"])
    h = x
    if est.scaler_ is not None:  # the training standardisation, and padding back to 0 (the engine's input)
        mean, std = est.scaler_
        h = g.op("Div", [g.op("Sub", [x, g.const(np.asarray(mean).reshape(-1), "mean")]),
                         g.const(np.asarray(std).reshape(-1), "std")])  # fmt: skip
        valid = g.op("Cast", [g.valid_mask(lengths, _shape(g, x, 1))], to=g.onnx.TensorProto.FLOAT)
        h = g.op("Mul", [h, g.op("Unsqueeze", [valid, g.ints([2])])])
    out = _sequence_model(g, model, h, lengths)
    K = model.head.out_features
    classifier = isinstance(est, SequenceClassifier)
    if classifier:
        g.output(out, "logits", _F, ["B", K])
        g.output(g.op("Softmax", [out], axis=-1), "probabilities", _F, ["B", K])
    else:
        g.output(out, "prediction", _F, ["B", K])

    def reference(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        x_np, lens = feeds["x"], feeds["lengths"]
        ragged = [x_np[b, : int(n)] for b, n in enumerate(lens)]
        raw = est._raw_predict(ragged if len(set(lens.tolist())) > 1 else x_np).numpy()
        return [raw, torch.softmax(torch.from_numpy(raw), -1).numpy()] if classifier else [raw]

    samples = []
    for batch, time in ((1, 5), (3, 9), (5, 16)):
        samples.append({"x": rng.standard_normal((batch, time, I)).astype(np.float32),
                        "lengths": _sample_lengths(rng, batch, time)})  # fmt: skip
    return g, samples, reference


def _build_language_model(lm: Any, streaming: bool, rng: np.random.Generator) -> tuple[Graph, list[dict], Any]:
    if lm.net is None:
        raise RuntimeError("This LanguageModel is not trained yet: call fit(text) before exporting it.")
    net = lm.net.eval()
    lstm, V = net.lstm, net.decoder.out_features
    L, S, H = lstm.num_layers, lstm.state_size, lstm.hidden_size
    g = Graph("lstmkit_language_model")
    ids = g.input("ids", _I64, ["B", "T"])
    h0, c0 = g.input("h0", _F, [L, "B", S]), g.input("c0", _F, [L, "B", H])
    x = g.op("Transpose", [g.embedding(ids, net.embedding)], perm=[1, 0, 2])  # (T, B, E)
    y, h, c = lstm_sequence(g, lstm, x, (h0, c0), None)
    logits = g.linear(g.op("Transpose", [y], perm=[1, 0, 2]), net.decoder)  # (B, T, V)
    g.output(logits, "logits", _F, ["B", "T", V])
    g.output(h, "h_n", _F, [L, "B", S])
    g.output(c, "c_n", _F, [L, "B", H])

    def reference(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        with torch.no_grad():
            state = (torch.from_numpy(feeds["h0"]), torch.from_numpy(feeds["c0"]))
            out, (h_n, c_n) = net(torch.from_numpy(feeds["ids"]), state)
            return [out.numpy(), h_n.numpy(), c_n.numpy()]

    n_vocab = net.embedding.num_embeddings
    samples = []
    for batch, time in ((1, 1), (2, 12)) if not streaming else ((1, 1), (4, 1)):
        samples.append({"ids": rng.integers(0, n_vocab, (batch, time)).astype(np.int64),
                        "h0": rng.standard_normal((L, batch, S)).astype(np.float32),
                        "c0": rng.standard_normal((L, batch, H)).astype(np.float32)})  # fmt: skip
    return g, samples, reference


def _build_text_classifier(clf: Any, streaming: bool, rng: np.random.Generator) -> tuple[Graph, list[dict], Any]:
    if streaming:
        raise ValueError("A TextClassifier reads whole texts; export it without --streaming.")
    net = clf.net.eval()
    g = Graph("lstmkit_text_classifier")
    ids = g.input("ids", _I64, ["B", "T"])
    lengths = g.input("lengths", _I64, ["B"])
    x = g.embedding(ids, net.embedding)  # (B, T, E)
    out = _sequence_model(g, net.body, x, lengths)
    K = net.body.head.out_features
    g.output(out, "logits", _F, ["B", K])
    g.output(g.op("Softmax", [out], axis=-1), "probabilities", _F, ["B", K])

    def reference(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        with torch.no_grad():
            logits = net(torch.from_numpy(feeds["ids"]), torch.from_numpy(feeds["lengths"]))
            return [logits.numpy(), torch.softmax(logits, -1).numpy()]

    n_vocab = net.embedding.num_embeddings
    samples = []
    for batch, time in ((1, 3), (4, 11)):
        lengths_np = _sample_lengths(rng, batch, time)
        ids_np = rng.integers(1, n_vocab, (batch, time)).astype(np.int64)
        ids_np[np.arange(time)[None, :] >= lengths_np[:, None]] = 0  # padding id past each text's end
        samples.append({"ids": ids_np, "lengths": lengths_np})
    return g, samples, reference


def _builder(obj: Any) -> tuple[str, Any]:
    from ..tasks.estimators import _SequenceEstimator
    from ..tasks.language import LanguageModel
    from ..tasks.text_classification import TextClassifier

    if isinstance(obj, LSTM):
        return "lstm", _build_lstm
    if isinstance(obj, _SequenceEstimator):
        return obj._kind, _build_estimator
    if isinstance(obj, LanguageModel):
        return "language_model", _build_language_model
    if isinstance(obj, TextClassifier):
        return "text_classifier", _build_text_classifier
    raise TypeError(
        f"ONNX export does not know {type(obj).__name__} yet; it exports lstmkit.nn.LSTM, SequenceClassifier, "
        "SequenceRegressor, LanguageModel and TextClassifier."
    )


def export_onnx(source: Any, path: str | os.PathLike[str] | None = None, *, streaming: bool = False,
                tolerance: float = FLOAT_TOLERANCE, seed: int = 0) -> ExportReport:  # fmt: skip
    """Export ``source`` (a run directory or a loaded model) to ONNX at ``path`` (default: ``model.onnx``, or
    ``model-streaming.onnx`` with ``streaming``, inside the run directory), after checking the graph against the
    source model on sample inputs. Raises :class:`ExportMismatchError` (nothing written) above ``tolerance``."""
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise ImportError("Checking an export needs onnxruntime: pip install 'lstmkit[export]'.") from e
    from .. import runs
    from .._atomic import atomic_write_bytes

    run_dir = None
    if isinstance(source, str | os.PathLike):
        run_dir = Path(source)
        source = runs.load(run_dir)
    kind, build = _builder(source)
    if path is None:
        if run_dir is None:
            raise ValueError("Give a path for the ONNX file (the source is a model object, not a run directory).")
        path = run_dir / ("model-streaming.onnx" if streaming else "model.onnx")
    path = Path(path)
    rng = np.random.default_rng(seed)
    g, samples, reference = build(source, streaming, rng)
    model = g.model(doc=f"lstmkit {kind}{' (streaming step)' if streaming else ''}")
    data = model.SerializeToString()
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    checks, worst = [], 0.0
    for feeds in samples:
        got = session.run(None, feeds)
        want = reference(feeds)
        diffs = {n: float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)))) if np.size(a) else 0.0
                 for n, a, b in zip(names, got, want, strict=True)}  # fmt: skip
        shapes = {k: list(v.shape) for k, v in feeds.items()}
        checks.append({"inputs": shapes, "max_abs_diff": diffs})
        worst = max(worst, *diffs.values())
    if not worst <= tolerance:
        detail = "; ".join(f"{c['inputs']}: {c['max_abs_diff']}" for c in checks)
        raise ExportMismatchError(
            f"The ONNX graph differs from the source model by up to {worst:.3g} (tolerance {tolerance:g}), so "
            f"{path} was not written. Per sample batch: {detail}. Report this with the model's config.json."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)
    return ExportReport(path=str(path), kind=kind, streaming=streaming, opset=OPSET,
                        inputs=[i.name for i in session.get_inputs()], outputs=names, max_abs_diff=worst,
                        tolerance=tolerance, checks=checks)  # fmt: skip
