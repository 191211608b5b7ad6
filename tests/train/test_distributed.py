"""Data-parallel training (issue 5): 2 CPU processes under torchrun (gloo) against 1 process with the same global
batch: the same weights after one step, the same loss curve, and an exact resume after a crash of the group."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import safetensors.torch
import torch

from lstmkit.train import checkpoint as ckpt
from lstmkit.train.distributed import shard_batch

JOB = Path(__file__).with_name("ddp_job.py")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def launch(out: Path, nproc: int, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(JOB), str(out), *args]
    if nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", *cmd[1:]]
    proc = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ddp")
    launch(root / "one", 1)
    launch(root / "two", 2)
    return {"one": root / "one", "two": root / "two", "root": root}


def weights_at(run: Path, step: int) -> dict[str, torch.Tensor]:
    return safetensors.torch.load_file(run / ckpt.CHECKPOINT_DIR / f"step-{step:08d}" / ckpt.MODEL_FILE)


def losses(run: Path) -> list[float]:
    with (run / "metrics.csv").open() as f:
        return [float(row["train_loss"]) for row in csv.DictReader(f)]


@pytest.mark.slow
def test_two_processes_take_the_same_first_step_as_one(runs: dict[str, Path]) -> None:
    before_one, before_two = weights_at(runs["one"], 0), weights_at(runs["two"], 0)
    assert all(torch.equal(before_one[k], before_two[k]) for k in before_one)
    one, two = weights_at(runs["one"], 1), weights_at(runs["two"], 1)
    for k in one:
        assert not torch.equal(one[k], before_one[k]) or k.startswith("lstm.bias")  # the step moved the weights
        torch.testing.assert_close(two[k], one[k], rtol=1e-5, atol=1e-6, msg=f"{k} differs after one step")


@pytest.mark.slow
def test_the_two_process_loss_curve_tracks_the_single_process_one(runs: dict[str, Path]) -> None:
    one, two = losses(runs["one"]), losses(runs["two"])
    assert len(one) == len(two) == 6 and one[-1] < 0.3 * one[0]  # it learns
    for epoch, (a, b) in enumerate(zip(one, two, strict=True), start=1):
        assert abs(a - b) <= 1e-4 * abs(a), f"epoch {epoch}: 1 process {a}, 2 processes {b}"


@pytest.mark.slow
def test_a_crashed_two_process_run_resumes_exactly(runs: dict[str, Path]) -> None:
    cut = runs["root"] / "cut"
    crashed = launch(cut, 2, "--crash-at", "21", check=False)  # mid-epoch 3 (8 steps an epoch)
    assert crashed.returncode != 0 and not (cut / "final.safetensors").exists()
    launch(cut, 2, "--resume")
    a = safetensors.torch.load_file(runs["two"] / "final.safetensors")
    b = safetensors.torch.load_file(cut / "final.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert losses(cut) == pytest.approx(losses(runs["two"]), rel=0, abs=0)


def test_shard_batch_splits_rows_and_leaves_the_rest() -> None:
    x, y, note = torch.arange(10).view(5, 2), torch.arange(5), torch.tensor(7.0)
    parts = [shard_batch((x, y, note), r, 2) for r in range(2)]
    assert torch.equal(torch.cat([p[0] for p in parts]), x) and torch.equal(torch.cat([p[1] for p in parts]), y)
    assert parts[0][0].shape[0] == 3 and parts[1][2] is note
    with pytest.raises(ValueError, match="cannot be shared by 8 processes"):
        shard_batch((x,), 0, 8)
