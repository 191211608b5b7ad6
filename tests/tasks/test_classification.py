"""Series classification: pooling over valid steps only, attention weights, class weights, no leakage of the
normalisation, save / load, learning a separable problem, the table reader's one-sentence errors, 1-NN Euclidean."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

import lstmkit
from lstmkit.tasks.sequence.estimators import classification_scores
from lstmkit.tasks.sequence.model import ModelConfig, SequenceModel
from lstmkit.tasks.timeseries.classification import ClassifyConfig, one_nn_euclidean, read_series, train_run

POOLINGS = ("last", "mean", "max", "attention")


def _ragged(n=24, seed=0, channels=2):
    """Two classes of different lengths: class "up" a rising ramp plus noise, class "down" a falling one."""
    rng = np.random.default_rng(seed)
    X, y = [], []
    for i in range(n):
        length = int(rng.integers(6, 20))
        label = "up" if i % 2 == 0 else "down"
        ramp = np.linspace(-1, 1, length) * (1 if label == "up" else -1)
        X.append((ramp[:, None] + 0.3 * rng.normal(size=(length, channels))).astype(np.float32))
        y.append(label)
    return X, np.array(y)


def _padded(seqs, fill):
    T = max(len(s) for s in seqs)
    x = torch.full((len(seqs), T, seqs[0].shape[1]), fill)
    for i, s in enumerate(seqs):
        x[i, : len(s)] = torch.from_numpy(s)
    return x, torch.tensor([len(s) for s in seqs])


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("pooling", POOLINGS)
def test_padding_changes_nothing(pooling, bidirectional):
    torch.manual_seed(0)
    model = SequenceModel(ModelConfig(input_size=2, output_size=3, hidden_size=8, bidirectional=bidirectional,
                                      pooling=pooling)).eval()  # fmt: skip
    seqs, _ = _ragged(5)
    x, lengths = _padded(seqs, fill=1e3)  # garbage past each end: it must not reach the output
    with torch.no_grad():
        batch = model(x, None, lengths)[0]  # (B, K)
        alone = torch.cat([model(torch.from_numpy(s)[None])[0] for s in seqs])  # (B, K)
    torch.testing.assert_close(batch, alone, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_attention_weights_sum_to_one_and_are_zero_on_padding(bidirectional):
    torch.manual_seed(0)
    model = SequenceModel(ModelConfig(input_size=2, output_size=2, hidden_size=8, bidirectional=bidirectional,
                                      pooling="attention"))  # fmt: skip
    seqs, _ = _ragged(6)
    x, lengths = _padded(seqs, fill=0.0)
    w = model.attention_weights(x, lengths)  # (B, T)
    assert w.shape == x.shape[:2]
    torch.testing.assert_close(w.sum(1), torch.ones(len(seqs)))
    pad = torch.arange(x.shape[1])[None, :] >= lengths[:, None]
    assert torch.all(w[pad] == 0) and torch.all(w[~pad] > 0)
    with pytest.raises(ValueError, match="no attention weights"):
        SequenceModel(ModelConfig(input_size=2, output_size=2)).attention_weights(x, lengths)


def test_classifier_attention_weights_from_the_estimator():
    X, y = _ragged(12)
    clf = lstmkit.SequenceClassifier(hidden_size=8, epochs=2, pooling="attention", progress=False).fit(X, y)
    w = clf.predict_attention(X)
    assert w.shape == (12, max(len(x) for x in X))
    np.testing.assert_allclose(w.sum(1), 1.0, rtol=1e-5)
    for row, x in zip(w, X, strict=True):
        assert np.all(row[len(x) :] == 0)
    with pytest.raises(ValueError, match="pooling='attention'"):
        lstmkit.SequenceClassifier(hidden_size=4, epochs=1, progress=False).fit(X, y).predict_attention(X)


def test_pooling_config_defaults_and_validation():
    old = {"input_size": 3, "output_size": 2, "hidden_size": 4}  # a config saved before pooling existed
    assert ModelConfig.from_dict(old).pooling == "last"
    with pytest.raises(ValueError, match="readout='all'"):
        ModelConfig(input_size=1, output_size=1, readout="all", pooling="mean")
    X, y = _ragged(8)
    with pytest.raises(ValueError, match="pooling must be one of"):  # checked at fit, as scikit-learn does
        lstmkit.SequenceClassifier(pooling="sum").fit(X, y)


def test_class_weights_change_the_loss_as_defined():
    X, _ = _ragged(12)
    y = np.array(["a"] * 9 + ["b"] * 3)  # imbalanced 9:3
    clf = lstmkit.SequenceClassifier(hidden_size=4, epochs=1, class_weight="balanced", progress=False).fit(X, y)
    np.testing.assert_allclose(clf.class_weights_, [12 / (2 * 9), 12 / (2 * 3)])  # N / (K * N_k)
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.2], [-1.0, 1.0]])
    target = torch.tensor([0, 1, 1])
    w = torch.tensor(clf.class_weights_, dtype=torch.float32)[target]
    per_sample = F.cross_entropy(logits, target, reduction="none")
    expected = (w * per_sample).sum() / w.sum()  # sum_i w[y_i] CE_i / sum_i w[y_i]
    torch.testing.assert_close(clf._loss(logits, target), expected)
    assert not torch.isclose(clf._loss(logits, target), per_sample.mean())

    explicit = lstmkit.SequenceClassifier(hidden_size=4, epochs=1, class_weight={"a": 1.0, "b": 5.0}, progress=False)
    np.testing.assert_allclose(explicit.fit(X, y).class_weights_, [1.0, 5.0])
    with pytest.raises(ValueError, match="missing \\['b'\\]"):
        lstmkit.SequenceClassifier(hidden_size=4, epochs=1, class_weight={"a": 1.0}, progress=False).fit(X, y)
    with pytest.raises(ValueError, match="class_weight must be None"):
        lstmkit.SequenceClassifier(class_weight="auto").fit(X, y)


def test_normalisation_is_fitted_on_training_data_only(tmp_path):
    X, y = _ragged(20)
    clf = lstmkit.SequenceClassifier(hidden_size=4, epochs=1, progress=False).fit(X, y)
    steps = np.concatenate(X)  # (sum T_i, C)
    np.testing.assert_allclose(clf.scaler_[0], steps.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(clf.scaler_[1], steps.std(0), rtol=1e-5)
    # predicting never refits: a sequence's prediction is the same alone or beside extreme ones
    wild = [x * 1000 + 50 for x in X[:3]]
    np.testing.assert_allclose(clf.predict_proba([X[5]] + wild)[0], clf.predict_proba([X[5]])[0], rtol=1e-5)
    # with a validation split the scaler sees the training rows only
    held = lstmkit.SequenceClassifier(hidden_size=4, epochs=1, validation_split=0.25, progress=False)
    targets, _ = held._prepare_targets(y, len(y))
    val_idx, train_idx = held._split(targets, 5)  # what fit draws: stratified, seeded
    held.fit(X, y)
    rows = np.concatenate([X[i] for i in train_idx.tolist()])
    np.testing.assert_allclose(held.scaler_[0], rows.mean(0), rtol=1e-5, atol=1e-6)
    assert len(val_idx) == 4 and sorted(y[val_idx.numpy()].tolist()) == ["down", "down", "up", "up"]


def test_train_run_scaler_ignores_the_test_series(tmp_path):
    table = _table()
    changed = table.copy()
    test_rows = changed["split"] == "test"
    changed.loc[test_rows, "v"] = changed.loc[test_rows, "v"] * 100 + 7
    cfg = ClassifyConfig.from_dict({"step": "t", "split": "split", "hidden_size": 4, "epochs": 1, "progress": False})
    train_run(table, cfg, tmp_path / "a")
    train_run(changed, cfg, tmp_path / "b")
    norm = [json.loads((tmp_path / r / "config.json").read_text())["config"]["normalization"] for r in "ab"]
    assert norm[0] == norm[1]


def test_save_load_round_trip_gives_identical_predictions(tmp_path):
    X, y = _ragged(16)
    clf = lstmkit.SequenceClassifier(hidden_size=6, epochs=2, pooling="attention", bidirectional=True,
                                     class_weight="balanced", progress=False).fit(X, y)  # fmt: skip
    clf.save(tmp_path / "clf")
    again = lstmkit.load(tmp_path / "clf")
    assert isinstance(again, lstmkit.SequenceClassifier) and again.pooling == "attention"
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(again.predict_attention(X), clf.predict_attention(X))
    np.testing.assert_array_equal(again.scaler_[1], clf.scaler_[1])


@pytest.mark.parametrize("pooling", POOLINGS)
def test_learns_a_separable_problem_of_variable_length(pooling):
    X, y = _ragged(64)
    clf = lstmkit.SequenceClassifier(hidden_size=16, epochs=15, lr=1e-2, batch_size=16, pooling=pooling,
                                     progress=False).fit(X, y)  # fmt: skip
    X_test, y_test = _ragged(40, seed=1)
    assert clf.score(X_test, y_test) >= 0.9


def test_evaluate_scores_against_hand_computed_values():
    classes = np.array(["a", "b", "c"])
    y_true = np.array(["a", "a", "a", "b", "b", "c"])
    y_pred = np.array(["a", "a", "b", "b", "c", "c"])
    s = classification_scores(y_true, y_pred, classes)
    assert s["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert s["accuracy"] == pytest.approx(4 / 6)
    assert s["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    f1 = [2 * 1 * (2 / 3) / (1 + 2 / 3), 0.5, 2 * 0.5 * 1 / 1.5]  # precision a 1, b 1/2, c 1/2
    assert s["macro_f1"] == pytest.approx(np.mean(f1))
    X, y = _ragged(10)
    clf = lstmkit.SequenceClassifier(hidden_size=4, epochs=1, progress=False).fit(X, y)
    result = clf.evaluate(X, y)
    assert set(result) >= {"accuracy", "balanced_accuracy", "macro_f1", "confusion_matrix"}
    assert np.sum(result["confusion_matrix"]) == 10
    with pytest.raises(ValueError, match="never saw in training"):
        clf.evaluate(X, np.array(["up"] * 9 + ["sideways"]))


def test_one_nn_euclidean_by_hand_and_on_gunpoint():
    X_train = np.array([[[0.0], [0.0]], [[5.0], [5.0]]])
    pred, how = one_nn_euclidean(X_train, np.array(["low", "high"]), np.array([[[1.0], [0.5]], [[4.0], [6.0]]]))
    assert pred.tolist() == ["low", "high"] and how == "equal lengths"
    pred, how = one_nn_euclidean([np.zeros((2, 1)), np.ones((4, 1))], np.array(["0", "1"]), [np.ones((3, 1))])
    assert pred.tolist() == ["1"] and "resampled to 4 steps" in how
    pytest.importorskip("aeon")
    from lstmkit.datasets import load_classification

    (Xa, ya), (Xb, yb) = load_classification("gunpoint", "train"), load_classification("gunpoint", "test")
    assert (one_nn_euclidean(Xa, ya, Xb)[0] == yb).mean() == pytest.approx(0.913, abs=5e-4)  # UCR's published ED


def _table(n=12, length=8, seed=0):
    """Long form: id, t, v, w, label, split; the first 8 series train, the rest test."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = "up" if i % 2 == 0 else "down"
        ramp = np.linspace(-1, 1, length) * (1 if label == "up" else -1)
        for t in range(length):
            rows.append({"id": f"s{i}", "t": t, "v": ramp[t] + 0.1 * rng.normal(), "w": rng.normal(), "label": label,
                         "split": "train" if i < 8 else "test"})  # fmt: skip
    return pd.DataFrame(rows)


def test_read_series_orders_by_step_and_infers_features():
    table = _table().sample(frac=1.0, random_state=0)  # rows shuffled: the step column restores the order
    series = read_series(table, ClassifyConfig(step="t", split="split"))
    assert series.features == ["v", "w"] and series.X.shape == (12, 8, 2)
    first = series.ids.tolist().index("s0")
    ordered = _table().query("id == 's0'").sort_values("t")[["v", "w"]].to_numpy(dtype=np.float32)
    np.testing.assert_array_equal(series.X[first], ordered)
    assert sorted(set(series.split)) == ["test", "train"]
    assert read_series(table, ClassifyConfig(step="t", split="split", features=("w",))).X.shape == (12, 8, 1)


def _broken(kind):
    table = _table()
    if kind == "nan":
        table.loc[5, "v"] = np.nan
    elif kind == "no label":
        table.loc[table["id"] == "s3", "label"] = None
    elif kind == "two labels":
        table.loc[17, "label"] = "down"  # s2 is "up" elsewhere
    elif kind == "text feature":
        table["v"] = table["v"].astype(str)
        table.loc[4, "v"] = "n/a"
    elif kind == "split":
        table.loc[table["id"] == "s1", "split"] = "validation"
    elif kind == "repeated step":
        table.loc[1, "t"] = 0
    return table


@pytest.mark.parametrize(
    ("kind", "options", "match"),
    [
        ("ok", {"id": "series"}, "no column 'series' \\(the series id, --id\\)"),
        ("ok", {"features": ("v", "speed")}, "no column 'speed'"),
        ("text feature", {"features": ("v",)}, "Feature column 'v' must be numeric, but row 4 holds 'n/a'"),
        ("nan", {}, "Series 's0' has a missing or non-finite value in 'v' at step 5"),
        ("no label", {}, "Series 's3' has no label"),
        ("two labels", {}, "Series 's2' has more than one label"),
        ("split", {}, "Series 's1' has the split value\\(s\\) validation"),
        ("repeated step", {}, "Series 's0' has step 0 twice"),
    ],
)
def test_bad_tables_get_one_sentence(kind, options, match):
    cfg = ClassifyConfig(**{"step": "t", "split": "split", **options})
    with pytest.raises(ValueError, match=match) as info:
        read_series(_broken(kind), cfg)
    assert "\n" not in str(info.value)


def test_channels_differing_from_training_and_a_single_class(tmp_path):
    cfg = ClassifyConfig.from_dict({"step": "t", "split": "split", "hidden_size": 4, "epochs": 1, "progress": False})
    with pytest.raises(ValueError, match="channels differ \\(it lacks w\\)"):
        read_series(_table().drop(columns="w"), cfg, features=["v", "w"])
    with pytest.raises(ValueError, match="channels differ \\(it has v, w, z\\)"):
        read_series(_table().assign(z=1.0), cfg, features=["v", "w"])
    with pytest.raises(ValueError, match="single class \\('up'\\)"):
        train_run(_table().assign(label="up"), cfg, tmp_path / "one")


def test_train_run_writes_the_run_directory(tmp_path):
    cfg = ClassifyConfig.from_dict(
        {"step": "t", "split": "split", "hidden_size": 8, "epochs": 3, "pooling": "attention", "progress": False}
    )
    summary = train_run(_table(), cfg, tmp_path / "run", source="synthetic")
    assert summary["n_train"] == 8 and summary["n_test"] == 4 and "one_nn_euclidean_accuracy" in summary
    names = {p.name for p in (tmp_path / "run").iterdir()}
    assert names >= {"config.json", "model.safetensors", "metrics.csv", "confusion.png", "attention.png",
                     "predictions.csv", "result.json", "report.html"}  # fmt: skip
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["config"]
    assert saved["data"]["resolved_features"] == ["v", "w"] and saved["data"]["net"]["pooling"] == "attention"
    assert ClassifyConfig.from_dict({k: v for k, v in saved["data"].items() if k not in ("resolved_features",
                                                                                         "source")}) == cfg  # fmt: skip
    predictions = pd.read_csv(tmp_path / "run" / "predictions.csv")
    assert len(predictions) == 4 and set(predictions.columns) >= {"id", "label", "predicted", "p_up", "p_down"}
    with pytest.raises(FileExistsError, match="already holds a finished classifier"):
        train_run(_table(), cfg, tmp_path / "run")


def test_one_default_training_length_in_python_config_and_cli():
    import inspect

    from lstmkit.cli.classify import train
    from lstmkit.tasks.sequence.config import CLASSIFIER_MIN_STEPS

    params = inspect.signature(lstmkit.SequenceClassifier).parameters
    assert params["epochs"].default is None and ClassifyConfig().train.epochs is None  # steps, not epochs
    assert params["min_steps"].default == ClassifyConfig().train.min_steps == CLASSIFIER_MIN_STEPS == 300
    option = inspect.signature(train).parameters["epochs"].annotation.__metadata__[0]
    assert "(default chosen at fit" in option.help  # the CLI's --epochs shows the config's default (None: chosen)
    assert "300 optimiser steps" in train.__doc__ and "--max-minutes (default 5" in train.__doc__
    assert ClassifyConfig().train.max_minutes == 5.0
    assert ClassifyConfig().classifier().get_params() == {
        **lstmkit.SequenceClassifier().get_params(),
        "clip_grad_norm": 1.0,
        "max_minutes": 5.0,
    }  # the config adds its own clipping and the CLI's budget, nothing else


def test_classify_config_passes_head_dropout_and_weight_decay_through():
    assert ClassifyConfig.from_dict({}).classifier().get_params()["head_dropout"] == 0.0  # old configs: unchanged
    clf = ClassifyConfig.from_dict({"head_dropout": 0.3, "optimizer": "adamw", "weight_decay": 0.1}).classifier()
    assert (clf.head_dropout, clf.optimizer, clf.weight_decay) == (0.3, "adamw", 0.1)
    with pytest.raises(ValueError, match="head_dropout must be in"):
        ClassifyConfig.from_dict({"head_dropout": 1.5})
    with pytest.raises(ValueError, match="weight_decay must be >= 0"):
        ClassifyConfig.from_dict({"weight_decay": -0.1})


def test_classify_config_sections_old_flat_runs_and_settings_the_classifier_cannot_take():
    from lstmkit.tasks.sequence.config import SequenceNet

    cfg = ClassifyConfig()
    assert cfg.net == SequenceNet() and (cfg.train.epochs, cfg.train.clip_grad_norm, cfg.train.max_minutes) == (
        None, 1.0, 5.0)  # fmt: skip
    old = ClassifyConfig.from_dict({"step": "t", "hidden_size": 8, "pooling": "mean", "epochs": 3, "seed": 4})
    assert (old.net.hidden_size, old.net.pooling, old.train.epochs, old.train.seed) == (8, "mean", 3, 4)
    clf = old.with_overrides({"net.cell": "gru", "train.lr": "2e-3"}).classifier()
    assert (clf.cell, clf.lr, clf.hidden_size, clf.seed) == ("gru", 2e-3, 8, 4)
    with pytest.raises(ValueError, match="does not take train.schedule"):
        cfg.with_overrides({"train.schedule": "cosine"}).classifier()


# ---- LSTM-FCN: the convolutional branch (conv_branch=True) -------------------------------------------------------


def _fcn(bidirectional=False, pooling="last", **change):
    torch.manual_seed(0)
    config = dict(input_size=2, output_size=3, hidden_size=8, bidirectional=bidirectional, pooling=pooling,
                  conv_branch=True, conv_channels=(4, 6), conv_kernels=(3, 2))  # fmt: skip
    return SequenceModel(ModelConfig(**{**config, **change}))


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")  # torch's own, in the by-hand check
@pytest.mark.parametrize("bidirectional", [False, True])
def test_conv_branch_shapes_and_what_the_head_reads(bidirectional):
    model = _fcn(bidirectional)
    D = 2 if bidirectional else 1
    x = torch.randn(5, 9, 2)  # (B, T, I)
    assert model.conv_features(x).shape == (5, 6)  # (B, C), C = conv_channels[-1]
    assert model.head.in_features == D * 8 + 6  # [pooled (B, D*S), conv (B, C)]
    assert [tuple(c.weight.shape) for c in model.conv] == [(4, 2, 3), (6, 4, 2)]  # (C_out, C_in, kernel)
    y = model(x)[0]
    assert y.shape == (5, 3)
    y.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.conv.parameters() if p.dim() > 1)
    # the branch's vector, by hand: Conv1d with torch's padding="same" -> BatchNorm (batch statistics) -> ReLU, mean
    h = x.transpose(1, 2)  # (B, I, T)
    for conv, norm in zip(model.conv, model.conv_norm, strict=True):
        h = torch.relu(F.batch_norm(F.conv1d(h, conv.weight, conv.bias, padding="same"), None, None, norm.weight,
                                    norm.bias, training=True))  # fmt: skip
    torch.testing.assert_close(model.conv_features(x), h.mean(2))
    model.eval()
    pooled = model.core(x)[1][0][-D:].transpose(0, 1).reshape(5, -1)  # (B, D*S), pooling "last"
    expected = model.head(torch.cat([pooled, model.conv_features(x)], dim=1))
    torch.testing.assert_close(model(x)[0], expected)


@pytest.mark.parametrize(("pooling", "bidirectional"), [("last", False), ("last", True), ("attention", False)])
def test_conv_branch_padding_changes_nothing(pooling, bidirectional):
    model = _fcn(bidirectional, pooling, conv_kernels=(8, 3)).eval()  # a kernel longer than the shortest series
    seqs, _ = _ragged(6)
    x, lengths = _padded(seqs, fill=1e3)  # garbage past each end: it must not reach the output
    with torch.no_grad():
        batch = model(x, None, lengths)[0]  # (B, K)
        alone = torch.cat([model(torch.from_numpy(s)[None])[0] for s in seqs])  # (B, K)
    torch.testing.assert_close(batch, alone, rtol=1e-5, atol=1e-5)


def test_conv_branch_batch_statistics_ignore_padding_in_training():
    model = _fcn()
    x = torch.randn(4, 7, 2)
    padded = torch.cat([x, torch.full((4, 5, 2), 1e3)], dim=1)  # (B, T + 5, I), every series 7 steps long
    lengths = torch.full((4,), 7)
    features = model.conv_features(x)  # training mode: batch statistics
    running = [n.running_mean.clone() for n in model.conv_norm]
    for n in model.conv_norm:
        n.reset_running_stats()
    torch.testing.assert_close(model.conv_features(padded, lengths), features)
    for n, before in zip(model.conv_norm, running, strict=True):
        torch.testing.assert_close(n.running_mean, before)


def test_conv_branch_config_defaults_old_configs_and_validation(tmp_path):
    old = {"input_size": 3, "output_size": 2, "hidden_size": 4}  # a config saved before the branch existed
    assert ModelConfig.from_dict(old).conv_branch is False
    plain = SequenceModel(ModelConfig.from_dict(old))
    assert not any(k.startswith("conv") for k in plain.state_dict())  # no parameters when off
    with pytest.raises(ValueError, match="same, non-zero length"):
        ModelConfig(input_size=1, output_size=2, conv_channels=(4, 4), conv_kernels=(3,))
    with pytest.raises(ValueError, match="at least 1"):
        ModelConfig(input_size=1, output_size=2, conv_kernels=(8, 0, 3))
    with pytest.raises(ValueError, match="readout='last'"):
        ModelConfig(input_size=1, output_size=2, readout="all", conv_branch=True)
    with pytest.raises(ValueError, match="no convolutional branch"):
        plain.conv_features(torch.zeros(1, 3, 3))

    # an estimator saved before the option existed loads as the plain model, with the same predictions
    X, y = _ragged(16)
    clf = lstmkit.SequenceClassifier(hidden_size=4, epochs=1, progress=False).fit(X, y)
    clf.save(tmp_path / "old")
    path = tmp_path / "old" / "config.json"
    payload = json.loads(path.read_text())
    del payload["config"]["estimator"]["conv_branch"]
    for key in ("conv_branch", "conv_channels", "conv_kernels"):
        del payload["config"]["model"][key]
    path.write_text(json.dumps(payload))
    again = lstmkit.load(tmp_path / "old")
    assert again.conv_branch is False and again.model_config_.conv_branch is False
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))


def test_conv_branch_learns_saves_and_loads(tmp_path):
    X, y = _ragged(64)
    clf = lstmkit.SequenceClassifier(hidden_size=8, epochs=8, lr=1e-2, batch_size=16, conv_branch=True,
                                     progress=False).fit(X, y)  # fmt: skip
    assert clf.model_config_.conv_branch and len(clf.model_.conv) == 3
    X_test, y_test = _ragged(40, seed=1)
    assert clf.score(X_test, y_test) >= 0.9
    clf.save(tmp_path / "fcn")
    saved = json.loads((tmp_path / "fcn" / "config.json").read_text())["config"]
    assert saved["estimator"]["conv_branch"] is True and saved["model"]["conv_channels"] == [128, 256, 128]
    again = lstmkit.load(tmp_path / "fcn")
    assert again.conv_branch is True
    np.testing.assert_array_equal(again.predict_proba(X_test), clf.predict_proba(X_test))
    assert ClassifyConfig.from_dict({"conv_branch": True}).classifier().conv_branch is True
    assert ClassifyConfig.from_dict({}).net.conv_branch is False


# ---- LSTM-FCN's dimension shuffle (dimension_shuffle=True) ----------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
def test_dimension_shuffle_is_a_transpose_then_the_lstm(channels):
    torch.manual_seed(0)
    T = 9
    model = SequenceModel(ModelConfig(input_size=channels, output_size=3, hidden_size=8, conv_branch=True,
                                      conv_channels=(4, 6), conv_kernels=(3, 2), dimension_shuffle=True,
                                      shuffle_length=T, pooled_dropout=0.8))  # fmt: skip
    assert model.core.input_size == T and model.head.in_features == 8 + 6  # the core reads T features per step
    x = torch.randn(5, T, channels)  # (B, T, I)
    assert model(x)[0].shape == (5, 3)
    model.eval()  # dropout off: the hand-built model below has none
    reference = torch.nn.LSTM(T, 8, batch_first=True)  # torch's own LSTM, the same weights
    reference.load_state_dict(model.core.state_dict())
    with torch.no_grad():
        _, (h_n, _) = reference(x.transpose(1, 2))  # I steps of T features: (B, I, T)
        expected = model.head(torch.cat([h_n[-1], model.conv_features(x)], dim=1))  # (B, 3)
        torch.testing.assert_close(model(x)[0], expected)
        # the convolutional branch still reads the series step by step: the same vector as without the shuffle
        plain = _fcn(input_size=channels, conv_kernels=(3, 2)).eval()
        plain.conv.load_state_dict(model.conv.state_dict())
        plain.conv_norm.load_state_dict(model.conv_norm.state_dict())
        torch.testing.assert_close(plain.conv_features(x), model.conv_features(x))


def test_dimension_shuffle_needs_the_trained_length_and_its_config():
    model = SequenceModel(ModelConfig(input_size=2, output_size=2, hidden_size=4, dimension_shuffle=True,
                                      shuffle_length=7))  # fmt: skip
    with pytest.raises(ValueError, match="needs exactly the 7 steps it was trained on, got lengths 8"):
        model(torch.zeros(3, 8, 2))
    with pytest.raises(ValueError, match=r"got lengths \[5, 7\] \(padded to 7\)"):
        model(torch.zeros(2, 7, 2), None, torch.tensor([7, 5]))
    assert model(torch.zeros(2, 7, 2), None, torch.tensor([7, 7]))[0].shape == (2, 2)  # full lengths are fine
    with pytest.raises(ValueError, match="shuffle_length = the series length"):
        ModelConfig(input_size=1, output_size=2, dimension_shuffle=True)
    with pytest.raises(ValueError, match="only with dimension_shuffle=True"):
        ModelConfig(input_size=1, output_size=2, shuffle_length=5)
    with pytest.raises(ValueError, match="readout='last'"):
        ModelConfig(input_size=1, output_size=2, readout="all", dimension_shuffle=True, shuffle_length=5)
    with pytest.raises(ValueError, match="pooled_dropout must be in"):
        ModelConfig(input_size=1, output_size=2, pooled_dropout=1.0)
    old = ModelConfig.from_dict({"input_size": 3, "output_size": 2})  # saved before the option existed
    assert old.dimension_shuffle is False and old.shuffle_length == 0 and old.pooled_dropout == 0.0


def test_dimension_shuffle_estimator_learns_saves_loads_and_refuses_ragged_series(tmp_path):
    rng = np.random.default_rng(0)
    y = np.array(["up", "down"] * 24)
    ramp = np.linspace(-1, 1, 12)[None, :] * np.where(y == "up", 1, -1)[:, None]
    X = (ramp + 0.3 * rng.normal(size=(48, 12)))[..., None].astype(np.float32)  # (N, T, 1)
    clf = lstmkit.SequenceClassifier(hidden_size=8, epochs=15, lr=1e-2, batch_size=16, conv_branch=True,
                                     dimension_shuffle=True, pooled_dropout=0.5, progress=False).fit(X, y)  # fmt: skip
    assert clf.model_config_.shuffle_length == 12 and clf.model_.core.input_size == 12
    assert clf.score(X, y) >= 0.9
    clf.save(tmp_path / "shuffle")
    saved = json.loads((tmp_path / "shuffle" / "config.json").read_text())["config"]
    assert saved["estimator"]["dimension_shuffle"] is True and saved["model"]["shuffle_length"] == 12
    again = lstmkit.load(tmp_path / "shuffle")
    assert again.dimension_shuffle is True and again.pooled_dropout == 0.5
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    ragged, labels = _ragged(8)
    with pytest.raises(ValueError, match="every series needs the same length, but X holds lengths from"):
        lstmkit.SequenceClassifier(dimension_shuffle=True, epochs=1, progress=False).fit(ragged, labels)
    with pytest.raises(ValueError, match="needs the 12 steps it was trained on, got lengths 10"):
        clf.predict(X[:, :10])
    with pytest.raises(ValueError, match="got lengths from 6 to 12"):
        clf.predict([X[0], X[1, :6]])
    reg = lstmkit.SequenceRegressor(hidden_size=4, epochs=1, dimension_shuffle=True, progress=False)
    assert reg.fit(X, X[:, -1, 0]).predict(X).shape == (48,)
    cfg = ClassifyConfig.from_dict({"dimension_shuffle": True, "pooled_dropout": 0.8}).classifier()
    assert cfg.dimension_shuffle is True and cfg.pooled_dropout == 0.8
    assert ClassifyConfig.from_dict({}).net.dimension_shuffle is False
