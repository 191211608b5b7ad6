"""SequenceRegressor / SequenceClassifier: fit, predict, score, save / load, errors."""

import warnings

import numpy as np
import pytest

import lstmkit


def _sine(n=256, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 2 * np.pi, size=(n, 1)) + np.arange(10)[None] * 0.3
    return np.sin(t)[..., None].astype(np.float32), np.sin(t[:, -1] + 0.3)


def test_keras_example_three_lines_learns():
    X, y = _sine()
    model = lstmkit.SequenceRegressor(hidden_size=50, epochs=10, batch_size=16, progress=False).fit(X, y)
    assert model.predict(X).shape == (256,)
    assert model.score(X, y) > 0.95  # next value of a sine from the last ten: nearly exact


def test_regressor_is_repeatable_and_round_trips(tmp_path):
    X, y = _sine(64)
    a = lstmkit.SequenceRegressor(hidden_size=8, epochs=2, progress=False).fit(X, y)
    b = lstmkit.SequenceRegressor(hidden_size=8, epochs=2, progress=False).fit(X, y)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    a.save(tmp_path / "run")
    loaded = lstmkit.load(tmp_path / "run")
    assert isinstance(loaded, lstmkit.SequenceRegressor)
    np.testing.assert_array_equal(loaded.predict(X), a.predict(X))
    assert {p.name for p in (tmp_path / "run").iterdir()} >= {"config.json", "model.safetensors"}


def test_regressor_multi_output_and_2d_input():
    X, y = _sine(64)
    Y = np.stack([y, -y], axis=1)
    model = lstmkit.SequenceRegressor(hidden_size=8, epochs=1, progress=False).fit(X[..., 0], Y)
    assert model.predict(X[..., 0]).shape == (64, 2)


def test_classifier_labels_probabilities_and_accuracy(tmp_path):
    X, y = _sine(256)
    labels = np.where(y > 0, "up", "down")
    clf = lstmkit.SequenceClassifier(hidden_size=16, epochs=8, lr=1e-2, progress=False).fit(X, labels)
    proba = clf.predict_proba(X)
    assert proba.shape == (256, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert set(clf.predict(X)) <= {"up", "down"}
    assert clf.score(X, labels) > 0.9
    clf.save(tmp_path / "clf")
    again = lstmkit.load(tmp_path / "clf")
    assert list(again.classes_) == ["down", "up"]
    np.testing.assert_array_equal(again.predict(X), clf.predict(X))


def test_early_stopping_with_validation_split():
    X, _ = _sine(128)
    noise = np.random.default_rng(1).normal(size=128)  # nothing to learn: validation loss soon stops improving
    model = lstmkit.SequenceRegressor(
        hidden_size=32, epochs=50, validation_split=0.25, early_stopping_patience=2, lr=0.05, progress=False
    ).fit(X, noise)
    assert len(model.history_) < 50
    assert "val_loss" in model.history_[0]


@pytest.mark.parametrize(
    ("X", "y", "match"),
    [
        (np.zeros((4, 3, 2, 1)), np.zeros(4), "shaped"),
        (np.zeros((4, 0, 1)), np.zeros(4), "no samples or no time steps"),
        (np.full((4, 3, 1), np.nan), np.zeros(4), "NaN"),
        (np.zeros((4, 3, 1)), np.zeros(5), "N = 4"),
    ],
)
def test_regressor_bad_input(X, y, match):
    with pytest.raises(ValueError, match=match):
        lstmkit.SequenceRegressor(progress=False).fit(X, y)


def test_predict_before_fit_and_wrong_features():
    from sklearn.exceptions import NotFittedError

    for method in ("predict", "score"):  # scikit-learn's error class (a ValueError and an AttributeError)
        with pytest.raises(NotFittedError, match="not fitted"):
            getattr(lstmkit.SequenceRegressor(), method)(*[np.zeros((2, 3, 1)), np.zeros(2)][: 1 + (method == "score")])
    X, y = _sine(32)
    model = lstmkit.SequenceRegressor(hidden_size=4, epochs=1, progress=False).fit(X, y)
    with pytest.raises(ValueError, match="fitted on 1"):
        model.predict(np.zeros((2, 10, 3)))
    with pytest.raises(ValueError, match="one class only"):
        lstmkit.SequenceClassifier(progress=False).fit(X, np.zeros(32))


def test_fit_resumes_after_a_crash_to_the_same_weights(tmp_path, monkeypatch):
    import torch

    from lstmkit.tasks.sequence.inputs import ShuffledBatches

    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 8, 2)).astype(np.float32)
    y = X[:, :, 0].sum(1)
    params = dict(hidden_size=8, epochs=3, batch_size=16, seed=3, progress=False)
    clean = lstmkit.SequenceRegressor(**params).fit(X, y, run_dir=tmp_path / "clean")

    real_iter, seen = ShuffledBatches.__iter__, {"epochs": 0}

    def crashing(self):
        seen["epochs"] += 1
        for i, batch in enumerate(real_iter(self)):
            if seen["epochs"] == 2 and i == 2:
                raise KeyboardInterrupt("simulated crash")
            yield batch

    with monkeypatch.context() as m:
        m.setattr(ShuffledBatches, "__iter__", crashing)
        with pytest.raises(KeyboardInterrupt):
            lstmkit.SequenceRegressor(**params).fit(X, y, run_dir=tmp_path / "cut")
    resumed = lstmkit.SequenceRegressor(**params).fit(X, y, run_dir=tmp_path / "cut", resume=True)
    a, b = clean.model_.state_dict(), resumed.model_.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_runs_saved_before_pooling_and_normalisation_still_load(tmp_path):
    import json

    X, y = _sine(32)
    labels = np.where(y > 0, "up", "down")
    clf = lstmkit.SequenceClassifier(hidden_size=4, epochs=1, normalize=False, progress=False).fit(X, labels)
    clf.save(tmp_path / "old")
    path = tmp_path / "old" / "config.json"
    payload = json.loads(path.read_text())
    for key in ("pooling", "normalize", "class_weight"):  # what a run written before these options holds
        del payload["config"]["estimator"][key]
    for key in ("pooling", "attention_size"):
        del payload["config"]["model"][key]
    path.write_text(json.dumps(payload))
    old = lstmkit.load(tmp_path / "old")
    assert old.normalize is False and old.scaler_ is None and old.pooling == "last"
    np.testing.assert_array_equal(old.predict_proba(X), clf.predict_proba(X))


def test_regressor_takes_sequences_of_different_lengths():
    rng = np.random.default_rng(0)
    X = [rng.normal(size=(n, 2)).astype(np.float32) for n in (3, 7, 5, 9)]
    y = [x[:, 0].sum() for x in X]
    model = lstmkit.SequenceRegressor(hidden_size=4, epochs=1, progress=False).fit(X, y)
    pred = model.predict(X)
    assert pred.shape == (4,)
    np.testing.assert_allclose(pred[1], model.predict([X[1]])[0], rtol=1e-5)  # the padded batch == alone
    with pytest.raises(ValueError, match=r"X\[1\] contains NaN"):
        model.predict([X[0], np.full((4, 2), np.nan)])


def test_head_dropout_and_weight_decay_default_off_are_saved_and_old_runs_load(tmp_path):
    import json

    X, y = _sine(32)
    labels = np.where(y > 0, "up", "down")
    clf = lstmkit.SequenceClassifier(hidden_size=4, epochs=1, progress=False)
    assert clf.head_dropout == 0.0 and clf.weight_decay == 0.0  # the behaviour before these options existed
    clf = lstmkit.SequenceClassifier(
        hidden_size=4, epochs=2, head_dropout=0.5, optimizer="adamw", weight_decay=0.1, progress=False
    ).fit(X, labels)
    clf.save(tmp_path / "new")
    saved = json.loads((tmp_path / "new" / "config.json").read_text())["config"]
    assert saved["estimator"]["head_dropout"] == 0.5 and saved["estimator"]["weight_decay"] == 0.1
    assert saved["model"]["head_dropout"] == 0.5
    again = lstmkit.load(tmp_path / "new")
    assert again.head_dropout == 0.5 and again.weight_decay == 0.1 and again.optimizer == "adamw"
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))  # eval mode: no dropout

    plain = lstmkit.SequenceClassifier(hidden_size=4, epochs=1, progress=False).fit(X, labels)
    plain.save(tmp_path / "old")
    path = tmp_path / "old" / "config.json"
    payload = json.loads(path.read_text())
    del payload["config"]["estimator"]["head_dropout"], payload["config"]["estimator"]["weight_decay"]
    del payload["config"]["model"]["head_dropout"]  # what a run written before these options holds
    path.write_text(json.dumps(payload))
    old = lstmkit.load(tmp_path / "old")
    assert old.head_dropout == 0.0 and old.weight_decay == 0.0
    np.testing.assert_array_equal(old.predict_proba(X), plain.predict_proba(X))


def test_head_dropout_acts_on_the_pooled_vector_in_training_only():
    import torch

    from lstmkit.tasks.sequence.model import ModelConfig, SequenceModel

    torch.manual_seed(0)
    model = SequenceModel(ModelConfig(input_size=2, output_size=3, hidden_size=8, head_dropout=0.5))
    reference = SequenceModel(ModelConfig(input_size=2, output_size=3, hidden_size=8))
    assert model.state_dict().keys() == reference.state_dict().keys()  # the option adds no parameters
    reference.load_state_dict(model.state_dict())
    x = torch.randn(5, 7, 2)
    model.eval(), reference.eval()
    torch.testing.assert_close(model(x)[0], reference(x)[0], rtol=0, atol=0)
    model.train()
    h_n = model.core(x)[1][0]  # (L*D, B, S)
    torch.manual_seed(1)
    dropped = model(x)[0]  # (B, O)
    torch.manual_seed(1)
    by_hand = model.head(torch.nn.functional.dropout(h_n[-1], 0.5, training=True))
    torch.testing.assert_close(dropped, by_hand)
    with pytest.raises(ValueError, match="head_dropout must be in"):
        ModelConfig(input_size=1, output_size=1, head_dropout=1.0)
    with pytest.raises(ValueError, match="head_dropout must be in"):  # checked at fit, as scikit-learn does
        lstmkit.SequenceClassifier(head_dropout=-0.1).fit(np.zeros((4, 3, 1)), ["a", "b"] * 2)


def test_weight_decay_reaches_the_optimizer_and_shrinks_the_weights():
    X, y = _sine(64)
    labels = np.where(y > 0, "up", "down")

    def norm(weight_decay):
        clf = lstmkit.SequenceClassifier(
            hidden_size=8, epochs=5, lr=1e-2, optimizer="adamw", weight_decay=weight_decay, progress=False
        ).fit(X, labels)
        return float(sum((p.detach() ** 2).sum() for p in clf.model_.parameters()))

    assert norm(5.0) < 0.8 * norm(0.0)
    with pytest.raises(ValueError, match="weight_decay must be finite and >= 0"):
        lstmkit.SequenceClassifier(weight_decay=-1.0).fit(X, labels)


def test_a_diverging_fit_stops_with_one_sentence_naming_the_learning_rate():
    """Issue 18: lr=1e9 gave a loss of 1.2e10 and predictions of -2.4e9 without a word."""
    from lstmkit.train import DivergenceError

    X = np.random.default_rng(0).normal(size=(64, 10, 1)).astype(np.float32)
    with pytest.raises(DivergenceError, match=r"Training diverged at step \d+ .* with learning rate 1e9\. Try a learn"):
        lstmkit.SequenceRegressor(hidden_size=8, epochs=3, lr=1e9, progress=False).fit(X, X.sum(1)[:, 0])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_network_too_large_for_the_machine_is_refused_naming_its_size(cell):
    X = np.zeros((8, 5, 2), dtype=np.float32)
    with pytest.raises(ValueError, match=r"hidden size 100,000,000 would hold .* more than this machine's memory"):
        lstmkit.SequenceRegressor(hidden_size=10**8, cell=cell, epochs=1, progress=False).fit(X, X.sum((1, 2)))


def test_the_flat_parameters_build_the_task_config_whose_defaults_the_signature_reads():
    import inspect

    from lstmkit.tasks.sequence.config import CLASSIFIER_MIN_STEPS, SequenceConfig, SequenceNet, SequenceTrain

    cfg = lstmkit.SequenceRegressor(hidden_size=8, lr=3e-3, epochs=2, pooling="mean", validation_split=0.1).config()
    assert isinstance(cfg, SequenceConfig) and isinstance(cfg.train, SequenceTrain)
    assert (cfg.net.hidden_size, cfg.net.pooling, cfg.train.lr, cfg.train.epochs) == (8, "mean", 3e-3, 2)
    assert cfg.validation_split == 0.1 and cfg.train.clip_grad_norm is None
    signature = inspect.signature(lstmkit.SequenceRegressor).parameters
    assert signature["hidden_size"].default == SequenceNet().hidden_size
    assert signature["epochs"].default == SequenceTrain().epochs == 10
    classifier = lstmkit.SequenceClassifier().config().train
    assert (classifier.epochs, classifier.min_steps) == (None, CLASSIFIER_MIN_STEPS)  # steps, not epochs
    assert SequenceTrain().min_steps == 0  # the regressor trains by epochs, as before
    with pytest.raises(ValueError, match="lr"):
        lstmkit.SequenceRegressor(lr=-1.0).config()


# ---- issue 19: every training has a time budget, and trains on the device asked for ------------------------------


def test_the_time_budget_is_a_parameter_with_the_configs_default_and_stops_a_fit(monkeypatch):
    import itertools
    import time

    from lstmkit.tasks.sequence.config import SequenceTrain

    for cls in (lstmkit.SequenceRegressor, lstmkit.SequenceClassifier):
        assert cls().max_minutes == SequenceTrain().max_minutes == 30.0 and cls().device == SequenceTrain().device
    X, y = _sine(64)
    est = lstmkit.SequenceRegressor(hidden_size=4, epochs=50, batch_size=4, max_minutes=0.5, progress=False)
    assert est.config().train.max_minutes == 0.5 and est.set_params(max_minutes=None).config().train.max_minutes is None
    clock = itertools.count(0, 10)  # every reading of the clock is 10 s after the one before: 30 s is a few batches
    monkeypatch.setattr(time, "perf_counter", lambda: float(next(clock)))
    assert len(est.fit(X, y).history_) == 50  # None: no budget, every epoch runs
    stopped = est.set_params(max_minutes=0.5).fit(X, y)
    assert len(stopped.history_) == 1 and stopped.history_[0]["step"] < 16  # stopped inside the first of 16 batches
    assert stopped.predict(X).shape == (64,)  # the weights it had at the budget are the model
    with pytest.raises(ValueError, match="max_minutes must be a positive number of minutes"):
        lstmkit.SequenceRegressor(max_minutes=0, progress=False).fit(X, y)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="the machine has a GPU")
def test_device_cuda_without_a_gpu_is_one_sentence_at_fit_and_auto_is_the_cpu(tmp_path):
    X, y = _sine(32)
    est = lstmkit.SequenceClassifier(hidden_size=4, epochs=2, device="cuda", progress=False)  # stored, not checked
    with pytest.raises(ValueError, match=r"^device='cuda' was asked for, but PyTorch sees no CUDA GPU here\."):
        est.fit(X, y > 0, run_dir=tmp_path / "run")
    assert not hasattr(est, "model_") and not (tmp_path / "run").exists()  # refused before any work
    with pytest.raises(ValueError, match="device: expected one of 'cpu', 'cuda', 'auto', got 'tpu'"):
        est.set_params(device="tpu").fit(X, y > 0)
    auto = est.set_params(device="auto").fit(X, y > 0)
    cpu = lstmkit.SequenceClassifier(hidden_size=4, epochs=2, progress=False).fit(X, y > 0)
    np.testing.assert_array_equal(auto.predict_proba(X), cpu.predict_proba(X))


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU")
def test_device_cuda_trains_on_the_gpu_and_the_fitted_model_is_on_the_cpu(tmp_path):
    import torch

    X, y = _sine(64)
    seen = []
    params = dict(hidden_size=8, epochs=2, class_weight="balanced", pooling="attention", progress=False)
    gpu = lstmkit.SequenceClassifier(device="cuda", **params)
    real_loss = gpu._loss
    gpu._loss = lambda pred, target: seen.append(pred.device.type) or real_loss(pred, target)
    gpu.fit(X, y > 0, run_dir=tmp_path / "run")
    assert set(seen) == {"cuda"} and {p.device.type for p in gpu.model_.parameters()} == {"cpu"}
    cpu = lstmkit.SequenceClassifier(**params).fit(X, y > 0)
    np.testing.assert_allclose(gpu.predict_proba(X), cpu.predict_proba(X), atol=1e-3)  # same seed, same model
    again = lstmkit.load(tmp_path / "run")
    assert again.device == "cuda" and torch.equal(
        torch.from_numpy(again.predict_proba(X)), torch.from_numpy(gpu.predict_proba(X))
    )


def test_classify_train_passes_the_budget_and_the_device_to_the_saved_config(tmp_path, capsys):
    import json

    import pandas as pd

    from lstmkit.cli import main

    rng = np.random.default_rng(0)
    rows = [
        {"id": i, "a": v, "label": "rise" if i % 2 else "fall", "split": "train" if i < 8 else "test"}
        for i in range(12)
        for v in np.linspace(-1, 1, 6) * (1 if i % 2 else -1) + 0.1 * rng.normal(size=6)
    ]
    csv = tmp_path / "series.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    argv = ["classify", "train", "--csv", str(csv), "--split", "split", "--epochs", "1", "--hidden-size", "4"]
    assert main([*argv, "--max-minutes", "2.5", "--device", "auto", "--out", str(tmp_path / "r"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["task"] == "sequence_classifier"
    saved = json.loads((tmp_path / "r" / "config.json").read_text())["config"]
    assert (saved["estimator"]["max_minutes"], saved["estimator"]["device"]) == (2.5, "auto")
    assert (saved["data"]["train"]["max_minutes"], saved["data"]["train"]["device"]) == (2.5, "auto")
    assert main([*argv, "--set", "train.max_minutes=0.25", "--out", str(tmp_path / "s")]) == 0
    capsys.readouterr()
    assert json.loads((tmp_path / "s" / "config.json").read_text())["config"]["estimator"]["max_minutes"] == 0.25
    assert main([*argv, "--out", str(tmp_path / "d")]) == 0  # nothing given: the ClassifyTrain section's budget
    capsys.readouterr()
    assert json.loads((tmp_path / "d" / "config.json").read_text())["config"]["estimator"]["max_minutes"] == 5.0
    if not __import__("torch").cuda.is_available():
        assert main([*argv, "--device", "cuda", "--out", str(tmp_path / "c")]) == 2
        message = " ".join(capsys.readouterr().err.split())
        assert "PyTorch sees no CUDA GPU" in message and "Traceback" not in message and len(message) < 300
        assert not (tmp_path / "c").exists()


def test_a_classifier_that_stays_near_chance_on_its_training_data_says_so():
    from lstmkit.tasks.sequence.estimators import UnderfitWarning

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 6, 1)).astype(np.float32)
    y = np.array(["a", "b"] * 20)
    stuck = lstmkit.SequenceClassifier(hidden_size=4, epochs=1, lr=1e-6, progress=False)
    with pytest.warns(UnderfitWarning, match=r"training accuracy 0\.\d+ stayed near chance .* scores 0\.500"):
        stuck.fit(X, y)
    assert len(stuck.fit_warnings_) == 1 and "min_steps, or epochs" in stuck.fit_warnings_[0]
    X_easy = np.concatenate([rng.normal(-2, 0.1, (20, 6, 1)), rng.normal(2, 0.1, (20, 6, 1))]).astype(np.float32)
    y_easy = np.array(["a"] * 20 + ["b"] * 20)
    fitted = lstmkit.SequenceClassifier(hidden_size=8, epochs=30, lr=1e-2, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnderfitWarning)
        fitted.fit(X_easy, y_easy)
    assert fitted.fit_warnings_ == [] and fitted.score(X_easy, y_easy) == 1.0
