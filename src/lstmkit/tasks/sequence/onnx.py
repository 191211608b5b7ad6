"""The sequence estimators' ONNX graphs (``SequenceClassifier`` / ``SequenceRegressor``), and the per-sequence model
(:class:`~lstmkit.tasks.sequence.model.SequenceModel`) as ONNX operators, which the text classifier reuses.

What the graphs take and give is listed in :mod:`lstmkit.export.onnx`; :func:`lstmkit.export.onnx.export_onnx` checks
them against the estimator and writes them. Imported by :meth:`SequenceEstimator.onnx_graphs` on first use, so that
importing an estimator does not import this module.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ...nn.onnx_graph import FLOAT, INT64, CheckedGraph, Graph, core_sequence, dim, lstm_step, sample_lengths
from .estimators import SequenceClassifier

__all__ = ["estimator_graphs", "sequence_model_graph", "streaming_blockers"]


def sequence_model_graph(g: Graph, model: nn.Module, x_bti: str, lengths: str | None) -> str:
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


def _standardise(g: Graph, est: Any, x: str) -> str:
    """(x - mean) / std with the estimator's per-channel training statistics (broadcast over the last axis)."""
    mean, std = est.scaler_
    return g.op("Div", [g.op("Sub", [x, g.const(np.asarray(mean).reshape(-1), "mean")]),
                        g.const(np.asarray(std).reshape(-1), "std")])  # fmt: skip


def _estimator_outputs(g: Graph, est: Any, out: str, K: int) -> bool:
    """A classifier's ``logits`` and ``probabilities`` (B, K), or a regressor's ``prediction`` (B, K); returns
    whether it is a classifier."""
    if isinstance(est, SequenceClassifier):
        g.output(out, "logits", FLOAT, ["B", K])
        g.output(g.op("Softmax", [out], axis=-1), "probabilities", FLOAT, ["B", K])
        return True
    g.output(out, "prediction", FLOAT, ["B", K])
    return False


def estimator_graphs(est: Any, streaming: bool, rng: np.random.Generator) -> list[CheckedGraph]:
    """A SequenceClassifier's or SequenceRegressor's graph (see :meth:`SequenceEstimator.onnx_graphs`)."""
    model = est.network.eval()
    if streaming:
        return _estimator_step(est, model, rng)
    I = est.input_size_  # noqa: E741
    # dimension shuffle: the series length is part of the model, so x has exactly T steps and there is no lengths
    # input (onnxruntime refuses any other length from the graph's input shape)
    fixed_T = model.config.shuffle_length if getattr(model.config, "dimension_shuffle", False) else 0
    g = Graph(f"lstmkit_{est.run_kind}")
    x = g.input("x", FLOAT, ["B", fixed_T or "T", I])
    lengths = None if fixed_T else g.input("lengths", INT64, ["B"])
    h = x
    if est.scaler_ is not None:  # the training standardisation, and padding back to 0 (the engine's input)
        h = _standardise(g, est, x)
        if lengths is not None:
            valid = g.op("Cast", [g.valid_mask(lengths, dim(g, x, 1))], to=g.onnx.TensorProto.FLOAT)
            h = g.op("Mul", [h, g.op("Unsqueeze", [valid, g.ints([2])])])
    out = sequence_model_graph(g, model, h, lengths)
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
    return [CheckedGraph(g, samples, reference)]


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


def _estimator_step(est: Any, model: nn.Module, rng: np.random.Generator) -> list[CheckedGraph]:
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
    g = Graph(f"lstmkit_{est.run_kind}_step")
    x = g.input("x_t", FLOAT, ["B", I])
    h0, c0 = g.input("h", FLOAT, [L, "B", S]), g.input("c", FLOAT, [L, "B", H])
    z = x
    if est.scaler_ is not None:
        z = _standardise(g, est, x)
    y, h, c = lstm_step(g, core, z, (h0, c0))
    out = g.linear(y, model.head)
    classifier = _estimator_outputs(g, est, out, model.head.out_features)
    g.output(h, "h_next", FLOAT, [L, "B", S])
    g.output(c, "c_next", FLOAT, [L, "B", H])

    def reference(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        x_t = torch.from_numpy(est.standardise(feeds["x_t"][:, None, :])[:, 0])
        with torch.no_grad():
            y_t, (h_n, c_n) = core.step(x_t, (torch.from_numpy(feeds["h"]), torch.from_numpy(feeds["c"])))
            logits = model.head(y_t)
        outs = [logits.numpy(), torch.softmax(logits, -1).numpy()] if classifier else [logits.numpy()]
        return [*outs, h_n.numpy(), c_n.numpy()]

    samples = [{"x_t": rng.standard_normal((b, I)).astype(np.float32),
                "h": rng.standard_normal((L, b, S)).astype(np.float32),
                "c": rng.standard_normal((L, b, H)).astype(np.float32)} for b in (1, 4)]  # fmt: skip
    return [CheckedGraph(g, samples, reference)]
