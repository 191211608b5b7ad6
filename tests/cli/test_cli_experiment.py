"""The CLI in-process: JSON last on stdout, clear errors with exit code 2, run directories."""

import json

import pytest

from lstmkit.cli import main


def test_experiment_json_summary_is_last_on_stdout(tmp_path, capsys):
    code = main(["experiment", "adding", "--length", "10", "--max-sequences", "640", "--json", "--out",
                 str(tmp_path / "r")])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    doc = json.loads(out)
    assert list(doc)[:4] == ["task", "run_dir", "metrics", "baselines"]  # the one shape of every train command
    assert doc["task"] == "long_lag" and doc["problem"] == "adding" and doc["cell"] == "lstm" and doc["length"] == 10
    assert doc["run_dir"] == str(tmp_path / "r")
    assert set(doc["metrics"]) >= {"metric", "value", "solved", "sequences_seen", "seconds"}
    assert doc["metrics"]["metric"] == "mse" and doc["metrics"]["sequences_seen"] == 3200  # one epoch: 50 x 64
    assert doc["baselines"] == {"memoryless": {"value": 1 / 6}}
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert saved["kind"] == "long_lag" and saved["config"]["experiment"]["length"] == 10
    result = json.loads((tmp_path / "r" / "result.json").read_text())  # the run directory keeps the full summary
    assert result["value"] == doc["metrics"]["value"] and result["baseline"] == 1 / 6


def test_experiment_set_and_config_reach_the_config(tmp_path, capsys):
    (tmp_path / "cfg.json").write_text(json.dumps({"net": {"hidden_size": 6}, "train": {"lr": 0.01}, "eval_every": 5}))
    args = ["experiment", "adding", "--length", "10", "--max-sequences", "80", "--json", "--cell", "gru",
            "--config", str(tmp_path / "cfg.json"), "--set", "train.batch_size=8", "--set", "net.num_layers=2",
            "--out", str(tmp_path / "r")]  # fmt: skip
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["cell"] == "gru" and doc["metrics"]["sequences_seen"] == 80  # 2 epochs of 5 steps of 8
    saved = json.loads((tmp_path / "r" / "config.json").read_text())["config"]
    experiment = saved["experiment"]
    assert experiment["net"] == {"cell": "gru", "hidden_size": 6, "num_layers": 2, "forget_bias": 1.0}
    assert (experiment["train"]["lr"], experiment["train"]["batch_size"], experiment["eval_every"]) == (0.01, 8, 5)
    assert saved["model"]["num_layers"] == 2 and saved["model"]["hidden_size"] == 6
    assert main(["experiment", "adding", "--set", "train.lr=-1"]) == 2
    assert "lr" in capsys.readouterr().err
    assert main(["experiment", "adding", "--model", "rnn", "--length", "10", "--max-sequences", "64", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cell"] == "rnn"  # --model: the former name of --cell


def test_experiment_errors_are_one_sentence(tmp_path, capsys):
    assert main(["experiment", "nope"]) == 2
    assert "unknown task 'nope'" in capsys.readouterr().err
    assert main(["experiment", "adding", "--cell", "lstmx"]) == 2
    assert "--cell must be lstm, gru or rnn" in capsys.readouterr().err
    assert main(["experiment", "adding", "--length", "1"]) == 2
    assert "length" in capsys.readouterr().err
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "config.json").write_text("{}")
    assert main(["experiment", "adding", "--out", str(tmp_path / "r")]) == 2
    assert "already holds a finished run" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_runs_small(tmp_path, capsys, assert_png):
    code = main(["demo", "--out", str(tmp_path / "demo"), "--length", "10", "--max-minutes", "0.05", "--json"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["results"]) == {"lstm", "rnn"}
    assert_png(tmp_path / "demo" / "gradient_flow.png")
    assert_png(tmp_path / "demo" / "lstm" / "gates.png")


def _interrupt_in_epoch(monkeypatch, epoch: int, batch: int) -> None:
    """Make the long-lag training data raise mid-epoch, as a crash would."""
    from lstmkit.tasks.long_lag import experiment as long_lag

    real_iter = long_lag._TrainBatches.__iter__
    seen = {"epochs": 0}

    def crashing(self):
        seen["epochs"] += 1
        for i, b in enumerate(real_iter(self)):
            if seen["epochs"] == epoch and i == batch:
                raise KeyboardInterrupt("simulated crash")
            yield b

    monkeypatch.setattr(long_lag._TrainBatches, "__iter__", crashing)


def test_resume_continues_an_interrupted_experiment_exactly(tmp_path, capsys, monkeypatch):
    args = ["experiment", "adding", "--length", "10", "--max-sequences", "6400", "--json"]  # 2 epochs of 50
    assert main([*args, "--out", str(tmp_path / "clean")]) == 0
    clean = json.loads(capsys.readouterr().out)
    with monkeypatch.context() as m:
        _interrupt_in_epoch(m, epoch=2, batch=10)
        assert main([*args, "--out", str(tmp_path / "cut")]) == 130  # Ctrl-C
    capsys.readouterr()
    assert json.loads((tmp_path / "cut" / "config.json").read_text())["status"] == "training"  # started, not saved
    assert main(["resume", str(tmp_path / "cut"), "--json"]) == 0
    resumed = json.loads(capsys.readouterr().out)
    for doc in (clean, resumed):  # the wall-clock time and the directory differ
        del doc["metrics"]["seconds"], doc["run_dir"]
    assert resumed == clean
    assert main(["resume", str(tmp_path / "cut")]) == 2  # finished now
    assert "finished run" in capsys.readouterr().err


def test_resume_errors_are_one_sentence(tmp_path, capsys):
    assert main(["experiment", "adding", "--resume"]) == 2
    assert "--resume needs --out" in capsys.readouterr().err
    assert main(["experiment", "adding", "--resume", "--out", str(tmp_path / "none")]) == 2
    assert "Nothing to resume" in capsys.readouterr().err
    assert main(["resume", str(tmp_path / "none")]) == 2
    assert "Nothing to resume" in capsys.readouterr().err


@pytest.mark.slow
def test_nproc_relaunches_under_torchrun_and_rank_0_reports(tmp_path, capsys):
    import subprocess
    import sys

    from lstmkit.cli._launch import without_nproc

    assert without_nproc(["experiment", "adding", "--nproc", "2", "--json"]) == ["experiment", "adding", "--json"]
    assert without_nproc(["experiment", "--nproc=4", "adding"]) == ["experiment", "adding"]
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "lstmkit", "experiment", "adding", "--length", "10", "--max-sequences", "3200",
           "--nproc", "2", "--out", str(out), "--json"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)  # exactly one JSON document: only rank 0 prints
    assert summary["metrics"]["sequences_seen"] == 3200
    assert (out / "config.json").exists() and (out / "gates.png").exists()
    assert main(["experiment", "adding", "--nproc", "0"]) == 2
    assert "--nproc must be at least 1" in capsys.readouterr().err


def test_device_errors_and_click_usage_errors(capsys):
    import torch

    if not torch.cuda.is_available():
        assert main(["experiment", "adding", "--device", "cuda"]) == 2
        assert "sees no CUDA GPU" in capsys.readouterr().err
    assert main(["experiment", "adding", "--device", "tpu"]) == 2
    assert "expected one of 'cpu', 'cuda', 'auto'" in capsys.readouterr().err
    assert main(["experiment", "adding", "--bogus"]) == 2  # click's own usage error, shown without a traceback
    assert "No such option" in capsys.readouterr().err


def test_resume_replays_the_recorded_command_of_any_task_even_one_training_in_a_subdirectory(
    tmp_path, capsys, monkeypatch
):
    """Issue 18: `lstmkit resume` knew only the long-lag kind. An anomaly detector trains its forecaster in a
    subdirectory, whose config.json records the command that started the run."""
    from pathlib import Path

    import numpy as np
    import pandas as pd

    from lstmkit import runs
    from lstmkit.train.loop import Trainer

    values = np.sin(2 * np.pi * np.arange(400) / 24)
    table = pd.DataFrame({"t": np.arange(400), "hr": values, "split": ["train"] * 200 + ["test"] * 200})
    table.to_csv(tmp_path / "hr.csv", index=False)
    out = tmp_path / "run"
    args = ["anomaly", "train", "--csv", str(tmp_path / "hr.csv"), "--time", "t", "--target", "hr", "--method",
            "prediction", "--season", "24", "--steps-ahead", "2", "--epochs", "2", "--out", str(out)]  # fmt: skip
    real = Trainer._optimizer_step

    def interrupt_in_epoch_2(self, *a, **k):
        if self.history:
            raise KeyboardInterrupt
        return real(self, *a, **k)

    with monkeypatch.context() as m:
        m.setattr(Trainer, "_optimizer_step", interrupt_in_epoch_2)
        assert main(args) == 130
    capsys.readouterr()
    assert json.loads((out / "forecaster" / "config.json").read_text())["command"]["argv"] == args
    assert main(["resume", str(out / "forecaster"), "--json"]) == 0  # trains in the recorded --out, not forecaster/
    assert Path(json.loads(capsys.readouterr().out)["run_dir"]) == out.resolve()
    assert runs.is_finished(out) and (out / "scores.csv").exists() and not (out / "forecaster" / "forecaster").exists()
