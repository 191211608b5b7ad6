"""TensorBoard logging: the event file it writes reads back with TensorBoard's own reader."""

import math

import pytest
import torch

from lstmkit.train import tensorboard
from lstmkit.train.tensorboard import TensorBoardLogger, tensorboard_available


def _scalars(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_tensorboard_is_installed_for_the_tests():
    assert tensorboard_available(), "the dev extra installs tensorboard: pip install -e '.[dev]'"


def test_epoch_and_step_rows_read_back(tmp_path):
    with TensorBoardLogger(tmp_path) as tb:
        tb.log_step({"epoch": 1, "step": 1, "loss": 0.9, "lr": 0.1, "grad_norm": torch.tensor(2.0), "seconds": 0.01})
        tb.log_step({"epoch": 1, "step": 2, "loss": 0.7, "lr": 0.1, "grad_norm": 1.5, "seconds": 0.02})
        tb.log_epoch({"epoch": 1, "step": 2, "train_loss": 0.8, "val_loss": 0.75, "lr": 0.1, "note": "text",
                      "val_acc": None, "grad_norm": math.nan})  # fmt: skip
    assert list(tmp_path.glob("events.out.tfevents.*")), list(tmp_path.iterdir())
    scalars = _scalars(tmp_path)
    assert scalars["step/loss"] == [(1, pytest.approx(0.9)), (2, pytest.approx(0.7))]
    assert scalars["step/grad_norm"] == [(1, 2.0), (2, 1.5)]
    assert scalars["epoch/train_loss"] == [(2, pytest.approx(0.8))]  # against the global step, like step/ tags
    assert math.isnan(scalars["epoch/grad_norm"][0][1])
    assert "epoch/note" not in scalars and "epoch/val_acc" not in scalars  # text and empty cells are left out
    assert not [t for t in scalars if t.endswith(("/epoch", "/step"))]  # the x axis is not a scalar


def test_epoch_rows_are_on_disk_before_close(tmp_path):
    tb = TensorBoardLogger(tmp_path)
    tb.log_epoch({"epoch": 1, "step": 5, "train_loss": 0.5})
    assert _scalars(tmp_path)["epoch/train_loss"] == [(5, 0.5)]  # flushed per epoch: a crash keeps it
    tb.close()
    tb.close()
    with pytest.raises(ValueError, match="is closed"):
        tb.log_step({"step": 6, "loss": 0.4})


def test_without_tensorboard_the_error_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(tensorboard, "tensorboard_available", lambda: False)
    with pytest.raises(ImportError, match=r"pip install 'lstmkit\[tb\]'"):
        TensorBoardLogger(tmp_path)


def test_trainer_with_a_run_dir_writes_tensorboard_scalars(tmp_path):
    from lstmkit.train import StepOutput, TrainConfig, Trainer

    model = torch.nn.Linear(3, 1)
    batches = [(torch.randn(4, 3), torch.randn(4, 1)) for _ in range(3)]

    def loss_fn(model, batch, state):
        x, y = batch
        return StepOutput(loss=torch.nn.functional.mse_loss(model(x), y))

    cfg = TrainConfig(epochs=2, progress=False, log_every_steps=1)
    Trainer(model, loss_fn, cfg, run_dir=tmp_path).fit(batches, val_data=batches[:1])
    scalars = _scalars(tmp_path)
    assert [step for step, _ in scalars["epoch/val_loss"]] == [3, 6]
    assert len(scalars["step/loss"]) == 6
