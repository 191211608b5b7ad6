"""A seeded CPU training run for the crash-and-resume test: ``python resume_job.py RUN_DIR [--resume] [--slow]``.

Two-layer LSTM with dropout (draws from torch's RNG), a shuffling DataLoader (draws its order from torch's RNG at each
epoch start), truncated BPTT with the state carried between chunks, Adam with a cosine schedule, and a checkpoint
every 3 optimizer steps. Writes ``final.safetensors`` (the trained weights) when it ends. ``--slow`` sleeps 20 ms per
step so that a test can kill it mid-epoch.
"""

import sys
import time
from pathlib import Path

import safetensors.torch
import torch
from torch.utils.data import DataLoader, TensorDataset

from lstmkit.nn import LSTM
from lstmkit.train import StepOutput, TrainConfig, Trainer


class Model(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = LSTM(3, 16, num_layers=2, dropout=0.3)
        self.head = torch.nn.Linear(16, 1)

    def forward(self, x, state=None):
        out, state = self.lstm(x, state)  # (B, T, 16)
        return self.head(out), state


def main() -> None:
    run_dir, resume, slow = Path(sys.argv[1]), "--resume" in sys.argv, "--slow" in sys.argv
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(123)
    x = torch.randn(40, 12, 3, generator=g)
    y = x.cumsum(1)[..., :1] * 0.1  # (40, 12, 1)
    torch.manual_seed(0)
    model = Model()

    def loss_fn(model, batch, state):
        if slow:
            time.sleep(0.02)
        xb, yb = batch
        pred, new_state = model(xb, state)
        return StepOutput(loss=torch.nn.functional.mse_loss(pred, yb), state=new_state)

    cfg = TrainConfig(
        epochs=4, lr=0.01, schedule="cosine", tbptt_steps=6, checkpoint_every_steps=3, keep_checkpoints=2, seed=5,
        progress=False,
    )  # fmt: skip
    loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True)
    trainer = Trainer(model, loss_fn, cfg, run_dir=run_dir, run_config={"job": "resume_job"})
    trainer.fit(loader, val_data=[(x[:8], y[:8])], resume=resume)
    weights = {k: v.contiguous() for k, v in model.state_dict().items()}
    safetensors.torch.save_file(weights, run_dir / "final.safetensors")
    print(f"done at step {trainer.global_step}", flush=True)


if __name__ == "__main__":
    main()
