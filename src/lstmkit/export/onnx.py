"""``lstmkit export onnx``: a trained model as an ONNX file, checked against the source model before it is kept.

Every export asks the source for its graphs (a task's ``onnx_graphs``, written by its family's ``onnx`` module with
:mod:`lstmkit.nn.onnx_graph`; the engine's LSTM here), runs the source model (torch, eval mode) and the exported one
(onnxruntime) on the sample inputs that come with each graph, and writes the file only when the largest absolute
difference is within ``tolerance``; otherwise it raises :class:`ExportMismatchError` and writes nothing. The file is
written atomically, records lstmkit's version, the kind and the run directory in its ``metadata_props``, and replaces an
existing file only when that file is an earlier export of the same run (or with ``force``): nothing else is ever
overwritten.

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
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..nn import LSTM
from ..nn.onnx_graph import FLOAT, INT64, OPSET, CheckedGraph, Graph, lstm_sequence, lstm_step, sample_lengths

__all__ = ["EXPORTABLE_KINDS", "ExportMismatchError", "ExportReport", "export_onnx", "exportable_kind"]

FLOAT_TOLERANCE = 1e-4  # largest absolute difference accepted between torch and onnxruntime (float32)


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


# ---- what is exported: the engine's LSTM here, every task by its own onnx_graphs (tasks/<family>/onnx.py) ----------


def _lstm_graphs(module: LSTM, streaming: bool, rng: np.random.Generator) -> list[CheckedGraph]:
    """The engine's LSTM layer: the sequence graph, or with ``streaming`` its one-step graph."""
    module.eval()
    L, D, S, H, In = module.num_layers, module.num_directions, module.state_size, module.hidden_size, module.input_size
    g = Graph("lstmkit_lstm")
    if streaming:
        x = g.input("x_t", FLOAT, ["B", In])
        h0, c0 = g.input("h", FLOAT, [L, "B", S]), g.input("c", FLOAT, [L, "B", H])
        y, h, c = lstm_step(g, module, x, (h0, c0))
        g.output(y, "y_t", FLOAT, ["B", S])
    else:
        x = g.input("x", FLOAT, ["B", "T", In])
        lengths = g.input("lengths", INT64, ["B"])
        h0, c0 = g.input("h0", FLOAT, [L * D, "B", S]), g.input("c0", FLOAT, [L * D, "B", H])
        y, h, c = lstm_sequence(g, module, g.op("Transpose", [x], perm=[1, 0, 2]), (h0, c0), lengths)
        g.output(g.op("Transpose", [y], perm=[1, 0, 2]), "output", FLOAT, ["B", "T", D * S])
    g.output(h, "h_n" if not streaming else "h_next", FLOAT, [L * D, "B", S])
    g.output(c, "c_n" if not streaming else "c_next", FLOAT, [L * D, "B", H])

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
    return [CheckedGraph(g, samples, reference)]


def _graphs_of(obj: Any) -> tuple[str, Callable[[bool, np.random.Generator], list[CheckedGraph]]]:
    """The kind ``obj`` is exported as and what builds its graphs: the engine's LSTM, or a task object with a public
    ``onnx_graphs(streaming, rng)`` and ``run_kind``; a TypeError of one sentence for anything else."""
    if isinstance(obj, LSTM):
        return "lstm", lambda streaming, rng: _lstm_graphs(obj, streaming, rng)
    graphs, kind = getattr(obj, "onnx_graphs", None), getattr(obj, "run_kind", None)
    if callable(graphs) and isinstance(kind, str):
        return kind, graphs
    raise TypeError(
        f"ONNX export does not know {type(obj).__name__} yet; it exports lstmkit.nn.LSTM, SequenceClassifier, "
        "SequenceRegressor, LanguageModel, TextClassifier, Forecaster, AnomalyDetector and Seq2Seq."
    )


def exportable_kind(obj: Any) -> str:
    """The kind an exportable object is exported as (``"lstm"`` for the engine's layer, else its run kind); a
    TypeError of one sentence for anything else."""
    return _graphs_of(obj)[0]


EXPORTABLE_KINDS = ("sequence_classifier", "sequence_regressor", "language_model", "text_classifier", "forecaster",
                    "anomaly_detector", "seq2seq")  # fmt: skip
"""The run kinds (``config.json``'s ``kind``) that :func:`export_onnx` can write as ONNX."""

_MAX_ONNX_BYTES = 2**31  # protobuf's limit: a larger file cannot be a ModelProto, so it is no earlier export


def _file_suffixes(kind: str) -> tuple[str, ...]:
    """Each file's name suffix for an export of ``kind`` (known before the graphs are built, so that the targets are
    checked first): one file, or Seq2Seq's encoder and decoder step."""
    if kind == "seq2seq":
        from ..tasks.text.onnx import DECODER_STEP_SUFFIX

        return ("", DECODER_STEP_SUFFIX)
    return ("",)


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
                for s in _file_suffixes(kind)}  # fmt: skip
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
    kind, build = _graphs_of(source)
    if path is None:
        if run_dir is None:
            raise ValueError("Give a path for the ONNX file (the source is a model object, not a run directory).")
        path = run_dir / _default_name(streaming)
    elif os.path.isdir(path) or (isinstance(path, str) and path.endswith(("/", os.sep))):
        path = Path(path) / _default_name(streaming)
    path = Path(path)
    refusals = dict(run_dir=run_dir, kind=kind, force=force)
    _check_targets([_sibling(path, s) for s in _file_suffixes(kind)], **refusals)  # before the work
    rng = np.random.default_rng(seed)
    parts = build(streaming, rng)
    checks, files, written = [], [], []
    metadata = {"lstmkit_version": __version__, "lstmkit_kind": kind, "lstmkit_streaming": str(streaming).lower()}
    if run_dir is not None:
        metadata["lstmkit_run"] = str(run_dir.resolve())
    for g, samples, reference, suffix in parts:
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
