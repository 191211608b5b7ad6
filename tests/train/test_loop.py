"""The training loop: learning, truncated BPTT, clipping, schedules, early stopping, seeding, metrics and errors."""

from __future__ import annotations

import csv
import io
import math
import re
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from rich.console import Console
from torch import nn

from lstmkit.config import ConfigError
from lstmkit.train import (
    StepOutput,
    TrainConfig,
    Trainer,
    build_optimizer,
    build_schedule,
    detach_state,
    split_time,
)
from lstmkit.train.metrics import MetricsLogger
from lstmkit.train.progress import EpochLines, ProgressBar, epoch_line, open_progress

# ---------------------------------------------------------------- helpers


class TinyLSTM(nn.Module):
    """torch.nn.LSTM + a linear head: (B, T, 1) -> (B, T, 1)."""

    def __init__(self, hidden_size: int = 8, dropout: float = 0.0) -> None:
        super().__init__()
        self.lstm = nn.LSTM(1, hidden_size, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        out, state = self.lstm(x, state)  # (B, T, H)
        return self.head(self.drop(out)), state  # (B, T, 1)


def lstm_loss(model: nn.Module, batch: tuple[torch.Tensor, ...], state: Any) -> StepOutput:
    x, y = batch
    pred, new_state = model(x, state)
    loss = nn.functional.mse_loss(pred, y)
    return StepOutput(loss=loss, state=new_state, metrics={"mse": loss.detach()}, n_items=x.shape[0])


def delayed_copy_batches(n_batches: int = 8, batch_size: int = 16, T: int = 12, seed: int = 0) -> list:
    """y_t = x_{t-1}: needs one step of memory, learnable in a few epochs by a tiny LSTM."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(n_batches):
        x = torch.randn(batch_size, T, 1, generator=g)  # (B, T, 1)
        y = torch.cat([torch.zeros(batch_size, 1, 1), x[:, :-1]], dim=1)  # (B, T, 1)
        batches.append((x, y))
    return batches


def linear_loss(model: nn.Module, batch: tuple[torch.Tensor, ...], state: Any) -> StepOutput:
    x, y = batch
    loss = nn.functional.mse_loss(model(x), y)
    return StepOutput(loss=loss, n_items=x.shape[0])


def linear_batches(n_batches: int = 4, batch_size: int = 8) -> list:
    g = torch.Generator().manual_seed(1)
    w = torch.tensor([[1.0], [-2.0], [0.5]])
    out = []
    for _ in range(n_batches):
        x = torch.randn(batch_size, 3, generator=g)
        out.append((x, x @ w))
    return out


def cfg(**kw: Any) -> TrainConfig:
    return TrainConfig(**{"progress": False, **kw})


# ---------------------------------------------------------------- learning


def test_loss_decreases_on_tiny_lstm_regression() -> None:
    torch.manual_seed(0)
    model = TinyLSTM()
    history = Trainer(model, lstm_loss, cfg(epochs=3, lr=0.05)).fit(delayed_copy_batches(n_batches=6))
    losses = [row["train_loss"] for row in history]
    assert losses[0] > losses[1] > losses[2] and losses[2] < 0.6 * losses[0], losses
    assert history[-1]["train_mse"] == pytest.approx(history[-1]["train_loss"])
    assert history[-1]["step"] == 3 * 6


def test_default_validation_is_mean_loss_in_eval_mode_without_grad() -> None:
    torch.manual_seed(0)
    model = TinyLSTM(dropout=0.5)
    seen: list[tuple[bool, bool]] = []

    def loss_fn(model: nn.Module, batch: tuple[torch.Tensor, ...], state: Any) -> StepOutput:
        seen.append((model.training, torch.is_grad_enabled()))
        return lstm_loss(model, batch, state)

    val = delayed_copy_batches(n_batches=2, seed=1)
    trainer = Trainer(model, loss_fn, cfg(epochs=1))
    row = trainer.fit(delayed_copy_batches(n_batches=2), val)[0]
    assert seen == [(True, True)] * 2 + [(False, False)] * 2
    assert model.training  # put back in train mode after validation
    model.eval()
    with torch.no_grad():
        expected = sum(lstm_loss(model, b, None).loss.item() for b in val) / 2
    assert row["val_loss"] == pytest.approx(expected, rel=1e-6)
    assert row["val_mse"] == pytest.approx(expected, rel=1e-6)


# ---------------------------------------------------------------- truncated BPTT


class StateRecorder:
    """A loss_fn that records chunk shapes and the state it is given; its state depends on the parameters."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, model: nn.Module, batch: tuple[torch.Tensor, ...], state: Any) -> StepOutput:
        x = batch[0]
        self.calls.append(
            {
                "shapes": [tuple(t.shape) for t in batch],
                "state": state,
                "first_x": x[0, 0, 0].item(),
            }
        )
        h = x.sum(dim=(1, 2)) * model.weight.sum()  # (B,), has a graph back to the weight
        c = h * 2
        self.calls[-1]["out_h"] = h.detach().clone()
        prev = 0.0 if state is None else state[0].sum()
        loss = (h.sum() + prev) ** 2 * 1e-6
        return StepOutput(loss=loss, state=(h, [c]), n_items=x.shape[0])


def seq_batch(B: int, T: int, start: float = 0.0) -> tuple[torch.Tensor, ...]:
    x = (torch.arange(B * T, dtype=torch.float32).reshape(B, T, 1) + start) / 100  # (B, T, 1)
    y = torch.zeros(B, T)  # (B, T): split with x
    label = torch.zeros(B, dtype=torch.long)  # (B,): no time axis, passed whole
    other = torch.zeros(B, 3)  # (B, 3) with 3 != T: passed whole
    return x, y, label, other


def test_split_time_cuts_every_tensor_with_the_time_axis() -> None:
    chunks = split_time(seq_batch(2, 10), 4)
    assert [[tuple(t.shape) for t in c] for c in chunks] == [
        [(2, 4, 1), (2, 4), (2,), (2, 3)],
        [(2, 4, 1), (2, 4), (2,), (2, 3)],
        [(2, 2, 1), (2, 2), (2,), (2, 3)],
    ]
    x = seq_batch(2, 10)[0]
    assert torch.equal(torch.cat([c[0] for c in chunks], dim=1), x)
    with pytest.raises(ValueError, match="time on dim 1"):
        split_time((torch.zeros(4),), 2)


def test_tbptt_chunks_carry_detached_state_and_reset_per_batch() -> None:
    rec = StateRecorder()
    model = nn.Linear(1, 1)
    batches = [seq_batch(2, 10), seq_batch(2, 10, start=50.0)]
    Trainer(model, rec, cfg(epochs=1, tbptt_steps=4, optimizer="sgd", lr=1e-3)).fit(batches)
    assert [c["shapes"][0][1] for c in rec.calls] == [4, 4, 2, 4, 4, 2]
    assert [c["shapes"][1] for c in rec.calls] == [(2, 4), (2, 4), (2, 2)] * 2
    assert all(c["shapes"][2] == (2,) and c["shapes"][3] == (2, 3) for c in rec.calls)
    assert [c["first_x"] for c in rec.calls[:3]] == pytest.approx([0.0, 0.04, 0.08])  # consecutive chunks
    for i, call in enumerate(rec.calls):
        if i % 3 == 0:
            assert call["state"] is None, "state must reset at each new batch"
            continue
        h, (c,) = call["state"]
        assert isinstance(call["state"], tuple) and isinstance(call["state"][1], list)  # nesting kept
        assert not h.requires_grad and h.grad_fn is None and not c.requires_grad  # detached
        assert torch.equal(c, 2 * h)
        assert torch.equal(h, rec.calls[i - 1]["out_h"])  # carried from the previous chunk


def test_full_bptt_always_passes_none_state() -> None:
    rec = StateRecorder()
    Trainer(nn.Linear(1, 1), rec, cfg(epochs=2, optimizer="sgd", lr=1e-3)).fit([seq_batch(2, 10)] * 3)
    assert len(rec.calls) == 6
    assert all(c["state"] is None and c["shapes"][0] == (2, 10, 1) for c in rec.calls)


def test_carry_state_across_batches_resets_on_batch_size_change_and_new_epoch() -> None:
    rec = StateRecorder()
    batches = [seq_batch(2, 4), seq_batch(2, 4), seq_batch(3, 4), seq_batch(3, 4)]
    conf = cfg(epochs=2, tbptt_steps=2, carry_state_across_batches=True, optimizer="sgd", lr=1e-3)
    Trainer(nn.Linear(1, 1), rec, conf).fit(batches)
    is_none = [c["state"] is None for c in rec.calls]
    # per epoch: 4 batches x 2 chunks; None only at the epoch start and where the batch size changes (2 -> 3)
    assert is_none == [True, False, False, False, True, False, False, False] * 2
    for i, c in enumerate(rec.calls):
        if c["state"] is not None:
            assert not c["state"][0].requires_grad and torch.equal(c["state"][0], rec.calls[i - 1]["out_h"])


def test_detach_state_keeps_structure_and_rejects_other_types() -> None:
    w = torch.ones(2, requires_grad=True)
    state = {"a": (w * 2, [w * 3]), "b": None}
    out = detach_state(state)
    assert out["b"] is None and isinstance(out["a"], tuple) and isinstance(out["a"][1], list)
    assert not out["a"][0].requires_grad and torch.equal(out["a"][1][0], torch.full((2,), 3.0))
    with pytest.raises(TypeError, match="Cannot detach a recurrent state of type str"):
        detach_state("h")


# ---------------------------------------------------------------- clipping, optimizers, schedules


def test_clip_grad_norm_bounds_the_gradient_and_records_the_pre_clip_norm() -> None:
    model = nn.Linear(3, 1)

    def big_loss(model: nn.Module, batch: tuple[torch.Tensor, ...], state: Any) -> StepOutput:
        return StepOutput(loss=1e3 * linear_loss(model, batch, state).loss)

    history = Trainer(model, big_loss, cfg(epochs=1, clip_grad_norm=0.5, optimizer="sgd", lr=1e-6)).fit(
        linear_batches(n_batches=2)
    )
    grads = [p.grad for p in model.parameters()]  # the last step's gradients, after clipping
    post_clip = torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads])).item()
    assert post_clip <= 0.5 + 1e-5
    assert post_clip == pytest.approx(0.5, rel=1e-4)  # clipped to the bound, not below it
    assert history[0]["grad_norm_max"] > 100  # the recorded norm is the pre-clip one


def test_grad_norm_recorded_without_clipping() -> None:
    model = nn.Linear(3, 1)
    history = Trainer(model, linear_loss, cfg(epochs=1, clip_grad_norm=None, optimizer="sgd", lr=1e-9)).fit(
        linear_batches(n_batches=1)
    )
    norm = torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in model.parameters()])).item()
    assert history[0]["grad_norm"] == pytest.approx(norm, rel=1e-5)


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("adam", torch.optim.Adam),
        ("adamw", torch.optim.AdamW),
        ("sgd", torch.optim.SGD),
        ("rmsprop", torch.optim.RMSprop),
    ],
)
def test_build_optimizer(name: str, cls: type) -> None:
    momentum = 0.9 if name in ("sgd", "rmsprop") else 0.0
    opt = build_optimizer(
        nn.Linear(2, 2).parameters(), cfg(optimizer=name, lr=0.01, weight_decay=0.1, momentum=momentum)
    )
    assert type(opt) is cls
    assert opt.param_groups[0]["lr"] == 0.01 and opt.param_groups[0]["weight_decay"] == 0.1
    with pytest.raises(ValueError, match="no trainable parameters"):
        build_optimizer([], cfg())


def test_schedule_values_at_given_steps() -> None:
    warm = build_schedule(cfg(lr=0.1, warmup_steps=4))
    assert [warm.lr_at(s) for s in (0, 1, 3, 4, 100)] == pytest.approx([0.025, 0.05, 0.1, 0.1, 0.1])

    cos = build_schedule(cfg(lr=0.1, schedule="cosine", decay_steps=10, min_lr=0.01))
    assert [cos.lr_at(s) for s in (0, 5, 10, 20)] == pytest.approx([0.1, 0.055, 0.01, 0.01])

    cos_warm = build_schedule(cfg(lr=0.1, schedule="cosine", warmup_steps=2), total_steps=12)  # decays over 10
    assert [cos_warm.lr_at(s) for s in (0, 1, 2, 7, 12)] == pytest.approx([0.05, 0.1, 0.1, 0.05, 0.0])

    step = build_schedule(cfg(lr=0.1, schedule="step", step_size=3, gamma=0.5, warmup_steps=1))
    assert [step.lr_at(s) for s in (0, 1, 3, 4, 7)] == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.025])

    plateau = build_schedule(cfg(lr=0.1, schedule="plateau", plateau_patience=1, gamma=0.5, min_lr=0.03))
    lrs = []
    for value in [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95]:
        plateau.on_epoch_end(value)
        lrs.append(plateau.lr_at(1000))
    assert lrs == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.03, 0.03, 0.03])  # floored at min_lr

    with pytest.raises(ValueError, match="schedule='cosine' needs the run length"):
        build_schedule(cfg(schedule="cosine")).lr_at(0)


def test_trainer_applies_schedule_per_optimizer_step(tmp_path: Path) -> None:
    conf = cfg(epochs=1, lr=0.1, schedule="step", step_size=2, gamma=0.5, log_every_steps=1, optimizer="sgd")
    trainer = Trainer(nn.Linear(3, 1), linear_loss, conf, run_dir=tmp_path)
    history = trainer.fit(linear_batches(n_batches=6))
    with (tmp_path / "steps.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [float(r["lr"]) for r in rows] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert history[0]["lr"] == pytest.approx(0.025)


def test_cosine_run_length_inferred_from_len_and_tbptt_chunks() -> None:
    trainer = Trainer(nn.Linear(1, 1), StateRecorder(), cfg(epochs=2, schedule="cosine", tbptt_steps=5, lr=1e-3))
    trainer.fit([seq_batch(2, 10)] * 4)
    assert trainer.schedule.total_steps == 2 * 4 * 2
    assert trainer.global_step == 16
    assert trainer.history[-1]["lr"] == pytest.approx(trainer.schedule.lr_at(15))


# ---------------------------------------------------------------- early stopping, callbacks, max_steps


class ScriptedEval:
    """eval_fn returning a fixed sequence of val_loss values and recording the weights it saw."""

    def __init__(self, losses: list[float], accs: list[float] | None = None) -> None:
        self.losses = losses
        self.accs = accs or [0.0] * len(losses)
        self.weights: list[torch.Tensor] = []

    def __call__(self, model: nn.Module, val_data: Any) -> dict[str, float]:
        self.weights.append(model.weight.detach().clone())
        i = len(self.weights) - 1
        return {"val_loss": self.losses[i], "val_acc": self.accs[i]}


def test_early_stopping_stops_and_restores_best_weights() -> None:
    model = nn.Linear(3, 1)
    ev = ScriptedEval([5.0, 3.0, 4.0, 3.5, 1.0, 1.0])
    trainer = Trainer(
        model, linear_loss, cfg(epochs=6, early_stopping_patience=2, optimizer="sgd", lr=0.01), eval_fn=ev
    )
    history = trainer.fit(linear_batches(), val_data=["unused"])
    assert [row["val_loss"] for row in history] == [5.0, 3.0, 4.0, 3.5]  # stopped after 2 epochs without improvement
    assert trainer.stop_reason == "early_stopping"
    assert (trainer.best_epoch, trainer.best_value) == (2, 3.0)
    assert torch.equal(model.weight, ev.weights[1])  # best epoch's weights restored
    assert not torch.equal(ev.weights[1], ev.weights[3])  # and they differ from the last epoch's


def test_early_stopping_in_max_mode() -> None:
    model = nn.Linear(3, 1)
    ev = ScriptedEval(losses=[1.0] * 6, accs=[0.1, 0.5, 0.3, 0.2, 0.9, 0.9])
    conf = cfg(epochs=6, early_stopping_patience=2, monitor="val_acc", monitor_mode="max", optimizer="sgd", lr=0.01)
    trainer = Trainer(model, linear_loss, conf, eval_fn=ev)
    history = trainer.fit(linear_batches(), val_data=[0])
    assert len(history) == 4  # in "min" mode it would stop at epoch 3, after 0.1
    assert (trainer.best_epoch, trainer.best_value) == (2, 0.5)
    assert torch.equal(model.weight, ev.weights[1])


def test_monitoring_val_metric_without_val_data_is_an_error() -> None:
    trainer = Trainer(nn.Linear(3, 1), linear_loss, cfg(early_stopping_patience=2))
    with pytest.raises(ValueError, match="monitor='val_loss' is a validation metric .* got no val_data"):
        trainer.fit(linear_batches())
    trainer = Trainer(nn.Linear(3, 1), linear_loss, cfg(early_stopping_patience=2, monitor="val_nope"))
    with pytest.raises(ValueError, match="monitor='val_nope' is not among this epoch's metrics"):
        trainer.fit(linear_batches(), val_data=linear_batches(1))


def test_callback_can_stop_and_max_steps_caps_optimizer_steps() -> None:
    class StopAt:
        def __init__(self) -> None:
            self.epochs: list[int] = []

        def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, Any]) -> bool | None:
            self.epochs.append(epoch)
            return True if epoch == 2 else None

    stopper = StopAt()
    trainer = Trainer(nn.Linear(3, 1), linear_loss, cfg(epochs=10), callbacks=[stopper, object()])
    assert len(trainer.fit(linear_batches())) == 2
    assert stopper.epochs == [1, 2] and trainer.stop_reason == "callback"

    trainer = Trainer(nn.Linear(3, 1), linear_loss, cfg(epochs=10, max_steps=5))
    history = trainer.fit(linear_batches(n_batches=4))
    assert trainer.global_step == 5 and len(history) == 2 and history[-1]["step"] == 5
    assert trainer.stop_reason == "max_steps"


def test_max_minutes_stops_mid_epoch_on_the_wall_clock(monkeypatch) -> None:
    clock = iter(range(0, 10_000, 10))  # every reading of the clock is 10 s later than the one before
    monkeypatch.setattr(time, "perf_counter", lambda: float(next(clock)))
    trainer = Trainer(nn.Linear(3, 1), linear_loss, cfg(epochs=10, max_minutes=25.0 / 60))
    history = trainer.fit(linear_batches(n_batches=50))
    assert trainer.stop_reason == "max_minutes" and len(history) == 1 and 1 <= trainer.global_step < 50
    with pytest.raises(ConfigError, match="max_minutes must be a positive number of minutes"):
        cfg(max_minutes=0.0)


# ---------------------------------------------------------------- seeding


def _train_seeded(seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(123)  # same initial weights for every call
    model = TinyLSTM(dropout=0.2)  # dropout and shuffling both draw from the RNG that fit() seeds
    x = torch.randn(24, 8, 1, generator=torch.Generator().manual_seed(0))
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, x.roll(1, dims=1)), batch_size=6, shuffle=True
    )
    Trainer(model, lstm_loss, cfg(epochs=2, seed=seed, tbptt_steps=3, lr=0.01)).fit(loader)
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_same_seed_gives_bit_identical_weights() -> None:
    a, b, c = _train_seeded(7), _train_seeded(7), _train_seeded(8)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)  # the seed matters, so the check above can fail


# ---------------------------------------------------------------- metrics CSV and progress


def test_metrics_csv_columns_and_rows(tmp_path: Path) -> None:
    torch.manual_seed(0)
    trainer = Trainer(TinyLSTM(), lstm_loss, cfg(epochs=3), run_dir=tmp_path / "run")
    history = trainer.fit(delayed_copy_batches(n_batches=3), val_data=delayed_copy_batches(n_batches=1, seed=2))
    with (tmp_path / "run" / "metrics.csv").open() as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames == [
        "epoch",
        "step",
        "train_loss",
        "train_mse",
        "val_loss",
        "val_mse",
        "lr",
        "grad_norm",
        "grad_norm_max",
        "nonfinite_steps",
        "items_per_sec",
        "seconds",
    ]
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3] and [int(r["step"]) for r in rows] == [3, 6, 9]
    for row, hist in zip(rows, history, strict=True):
        assert float(row["train_loss"]) == hist["train_loss"]  # written at full precision
        assert float(row["items_per_sec"]) > 0 and float(row["seconds"]) > 0
    assert not (tmp_path / "run" / "steps.csv").exists()


def test_metrics_logger_header_from_first_row(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    with MetricsLogger(path) as log:
        log.log({"a": 1, "b": 2.5})
        log.log({"a": 2})  # missing column -> empty cell
        assert path.read_text().splitlines() == ["a,b", "1,2.5", "2,"]  # flushed without closing
        with pytest.raises(ValueError, match=r"column\(s\) \['c'\] that are not in the header"):
            log.log({"a": 3, "c": 1})
    with MetricsLogger(path) as log:  # appending to an existing file keeps its header
        log.log({"b": torch.tensor(0.5), "a": 3})
    assert path.read_text().splitlines() == ["a,b", "1,2.5", "2,", "3,0.5"]


def test_progress_bar_is_silent_under_pytest_and_draws_on_a_terminal() -> None:
    bar = ProgressBar(enabled=True)  # stderr is captured: not a terminal
    assert not bar.enabled
    bar.start_epoch(1, 1, 3)
    bar.update(loss=1.0, items_per_sec=10.0)
    bar.close()
    buf = io.StringIO()
    with ProgressBar(enabled=True, console=Console(file=buf, force_terminal=True, width=100)) as bar:
        assert bar.enabled
        bar.start_epoch(1, 2, 3)
        bar.update(loss=0.25, items_per_sec=1234.0)
    assert "loss 0.25" in buf.getvalue() and "1,234 items/s" in buf.getvalue()
    off = ProgressBar(enabled=False, console=Console(file=io.StringIO(), force_terminal=True))
    assert not off.enabled


def test_progress_without_a_terminal_is_one_line_per_epoch_and_nothing_per_step(capsys, monkeypatch) -> None:
    """Issue 19: a run whose stderr is a log or a pipe printed nothing until it ended."""
    for var in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(var, raising=False)
    data = linear_batches(n_batches=4)
    history = Trainer(nn.Linear(3, 1), linear_loss, cfg(epochs=3, progress=True)).fit(data, val_data=data[:1])
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3  # one per epoch, none per step (4 steps an epoch)
    for line, row in zip(lines, history, strict=True):
        assert line.startswith(f"epoch {row['epoch']}/3  step {row['step']}  train_loss {row['train_loss']:.4g}  ")
        assert f"  val_loss {row['val_loss']:.4g}  " in line and re.search(r"  elapsed \d+\.\ds$", line)
        assert "seconds" not in line  # the row's own clock is the elapsed time's job
    Trainer(nn.Linear(3, 1), linear_loss, cfg(epochs=2, progress=False)).fit(data)
    assert capsys.readouterr().err == ""  # progress=False: silent


def test_progress_is_the_live_bar_on_a_terminal_and_lines_elsewhere() -> None:
    terminal = Console(file=io.StringIO(), force_terminal=True, width=100)
    with open_progress(True, console=terminal) as shown:
        assert isinstance(shown, ProgressBar) and shown.enabled
        shown.end_epoch({"epoch": 1, "step": 4, "train_loss": 0.5}, 2, 1.0)  # the bar already shows it: no line
    assert "epoch 1/2" not in terminal.file.getvalue()
    piped = Console(file=io.StringIO(), force_terminal=False)
    assert isinstance(open_progress(True, console=piped), EpochLines)
    buf = io.StringIO()
    lines = EpochLines(stream=buf)
    lines.start_epoch(1, 2, 4)
    lines.update(loss=0.5, items_per_sec=10.0)
    assert buf.getvalue() == ""
    lines.end_epoch(
        {"epoch": 2, "step": 8, "train_loss": 0.25, "lr": 1e-3, "nonfinite_steps": 0, "seconds": 1.5}, 2, 75
    )
    assert buf.getvalue() == "epoch 2/2  step 8  train_loss 0.25  lr 0.001  nonfinite_steps 0  elapsed 1m15s\n"
    off = EpochLines(enabled=False, stream=buf)
    off.end_epoch({"epoch": 3}, 3, 1.0)
    assert buf.getvalue().count("\n") == 1
    assert epoch_line({"epoch": 1, "step": 2, "val_loss": math.nan}, 1, 3725.0) == (
        "epoch 1/1  step 2  val_loss nan  elapsed 1h02m05s"
    )


# ---------------------------------------------------------------- errors


def test_empty_train_data_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="train_data yielded no batches in epoch 1"):
        Trainer(nn.Linear(3, 1), linear_loss, cfg()).fit([])


def test_one_shot_generator_is_caught_and_callables_give_fresh_data() -> None:
    gen = (b for b in linear_batches())
    with pytest.raises(ValueError, match="epoch 2.*one-shot iterator"):
        Trainer(nn.Linear(3, 1), linear_loss, cfg(epochs=2)).fit(gen)
    calls = []

    def fresh() -> Any:
        calls.append(1)
        return iter(linear_batches())

    history = Trainer(nn.Linear(3, 1), linear_loss, cfg(epochs=3)).fit(fresh)
    assert len(history) == 3 and len(calls) == 3 and history[-1]["step"] == 12


def test_non_finite_loss_names_epoch_and_step() -> None:
    calls = {"n": 0}

    def loss_fn(model: nn.Module, batch: tuple[torch.Tensor, ...], state: Any) -> StepOutput:
        calls["n"] += 1
        out = linear_loss(model, batch, state)
        return StepOutput(loss=out.loss * math.nan) if calls["n"] == 6 else out

    with pytest.raises(
        FloatingPointError, match=r"Non-finite loss \(nan\) at epoch 2, step 6 \(batch 2 of the epoch\)"
    ):
        Trainer(nn.Linear(3, 1), loss_fn, cfg(epochs=3)).fit(linear_batches())


def test_bad_loss_fn_outputs_are_clear_errors() -> None:
    with pytest.raises(TypeError, match="loss_fn must return a StepOutput, got Tensor"):
        Trainer(nn.Linear(3, 1), lambda m, b, s: m(b[0]).sum(), cfg()).fit(linear_batches())
    with pytest.raises(ValueError, match=r"StepOutput.loss must be a scalar tensor, got shape \(8, 1\)"):
        Trainer(nn.Linear(3, 1), lambda m, b, s: StepOutput(loss=m(b[0])), cfg()).fit(linear_batches())
    with pytest.raises(TypeError, match="Trainer needs a TrainConfig, got dict"):
        Trainer(nn.Linear(3, 1), linear_loss, {"epochs": 1})  # type: ignore[arg-type]


# ---------------------------------------------------------------- weight averaging


def test_weight_averaging_ends_with_the_mean_of_the_weights_after_every_step_from_its_epoch() -> None:
    batches = delayed_copy_batches(n_batches=4)
    seen: list[dict[str, torch.Tensor]] = []  # the weights each step starts from: those after the step before

    def recording_loss(model: nn.Module, batch: tuple[torch.Tensor, ...], state: Any) -> StepOutput:
        seen.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return lstm_loss(model, batch, state)

    torch.manual_seed(0)
    plain = TinyLSTM()
    Trainer(plain, recording_loss, TrainConfig(epochs=3, lr=0.02, progress=False)).fit(batches)
    torch.manual_seed(0)
    averaged = TinyLSTM()
    trainer = Trainer(averaged, lstm_loss, TrainConfig(epochs=3, lr=0.02, progress=False, average_from_epoch=2))
    trainer.fit(batches)
    # epochs 2-3 are steps 5-12; the weights after steps 5..11 are what steps 6..12 started from, then the last ones
    after = [*seen[5:], plain.state_dict()]
    assert trainer.averaged_steps == len(after) == 8
    for name, value in averaged.state_dict().items():
        expected = torch.stack([w[name] for w in after]).mean(0)
        torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(averaged.head.weight, plain.head.weight)  # the average is not the last weights


def test_weight_averaging_that_never_started_keeps_the_last_weights(caplog: pytest.LogCaptureFixture) -> None:
    batches = delayed_copy_batches(n_batches=4)
    torch.manual_seed(0)
    plain = TinyLSTM()
    Trainer(plain, lstm_loss, TrainConfig(epochs=3, lr=0.02, progress=False, max_steps=6)).fit(batches)
    torch.manual_seed(0)
    model = TinyLSTM()
    cfg = TrainConfig(epochs=3, lr=0.02, progress=False, max_steps=6, average_from_epoch=3)
    trainer = Trainer(model, lstm_loss, cfg)
    with caplog.at_level("WARNING", logger="lstmkit"):
        trainer.fit(batches)
    assert trainer.averaged_steps == 0 and "before epoch 3, where weight averaging starts" in caplog.text
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), plain.parameters(), strict=True))


def test_a_task_trainer_writes_config_json_as_training_starts(tmp_path: Path) -> None:
    """Issue 18: `lstmkit report` and `lstmkit resume` need config.json while a run trains, and after it fails."""
    import json

    seen: list[dict[str, Any]] = []

    def loss_fn(model, batch, state):
        if not seen:
            seen.append(json.loads((tmp_path / "run" / "config.json").read_text()))
        x, y = batch
        return StepOutput(loss=nn.functional.mse_loss(model(x), y))

    data = [(torch.randn(4, 3), torch.randn(4, 1)) for _ in range(2)]
    cfg = TrainConfig(epochs=1, progress=False)
    Trainer(nn.Linear(3, 1), loss_fn, cfg, run_dir=tmp_path / "run", run_config={"width": 3}, kind="demo").fit(data)
    assert seen[0]["status"] == "training" and seen[0]["kind"] == "demo" and seen[0]["config"] == {"width": 3}
    Trainer(nn.Linear(3, 1), loss_fn, cfg, run_dir=tmp_path / "direct").fit(data)  # no kind: no config.json
    assert not (tmp_path / "direct" / "config.json").exists()
