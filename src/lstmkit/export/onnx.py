"""``lstmkit export onnx``: a trained model as an ONNX file, checked against the source model before it is kept.

Every export builds the graph (:mod:`lstmkit.nn.onnx_graph`), runs the source model (torch, eval mode) and the
exported one (onnxruntime) on sample inputs, and writes the file only when the largest absolute difference is within
``tolerance``; otherwise it raises :class:`ExportMismatchError` and writes nothing. The file is written atomically,
records lstmkit's version, the kind and the run directory in its ``metadata_props``, and replaces an existing file
only when that file is an earlier export of the same run (or with ``force``): nothing else is ever overwritten.

What each kind of model becomes (B batch, T steps; names are the graph's input and output names):

==========================  =====================================================================================
``lstmkit.nn.LSTM``         ``x (B, T, I)``, ``lengths (B,)``, ``h0``, ``c0`` -> ``output``, ``h_n``, ``c_n``
SequenceClassifier          ``x (B, T, I)`` raw features, ``lengths (B,)`` -> ``logits (B, K)``, ``probabilities``;
                            the training standardisation is part of the graph
SequenceRegressor           ``x``, ``lengths`` -> ``prediction (B, K)``. With ``dimension_shuffle`` (either estimator)
                            ``x (B, T, I)`` alone, T fixed to the training length in the graph's input shape
LanguageModel               ``ids (B, T)`` int64, ``h0``, ``c0`` -> ``logits (B, T, V)``, ``h_n``, ``c_n``: the state
                            is explicit, so the same graph streams (T = 1 per call, the state fed back)
TextClassifier              ``ids (B, T)`` int64 (tokenizer ids, 0-padded), ``lengths (B,)`` -> ``logits``,
                            ``probabilities``
Forecaster                  the network on its scaled inputs, as ``Forecaster.predict`` builds them: ``x (B, W,
                            n_inputs)`` (the window, target relative to its level), ``future (B, H, F)`` (future
                            then static covariates; absent when F = 0) -> ``quantiles (B, H, Q)``, unsorted. The
                            per-series scaling, the level, sorting and the conformal widening stay in Python.
                            Direct: the seasonal-naive residual is in the graph. Recurrent: the horizon loop is
                            unrolled (H fixed by the config), its median fed back
AnomalyDetector             prediction: the forecaster's network, ``x (B, W, 2)`` -> ``predictions (B, l)`` (the
                            median of the next ``steps_ahead`` steps); reconstruction: ``window (B, L, 1)`` scaled
                            -> ``reconstruction (B, L)``, the decoder fed its own output back (unrolled, L fixed).
                            Scaling, errors, the Gaussian and the threshold stay in Python
Seq2Seq                     two files. ``model.onnx``, the encoder: ``source (B, S)`` int64 (0-padded),
                            ``lengths (B,)`` -> ``outputs (B, S, D*H)``, ``keys (B, S, K)``, ``mask (B, S)`` bool,
                            ``h``, ``c`` ``(L, B, H)``, ``feed (B, H)``. ``model-decoder-step.onnx``: ``token
                            (B,)`` int64, ``h``, ``c``, ``feed``, ``outputs``, ``keys``, ``mask`` -> ``logits
                            (B, V)``, ``h_next``, ``c_next``, ``feed_next``, ``weights (B, S)``. With attention
                            "none" only ``h``, ``c`` (and ``token``, ``logits``) remain. The decoding loop (greedy
                            or beam) stays in your code: start from BOS (1), stop at EOS (2)
==========================  =====================================================================================

``streaming=True`` (unidirectional recurrent models): the step graph, ``x_t (B, I)`` and the state in, the output
and the new state out, for one observation per call. A SequenceClassifier / SequenceRegressor streams when it is a
unidirectional LSTM reading its last state (pooling "last", no convolutional branch): ``x_t`` raw (the scaling is
in the graph) -> its output after this observation, ``h_next``, ``c_next``.
A recurrent Forecaster's step graph gives ``quantiles (B, Q)``:
feed the window's rows (y_{t-1}, observed_{t-1}, covariates_t) from a zero state, then each median back; the state
belongs to one forecast origin, since every window is read relative to its own level. A direct Forecaster, the
AnomalyDetector and Seq2Seq have no streaming graph (the error says why).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..nn import LSTM
from ..nn.onnx_graph import OPSET, Graph, core_sequence, dim, lstm_sequence, lstm_step, sample_lengths

__all__ = ["EXPORTABLE_KINDS", "ExportMismatchError", "ExportReport", "export_onnx", "exportable_kind"]

FLOAT_TOLERANCE = 1e-4  # largest absolute difference accepted between torch and onnxruntime (float32)
DECODER_STEP_SUFFIX = "-decoder-step"  # Seq2Seq's second file: model.onnx -> model-decoder-step.onnx


class ExportMismatchError(RuntimeError):
    """The exported graph does not reproduce the source model within the tolerance (nothing was written)."""


@dataclass
class ExportReport:
    """What was exported and how well it matches: ``max_abs_diff`` over every output of every sample batch (of every
    graph). ``path``, ``inputs`` and ``outputs`` describe the main graph; ``files`` lists every file written (one, or
    for Seq2Seq the encoder and the decoder step), each with its inputs, outputs and largest difference."""

    path: str
    kind: str
    streaming: bool
    opset: int
    inputs: list[str]
    outputs: list[str]
    max_abs_diff: float
    tolerance: float
    checks: list[dict[str, Any]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---- the per-sequence model (forecast-free tasks: classification, regression, text classification) ------------------


def _sequence_model(g: Graph, model: nn.Module, x_bti: str, lengths: str | None) -> str:
    """``SequenceModel.forward(x, None, lengths)[0]`` in eval mode: x (B, T, I) -> (B, O), or (B, T, O) with
    readout "all"."""
    cfg = model.config
    if getattr(cfg, "dimension_shuffle", False):  # the core reads the series transposed: I steps of T features
        x_tbi = g.op("Transpose", [x_bti], perm=[2, 0, 1])  # (I, B, T), every step valid
        core_lengths, T = None, dim(g, x_bti, 2)
    else:
        x_tbi = g.op("Transpose", [x_bti], perm=[1, 0, 2])  # (T, B, I)
        core_lengths, T = lengths, dim(g, x_bti, 1)
    output, state = core_sequence(g, model.core, x_tbi, None, core_lengths)  # (T, B, D*S)
    out_btf = g.op("Transpose", [output], perm=[1, 0, 2])  # (B, T, D*S)
    if cfg.readout == "all":
        return g.linear(out_btf, model.head)
    D = model.directions
    B = dim(g, x_bti, 0)
    if cfg.pooling == "last":
        h_n = state[0] if isinstance(state, tuple) else state  # (L*D, B, S)
        last = g.op("Slice", [h_n, g.ints([-D]), g.ints([2**62]), g.ints([0])])  # (D, B, S)
        pooled = g.op("Reshape", [g.op("Transpose", [last], perm=[1, 0, 2]), g.op("Concat", [B, g.ints([-1])],
                                                                                     axis=0)])  # fmt: skip
    else:
        if core_lengths is not None:
            valid = g.valid_mask(core_lengths, T)  # (B, T) bool
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
    return g.linear(pooled, model.head)  # pooled and head dropout: identity in eval mode


def _conv_branch(g: Graph, model: nn.Module, x_bti: str, lengths: str | None) -> str:
    """``SequenceModel.conv_features`` in eval mode: (B, T, I) -> (B, C)."""
    T = dim(g, x_bti, 1)
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
            samples.append({"x": f32(batch, time, In), "lengths": sample_lengths(rng, batch, time),
                            "h0": f32(L * D, batch, S), "c0": f32(L * D, batch, H)})  # fmt: skip
    return g, samples, reference


def _standardise(g: Graph, est: Any, x: str) -> str:
    """(x - mean) / std with the estimator's per-channel training statistics (broadcast over the last axis)."""
    mean, std = est.scaler_
    return g.op("Div", [g.op("Sub", [x, g.const(np.asarray(mean).reshape(-1), "mean")]),
                        g.const(np.asarray(std).reshape(-1), "std")])  # fmt: skip


def _estimator_outputs(g: Graph, est: Any, out: str, K: int) -> bool:
    """A classifier's ``logits`` and ``probabilities`` (B, K), or a regressor's ``prediction`` (B, K); returns
    whether it is a classifier."""
    from ..tasks.sequence.estimators import SequenceClassifier

    if isinstance(est, SequenceClassifier):
        g.output(out, "logits", _F, ["B", K])
        g.output(g.op("Softmax", [out], axis=-1), "probabilities", _F, ["B", K])
        return True
    g.output(out, "prediction", _F, ["B", K])
    return False


def _build_estimator(est: Any, streaming: bool, rng: np.random.Generator) -> tuple[Graph, list[dict], Any]:

    model = est._check_fitted().eval()
    if streaming:
        return _build_estimator_step(est, model, rng)
    I = est.input_size_  # noqa: E741
    # dimension shuffle: the series length is part of the model, so x has exactly T steps and there is no lengths
    # input (onnxruntime refuses any other length from the graph's input shape)
    fixed_T = model.config.shuffle_length if getattr(model.config, "dimension_shuffle", False) else 0
    g = Graph(f"lstmkit_{est._kind}")
    x = g.input("x", _F, ["B", fixed_T or "T", I])
    lengths = None if fixed_T else g.input("lengths", _I64, ["B"])
    h = x
    if est.scaler_ is not None:  # the training standardisation, and padding back to 0 (the engine's input)
        h = _standardise(g, est, x)
        if lengths is not None:
            valid = g.op("Cast", [g.valid_mask(lengths, dim(g, x, 1))], to=g.onnx.TensorProto.FLOAT)
            h = g.op("Mul", [h, g.op("Unsqueeze", [valid, g.ints([2])])])
    out = _sequence_model(g, model, h, lengths)
    classifier = _estimator_outputs(g, est, out, model.head.out_features)

    def reference(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        x_np = feeds["x"]
        lens = feeds["lengths"] if "lengths" in feeds else np.full(x_np.shape[0], x_np.shape[1])
        ragged = [x_np[b, : int(n)] for b, n in enumerate(lens)]
        raw = est._raw_predict(ragged if len(set(lens.tolist())) > 1 else x_np).numpy()
        return [raw, torch.softmax(torch.from_numpy(raw), -1).numpy()] if classifier else [raw]

    samples = []
    for batch, time in ((1, 5), (3, 9), (5, 16)):
        if fixed_T:
            samples.append({"x": rng.standard_normal((batch, fixed_T, I)).astype(np.float32)})
        else:
            samples.append({"x": rng.standard_normal((batch, time, I)).astype(np.float32),
                            "lengths": sample_lengths(rng, batch, time)})  # fmt: skip
    return g, samples, reference


def streaming_blockers(model: nn.Module) -> list[str]:
    """Why a SequenceModel cannot give its output after every observation from a carried state (empty: it can)."""
    cfg = model.config
    reasons = []
    if cfg.bidirectional:
        reasons.append("it is bidirectional (the reverse direction reads the whole sequence)")
    if cfg.pooling != "last" or cfg.readout != "last":
        reasons.append(f"it pools with {cfg.pooling!r} over the whole sequence (streaming needs pooling='last')")
    if getattr(cfg, "conv_branch", False):
        reasons.append("its convolutional branch averages over the whole sequence")
    if getattr(cfg, "dimension_shuffle", False):
        reasons.append("it reads each whole series transposed (dimension_shuffle: one step of all its time steps)")
    if cfg.cell != "lstm":
        reasons.append(f"its core is a {cfg.cell.upper()} (the streaming step is the LSTM's)")
    return reasons


def _build_estimator_step(est: Any, model: nn.Module, rng: np.random.Generator) -> tuple[Graph, list[dict], Any]:
    """One observation per call: ``x_t (B, I)`` raw, ``h``, ``c`` -> the output after this step, ``h_next``,
    ``c_next``. For unidirectional LSTM models that read their last state (pooling "last")."""

    blockers = streaming_blockers(model)
    if blockers:
        raise ValueError(
            f"This {type(est).__name__} cannot stream one observation at a time: {'; '.join(blockers)}. Export it "
            "without --streaming, or train a unidirectional LSTM with pooling='last' for streaming."
        )
    core = model.core
    I, L, S, H = est.input_size_, core.num_layers, core.state_size, core.hidden_size  # noqa: E741
    g = Graph(f"lstmkit_{est._kind}_step")
    x = g.input("x_t", _F, ["B", I])
    h0, c0 = g.input("h", _F, [L, "B", S]), g.input("c", _F, [L, "B", H])
    z = x
    if est.scaler_ is not None:
        z = _standardise(g, est, x)
    y, h, c = lstm_step(g, core, z, (h0, c0))
    out = g.linear(y, model.head)
    classifier = _estimator_outputs(g, est, out, model.head.out_features)
    g.output(h, "h_next", _F, [L, "B", S])
    g.output(c, "c_next", _F, [L, "B", H])

    def reference(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        x_t = torch.from_numpy(est._scale(feeds["x_t"][:, None, :], None)[:, 0])
        with torch.no_grad():
            y_t, (h_n, c_n) = core.step(x_t, (torch.from_numpy(feeds["h"]), torch.from_numpy(feeds["c"])))
            logits = model.head(y_t)
        outs = [logits.numpy(), torch.softmax(logits, -1).numpy()] if classifier else [logits.numpy()]
        return [*outs, h_n.numpy(), c_n.numpy()]

    samples = [{"x_t": rng.standard_normal((b, I)).astype(np.float32),
                "h": rng.standard_normal((L, b, S)).astype(np.float32),
                "c": rng.standard_normal((L, b, H)).astype(np.float32)} for b in (1, 4)]  # fmt: skip
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
        lengths_np = sample_lengths(rng, batch, time)
        ids_np = rng.integers(1, n_vocab, (batch, time)).astype(np.int64)
        ids_np[np.arange(time)[None, :] >= lengths_np[:, None]] = 0  # padding id past each text's end
        samples.append({"ids": ids_np, "lengths": lengths_np})
    return g, samples, reference


# ---- forecasting and anomaly detection: the networks on their scaled inputs ----------------------------------------


def _forecast_network(g: Graph, net: nn.Module, x: str, future: str | None, W: int) -> str:
    """``DirectForecastNet`` / ``RecurrentForecastNet`` at inference (no target): x (B, W, n_inputs), future
    (B, H, F) or None when F = 0 -> quantiles (B, H, Q). The recurrent horizon loop is unrolled (H is fixed by the
    config)."""
    from ..tasks.timeseries.forecasting import RecurrentForecastNet

    H, Q = net.horizon, net.n_q
    if isinstance(net, RecurrentForecastNet):
        n_in = net.encoder.input_size
        hist = g.slice(x, [0, 0], [W - 1, 2], [1, 2])  # (B, W - 1, 2): y_{t-1}, observed_{t-1}
        if n_in > 2:  # with the covariates of step t: the net's _shift
            hist = g.op("Concat", [hist, g.slice(x, [1, 2], [W, n_in], [1, 2])], axis=2)
        _, h, c = lstm_sequence(g, net.encoder, g.op("Transpose", [hist], perm=[1, 0, 2]), None, None)
        prev = g.op("Squeeze", [g.slice(x, [W - 1, 0], [W, 2], [1, 2]), g.ints([1])])  # (B, 2): last value, flag
        preds = []
        for step in range(H):
            inp = prev if future is None else g.op("Concat", [prev, g.op("Gather", [future, g.ints(step)], axis=1)],
                                                   axis=1)  # fmt: skip
            y, h, c = lstm_step(g, net.encoder, inp, (h, c))  # y (B, hidden)
            q = g.linear(y, net.head)  # (B, Q)
            preds.append(g.op("Unsqueeze", [q, g.ints([1])]))
            median = g.slice(q, [net.median], [net.median + 1], [1])  # (B, 1), fed back as observed
            ones = g.op("Expand", [g.const(np.ones((1, 1))), g.op("Shape", [median])])
            prev = g.op("Concat", [median, ones], axis=1)
        return g.op("Concat", preds, axis=1)  # (B, H, Q)
    _, h_n, _ = lstm_sequence(g, net.encoder, g.op("Transpose", [x], perm=[1, 0, 2]), None, None)
    z = g.op("Gather", [h_n, g.ints(-1)], axis=0)  # (B, hidden): the top layer's last state
    if future is not None:
        z = g.op("Concat", [z, g.op("Reshape", [future, g.ints([0, -1])])], axis=1)  # (B, hidden + H * F)
    out = g.op("Reshape", [g.sequential(z, net.head), g.ints([0, H, Q])])  # (B, H, Q)
    if net.season and W >= net.season:  # plus the window's last season repeated over the horizon (x[..., 0])
        m = net.season
        rows = g.op("Gather", [x, g.ints([W - m + h % m for h in range(H)])], axis=1)  # (B, H, n_inputs)
        out = g.op("Add", [out, g.slice(rows, [0], [1], [2])])
    return out


def _forecast_samples(rng: np.random.Generator, W: int, n_in: int, H: int, F: int,
                      batches: tuple[int, ...] = (1, 3, 5)) -> list[dict]:  # fmt: skip
    """Scaled windows like ``Forecaster._window_tensors`` makes: channel 1 the observed flag (0/1), 0 where unseen."""
    samples = []
    for batch in batches:
        x = rng.standard_normal((batch, W, n_in)).astype(np.float32)
        x[:, :, 1] = rng.random((batch, W)) > 0.2
        x[:, :, 0] *= x[:, :, 1]
        feeds = {"x": x}
        if F:
            feeds["future"] = rng.standard_normal((batch, H, F)).astype(np.float32)
        samples.append(feeds)
    return samples


def _build_forecaster(f: Any, streaming: bool, rng: np.random.Generator) -> tuple[Graph, list[dict], Any]:
    from ..tasks.timeseries.forecasting import RecurrentForecastNet

    net = f._check_fitted().eval()
    cfg, W, F = f.config, f.window, f._n_future
    H, Q, n_in = cfg.horizon, len(cfg.quantiles), net.encoder.input_size
    recurrent = isinstance(net, RecurrentForecastNet)
    g = Graph("lstmkit_forecaster")
    if streaming:
        if not recurrent:
            raise ValueError(
                "A direct Forecaster (strategy='direct') has no step to stream: its head reads the encoder's state "
                "after the whole window, with the covariates of the whole horizon, and forecasts every step at once. "
                "Export it without --streaming (one call per forecast origin), or train with strategy='recurrent'."
            )
        lstm = net.encoder
        L, S, Hc = lstm.num_layers, lstm.state_size, lstm.hidden_size
        x_t = g.input("x_t", _F, ["B", n_in])
        h0, c0 = g.input("h", _F, [L, "B", S]), g.input("c", _F, [L, "B", Hc])
        y, h, c = lstm_step(g, lstm, x_t, (h0, c0))
        g.output(g.linear(y, net.head), "quantiles", _F, ["B", Q])
        g.output(h, "h_next", _F, [L, "B", S])
        g.output(c, "c_next", _F, [L, "B", Hc])

        def step_reference(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
            with torch.no_grad():
                state = (torch.from_numpy(feeds["h"]), torch.from_numpy(feeds["c"]))
                y_t, (h_n, c_n) = lstm.step(torch.from_numpy(feeds["x_t"]), state)
                return [net.head(y_t).numpy(), h_n.numpy(), c_n.numpy()]

        f32 = lambda *shape: rng.standard_normal(shape).astype(np.float32)  # noqa: E731
        samples = [{"x_t": f32(b, n_in), "h": f32(L, b, S), "c": f32(L, b, Hc)} for b in (1, 4)]
        return g, samples, step_reference
    x = g.input("x", _F, ["B", W, n_in])
    future = g.input("future", _F, ["B", H, F]) if F else None
    g.output(_forecast_network(g, net, x, future, W), "quantiles", _F, ["B", H, Q])

    def reference(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        x_np = torch.from_numpy(feeds["x"])
        fut = torch.from_numpy(feeds["future"]) if F else torch.zeros(x_np.shape[0], H, 0)
        with torch.no_grad():
            return [net(x_np, fut).numpy()]

    return g, _forecast_samples(rng, W, n_in, H, F), reference


def _build_anomaly_detector(det: Any, streaming: bool, rng: np.random.Generator) -> tuple[Graph, list[dict], Any]:
    det._check_fitted()
    cfg = det.config
    if cfg.method == "prediction":
        if streaming:
            raise ValueError(
                "A prediction AnomalyDetector has no streaming graph: its forecaster reads each window relative to "
                "that window's own level, so the LSTM state cannot be carried from one origin to the next (each "
                "origin reads its window anew, as AnomalyStream does). Export it without --streaming: one call per "
                "new value, with the last window."
            )
        f = det.forecaster
        net = f._check_fitted().eval()
        W, H, n_in = f.window, f.config.horizon, net.encoder.input_size
        median = list(f.config.quantiles).index(0.5)
        g = Graph("lstmkit_anomaly_prediction")
        x = g.input("x", _F, ["B", W, n_in])
        quantiles = _forecast_network(g, net, x, None, W)  # (B, l, Q)
        g.output(g.op("Gather", [quantiles, g.ints(median)], axis=2), "predictions", _F, ["B", H])

        def reference(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
            x_np = torch.from_numpy(feeds["x"])
            with torch.no_grad():
                return [net(x_np, torch.zeros(x_np.shape[0], H, 0))[:, :, median].numpy()]

        return g, _forecast_samples(rng, W, n_in, H, 0), reference
    if streaming:
        raise ValueError(
            "A reconstruction AnomalyDetector decodes each window once its L values have arrived, so it has no "
            "one-step graph; export it without --streaming (a window in, its reconstruction out)."
        )
    net, L = det.model.eval(), cfg.window
    g = Graph("lstmkit_anomaly_reconstruction")
    window = g.input("window", _F, ["B", L, 1])
    _, h, c = lstm_sequence(g, net.encoder, g.op("Transpose", [window], perm=[1, 0, 2]), None, None)
    x_hat = g.linear(g.op("Gather", [h, g.ints(-1)], axis=0), net.head)  # (B, 1): x'_L from the encoder's state
    outs = [x_hat]
    for _ in range(L - 1):  # the decoder fed its own output back, unrolled (L is fixed by the config)
        y, h, c = lstm_step(g, net.decoder, x_hat, (h, c))
        x_hat = g.linear(y, net.head)
        outs.append(x_hat)
    g.output(g.op("Concat", outs[::-1], axis=1), "reconstruction", _F, ["B", L])  # x'_1 .. x'_L

    def recon_reference(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        with torch.no_grad():
            _, state = net.encoder(torch.from_numpy(feeds["window"]))
            return [net.reconstruct(state, L).numpy()]

    samples = [{"window": rng.standard_normal((b, L, 1)).astype(np.float32)} for b in (1, 4)]
    return g, samples, recon_reference


# ---- sequence to sequence: an encoder graph and a decoder-step graph -------------------------------------------------


def _build_seq2seq(model: Any, streaming: bool, rng: np.random.Generator) -> list[tuple[str, Graph, list[dict], Any]]:
    from ..tasks.text.seq2seq import BOS, PAD, SPECIALS

    if streaming:
        raise ValueError(
            "A Seq2Seq model is always exported as two graphs, the encoder and the decoder step (the decoding loop "
            "stays in your code); export it without --streaming."
        )
    net = model._check().eval()
    cfg = net  # the network keeps its sizes as attributes
    H, D, Ld, attention = cfg.hidden_size, 2 if cfg.bidirectional else 1, cfg.decoder_layers, cfg.attention
    V = net.out.out_features
    K = cfg.attention_size if attention == "bahdanau" else H  # width of the keys

    enc = Graph("lstmkit_seq2seq_encoder")
    source = enc.input("source", _I64, ["B", "S"])
    lengths = enc.input("lengths", _I64, ["B"])
    x = enc.op("Transpose", [enc.embedding(source, net.source_embedding)], perm=[1, 0, 2])  # (S, B, E)
    out, h_n, c_n = lstm_sequence(enc, net.encoder, x, None, lengths)  # (S, B, D*H), (Le*D, B, H)
    outputs = enc.op("Transpose", [out], perm=[1, 0, 2])  # (B, S, D*H), 0 past each source's end

    def bridge(final: str, linear: nn.Linear, tanh: bool) -> str:
        top = enc.op("Slice", [final, enc.ints([-D]), enc.ints([2**62]), enc.ints([0])])  # (D, B, H)
        top = enc.op("Reshape", [enc.op("Transpose", [top], perm=[1, 0, 2]), enc.ints([0, -1])])  # (B, D*H)
        y = enc.linear(top, linear)
        y = enc.op("Tanh", [y]) if tanh else y
        return enc.op("Transpose", [enc.op("Reshape", [y, enc.ints([0, Ld, H])])], perm=[1, 0, 2])  # (Ld, B, H)

    h0, c0 = bridge(h_n, net.bridge_h, True), bridge(c_n, net.bridge_c, False)
    if attention != "none":
        enc.output(outputs, "outputs", _F, ["B", "S", D * H])
        enc.output(enc.linear(outputs, net.keys), "keys", _F, ["B", "S", K])
        enc.output(enc.valid_mask(lengths, dim(enc, source, 1)), "mask", 9, ["B", "S"])  # 9: BOOL
    enc.output(h0, "h", _F, [Ld, "B", H])
    enc.output(c0, "c", _F, [Ld, "B", H])
    if attention != "none":
        zeros = enc.op("ConstantOfShape", [enc.op("Concat", [dim(enc, source, 0), enc.ints([H])], axis=0)])
        enc.output(zeros, "feed", _F, ["B", H])

    def encoder_reference(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        with torch.no_grad():
            memory = net.encode(torch.from_numpy(feeds["source"]), torch.from_numpy(feeds["lengths"]))
            state = net.initial_state(memory)
            names = ["outputs", "keys", "mask", "h", "c"] if attention != "none" else ["h", "c"]
            got = [memory[n].numpy() for n in names]
            return got + ([state["feed"].numpy()] if attention != "none" else [])

    dec = Graph("lstmkit_seq2seq_decoder_step")
    token = dec.input("token", _I64, ["B"])
    h, c = dec.input("h", _F, [Ld, "B", H]), dec.input("c", _F, [Ld, "B", H])
    emb = dec.embedding(token, net.target_embedding)  # (B, E)
    if attention != "none":
        feed = dec.input("feed", _F, ["B", H])
        mem = dec.input("outputs", _F, ["B", "S", D * H])
        keys = dec.input("keys", _F, ["B", "S", K])
        mask = dec.input("mask", 9, ["B", "S"])

        def attend(energies: str) -> tuple[str, str]:
            scores = dec.op("Where", [mask, energies, dec.const(-np.inf, "neg_inf")])
            weights = dec.op("Softmax", [scores], axis=1)  # (B, S)
            context = dec.op("MatMul", [dec.op("Unsqueeze", [weights, dec.ints([1])]), mem])  # (B, 1, D*H)
            return dec.op("Squeeze", [context, dec.ints([1])]), weights

        x_t = dec.op("Concat", [emb, feed], axis=1)  # input feeding: the previous attentional vector
        if attention == "bahdanau":  # from the previous top state
            query = dec.linear(dec.op("Gather", [h, dec.ints(-1)], axis=0), net.query)  # (B, A)
            tanh = dec.op("Tanh", [dec.op("Add", [dec.op("Unsqueeze", [query, dec.ints([1])]), keys])])  # (B, S, A)
            context, weights = attend(dec.op("Squeeze", [dec.linear(tanh, net.score), dec.ints([2])]))
            y, h_next, c_next = lstm_step(dec, net.decoder, x_t, (h, c))
        else:  # luong, from the current top state
            y, h_next, c_next = lstm_step(dec, net.decoder, x_t, (h, c))
            energies = dec.op("MatMul", [keys, dec.op("Unsqueeze", [y, dec.ints([2])])])  # (B, S, 1)
            context, weights = attend(dec.op("Squeeze", [energies, dec.ints([2])]))
        top = dec.op("Tanh", [dec.linear(dec.op("Concat", [context, y], axis=1), net.combine)])  # (B, H)
    else:
        top, h_next, c_next = lstm_step(dec, net.decoder, emb, (h, c))
    dec.output(dec.linear(top, net.out), "logits", _F, ["B", V])
    dec.output(h_next, "h_next", _F, [Ld, "B", H])
    dec.output(c_next, "c_next", _F, [Ld, "B", H])
    if attention != "none":
        dec.output(top, "feed_next", _F, ["B", H])
        dec.output(weights, "weights", _F, ["B", "S"])

    def step_reference(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        t = {k: torch.from_numpy(v) for k, v in feeds.items()}
        state = {"h": t["h"], "c": t["c"], "feed": t.get("feed", torch.zeros(t["h"].shape[1], H))}
        mask_t = t.get("mask", torch.ones(t["h"].shape[1], 1, dtype=torch.bool))
        memory = {"outputs": t.get("outputs"), "keys": t.get("keys"), "mask": mask_t}
        with torch.no_grad():
            logits, new, weights_t = net.step(t["token"], state, memory)
        got = [logits.numpy(), new["h"].numpy(), new["c"].numpy()]
        return got + ([new["feed"].numpy(), weights_t.numpy()] if attention != "none" else [])

    # sample sources (padded, random lengths); the decoder step checked along several steps of greedy decoding
    n_source = net.source_embedding.num_embeddings
    enc_samples, dec_samples = [], []
    for batch, time in ((1, 4), (3, 9)):
        lens = sample_lengths(rng, batch, time)
        ids = rng.integers(SPECIALS, n_source, (batch, time)).astype(np.int64)
        ids[np.arange(time)[None, :] >= lens[:, None]] = PAD
        enc_samples.append({"source": ids, "lengths": lens})
        with torch.no_grad():
            memory = net.encode(torch.from_numpy(ids), torch.from_numpy(lens))
            state = net.initial_state(memory)
            tok = torch.full((batch,), BOS, dtype=torch.long)
            for _ in range(4):
                feeds = {"token": tok.numpy(), "h": state["h"].numpy(), "c": state["c"].numpy()}
                if attention != "none":
                    feeds.update(feed=state["feed"].numpy(), outputs=memory["outputs"].numpy(),
                                 keys=memory["keys"].numpy(), mask=memory["mask"].numpy())  # fmt: skip
                dec_samples.append({k: np.ascontiguousarray(v) for k, v in feeds.items()})
                logits, state, _ = net.step(tok, state, memory)
                tok = logits.argmax(-1)
    return [("", enc, enc_samples, encoder_reference), (DECODER_STEP_SUFFIX, dec, dec_samples, step_reference)]


def _builder(obj: Any) -> tuple[str, Any]:
    from ..tasks.sequence.estimators import SequenceEstimator
    from ..tasks.text.classification import TextClassifier
    from ..tasks.text.language import LanguageModel
    from ..tasks.text.seq2seq import Seq2Seq
    from ..tasks.timeseries.anomaly.detector import AnomalyDetector
    from ..tasks.timeseries.forecasting import Forecaster

    if isinstance(obj, LSTM):
        return "lstm", _build_lstm
    if isinstance(obj, SequenceEstimator):
        return obj._kind, _build_estimator
    if isinstance(obj, LanguageModel):
        return "language_model", _build_language_model
    if isinstance(obj, TextClassifier):
        return "text_classifier", _build_text_classifier
    if isinstance(obj, Forecaster):
        return "forecaster", _build_forecaster
    if isinstance(obj, AnomalyDetector):
        return "anomaly_detector", _build_anomaly_detector
    if isinstance(obj, Seq2Seq):
        return "seq2seq", _build_seq2seq
    raise TypeError(
        f"ONNX export does not know {type(obj).__name__} yet; it exports lstmkit.nn.LSTM, SequenceClassifier, "
        "SequenceRegressor, LanguageModel, TextClassifier, Forecaster, AnomalyDetector and Seq2Seq."
    )


def exportable_kind(obj: Any) -> str:
    """The kind an exportable object is exported as (``"lstm"`` for the engine's layer, else its run kind); a
    TypeError of one sentence for anything else."""
    return _builder(obj)[0]


EXPORTABLE_KINDS = ("sequence_classifier", "sequence_regressor", "language_model", "text_classifier", "forecaster",
                    "anomaly_detector", "seq2seq")  # fmt: skip
"""The run kinds (``config.json``'s ``kind``) that :func:`export_onnx` can write as ONNX."""

_PARTS = {"seq2seq": ("", DECODER_STEP_SUFFIX)}  # kinds with more than one file: each file's name suffix
_MAX_ONNX_BYTES = 2**31  # protobuf's limit: a larger file cannot be a ModelProto, so it is no earlier export


def _default_name(streaming: bool) -> str:
    return "model-streaming.onnx" if streaming else "model.onnx"


def _sibling(path: Path, suffix: str) -> Path:
    """``model.onnx`` and ``-decoder-step`` -> ``model-decoder-step.onnx``."""
    return path.with_name(path.stem + suffix + path.suffix) if suffix else path


def _recorded(path: Path) -> dict[str, str] | None:
    """The metadata an earlier lstmkit export recorded in ``path``, or None when ``path`` is not one (not ONNX at
    all, or an ONNX model that lstmkit did not write)."""
    try:
        import onnx

        if path.stat().st_size >= _MAX_ONNX_BYTES:
            return None
        model = onnx.load_model(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 (any file at all: whatever cannot be read as ONNX is not an earlier export)
        return None
    props = {p.key: p.value for p in model.metadata_props}
    return props if props.get("lstmkit_kind") else None


def _check_targets(targets: list[Path], *, run_dir: Path | None, kind: str, force: bool) -> None:
    """Refuse, before anything is written, to put an export where it would lose something: over a file that is not
    an earlier export of this run (unless ``force``), over the run's own files or a directory (even with ``force``),
    or under a path whose parent is a file."""
    from ..runs import CONFIG_FILE, EXTRA_FILE, WEIGHTS_FILE

    run_id = str(run_dir.resolve()) if run_dir is not None else None
    what = "run" if run_dir is not None else "model"
    ours: set[Path] = set()  # the run directory's default files are its exports, with or without metadata
    own: set[Path] = set()
    if run_dir is not None:
        ours = {_sibling(run_dir / _default_name(mode), s).resolve() for mode in (False, True)
                for s in _PARTS.get(kind, ("",))}  # fmt: skip
        own = {(run_dir / name).resolve() for name in (CONFIG_FILE, WEIGHTS_FILE, EXTRA_FILE)}
    for target in targets:
        parent = next(p for p in target.parents if os.path.lexists(p) or p == p.parent)
        if os.path.lexists(parent) and not parent.is_dir():
            raise NotADirectoryError(f"--out {target} cannot be written: {parent} is a file, not a directory; "
                                     "choose another --out.")  # fmt: skip
        if not os.path.lexists(target):
            continue
        resolved = target.resolve()
        if resolved in own:
            raise FileExistsError(f"{target} is a file of the run itself ({target.name}), which an export never "
                                  "replaces, not even with --force; choose another --out.")  # fmt: skip
        if target.is_dir():
            raise IsADirectoryError(f"{target} is a directory, so the ONNX file cannot be written there; remove it "
                                    "or choose another --out.")  # fmt: skip
        if force or resolved in ours:
            continue
        recorded = _recorded(target) or {}
        if run_id is not None:
            earlier = recorded.get("lstmkit_run") == run_id
        else:  # a model object has no run: an lstmkit export of its kind that records none is its own
            earlier = recorded.get("lstmkit_kind") == kind and "lstmkit_run" not in recorded
        if not earlier:
            raise FileExistsError(f"{target} already exists and is not an earlier ONNX export of this {what}; pass "
                                  "--force to replace it or choose another --out.")  # fmt: skip


def export_onnx(source: Any, path: str | os.PathLike[str] | None = None, *, streaming: bool = False,
                tolerance: float = FLOAT_TOLERANCE, seed: int = 0, force: bool = False) -> ExportReport:  # fmt: skip
    """Export ``source`` (a run directory or a loaded model) to ONNX at ``path`` (default: ``model.onnx``, or
    ``model-streaming.onnx`` with ``streaming``, inside the run directory), after checking the graph against the
    source model on sample inputs. A Seq2Seq model also writes its decoder step beside ``path``
    (``<stem>-decoder-step.onnx``). Raises :class:`ExportMismatchError` (nothing written) above ``tolerance``.

    ``path`` naming a directory (an existing one, or a string ending in ``/``) writes the default file name inside
    it; missing parent directories are created once the export has passed its check. Every file records in its
    ``metadata_props`` ``lstmkit_version``, ``lstmkit_kind``, ``lstmkit_streaming`` and, from a run directory,
    ``lstmkit_run`` (the run directory's absolute path).

    Nothing is lost: an existing file is replaced only when it is an earlier export of this run (the run directory's
    default files, or an ONNX file whose ``lstmkit_run`` is this run; from a model object, an lstmkit export of the
    same kind that records no run) or ``force`` is True; otherwise :class:`FileExistsError`, before any work. The
    run's own files (``config.json``, the weights) and directories are never replaced.

    Raises:
        ValueError: a run directory of a kind that cannot be exported (see :data:`EXPORTABLE_KINDS`).
        FileExistsError, IsADirectoryError, NotADirectoryError: ``path`` would replace something (see above)."""
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise ImportError("Checking an export needs onnxruntime: pip install 'lstmkit[export]'.") from e
    from .. import __version__, runs
    from .._atomic import atomic_write_bytes

    run_dir = None
    if isinstance(source, str | os.PathLike):
        run_dir = Path(source)
        if run_dir.name == runs.CONFIG_FILE and run_dir.is_file():  # the run's config.json names its run
            run_dir = run_dir.parent
        run_kind = runs.read_run_config(run_dir)["kind"]
        if run_kind not in EXPORTABLE_KINDS:
            raise ValueError(
                f"{run_dir} holds a {run_kind!r} run, which cannot be exported to ONNX; the kinds that can are "
                f"{', '.join(EXPORTABLE_KINDS[:-1])} and {EXPORTABLE_KINDS[-1]}, so pass a run directory of one of "
                "those."
            )
        source = runs.load(run_dir)
    kind, build = _builder(source)
    if path is None:
        if run_dir is None:
            raise ValueError("Give a path for the ONNX file (the source is a model object, not a run directory).")
        path = run_dir / _default_name(streaming)
    elif os.path.isdir(path) or (isinstance(path, str) and path.endswith(("/", os.sep))):
        path = Path(path) / _default_name(streaming)
    path = Path(path)
    refusals = dict(run_dir=run_dir, kind=kind, force=force)
    _check_targets([_sibling(path, s) for s in _PARTS.get(kind, ("",))], **refusals)  # before the work
    rng = np.random.default_rng(seed)
    built = build(source, streaming, rng)
    parts = built if isinstance(built, list) else [("", *built)]  # (file name suffix, graph, samples, reference)
    checks, files, written = [], [], []
    metadata = {"lstmkit_version": __version__, "lstmkit_kind": kind, "lstmkit_streaming": str(streaming).lower()}
    if run_dir is not None:
        metadata["lstmkit_run"] = str(run_dir.resolve())
    for suffix, g, samples, reference in parts:
        target = _sibling(path, suffix)
        model = g.model(doc=f"lstmkit {kind}{suffix.replace('-', ' ')}{' (streaming step)' if streaming else ''}",
                        metadata=metadata)  # fmt: skip
        data = model.SerializeToString()
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        part_worst = 0.0
        for feeds in samples:
            got = session.run(None, feeds)
            want = reference(feeds)
            diffs = {n: float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)))) if np.size(a)
                     else 0.0 for n, a, b in zip(names, got, want, strict=True)}  # fmt: skip
            check = {"inputs": {k: list(v.shape) for k, v in feeds.items()}, "max_abs_diff": diffs}
            checks.append({"graph": target.name, **check} if len(parts) > 1 else check)
            part_worst = max(part_worst, *diffs.values())
        files.append({"path": str(target), "inputs": [i.name for i in session.get_inputs()], "outputs": names,
                      "max_abs_diff": part_worst})  # fmt: skip
        written.append((target, data))
    worst = max(f["max_abs_diff"] for f in files)
    if not worst <= tolerance:
        detail = "; ".join(f"{c.get('graph', '')}{c['inputs']}: {c['max_abs_diff']}" for c in checks)
        raise ExportMismatchError(
            f"The ONNX graph differs from the source model by up to {worst:.3g} (tolerance {tolerance:g}), so "
            f"{' and '.join(str(t) for t, _ in written)} {'was' if len(written) == 1 else 'were'} not written. Per "
            f"sample batch: {detail}. Report this with the model's config.json."
        )
    _check_targets([t for t, _ in written], **refusals)  # again: nothing may have appeared there meanwhile
    for target, data in written:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(target, data)
        except OSError as e:  # named after the file asked for, not atomic_write_bytes' temporary one
            raise type(e)(e.errno, e.strerror, str(target)) from e
    main = files[0]
    return ExportReport(path=main["path"], kind=kind, streaming=streaming, opset=OPSET, inputs=main["inputs"],
                        outputs=main["outputs"], max_abs_diff=worst, tolerance=tolerance, checks=checks,
                        files=files)  # fmt: skip
