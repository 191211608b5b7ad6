"""A crash test per training task (issue 18): each task's ``train`` command runs in a subprocess, is killed with
SIGKILL at a random point while it trains (inside an epoch after a random number of epoch-end checkpoints), and is
resumed with ``--resume``; the final weights must equal those of an uninterrupted run, tensor for tensor."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import safetensors.torch

sys.path.insert(0, str(Path(__file__).parent))
from test_run_directory import (  # noqa: E402  (the tiny runs, and their data as fixtures)
    _anomaly,
    _classify,
    _monthly,
    _text,
    handwriting_data,  # noqa: F401
    speech_data,  # noqa: F401
)

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}

def _with_epochs(argv: list[str], epochs: str) -> list[str]:
    """The run directory tests' arguments with another --epochs."""
    argv = list(argv)
    argv[argv.index("--epochs") + 1] = epochs
    return argv


TASKS = {
    "forecast": lambda tmp: ["forecast", "train", *_with_epochs(_monthly(tmp / "m.csv"), "12")],
    "anomaly": lambda tmp: ["anomaly", "train", *_anomaly(tmp / "a.csv", "reconstruction")[:-1], "12"],
    "classify": lambda tmp: ["classify", "train", *_classify(tmp / "c.csv")[:-1], "16"],
    "text": lambda tmp: ["text", "train", *_text(tmp / "t.txt")[:-1], "8"],
    "speech": lambda data: [
        "speech",
        "train",
        "--data",
        str(data),
        "--unidirectional",
        "--hidden-size",
        "8",
        "--layers",
        "1",
        "--epochs",
        "8",
        "--beam",
        "2",
    ],  # fmt: skip
    "handwriting": lambda data: [
        "handwriting",
        "train",
        "--data",
        str(data),
        "--hidden-size",
        "8",
        "--layers",
        "1",
        "--epochs",
        "8",
        "--step",
        "0.5",
        "--beam",
        "2",
    ],  # fmt: skip
}
NEEDS = {"speech": "speech_data", "handwriting": "handwriting_data"}


def _cli(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "lstmkit", *args]


def _checkpoints(run: Path) -> set[str]:
    """The names of the complete checkpoints in ``run`` (or a task's subdirectory) now; older ones get pruned."""
    found = set()
    for root in (run, *run.glob("*/")) if run.is_dir() else ():
        try:
            names = os.listdir(root / "checkpoints")
        except OSError:  # not there (yet), or pruned while we looked
            continue
        found |= {f"{root.name}/{n}" for n in names if n.startswith("step-")
                  and (root / "checkpoints" / n / "trainer.json").exists()}  # fmt: skip
    return found


def _weights(run: Path) -> dict:
    return safetensors.torch.load_file(run / "model.safetensors")


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(TASKS))
def test_sigkill_then_resume_gives_the_uninterrupted_weights(task, tmp_path, request):
    given = request.getfixturevalue(NEEDS[task]) if task in NEEDS else tmp_path
    args = TASKS[task](given)
    clean, cut = tmp_path / "clean", tmp_path / "cut"
    subprocess.run(_cli([*args, "--out", str(clean)]), check=True, env=ENV, capture_output=True, timeout=600)
    rng = random.Random(f"{task}-kill")
    epochs = int(args[args.index("--epochs") + 1])
    k = rng.randint(1, epochs // 2)  # killed during epoch k + 1: after k epoch-end checkpoints, before the last one
    proc = subprocess.Popen(_cli([*args, "--out", str(cut)]), env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline, seen = time.monotonic() + 300, {}  # checkpoint name -> when it was first seen
        while len(seen) < k:
            assert proc.poll() is None, f"the run ended before its checkpoint {k} could be seen; make it longer"
            assert time.monotonic() < deadline, f"no checkpoint {k} in time"
            for name in _checkpoints(cut) - seen.keys():
                seen[name] = time.monotonic()
            time.sleep(0.002)
        first, last = min(seen.values()), max(seen.values())
        epoch = (last - first) / (k - 1) if k > 1 else 0.05  # seconds an epoch takes, roughly
        time.sleep(rng.uniform(0.0, 0.5 * epoch))  # a random point inside the next epoch
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    resumed = subprocess.run(_cli([*args, "--out", str(cut), "--resume"]), env=ENV, capture_output=True, text=True,
                             timeout=600)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = _weights(clean), _weights(cut)
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a), f"{task}: weights differ after the resume"
    shutil.rmtree(tmp_path)
