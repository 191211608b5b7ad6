"""A small seeded training run for the data-parallel tests.

``python ddp_job.py OUT [--crash-at K] [--resume]`` in one process, or under ``torchrun --nproc-per-node 2`` for two:
an LSTM regressor on fixed random data, global batch 8 (each of two processes trains on 4 rows of it), Adam, a
checkpoint after every step (all kept). Rank 0 writes ``OUT/final.safetensors``; the Trainer writes
``OUT/metrics.csv``. ``--crash-at K`` kills the process group (``os._exit`` on rank 0) in the K-th call of the loss.
"""

import os
import sys
from pathlib import Path

import safetensors.torch
import torch

from lstmkit.nn import LSTM
from lstmkit.train import StepOutput, TrainConfig, Trainer
from lstmkit.train.distributed import is_main_process


class Model(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = LSTM(3, 16)
        self.head = torch.nn.Linear(16, 1)

    def forward(self, x):
        out, _ = self.lstm(x)  # (B, T, 16)
        return self.head(out[:, -1])


def main() -> None:
    out = Path(sys.argv[1])
    crash_at = int(sys.argv[sys.argv.index("--crash-at") + 1]) if "--crash-at" in sys.argv else None
    calls = {"n": 0}
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 10, 3, generator=g)
    y = x[:, :, 0].sum(1, keepdim=True) * 0.3
    batches = [(x[i : i + 8], y[i : i + 8]) for i in range(0, 64, 8)]
    torch.manual_seed(0)
    model = Model()

    def loss_fn(model, batch, state):
        calls["n"] += 1
        if calls["n"] == crash_at and is_main_process():
            os._exit(3)  # like a killed process: no clean-up, no exception handling
        xb, yb = batch
        return StepOutput(loss=torch.nn.functional.mse_loss(model(xb), yb))

    cfg = TrainConfig(epochs=6, lr=0.01, seed=0, progress=False, checkpoint_every_steps=1, keep_checkpoints=100)
    Trainer(model, loss_fn, cfg, run_dir=out).fit(batches, val_data=batches[:2], resume="--resume" in sys.argv)
    if is_main_process():
        weights = {k: v.contiguous() for k, v in model.state_dict().items()}
        safetensors.torch.save_file(weights, out / "final.safetensors")


if __name__ == "__main__":
    main()
