"""Issue 18, the second look: an anomaly prediction run has config.json from its first step, anomaly score refuses a
file as --out, lstmkit resume replays only training commands, and training refuses a model whose training state
cannot fit in memory before its first step."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from lstmkit import runs
from lstmkit.cli import main
from lstmkit.config import TrainConfig
from lstmkit.train import Trainer, guards


def _series_csv(path):
    rng = np.random.default_rng(0)
    values = np.sin(2 * np.pi * np.arange(300) / 24) + 0.05 * rng.normal(size=300)
    pd.DataFrame({"t": np.arange(300), "hr": values}).to_csv(path, index=False)
    return path


def test_an_anomaly_prediction_run_has_config_json_while_it_trains(tmp_path, capsys, monkeypatch):
    from lstmkit.tasks.timeseries.anomaly import detector as anomaly

    out = tmp_path / "run"
    seen = {}

    def interrupted(self, *args, **kwargs):
        seen["config"] = json.loads((out / "config.json").read_text())
        raise KeyboardInterrupt  # a kill while the forecaster trains

    monkeypatch.setattr(anomaly.AnomalyDetector, "fit", interrupted)
    csv = _series_csv(tmp_path / "s.csv")
    args = ["anomaly", "train", "--csv", str(csv), "--time", "t", "--target", "hr", "--season", "24", "--epochs", "2"]
    assert main([*args, "--out", str(out)]) == 130
    assert seen["config"]["status"] == "training" and seen["config"]["kind"] == "anomaly_detector"
    assert seen["config"]["command"]["argv"][:2] == ["anomaly", "train"]
    assert not runs.is_finished(out)
    assert main(["report", str(out)]) == 0  # a run in progress has a report


def test_anomaly_score_refuses_a_file_as_out(tmp_path, capsys):
    csv = _series_csv(tmp_path / "s.csv")
    run = tmp_path / "run"
    args = ["anomaly", "train", "--csv", str(csv), "--time", "t", "--target", "hr", "--method", "reconstruction",
            "--window", "12", "--epochs", "1", "--out", str(run)]  # fmt: skip
    assert main(args) == 0
    capsys.readouterr()
    target = tmp_path / "sensors.csv"
    target.write_text("keep me\n")
    assert main(["anomaly", "score", str(run), "--csv", str(csv), "--time", "t", "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a directory" in err and "Errno" not in err and target.read_text() == "keep me\n"


def test_resume_replays_only_training_commands(tmp_path, capsys):
    run = tmp_path / "run"
    victim = tmp_path / "model.onnx"
    victim.write_text("precious")
    runs.start_run(run, "forecaster", {"horizon": 3})
    payload = json.loads((run / "config.json").read_text())
    payload["command"] = {"argv": ["export", "onnx", str(tmp_path / "other"), "--out", str(victim), "--force"],
                          "cwd": str(tmp_path)}  # fmt: skip
    (run / "config.json").write_text(json.dumps(payload))
    assert main(["resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert "not a training command" in err and victim.read_text() == "precious"


def test_training_state_larger_than_the_memory_left_is_refused_before_the_first_step(monkeypatch):
    model = torch.nn.Linear(1000, 1000)  # 4 MB of weights: 16 MB with gradients and Adam's two moments
    monkeypatch.setattr(guards, "available_memory", lambda: 10_000_000)
    calls = []

    def loss_fn(m, batch, state):
        calls.append(1)
        raise AssertionError("no step may run")

    trainer = Trainer(model, loss_fn, TrainConfig(epochs=1, progress=False))
    words = r"needs at least 16\.0 MB \(4\.0 MB of weights.* more than the 10\.0 MB of memory left"
    with pytest.raises(ValueError, match=words):
        trainer.fit([torch.zeros(2, 1000)])
    assert not calls
    monkeypatch.setattr(guards, "available_memory", lambda: 10**12)
    guards.check_training_memory(model, 4)  # fits: no error
