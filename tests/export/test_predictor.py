"""lstmkit.Predictor (issue 6): per-stream state on torch and onnxruntime, equal to the whole-series answer; int8 and
bf16 weights stay close; streams are created, reset, deleted, limited and moved in and out; one-sentence errors."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

import lstmkit  # noqa: E402
from lstmkit.export.predictor import Predictor  # noqa: E402
from lstmkit.tasks.estimators import SequenceClassifier, SequenceRegressor  # noqa: E402
from lstmkit.tasks.language import LanguageModel  # noqa: E402


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


@pytest.mark.parametrize("runtime", ["torch", "onnxruntime"])
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
    second = Predictor.load(run, runtime="onnxruntime")  # another process, say, with the state from a store
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


@pytest.mark.parametrize("runtime", ["torch", "onnxruntime"])
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
