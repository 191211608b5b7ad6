"""Numerical guards (issue 5): a non-finite step is located, then raised, skipped or rolled back; no NaN checkpoint."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from lstmkit.nn import LSTM
from lstmkit.train import GateStatistics, StepOutput, TrainConfig, Trainer
from lstmkit.train import checkpoint as ckpt
from lstmkit.train.guards import DivergenceError, has_diverged, locate_nonfinite

T, BAD_STEP = 12, 5


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = LSTM(3, 8, layer_norm=True)
        self.head = nn.Linear(8, 1)

    def forward(self, x):
        out, _ = self.rnn(x)  # (B, T, 8)
        return self.head(out[:, -1])


def batches(n: int = 6, overflow_at: int | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Small inputs, feature 0 zero; batch ``overflow_at`` has 10.0 in feature 0 at time BAD_STEP only."""
    g = torch.Generator().manual_seed(0)
    out = []
    for i in range(n):
        x = torch.rand(4, T, 3, generator=g) * 0.01
        x[..., 0] = 0.0
        if i == overflow_at:
            x[:, BAD_STEP, 0] = 10.0
        out.append((x, x.sum((1, 2)).unsqueeze(1)))
    return out


def overflowing_net() -> Net:
    """A weight that overflows float32 on a large input (3e38 * 10 = inf); layer norm turns the inf into NaN
    (inf - mean = inf - inf). The LSTM's gates alone would absorb an inf (sigmoid(inf) = 1)."""
    torch.manual_seed(0)
    net = Net()
    with torch.no_grad():
        net.rnn.weight_ih_l0[0, 0] = 3e38
    return net


def loss_fn(model, batch, state):
    x, y = batch
    return StepOutput(loss=nn.functional.mse_loss(model(x), y))


def test_injected_overflow_is_located_in_the_lstm_at_its_time_step() -> None:
    net = overflowing_net()
    x, _ = batches(overflow_at=0)[0]
    where = locate_nonfinite(net, lambda: net(x), (x,))
    assert (
        f"module 'rnn' (LSTM), layer 0 (forward), time step {BAD_STEP} of {T}, in the gates, its inputs finite" in where
    )


def test_any_module_with_a_time_axis_gets_its_first_bad_step() -> None:
    class Exploder(nn.Module):  # no locate_nonfinite of its own: the generic description applies
        def forward(self, x):
            return torch.exp(x * 1000.0) - torch.exp(x * 1000.0)  # inf - inf where x is large

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.boom = Exploder()

        def forward(self, x):
            return self.boom(x).sum()

    x = torch.zeros(2, T, 3)
    x[1, 9] = 1.0
    model = Model()
    where = locate_nonfinite(model, lambda: model(x), (x,))
    assert "module 'boom' (Exploder), output time step 9 of 12, its inputs finite" in where


def test_nonfinite_inputs_are_reported_as_such() -> None:
    net = Net()
    x = torch.zeros(2, T, 3)
    x[1, 7, 0] = math.nan
    assert "the batch itself holds NaN" in locate_nonfinite(net, lambda: net(x), (x,))
    assert "at time step 7" in locate_nonfinite(net, lambda: net(x), (x,))


def test_raise_names_the_step_the_module_and_the_time_step(tmp_path: Path) -> None:
    net = overflowing_net()
    trainer = Trainer(net, loss_fn, TrainConfig(epochs=1, progress=False, lr=1e-4), run_dir=tmp_path)
    with pytest.raises(FloatingPointError) as info:
        trainer.fit(batches(overflow_at=2))
    message = str(info.value)
    assert "Non-finite loss (nan) at epoch 1, step 3 (batch 3 of the epoch)" in message
    assert f"module 'rnn' (LSTM), layer 0 (forward), time step {BAD_STEP} of {T}" in message
    # the checkpoint on disk (step 0) holds finite weights
    model, _, _ = ckpt.read_checkpoint(ckpt.latest_checkpoint(tmp_path))
    assert all(bool(torch.isfinite(t).all()) for t in model.values())


def test_skip_drops_the_update_and_training_goes_on() -> None:
    net = overflowing_net()
    cfg = TrainConfig(epochs=2, progress=False, lr=1e-4, on_nonfinite="skip")
    trainer = Trainer(net, loss_fn, cfg)
    history = trainer.fit(batches(overflow_at=2))
    assert [row["nonfinite_steps"] for row in history] == [1, 1]
    assert trainer.global_step == 10 and math.isfinite(history[-1]["train_loss"])
    assert all(bool(torch.isfinite(p).all()) for p in net.parameters())
    assert len(trainer.nonfinite_events) == 2 and "Skipped this update" in trainer.nonfinite_events[0]


def test_rollback_restores_the_last_checkpoint_and_goes_on(tmp_path: Path) -> None:
    net = overflowing_net()
    cfg = TrainConfig(epochs=1, progress=False, lr=1e-4, on_nonfinite="rollback", checkpoint_every_steps=2)
    trainer = Trainer(net, loss_fn, cfg, run_dir=tmp_path)
    history = trainer.fit(batches(overflow_at=3))
    # steps 1, 2 (checkpoint), 3; batch 4 overflows: back to step 2, then batches 5 and 6 -> steps 3 and 4
    assert "Rolled back to step-00000002" in trainer.nonfinite_events[0]
    assert trainer.global_step == 4 and history[0]["nonfinite_steps"] == 1


def test_rollback_without_a_checkpoint_says_what_it_needs() -> None:
    trainer = Trainer(overflowing_net(), loss_fn, TrainConfig(epochs=1, progress=False, on_nonfinite="rollback"))
    with pytest.raises(FloatingPointError, match="needs a checkpoint to go back to"):
        trainer.fit(batches(overflow_at=1))


def test_too_many_nonfinite_steps_in_a_row_stop_the_run() -> None:
    net = overflowing_net()
    data = [batches(overflow_at=0)[0]] * 5
    cfg = TrainConfig(epochs=1, progress=False, on_nonfinite="skip", max_nonfinite_steps=3)
    with pytest.raises(FloatingPointError, match="4 non-finite steps in a row"):
        Trainer(net, loss_fn, cfg).fit(data)


def test_nonfinite_gradient_with_a_finite_loss_is_caught() -> None:
    model = nn.Linear(3, 1)

    def sqrt_loss(model, batch, state):
        x, _ = batch
        out = model(x)
        return StepOutput(loss=(out - out.detach()).sqrt().mean())  # sqrt(0) = 0, its derivative is inf

    with pytest.raises(FloatingPointError, match="Non-finite gradient") as info:
        Trainer(model, sqrt_loss, TrainConfig(epochs=1, progress=False)).fit(batches(1))
    assert "backward pass" in str(info.value)


def test_a_nan_checkpoint_is_never_written(tmp_path: Path) -> None:
    net = Net()
    trainer = Trainer(net, loss_fn, TrainConfig(epochs=1, progress=False), run_dir=tmp_path)
    trainer.fit(batches(2))
    before = [p.name for p in ckpt.list_checkpoints(tmp_path)]
    with torch.no_grad():
        net.head.bias.fill_(math.nan)
    assert trainer._save_checkpoint({"epoch": 2, "batches_done": 0, "chunks_done": 0}, None, None) is None
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == before


def test_gate_saturation_and_gradient_norms_are_logged_per_epoch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = Net()
    Trainer(net, loss_fn, TrainConfig(epochs=2, progress=False), run_dir=tmp_path, callbacks=[GateStatistics()]).fit(
        batches(3)
    )
    import csv

    with (tmp_path / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    for row in rows:
        assert float(row["grad_norm"]) > 0 and float(row["grad_norm_max"]) >= float(row["grad_norm"])
    # the last epoch's row is the LSTM's own saturation, with the final weights, on that epoch's first batch
    expected = net.rnn.gate_saturation(batches(3)[0][0])
    assert {g: float(rows[-1][f"gate_sat_{g}"]) for g in "ifgo"} == pytest.approx(expected)


def test_gate_statistics_are_named_per_module_when_there_are_several() -> None:
    class Two(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc, self.dec = LSTM(3, 4), LSTM(4, 4)
            self.head = nn.Linear(4, 1)

        def forward(self, x):
            return self.head(self.dec(self.enc(x)[0])[0][:, -1])

    torch.manual_seed(0)
    trainer = Trainer(Two(), loss_fn, TrainConfig(epochs=1, progress=False), callbacks=[GateStatistics()])
    history = trainer.fit(batches(2))
    assert {"enc.gate_sat_f", "dec.gate_sat_f"} <= set(history[0])


def test_rollback_takes_the_running_mean_of_the_weights_back_too(tmp_path: Path) -> None:
    net = overflowing_net()
    cfg = TrainConfig(epochs=1, progress=False, lr=1e-4, on_nonfinite="rollback", checkpoint_every_steps=2,
                      average_from_epoch=1)  # fmt: skip
    trainer = Trainer(net, loss_fn, cfg, run_dir=tmp_path)
    trainer.fit(batches(overflow_at=3))
    # steps 1, 2 (checkpoint: mean of 2), 3; the overflow goes back to step 2's mean, then steps 3 and 4 join it
    assert trainer.global_step == 4 and trainer.averaged_steps == 4


def _regression(n: int = 8) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [(x, x.sum(1, keepdim=True)) for x in (torch.randn(16, 3, generator=g) for _ in range(n))]


def _mse(model, batch, state):
    x, y = batch
    return StepOutput(loss=nn.functional.mse_loss(model(x), y))


def test_a_loss_rising_orders_of_magnitude_stops_naming_the_learning_rate(tmp_path: Path) -> None:
    """Issue 18: lr 1e9 gave a loss of 1e10 and finished without a word."""
    torch.manual_seed(0)
    trainer = Trainer(nn.Linear(3, 1), _mse, TrainConfig(epochs=3, lr=1e9, progress=False), run_dir=tmp_path)
    with pytest.raises(DivergenceError) as info:
        trainer.fit(_regression())
    message = str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, FloatingPointError)
    assert message.startswith("Training diverged at step 2 (epoch 1): the loss rose from ")
    assert "with learning rate 1e9. Try a learning rate 10 to 100 times smaller (1e7 to 1e8)." in message
    assert trainer.global_step == 1  # the diverged step was not taken
    # a healthy run with the same data is left alone
    torch.manual_seed(0)
    assert len(Trainer(nn.Linear(3, 1), _mse, TrainConfig(epochs=3, lr=1e-2, progress=False)).fit(_regression())) == 3


def test_the_divergence_rule_is_relative_to_the_first_step_above_a_floor() -> None:
    assert has_diverged(1.2e10, 0.52) and has_diverged(1e5, 3.0)
    assert not has_diverged(5e3, 3.0)  # a thousandfold spike: noisy, not diverged
    assert not has_diverged(50.0, 1e-6)  # below the absolute floor
    assert not has_diverged(1e9, 1e6)  # unscaled targets: a large loss that did not grow 1e4-fold


def test_the_nonfinite_stop_is_a_divergence_error_naming_the_learning_rate() -> None:
    trainer = Trainer(overflowing_net(), loss_fn, TrainConfig(epochs=1, progress=False, lr=1e-4))
    with pytest.raises(DivergenceError, match=r"Lower the learning rate \(now 0.0001; try 10 to 100 times smaller"):
        trainer.fit(batches(overflow_at=2))
