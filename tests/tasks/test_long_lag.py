"""The long-lag experiment runner: a short run solves an easy instance, writes its run directory, loads back."""

import json

import pytest

import lstmkit
from lstmkit.tasks.long_lag import experiment as long_lag


@pytest.mark.slow
def test_lstm_solves_short_adding_and_writes_run(tmp_path):
    cfg = long_lag.ExperimentConfig.from_dict(
        {"task": "adding", "length": 20, "max_minutes": 1.0, "max_sequences": 60_000, "seed": 0}
    )
    result = long_lag.run(cfg, tmp_path / "run")
    s = result.summary()
    assert s["solved"], s
    assert s["value"] <= 0.1 * s["baseline"]
    assert s["sequences_to_solve"] == s["sequences_seen"] <= 60_000
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"config.json", "model.safetensors", "metrics.csv", "result.json", "gradient_flow.png", "gates.png"} <= files
    assert json.loads((tmp_path / "run" / "result.json").read_text())["solved"] is True
    loaded = lstmkit.load(tmp_path / "run")
    assert loaded.config == cfg
    again = loaded.evaluate(test_size=512)
    assert again["solved"] and again["metric"] == "mse"


def test_budget_stops_an_unsolved_run():
    cfg = long_lag.ExperimentConfig(
        task="adding", length=50, max_sequences=640, eval_every=5, net=long_lag.LongLagNet(cell="rnn")
    )
    s = long_lag.run(cfg).summary()
    assert s["sequences_seen"] == 640 and not s["solved"] and s["sequences_to_solve"] is None


def test_refuses_to_overwrite_a_run(tmp_path):
    cfg = long_lag.ExperimentConfig(task="adding", length=10, max_sequences=64, eval_every=1)
    long_lag.run(cfg, tmp_path / "run")
    assert (tmp_path / "run" / "report.html").exists()  # the run's HTML report is written with it
    with pytest.raises(FileExistsError, match="already holds a finished run"):
        long_lag.run(cfg, tmp_path / "run")


@pytest.mark.parametrize("task", ["copy", "temporal_order", "embedded_reber", "noise_free_lag", "adding_1997"])
def test_every_task_trains_one_round(task):
    length = {"copy": 10, "temporal_order": 30, "embedded_reber": 30, "noise_free_lag": 10, "adding_1997": 20}[task]
    cfg = long_lag.ExperimentConfig(task=task, length=length, max_sequences=128, eval_every=2, test_size=64)
    s = long_lag.run(cfg).summary()
    assert s["sequences_seen"] == 128 and s["metric"] and s["baseline"] >= 0


def test_gradient_flow_vanishes_for_rnn_not_for_trained_lstm_shape():
    from lstmkit.tasks.long_lag.problems import get_task
    from lstmkit.tasks.sequence.model import ModelConfig, SequenceModel

    spec = get_task("adding")
    rnn = SequenceModel(ModelConfig(input_size=2, output_size=1, cell="rnn", hidden_size=32))
    norms = long_lag.gradient_flow(rnn, spec, 60, seed=0)
    assert norms.shape == (60,)
    assert norms[-1] < 1e-3 * norms[0]  # a tanh RNN's gradient vanishes across 60 steps


def test_config_errors():
    with pytest.raises(ValueError, match="unknown|Unknown"):
        long_lag.ExperimentConfig(task="nope")
    with pytest.raises(ValueError, match="length"):
        long_lag.ExperimentConfig(task="adding", length=1)


def test_a_saved_flat_config_loads_into_net_and_train():
    """Runs saved before the net/train sections (flat, with max_seconds) still load."""
    old = {"task": "adding", "cell": "gru", "hidden_size": 32, "forget_bias": 1.0, "batch_size": 16, "lr": 0.01,
           "max_seconds": 300.0, "seed": 4, "progress": False, "device": "cpu", "max_sequences": 640}  # fmt: skip
    cfg = long_lag.ExperimentConfig.from_dict(old)
    assert cfg.net == long_lag.LongLagNet(cell="gru", hidden_size=32)
    assert (cfg.train.batch_size, cfg.train.lr, cfg.train.max_minutes, cfg.train.seed) == (16, 0.01, 5.0, 4)
    assert long_lag.ExperimentConfig.from_dict(cfg.to_dict()) == cfg


def test_time_budget_stops_at_the_first_epoch_end():
    cfg = long_lag.ExperimentConfig.from_dict(
        {"length": 10, "hidden_size": 4, "batch_size": 8, "eval_every": 2, "max_minutes": 1e-9, "test_size": 16}
    )
    assert long_lag.run(cfg).summary()["sequences_seen"] == 8 * 2  # one epoch, then the budget is spent
