"""lstmkit.Predictor (issue 6): per-stream state on torch and onnxruntime, equal to the whole-series answer; int8 and
bf16 weights stay close; streams are created, reset, deleted, limited and moved in and out; one-sentence errors."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

import lstmkit  # noqa: E402
from lstmkit.inference.predictor import Predictor  # noqa: E402
from lstmkit.tasks.sequence.estimators import SequenceClassifier, SequenceRegressor  # noqa: E402
from lstmkit.tasks.text.language import LanguageModel  # noqa: E402
from lstmkit.tasks.timeseries.anomaly.detector import AnomalyDetector  # noqa: E402
from lstmkit.tasks.timeseries.forecasting import Forecaster  # noqa: E402


def series(n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = (rng.standard_normal((n, 10, 2)) * 2 + 3).astype(np.float32)
    return X, (X[:, :, 0].mean(1) > 3).astype(int)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> tuple[SequenceClassifier, str]:
    X, y = series()
    clf = SequenceClassifier(hidden_size=12, num_layers=2, epochs=3).fit(X, y)
    run = tmp_path_factory.mktemp("runs") / "clf"
    clf.save(run)
    return clf, str(run)


@pytest.mark.parametrize("runtime", ["torch", "onnxruntime", "lstmkit"])
def test_streams_carry_state_and_equal_the_whole_series(classifier, runtime) -> None:
    clf, run = classifier
    X, _ = series(4, seed=1)
    p = Predictor.load(run, runtime=runtime)
    assert p.info()["kind"] == "sequence_classifier" and p.info()["observation"] == "2 numbers per step"
    for t in range(X.shape[1]):  # two interleaved streams
        a = p.stream("a", X[0, t])
        b = p.stream("b", X[1, t])
    np.testing.assert_allclose(a, clf.predict_proba(X[:1])[0], atol=1e-5)
    np.testing.assert_allclose(b, clf.predict_proba(X[1:2])[0], atol=1e-5)
    assert sorted(p.streams()) == ["a", "b"]
    np.testing.assert_array_equal(p.predict(X), clf.predict(X))


def test_state_moves_out_and_back_in_and_reset_delete(classifier) -> None:
    clf, run = classifier
    X, _ = series(1, seed=2)
    first = Predictor.load(run)
    for x_t in X[0, :5]:
        first.stream("s", x_t)
    second = Predictor.load(run, runtime="lstmkit")  # another process, say, with the state from a store
    second.set_state("s", first.get_state("s"))
    for x_t in X[0, 5:]:
        out = second.stream("s", x_t)
    np.testing.assert_allclose(out, clf.predict_proba(X)[0], atol=1e-5)
    second.reset("s")
    assert not second.get_state("s")["h"].any()
    second.delete("s")
    with pytest.raises(KeyError, match="No stream 's'"):
        second.get_state("s")


def test_quantised_and_bf16_weights_stay_close(classifier) -> None:
    clf, run = classifier
    X, _ = series(8, seed=3)
    exact = clf.predict_proba(X)
    for runtime, weights, tol in (("onnxruntime", "int8", 0.1), ("torch", "bfloat16", 0.1)):
        p = Predictor.load(run, runtime=runtime, weights=weights)
        for t in range(X.shape[1]):
            outs = [p.stream(str(k), X[k, t]) for k in range(len(X))]
        assert np.abs(np.array(outs) - exact).max() < tol, (runtime, weights)


def test_errors_are_one_sentence(classifier, tmp_path) -> None:
    _, run = classifier
    with pytest.raises(ValueError, match="Unknown runtime 'tf'"):
        Predictor.load(run, runtime="tf")
    with pytest.raises(ValueError, match="weights='int8' runs on runtime='onnxruntime'"):
        Predictor.load(run, weights="int8")
    with pytest.raises(ValueError, match="weights='bfloat16' runs on runtime='torch'"):
        Predictor.load(run, runtime="lstmkit", weights="bfloat16")
    p = Predictor.load(run, max_streams=1)
    with pytest.raises(ValueError, match="An observation has 2 numbers"):
        p.stream("a", [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="NaN or infinite"):
        p.stream("a", [1.0, float("nan")])
    p.stream("a", [1.0, 2.0])
    with pytest.raises(ValueError, match="Too many streams: 1 open, the limit is 1"):
        p.stream("b", [1.0, 2.0])
    X, _ = series()
    bi = SequenceRegressor(hidden_size=4, epochs=1, bidirectional=True).fit(X, X[:, -1, 0])
    with pytest.raises(ValueError, match="cannot stream one observation at a time: it is bidirectional"):
        Predictor.load(bi).stream("a", [1.0, 2.0])
    with pytest.raises(FileNotFoundError):
        Predictor.load(tmp_path / "nope")


@pytest.mark.parametrize("runtime", ["torch", "onnxruntime", "lstmkit"])
def test_language_model_stream_gives_the_next_token_distribution(runtime) -> None:
    text = "".join(f"{w} the {x}.\n" for w in ("ANNA", "BEN") for x in ("sea", "sky")) * 30
    lm = LanguageModel(hidden_size=16, embedding_size=8, batch_size=4, bptt=10, epochs=1, progress=False).fit(text)
    p = lstmkit.Predictor.load(lm, runtime=runtime)
    p.stream("s", "ANNA ")
    probs = p.stream("s", "the s")  # pieces of one text, fed in order
    import torch

    with torch.no_grad():
        logits, _ = lm.net.eval()(torch.tensor([lm.tokenizer.encode("ANNA the s")]))
    np.testing.assert_allclose(probs, torch.softmax(logits[0, -1], -1).numpy(), atol=1e-5)
    assert abs(probs.sum() - 1) < 1e-5


def test_regressor_with_scaling_streams_the_same_on_every_runtime() -> None:
    X, _ = series(40, seed=4)
    X[:, :, 1] = X[:, :, 1] * 100 + 50  # far from standard: the scaling matters
    reg = SequenceRegressor(hidden_size=8, epochs=2, normalize=True).fit(X, X[:, :, 0].sum(1))
    outs = {}
    for runtime in ("torch", "onnxruntime", "lstmkit"):
        p = Predictor.load(reg, runtime=runtime)
        outs[runtime] = [p.stream("s", x_t) for x_t in X[0]][-1]
    np.testing.assert_allclose(outs["lstmkit"], outs["torch"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(outs["torch"], reg.predict(X[:1]).reshape(-1), rtol=1e-5, atol=1e-5)


def test_lstmkit_runtime_refuses_layer_norm_in_one_sentence() -> None:
    text = "to be or not to be\n" * 20
    lm = LanguageModel(hidden_size=8, embedding_size=4, batch_size=2, bptt=8, epochs=1, layer_norm=True,
                       progress=False).fit(text)  # fmt: skip
    p = Predictor.load(lm, runtime="lstmkit")
    assert "layer normalisation" in p.streaming_blocker()
    with pytest.raises(ValueError, match="cannot stream one observation at a time: layer normalisation"):
        p.stream("a", "to")
    assert Predictor.load(lm).streaming_blocker() is None  # the torch runtime streams it


def seasonal(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 10 + np.sin(2 * np.pi * t / 12) + 0.05 * rng.normal(size=n)


def test_forecaster_stream_refreshes_the_forecast_with_each_reading(tmp_path) -> None:
    import pandas as pd

    y = seasonal(150, 0)
    df = pd.DataFrame({"time": pd.date_range("2000-01-01", periods=150, freq="MS"), "y": y})
    f = Forecaster(target="y", horizon=4, season=12, epochs=5, hidden_size=8).fit(df)
    f.save(tmp_path / "f")
    p = Predictor.load(tmp_path / "f")
    info = p.info()
    assert info["horizon"] == 4 and info["quantiles"] == [0.1, 0.5, 0.9] and info["input_window"] == f.window
    outs = [p.stream("s", v) for v in y[: f.window + 3]]
    assert np.isnan(outs[f.window - 2]).all() and outs[-1].shape == (4, 3)
    expected = f.predict(df.iloc[: f.window + 3])[["q0.1", "q0.5", "q0.9"]].to_numpy()
    np.testing.assert_allclose(outs[-1], expected, rtol=1e-5)
    state = p.get_state("s")
    assert state["values"].shape == (f.window,)  # only the last window is carried
    q = Predictor.load(tmp_path / "f")
    q.set_state("s", state)
    np.testing.assert_allclose(q.stream("s", y[f.window + 3]), p.stream("s", y[f.window + 3]))
    with pytest.raises(ValueError, match="An observation is one reading"):
        p.stream("s", [1.0, 2.0])
    many = Forecaster(target="y", id="id", horizon=2, season=12, epochs=1, hidden_size=4).fit(
        pd.concat([df.assign(id="a"), df.assign(id="b")])
    )
    m = Predictor.load(many)
    for v in y[: many.window - 1]:
        m.stream("a", v)
    with pytest.raises(ValueError, match="name the stream after one of them"):
        for v in y[: many.window]:
            m.stream("c", v)
    assert len(m.get_state("c")["values"]) == many.window - 1  # the refused reading left the stream as it was
    assert m.stream("a", y[many.window - 1]).shape == (2, 3)  # a stream named after a training series
    assert "streams on runtime 'torch'" in Predictor.load(tmp_path / "f", runtime="onnxruntime").streaming_blocker()


@pytest.mark.parametrize("method", ["prediction", "reconstruction"])
def test_anomaly_stream_scores_equal_the_batch_and_survive_a_state_round_trip(method) -> None:
    det = AnomalyDetector(method=method, input_window=16, steps_ahead=2, season=12, epochs=3, hidden_size=8)
    det.fit(seasonal(300, 1))
    test = seasonal(80, 2)
    test[50] += 3.0
    p = Predictor.load(det)
    assert p.info()["delay"] == det.delay
    online = []
    for t, v in enumerate(test):
        if t == 40:  # move the stream through its arrays, as the server's store does, into a fresh predictor
            state = p.get_state("s")
            p = Predictor.load(det)
            p.set_state("s", state)
        online.append(p.stream("s", v)[0])
    online = np.asarray(online)[det.delay :]
    batch = det.score(test)[: len(test) - det.delay]
    np.testing.assert_allclose(online, batch, rtol=1e-9, atol=1e-12, equal_nan=True)
    with pytest.raises(ValueError, match="does not belong to a"):
        p.set_state("t", {"t": np.array(3)})
