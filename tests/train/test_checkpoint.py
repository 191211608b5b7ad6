"""Crash-safe checkpoints and exact resume (issue 5): the format, atomicity, refusals, and the SIGKILL test."""

from __future__ import annotations

import errno
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import safetensors.torch
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lstmkit.nn import LSTM
from lstmkit.train import CheckpointError, GateStatistics, ResumeError, StepOutput, TrainConfig, Trainer
from lstmkit.train import checkpoint as ckpt

JOB = Path(__file__).with_name("resume_job.py")


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = LSTM(3, 8, num_layers=2, dropout=0.25)
        self.head = nn.Linear(8, 1)

    def forward(self, x, state=None):
        out, state = self.lstm(x, state)  # (B, T, 8)
        return self.head(out), state


def data(n: int = 24, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 10, 3, generator=g)
    return x, x.cumsum(1)[..., :1] * 0.1


class Crash(Exception):
    pass


def make_loss(crash_at: int | None = None):
    calls = {"n": 0}

    def loss_fn(model, batch, state):
        calls["n"] += 1
        if crash_at is not None and calls["n"] == crash_at:
            raise Crash(f"simulated crash at call {crash_at}")
        x, y = batch
        pred, new_state = model(x, state)
        return StepOutput(loss=nn.functional.mse_loss(pred, y), state=new_state)

    return loss_fn


def config(**kw) -> TrainConfig:
    base = dict(epochs=3, lr=0.01, tbptt_steps=5, checkpoint_every_steps=2, seed=3, progress=False, schedule="cosine")
    return TrainConfig(**{**base, **kw})


def train(run_dir, cfg, crash_at=None, resume=False, early=False) -> tuple[Trainer, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    model = Net()
    x, y = data()
    loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True)
    trainer = Trainer(model, make_loss(crash_at), cfg, run_dir=run_dir, run_config={"task": "unit"})
    trainer.fit(loader, val_data=[(x[:8], y[:8])], resume=resume)
    return trainer, {k: v.clone() for k, v in model.state_dict().items()}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------- format


def test_flatten_round_trips_nested_state_without_pickle() -> None:
    state = {
        "state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.randn(2, 2)}},
        "groups": [{"lr": 0.1, "betas": (0.9, 0.999), "params": [0, 1], "x": math.inf, "flag": None}],
        "carried": (torch.ones(1, 2, 3), torch.zeros(1, 2, 3)),
    }
    tensors: dict[str, torch.Tensor] = {}
    flat = ckpt.flatten_state(state, tensors, "opt")
    text = json.dumps(flat)  # plain JSON: no tensors, no pickle
    back = ckpt.unflatten_state(json.loads(text), tensors)
    assert list(back["state"]) == [0] and torch.equal(back["state"][0]["exp_avg"], state["state"][0]["exp_avg"])
    assert back["groups"][0]["betas"] == (0.9, 0.999) and back["groups"][0]["x"] == math.inf
    assert isinstance(back["carried"], tuple) and torch.equal(back["carried"][0], state["carried"][0])
    with pytest.raises(TypeError, match="no pickle"):
        ckpt.flatten_state({"f": object()}, {})


def test_checkpoints_written_pruned_and_best_kept(tmp_path: Path) -> None:
    trainer, _ = train(tmp_path / "run", config(keep_checkpoints=2))
    regular = ckpt.list_checkpoints(tmp_path / "run")
    assert [p.name for p in regular] == ["step-00000018", "step-00000018-end"]  # mid-epoch and epoch-end at 18
    best = ckpt.list_checkpoints(tmp_path / "run", best=True)
    assert len(best) == 1 and trainer.best_epoch is not None
    _, _, meta = ckpt.read_checkpoint(best[0])
    assert meta["history"][-1]["epoch"] == trainer.best_epoch
    model, tensors, meta = ckpt.read_checkpoint(regular[-1])
    assert meta["train_config"]["tbptt_steps"] == 5 and meta["run_config"] == {"task": "unit"}
    assert meta["position"]["finished"] is True and "lstm.weight_hh_l0" in model
    assert any(k.startswith("optimizer.") for k in tensors) and any(k.startswith("rank0.rng.") for k in tensors)
    assert not list((tmp_path / "run" / "checkpoints").glob(".tmp-*"))


# ---------------------------------------------------------------- exact resume


@pytest.mark.parametrize("crash_at", [4, 8, 11])  # mid-batch (between TBPTT chunks), at a batch edge, next epoch
def test_resume_after_a_crash_is_bit_identical(tmp_path: Path, crash_at: int) -> None:
    trainer_a, full = train(tmp_path / "a", config())
    with pytest.raises(Crash):
        train(tmp_path / "b", config(), crash_at=crash_at)
    trainer_b, resumed = train(tmp_path / "b", config(), resume=True)
    assert same(full, resumed)
    assert trainer_b.global_step == trainer_a.global_step
    a_rows = (tmp_path / "a" / "metrics.csv").read_text().splitlines()
    b_rows = (tmp_path / "b" / "metrics.csv").read_text().splitlines()
    assert len(a_rows) == len(b_rows) == 4
    # every column but the timings agrees
    for ra, rb in zip(a_rows[1:], b_rows[1:], strict=True):
        assert ra.split(",")[:-2] == rb.split(",")[:-2]


@pytest.mark.parametrize("crash_at", [4, 14])  # before averaging starts, and after (the running mean is restored)
def test_resume_with_weight_averaging_is_bit_identical(tmp_path: Path, crash_at: int) -> None:
    trainer_a, full = train(tmp_path / "a", config(average_from_epoch=2))
    with pytest.raises(Crash):
        train(tmp_path / "b", config(average_from_epoch=2), crash_at=crash_at)
    trainer_b, resumed = train(tmp_path / "b", config(average_from_epoch=2), resume=True)
    assert trainer_a.averaged_steps == trainer_b.averaged_steps == 12 and same(full, resumed)
    _, again = train(tmp_path / "b", config(average_from_epoch=2), resume=True)  # a finished run: the same average
    assert same(full, again)


def test_resume_of_a_finished_run_changes_nothing(tmp_path: Path) -> None:
    _, full = train(tmp_path / "a", config())
    trainer, again = train(tmp_path / "a", config(), resume=True)
    assert same(full, again) and len(trainer.history) == 3


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_gives_the_uninterrupted_weights(tmp_path: Path) -> None:
    """The issue's test: a seeded CPU run in a subprocess, SIGKILL mid-epoch, resume, compare with a clean run."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    subprocess.run([sys.executable, str(JOB), str(clean)], check=True, env=env, capture_output=True, timeout=300)
    proc = subprocess.Popen([sys.executable, str(JOB), str(killed), "--slow"], env=env, stdout=subprocess.PIPE)
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            steps = [int(p.name.split("-")[1]) for p in ckpt.list_checkpoints(killed)]
            if steps and max(steps) >= 15:  # epoch 2 of 4 (10 steps an epoch): mid-epoch
                break
            assert proc.poll() is None, "the job ended before it could be killed; make it slower"
            time.sleep(0.005)
        else:
            pytest.fail("the job wrote no checkpoint at step >= 15 in time")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    killed_at = max(int(p.name.split("-")[1]) for p in ckpt.list_checkpoints(killed))
    assert killed_at < 40 and not (killed / "final.safetensors").exists()
    subprocess.run(
        [sys.executable, str(JOB), str(killed), "--resume"], check=True, env=env, capture_output=True, timeout=300
    )
    a = safetensors.torch.load_file(clean / "final.safetensors")
    b = safetensors.torch.load_file(killed / "final.safetensors")
    assert same(a, b), f"weights differ after a kill at step {killed_at} and a resume"


def test_exact_resume_with_a_stateful_generated_source(tmp_path: Path) -> None:
    """Data drawn lazily from its own generator (as the long-lag tasks do) resumes exactly too."""

    class Generated:
        def __init__(self) -> None:
            self.g = torch.Generator().manual_seed(9)

        def __iter__(self):
            for _ in range(3):
                x = torch.randn(8, 10, 3, generator=self.g)
                yield x, x.cumsum(1)[..., :1] * 0.1

        def state_dict(self):
            return {"g": self.g.get_state()}

        def load_state_dict(self, s):
            self.g.set_state(s["g"])

    def run(run_dir, crash_at=None, resume=False):
        torch.manual_seed(0)
        model = Net()
        trainer = Trainer(model, make_loss(crash_at), config(schedule="constant"), run_dir=run_dir)
        trainer.fit(Generated(), resume=resume)
        return model.state_dict()

    full = run(tmp_path / "a")
    for crash_at in (9, 7):  # mid-epoch 2; the first step of epoch 2 (resumes from the end of epoch 1)
        with pytest.raises(Crash):
            run(tmp_path / f"b{crash_at}", crash_at=crash_at)
        assert same(full, run(tmp_path / f"b{crash_at}", resume=True))


# ---------------------------------------------------------------- refusals


def test_resume_refuses_a_different_config_naming_the_difference(tmp_path: Path) -> None:
    with pytest.raises(Crash):
        train(tmp_path / "r", config(), crash_at=5)
    with pytest.raises(ResumeError, match=r"lr: 0\.01 in the checkpoint, 0\.02 now"):
        train(tmp_path / "r", config(lr=0.02), resume=True)
    train(tmp_path / "r", config(progress=True), resume=True)  # display settings may change


def test_a_resume_may_give_a_new_time_budget(tmp_path: Path) -> None:
    with pytest.raises(Crash):
        train(tmp_path / "r", config(max_minutes=1.0), crash_at=5)  # as a run its budget cut short
    train(tmp_path / "r", config(max_minutes=30.0), resume=True)  # resumed with a larger budget


def test_resume_refuses_another_lstmkit_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(Crash):
        train(tmp_path / "r", config(), crash_at=5)
    monkeypatch.setattr("lstmkit.train.state.package_version", lambda: "9.9.9")
    with pytest.raises(ResumeError, match="lstmkit 9.9.9"):
        train(tmp_path / "r", config(), resume=True)


def test_resume_without_checkpoints_and_fresh_start_over_checkpoints_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ResumeError, match="Nothing to resume"):
        train(tmp_path / "empty", config(), resume=True)
    train(tmp_path / "done", config(epochs=1))
    with pytest.raises(ResumeError, match="already holds checkpoints"):
        train(tmp_path / "done", config(epochs=1))


# ---------------------------------------------------------------- disk trouble


def test_too_little_space_is_refused_before_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    usage = ckpt.shutil.disk_usage(tmp_path)
    monkeypatch.setattr(ckpt.shutil, "disk_usage", lambda p: usage._replace(free=1000))
    with pytest.raises(CheckpointError, match="Not enough free space"):
        train(tmp_path / "r", config())
    assert not (tmp_path / "r" / "metrics.csv").exists()  # nothing trained


def test_unwritable_run_directory_is_refused_before_training(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    with pytest.raises(CheckpointError, match="Cannot write checkpoints"):
        train(blocker / "run", config())  # works as root too, unlike a chmod


def test_full_disk_mid_run_stops_with_the_last_checkpoint_intact(tmp_path: Path, monkeypatch) -> None:
    real = ckpt.write_and_sync
    calls = {"n": 0}

    def failing(path, data):
        calls["n"] += 1
        if calls["n"] > 3 * 3:  # the step-0 checkpoint and two more succeed, then the disk is "full"
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    monkeypatch.setattr(ckpt, "write_and_sync", failing)
    with pytest.raises(CheckpointError, match="the disk is full.*step-00000004.*is intact"):
        train(tmp_path / "r", config())
    root = tmp_path / "r" / "checkpoints"
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "r")] == ["step-00000002", "step-00000004"]
    assert not list(root.glob(".tmp-*"))
    ckpt.read_checkpoint(root / "step-00000004")  # complete and readable
    monkeypatch.setattr(ckpt, "write_and_sync", real)
    _, full = train(tmp_path / "clean", config())
    _, resumed = train(tmp_path / "r", config(), resume=True)
    assert same(full, resumed)


# ---------------------------------------------------------------- regressions found in review


def _series_run(run_dir, crash_at=None, resume=False):
    from lstmkit.data import SeriesStream

    calls = {"n": 0}

    def loss_fn(model, batch, state):
        calls["n"] += 1
        if calls["n"] == crash_at:
            raise Crash
        x, y = batch
        pred, state = model(x, state)
        return StepOutput(loss=nn.functional.mse_loss(pred, y[..., :1]), state=state)

    torch.manual_seed(0)
    model = Net()  # two layers with dropout between them: draws from torch's RNG every step
    series = torch.randn(400, 3, generator=torch.Generator().manual_seed(4)).numpy()
    cfg = TrainConfig(epochs=2, lr=0.01, carry_state_across_batches=True, checkpoint_every_steps=2, progress=False)
    Trainer(model, loss_fn, cfg, run_dir=run_dir).fit(SeriesStream(series, 4, 10), resume=resume)
    return model.state_dict()


def test_resume_at_a_batch_edge_of_a_source_with_iter_from_restores_the_rng(tmp_path: Path) -> None:
    full = _series_run(tmp_path / "a")
    with pytest.raises(Crash):
        _series_run(tmp_path / "b", crash_at=5)  # after the checkpoint at step 4, a batch edge (one chunk a batch)
    assert same(full, _series_run(tmp_path / "b", resume=True))


def test_dataloader_with_its_own_generator_resumes_exactly(tmp_path: Path) -> None:
    def run(run_dir, crash_at=None, resume=False):
        torch.manual_seed(0)
        model = Net()
        x, y = data()
        loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(7))
        Trainer(model, make_loss(crash_at), config(), run_dir=run_dir).fit(loader, resume=resume)
        return model.state_dict()

    full = run(tmp_path / "a")
    with pytest.raises(Crash):
        run(tmp_path / "b", crash_at=9)  # epoch 2: its shuffle comes from the loader's generator
    assert same(full, run(tmp_path / "b", resume=True))


def _early_stopping_run(run_dir, resume=False, eval_crash_at=None):
    torch.manual_seed(0)
    model = Net()
    x, y = data()

    def eval_fn(model, val):
        epoch = len(trainer.history) + 1  # the epoch being validated
        if epoch == eval_crash_at:
            raise Crash
        pred, _ = model(x[:8])
        return {"val_loss": float(nn.functional.mse_loss(pred, y[:8])) + (0.5 if epoch == 3 else 0.0)}

    cfg = config(epochs=5, early_stopping_patience=1, schedule="constant")
    trainer = Trainer(model, make_loss(), cfg, run_dir=run_dir, eval_fn=eval_fn, callbacks=[GateStatistics()])
    trainer.fit(DataLoader(TensorDataset(x, y), batch_size=8), val_data=[0], resume=resume)
    return trainer, model.state_dict()


def test_resuming_a_finished_early_stopped_run_gives_the_best_weights(tmp_path: Path) -> None:
    trainer, best = _early_stopping_run(tmp_path / "a")
    assert trainer.stop_reason == "early_stopping" and trainer.best_epoch == 2
    again, weights = _early_stopping_run(tmp_path / "a", resume=True)
    assert same(best, weights) and again.best_epoch == 2


def test_a_best_marker_lost_to_a_crash_is_mended_on_resume(tmp_path: Path, monkeypatch) -> None:
    real, calls = ckpt._mark_best, {"n": 0}

    def crash_on_second(root, source):  # epoch 2 improves: killed after its checkpoint, before its best marker
        calls["n"] += 1
        if calls["n"] == 2:
            raise Crash
        real(root, source)

    with monkeypatch.context() as m:
        m.setattr(ckpt, "_mark_best", crash_on_second)
        with pytest.raises(Crash):
            _early_stopping_run(tmp_path / "b")
    _, resumed = _early_stopping_run(tmp_path / "b", resume=True)
    _, clean = _early_stopping_run(tmp_path / "clean")
    assert same(clean, resumed)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "b", best=True)] == ["best-step-00000012-end"]


def test_gate_columns_survive_a_resume_after_the_last_step_of_an_epoch(tmp_path: Path) -> None:
    with pytest.raises(Crash):
        _early_stopping_run(tmp_path / "r", eval_crash_at=1)  # epoch 1 trained (checkpoint at step 3), not validated
    _early_stopping_run(tmp_path / "r", resume=True)  # the resumed epoch 1 has no training forward
    header = (tmp_path / "r" / "metrics.csv").read_text().splitlines()[0]
    assert "lstm.gate_sat_i" not in header and "gate_sat_f" in header


def test_a_run_that_failed_before_its_first_step_can_be_started_again(tmp_path: Path) -> None:
    with pytest.raises(Crash):
        train(tmp_path / "r", config(), crash_at=1)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "r")] == ["step-00000000"]
    train(tmp_path / "r", config(lr=0.02))  # a corrected config starts afresh: nothing had been trained


def test_run_config_must_be_json_and_int_keys_resume(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="JSON-serialisable"):
        Trainer(Net(), make_loss(), config(), run_config={"out": tmp_path})
    torch.manual_seed(0)
    x, y = data()
    trainer = Trainer(Net(), make_loss(5), config(), run_dir=tmp_path / "k", run_config={"layers": {1: 8}})
    with pytest.raises(Crash):
        trainer.fit(DataLoader(TensorDataset(x, y), batch_size=8))
    again = Trainer(Net(), make_loss(), config(), run_dir=tmp_path / "k", run_config={"layers": {1: 8}})
    again.fit(DataLoader(TensorDataset(x, y), batch_size=8), resume=True)
