"""Issue 20, classification: training length in optimiser steps, and the network chosen by stratified
cross-validation on the training series (lstmkit.tasks.timeseries.classify_select)."""

import json

import numpy as np
import pandas as pd
import pytest

import lstmkit
from lstmkit.tasks.sequence.config import training_epochs
from lstmkit.tasks.timeseries.classification import ClassifyConfig, train_run
from lstmkit.tasks.timeseries.classify_select import PORTFOLIO, select_classifier, stratified_folds


def _data(n=12, length=10, seed=0):
    rng = np.random.default_rng(seed)
    y = np.array(["a", "b"] * (n // 2))
    X = rng.normal(size=(n, length, 1)).astype(np.float32)
    X[y == "b"] += 1.5  # separable by level
    return X, y


def test_training_epochs_rule():
    assert training_epochs(7, 600, 2) == 7  # epochs given: exactly those
    assert training_epochs(None, 600, 2) == 300  # 36 series at batch 32: 2 steps an epoch
    assert training_epochs(None, 600, 94) == 7  # 3,000 series: ceil(600 / 94)
    assert training_epochs(None, 5, 100) == 1  # at least one whole epoch


@pytest.mark.parametrize("n", [6, 40])
def test_a_tiny_set_trains_at_least_min_steps_optimiser_steps(n):
    X, y = _data(n)
    clf = lstmkit.SequenceClassifier(hidden_size=4, min_steps=25, batch_size=8, progress=False).fit(X, y)
    steps = clf.history_[-1]["step"]
    assert steps >= 25 and steps < 25 + -(-n // 8)  # whole epochs: under one epoch more than asked
    assert clf.epochs_ == len(clf.history_) == -(-25 // -(-n // 8))
    with pytest.raises(ValueError, match="min_steps must be >= 1"):
        lstmkit.SequenceClassifier(min_steps=0).config()


def test_stratified_folds_cover_every_series_once_and_fall_back_to_one_holdout():
    y = np.array(["a"] * 7 + ["b"] * 5 + ["c"] * 3)
    folds, how = stratified_folds(y, seed=0)
    assert len(folds) == 3 and how.startswith("3-fold")
    assert sorted(np.concatenate(folds).tolist()) == list(range(len(y)))
    for fold in folds:  # every class in every fold
        assert set(y[fold]) == {"a", "b", "c"}
    folds2, how2 = stratified_folds(np.array(["a"] * 4 + ["b"] * 2), seed=0)
    assert len(folds2) == 2 and how2.startswith("2-fold")
    single, how1 = stratified_folds(np.array(["a"] * 6 + ["b"]), seed=0)
    assert len(single) == 1 and "hold-out" in how1 and 6 not in single[0].tolist()  # "b" keeps its series
    assert stratified_folds(y, seed=1)[0][0].tolist() != folds[0].tolist()  # the seed draws them


def test_selection_table_shape_and_the_chosen_is_the_cv_best():
    X, y = _data(12)
    base = lstmkit.SequenceClassifier(hidden_size=4, epochs=2, progress=False)
    sel = select_classifier(base, X, y, max_minutes=None, seed=0)
    assert [r["candidate"] for r in sel.table] == [name for name, _ in PORTFOLIO] + ["1-NN Euclidean (baseline)"]
    assert sel.table[1]["status"] == "skipped: stands in for lstm-fcn on series of varying lengths"
    for row in sel.table:
        assert set(row) >= {"candidate", "cv_accuracy", "fold_accuracies", "steps", "seconds", "status", "chosen"}
    for row in [r for r in sel.table if r["status"] in ("ok", "baseline")]:
        assert len(row["fold_accuracies"]) == 3 and 0.0 <= row["cv_accuracy"] <= 1.0
        assert row["cv_accuracy"] == pytest.approx(np.mean(row["fold_accuracies"]), abs=1e-4)
    lstms = [r for r in sel.table if r["status"] == "ok"]
    best = max(r["cv_accuracy"] for r in lstms)
    first_best = next(r for r in lstms if r["cv_accuracy"] == best)  # ties go to the earlier candidate
    assert sel.chosen == first_best["candidate"] and first_best["chosen"]
    assert sum(r["chosen"] for r in sel.table) == 1 and sel.params == dict(PORTFOLIO)[sel.chosen]
    from lstmkit.tasks.timeseries.classification import one_nn_euclidean

    by_hand = []  # 1-NN Euclidean on the same folds
    for val in stratified_folds(y, seed=0)[0]:
        train = np.setdiff1d(np.arange(len(y)), val)
        by_hand.append(np.mean(one_nn_euclidean(X[train], y[train], X[val])[0] == y[val]))
    assert sel.table[-1]["cv_accuracy"] == pytest.approx(np.mean(by_hand), abs=1e-4)


def test_variable_lengths_skip_the_dimension_shuffle():
    rng = np.random.default_rng(0)
    X = [rng.normal(size=(n, 1)).astype(np.float32) for n in (6, 8, 7, 9, 6, 8, 7, 9)]
    y = np.array(["a", "b"] * 4)
    sel = select_classifier(lstmkit.SequenceClassifier(hidden_size=4, epochs=1, progress=False), X, y,
                            max_minutes=None, seed=0)  # fmt: skip
    assert [r["candidate"] for r in sel.table] == [name for name, _ in PORTFOLIO] + ["1-NN Euclidean (baseline)"]
    row = next(r for r in sel.table if r["params"].get("dimension_shuffle"))
    assert row["status"] == "skipped: needs series of one length" and row["cv_accuracy"] is None
    assert sel.table[1]["status"] == "ok" and sel.table[1]["params"] == {"conv_branch": True}  # its stand-in


def test_the_budget_skips_candidates_and_bounds_the_selection(monkeypatch):
    import lstmkit.tasks.timeseries.classify_select as select

    clock = iter(range(0, 10_000, 30))  # every reading of the clock: 30 s later
    monkeypatch.setattr(select.time, "perf_counter", lambda: float(next(clock)))
    X, y = _data(12)
    base = lstmkit.SequenceClassifier(hidden_size=4, epochs=1, progress=False)
    sel = select_classifier(base, X, y, max_minutes=3.0, seed=0)
    statuses = [r["status"] for r in sel.table[:-1]]
    assert statuses[0] == "ok" and "skipped: time budget spent" in statuses  # the first always runs


def _table(n=12, length=10):
    X, y = _data(n, length)
    rows = [{"id": i, "t": t, "v": float(X[i, t, 0]), "label": y[i], "split": "train" if i < 8 else "test"}
            for i in range(n) for t in range(length)]  # fmt: skip
    return pd.DataFrame(rows)


def test_train_run_selects_by_default_and_writes_the_table(tmp_path):
    cfg = ClassifyConfig.from_dict({"step": "t", "split": "split", "hidden_size": 4, "epochs": 1, "progress": False})
    assert cfg.selection == "auto"
    summary = train_run(_table(), cfg, tmp_path / "run", source="synthetic")
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["selection"] == summary["selection"] and result["selection"]["folds"].startswith("3-fold")
    chosen = result["selection"]["chosen"]
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["config"]["estimator"]
    for key, value in dict(PORTFOLIO)[chosen].items():  # the refit is the winner
        assert saved[key] == value
    assert "selection" in (tmp_path / "run" / "report.html").read_text()
    loaded = lstmkit.SequenceClassifier.load(tmp_path / "run")
    assert loaded.predict(_data(12)[0]).shape == (12,)


def test_selection_off_and_hand_set_networks_train_as_given(tmp_path):
    base = {"step": "t", "split": "split", "hidden_size": 4, "epochs": 1, "progress": False}
    off = train_run(_table(), ClassifyConfig.from_dict({**base, "selection": "off"}), tmp_path / "off")
    assert off["selection"] is None
    hand = train_run(_table(), ClassifyConfig.from_dict({**base, "pooling": "mean"}), tmp_path / "hand")
    assert hand["selection"] is None
    with pytest.raises(ValueError, match="selection"):
        ClassifyConfig.from_dict({"selection": "sometimes"})


def test_set_and_config_reach_the_new_fields(tmp_path):
    cfg = ClassifyConfig().with_overrides({"selection": "off", "train.min_steps": "40"})
    assert (cfg.selection, cfg.train.min_steps) == ("off", 40)
    assert cfg.classifier().min_steps == 40
    from lstmkit.cli import main

    path = tmp_path / "c.json"
    path.write_text(json.dumps({"train": {"min_steps": 7, "batch_size": 4}, "selection": "off", "net": {
        "hidden_size": 3}}))  # fmt: skip
    _table().to_csv(tmp_path / "t.csv", index=False)
    args = ["classify", "train", "--csv", str(tmp_path / "t.csv"), "--step", "t", "--split", "split", "--config",
            str(path), "--set", "train.max_minutes=1"]  # fmt: skip
    assert main([*args, "--out", str(tmp_path / "r"), "--json"]) == 0
    saved = json.loads((tmp_path / "r" / "config.json").read_text())["config"]
    assert saved["estimator"]["min_steps"] == 7 and saved["data"]["selection"] == "off"
    assert saved["estimator"]["hidden_size"] == 3 and saved["estimator"]["max_minutes"] == 1.0


def test_a_run_saved_before_steps_and_selection_still_loads(tmp_path):
    X, y = _data(8)
    lstmkit.SequenceClassifier(hidden_size=4, epochs=1, progress=False).fit(X, y).save(tmp_path / "old")
    path = tmp_path / "old" / "config.json"
    saved = json.loads(path.read_text())
    saved["config"]["estimator"].pop("min_steps")  # as 0.x wrote it: epochs=100, no min_steps
    saved["config"]["estimator"]["epochs"] = 100
    saved["config"]["data"] = {"id": "id", "label": "label", "epochs": 100, "hidden_size": 4}  # the flat layout
    path.write_text(json.dumps(saved))
    old = lstmkit.SequenceClassifier.load(tmp_path / "old")
    assert old.epochs == 100 and old.predict(X).shape == (8,)
    assert ClassifyConfig.from_dict(old.data_config_).selection == "auto"


def test_the_budget_holds_in_real_time_for_the_selection_and_the_refit(tmp_path):
    base = {"step": "t", "split": "split", "hidden_size": 4, "min_steps": 10**6, "max_minutes": 0.1, "progress": False}
    summary = train_run(_table(), ClassifyConfig.from_dict(base), tmp_path / "run")  # 6 s for everything
    assert summary["train_seconds"] < 6 + 4  # the Trainer stops at the end of a step; a second or so of slack
    first = summary["selection"]["table"][0]
    assert first["status"] == "ok" and first["steps"] < 10**6  # stopped by the clock, not by min_steps


def test_one_series_per_class_leaves_nothing_to_hold_out_and_skips_the_selection():
    X, y = _data(12)
    keep = np.array([np.flatnonzero(y == label)[0] for label in np.unique(y)])
    base = lstmkit.SequenceClassifier(hidden_size=4, epochs=2, progress=False)
    sel = select_classifier(base, X[keep] if isinstance(X, np.ndarray) else [X[i] for i in keep], y[keep],
                            max_minutes=None, seed=0)  # fmt: skip
    assert sel.chosen == PORTFOLIO[0][0] and sel.table == [] and "single training series" in sel.folds
