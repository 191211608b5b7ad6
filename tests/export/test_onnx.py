"""ONNX export (issue 6): every engine variant and every exported task graph reproduces the source model in
onnxruntime; the check refuses a mismatch and writes nothing; the CLI; a language model streamed step by step through
the exported graph gives the model's own next-token distribution."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402

from lstmkit.cli import main  # noqa: E402
from lstmkit.export.onnx import ExportMismatchError, export_onnx  # noqa: E402
from lstmkit.nn import LSTM  # noqa: E402
from lstmkit.tasks.sequence.estimators import SequenceClassifier, SequenceRegressor  # noqa: E402
from lstmkit.tasks.text.classification import TextClassifier  # noqa: E402
from lstmkit.tasks.text.language import LanguageModel  # noqa: E402

VARIANTS = [
    {}, {"num_layers": 2, "bidirectional": True}, {"peephole": True}, {"peephole": True, "bidirectional": True},
    {"layer_norm": True}, {"proj_size": 3, "num_layers": 2}, {"zoneout": 0.2, "bidirectional": True},
    {"layer_norm": True, "peephole": True, "proj_size": 4, "bidirectional": True, "num_layers": 2,
     "recurrent_dropout": 0.3},
]  # fmt: skip


def op_types(path) -> set[str]:
    model = onnx.load(str(path))
    types = {n.op_type for n in model.graph.node}
    for node in model.graph.node:  # Scan bodies
        for attr in node.attribute:
            if attr.g is not None:
                types |= {n.op_type for n in attr.g.node}
    return types


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: ",".join(v) or "plain")
def test_engine_variants_match_the_reference_with_lengths_and_state(variant, tmp_path) -> None:
    torch.manual_seed(0)
    report = export_onnx(LSTM(5, 8, **variant), tmp_path / "lstm.onnx")
    assert report.max_abs_diff < 1e-5 and len(report.checks) == 3  # batches of 1, 3 and 4, padded, with a state
    types = op_types(tmp_path / "lstm.onnx")
    plain = not ({"layer_norm", "proj_size", "zoneout"} & set(variant))
    assert ("LSTM" in types) == plain and ("Scan" in types) != plain  # the plain layer is ONNX's own operator


@pytest.mark.parametrize(
    "variant", [v for v in VARIANTS if not v.get("bidirectional")], ids=lambda v: ",".join(v) or "plain"
)
def test_streaming_step_graph_matches_the_engine_step(variant, tmp_path) -> None:
    torch.manual_seed(1)
    report = export_onnx(LSTM(5, 8, **variant), tmp_path / "step.onnx", streaming=True)
    assert report.inputs == ["x_t", "h", "c"] and report.outputs == ["y_t", "h_next", "c_next"]
    assert report.max_abs_diff < 1e-5


def test_mismatch_above_the_tolerance_writes_nothing(tmp_path) -> None:
    with pytest.raises(ExportMismatchError, match="was not written"):
        export_onnx(LSTM(5, 8, layer_norm=True), tmp_path / "x.onnx", tolerance=1e-12)
    assert not (tmp_path / "x.onnx").exists()
    with pytest.raises(ValueError, match="cannot be stepped"):
        export_onnx(LSTM(5, 8, bidirectional=True), tmp_path / "y.onnx", streaming=True)


def series(n: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = (rng.standard_normal((n, 12, 3)) * 3 + 5).astype(np.float32)  # far from standardised: the scaler matters
    return X, (X[:, :, 0].mean(1) > 5).astype(int)


@pytest.mark.parametrize("kw", [{}, {"pooling": "mean", "bidirectional": True}, {"pooling": "max"},
                                {"pooling": "attention", "cell": "gru"}, {"cell": "rnn", "bidirectional": True},
                                {"conv_branch": True, "pooling": "mean"}],
                         ids=["last", "mean-bi", "max", "attention-gru", "rnn-bi", "lstm-fcn"])  # fmt: skip
def test_sequence_classifier_graph_includes_scaling_and_pooling(kw, tmp_path) -> None:
    X, y = series()
    clf = SequenceClassifier(hidden_size=8, epochs=2, **kw).fit(X, y)
    report = export_onnx(clf, tmp_path / "clf.onnx")
    assert report.outputs == ["logits", "probabilities"] and report.max_abs_diff < 1e-5
    session = ort.InferenceSession(str(tmp_path / "clf.onnx"))
    lengths = np.array([12, 7, 3])
    x = X[:3].copy()
    x[1, 7:] = x[2, 3:] = 0.0
    probs = session.run(["probabilities"], {"x": x, "lengths": lengths})[0]
    ragged = [X[0], X[1, :7], X[2, :3]]
    np.testing.assert_allclose(probs, clf.predict_proba(ragged), atol=1e-5)


def test_dimension_shuffle_graph_transposes_before_the_lstm_and_does_not_stream(tmp_path) -> None:
    X, y = series()
    clf = SequenceClassifier(hidden_size=8, epochs=2, conv_branch=True, dimension_shuffle=True,
                             pooled_dropout=0.8).fit(X, y)  # fmt: skip
    report = export_onnx(clf, tmp_path / "shuffle.onnx")
    assert report.inputs == ["x"] and report.max_abs_diff < 1e-5  # no lengths: T is fixed by the model
    session = ort.InferenceSession(str(tmp_path / "shuffle.onnx"))
    probs = session.run(["probabilities"], {"x": X[:4]})[0]
    np.testing.assert_allclose(probs, clf.predict_proba(X[:4]), atol=1e-5)
    with pytest.raises(Exception, match="dimensions"):  # onnxruntime refuses any other length
        session.run(["probabilities"], {"x": X[:4, :10]})
    with pytest.raises(ValueError, match="reads each whole series transposed"):
        export_onnx(clf, tmp_path / "s.onnx", streaming=True)


def test_regressor_and_unknown_kinds(tmp_path) -> None:
    X, _ = series()
    reg = SequenceRegressor(hidden_size=8, epochs=2).fit(X, X[:, -1, 0])
    assert export_onnx(reg, tmp_path / "reg.onnx").outputs == ["prediction"]
    with pytest.raises(TypeError, match="does not know dict yet"):
        export_onnx({}, tmp_path / "z.onnx")
    step = export_onnx(reg, tmp_path / "s.onnx", streaming=True)  # unidirectional, pooling "last": it streams
    assert step.inputs == ["x_t", "h", "c"] and step.outputs == ["prediction", "h_next", "c_next"]
    assert step.max_abs_diff < 1e-5
    bi = SequenceRegressor(hidden_size=8, epochs=1, bidirectional=True, pooling="mean").fit(X, X[:, -1, 0])
    with pytest.raises(ValueError, match="cannot stream one observation at a time: it is bidirectional"):
        export_onnx(bi, tmp_path / "b.onnx", streaming=True)


def test_classifier_step_graph_streamed_equals_the_whole_series(tmp_path) -> None:
    X, y = series()
    clf = SequenceClassifier(hidden_size=8, epochs=2).fit(X, y)
    export_onnx(clf, tmp_path / "step.onnx", streaming=True)
    session = ort.InferenceSession(str(tmp_path / "step.onnx"))
    h = c = np.zeros((1, 1, 8), np.float32)
    for x_t in X[0]:  # raw observations, one per call: the scaling is in the graph
        probs, h, c = session.run(["probabilities", "h_next", "c_next"], {"x_t": x_t[None], "h": h, "c": c})
    np.testing.assert_allclose(probs[0], clf.predict_proba(X[:1])[0], atol=1e-5)


TEXT = (
    "".join(f"{w}: the {x} is {h}.\n" for w in ("ANNA", "BEN") for x in ("sea", "sky") for h in ("grey", "blue")) * 20
)


@pytest.mark.parametrize("kw", [{}, {"num_layers": 2, "layer_norm": True}, {"proj_size": 8, "zoneout": 0.1}],
                         ids=["plain", "2-layer-ln", "proj-zoneout"])  # fmt: skip
def test_language_model_graph_streams_with_explicit_state(kw, tmp_path) -> None:
    lm = LanguageModel(hidden_size=16, embedding_size=8, batch_size=4, bptt=10, epochs=1, progress=False, **kw)
    lm.fit(TEXT)
    report = export_onnx(lm, tmp_path / "lm.onnx")
    assert report.inputs == ["ids", "h0", "c0"] and report.max_abs_diff < 1e-5
    # feed a prompt one token per call through onnxruntime, carrying the state: the last logits equal the model's
    session = ort.InferenceSession(str(tmp_path / "lm.onnx"))
    ids = lm.tokenizer.encode("ANNA: the sky")
    L, S, H = lm.net.lstm.num_layers, lm.net.lstm.state_size, lm.net.lstm.hidden_size
    h, c = np.zeros((L, 1, S), np.float32), np.zeros((L, 1, H), np.float32)
    for token in ids:
        logits, h, c = session.run(None, {"ids": np.array([[token]], np.int64), "h0": h, "c0": c})
    with torch.no_grad():
        whole, _ = lm.net.eval()(torch.tensor([ids]))
    np.testing.assert_allclose(logits[0, -1], whole[0, -1].numpy(), atol=1e-4)


def test_text_classifier_graph(tmp_path) -> None:
    texts = ["good film " * (i % 5 + 1) if i % 2 else "bad film " * (i % 3 + 1) for i in range(100)]
    clf = TextClassifier(embedding_size=8, hidden_size=8, epochs=1, progress=False, pooling="attention")
    clf.fit(texts, [i % 2 for i in range(100)])
    report = export_onnx(clf, tmp_path / "text.onnx")
    assert report.inputs == ["ids", "lengths"] and report.max_abs_diff < 1e-5


def test_cli_exports_a_run_directory_and_says_why_it_cannot(tmp_path, capsys) -> None:
    X, y = series()
    SequenceClassifier(hidden_size=8, epochs=2).fit(X, y).save(tmp_path / "run")
    assert main(["export", "onnx", str(tmp_path / "run"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["path"] == str(tmp_path / "run" / "model.onnx") and report["kind"] == "sequence_classifier"
    assert (tmp_path / "run" / "model.onnx").exists()
    assert main(["export", "onnx", str(tmp_path / "run"), "--streaming", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["path"].endswith("model-streaming.onnx")
    SequenceClassifier(hidden_size=8, epochs=1, pooling="max").fit(X, y).save(tmp_path / "max")
    assert main(["export", "onnx", str(tmp_path / "max"), "--streaming"]) == 2
    assert "pools with 'max' over the whole sequence" in capsys.readouterr().err
    assert main(["export", "onnx", str(tmp_path / "nope")]) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert main(["export", "onnx", str(tmp_path / "run"), "--tolerance", "0"]) == 2
    assert "--tolerance must be positive" in capsys.readouterr().err


def test_export_never_replaces_a_file_that_is_not_an_earlier_export(tmp_path) -> None:
    """Issue 18: the Python API refuses as the CLI does (the same sentence); force=True replaces."""
    X, y = series()
    run = SequenceClassifier(hidden_size=8, epochs=1).fit(X, y).save(tmp_path / "run")
    data = tmp_path / "sensors.csv"
    data.write_bytes(b"time,value\n1,2.5\n")
    sentence = f"{data} already exists and is not an earlier ONNX export of this run; pass --force to replace it or "
    with pytest.raises(FileExistsError, match=sentence + "choose another --out."):
        export_onnx(run, data)
    assert data.read_bytes() == b"time,value\n1,2.5\n" and sorted(p.name for p in tmp_path.iterdir()) == [
        "run", "sensors.csv"]  # fmt: skip
    export_onnx(run, data, force=True)
    meta = {p.key: p.value for p in onnx.load(str(data)).metadata_props}
    assert meta["lstmkit_run"] == str(run.resolve()) and meta["lstmkit_kind"] == "sequence_classifier"
    export_onnx(run, data)  # now an earlier export of this run
    # a model object: an earlier lstmkit export of the same kind that records no run is its own
    torch.manual_seed(0)
    export_onnx(LSTM(3, 4), tmp_path / "lstm.onnx")
    assert "lstmkit_run" not in {p.key for p in onnx.load(str(tmp_path / "lstm.onnx")).metadata_props}
    export_onnx(LSTM(3, 4), tmp_path / "lstm.onnx")
    with pytest.raises(FileExistsError, match="not an earlier ONNX export of this model"):
        export_onnx(LSTM(3, 4), data)


class _Doubler:
    """A task of one's own: exportable through the public contract alone (run_kind and onnx_graphs)."""

    run_kind = "doubler"
    error = 0.0  # added to the reference's outputs

    def onnx_graphs(self, streaming: bool = False, rng: np.random.Generator | None = None) -> list:
        from lstmkit.nn.onnx_graph import FLOAT, CheckedGraph, Graph

        g = Graph("doubler")
        x = g.input("x", FLOAT, ["B", 3])
        g.output(g.op("Mul", [x, g.const(2.0, "two")]), "y", FLOAT, ["B", 3])
        samples = [{"x": rng.standard_normal((b, 3)).astype(np.float32)} for b in (1, 4)]
        return [CheckedGraph(g, samples, lambda feeds: [feeds["x"] * 2 + self.error])]


def test_any_object_with_onnx_graphs_and_run_kind_is_exported_and_checked(tmp_path) -> None:
    report = export_onnx(_Doubler(), tmp_path / "d.onnx")
    assert (report.kind, report.inputs, report.outputs, report.max_abs_diff) == ("doubler", ["x"], ["y"], 0.0)
    props = {p.key: p.value for p in onnx.load(str(tmp_path / "d.onnx")).metadata_props}
    assert props["lstmkit_kind"] == "doubler"
    wrong = _Doubler()
    wrong.error = 0.5  # the reference disagrees with the graph: refused, nothing written
    with pytest.raises(ExportMismatchError):
        export_onnx(wrong, tmp_path / "w.onnx")
    assert not (tmp_path / "w.onnx").exists()
    with pytest.raises(TypeError, match="does not know object yet"):  # neither onnx_graphs nor run_kind
        export_onnx(object(), tmp_path / "o.onnx")


def test_importing_a_task_imports_no_export_code() -> None:
    """Each task's onnx_graphs imports its family's onnx module on first call: loading a task loads neither the export
    layer nor the graph toolkit nor onnx."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import lstmkit.tasks.sequence.estimators, lstmkit.tasks.text.seq2seq, lstmkit.tasks.text.classification\n"
        "import lstmkit.tasks.text.language, lstmkit.tasks.timeseries.forecasting\n"
        "import lstmkit.tasks.timeseries.anomaly.detector\n"
        "loaded = [m for m in sys.modules if m == 'onnx' or m.endswith('.onnx')]\n"
        "loaded += [m for m in sys.modules if m.startswith(('lstmkit.export', 'lstmkit.nn.onnx_graph'))]\n"
        "print(sorted(loaded))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
