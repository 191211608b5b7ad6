"""Long sequences in bounded memory: truncated BPTT over a 100,000-step series and a 1 GB text file.

Each configuration runs in a fresh process that reports its own peak resident memory (``ru_maxrss``), measured
after the imports and the model (``rss_before_mb``) and at the end (``peak_rss_mb``). The series is a memory-mapped
``.npy`` file, the text is read with ``pread``; neither is ever read whole, so peak memory must not grow with the data.
A control of each kind with 100x less data shows that.

    .venv/bin/python experiments/scale.py --workdir /tmp/lstmkit-scale     # ~5 minutes on 2 cores; needs 1.1 GB disk

Writes ``experiments/results/scale.jsonl`` and ``docs/results/scale.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from _results import write_keeping_notes

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results" / "scale.jsonl"
DOC = ROOT / "docs" / "results" / "scale.md"

CONFIGS = [
    # name, kind, size (steps or bytes), max_steps (None: whole epochs), epochs
    ("series-100k", "series", 100_000, None, 3),
    ("series-10M (control: 100x longer)", "series", 10_000_000, 300, 1),
    ("text-1GB", "text", 1_000_000_000, 300, 1),
    ("text-10MB (control: 100x smaller)", "text", 10_000_000, 300, 1),
]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def make_series(path: Path, n: int) -> None:
    """Sum of three sines plus noise, float32, written in blocks (never whole in memory)."""
    import numpy as np

    if path.exists():
        return
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, 1))
    rng = np.random.default_rng(0)
    block = 1_000_000
    for s in range(0, n, block):
        t = np.arange(s, min(s + block, n), dtype=np.float64)
        v = np.sin(t / 7.0) + 0.5 * np.sin(t / 23.0) + 0.25 * np.sin(t / 61.0) + 0.05 * rng.normal(size=t.shape)
        out[s : s + len(t), 0] = v
    out.flush()
    del out


def make_text(path: Path, size: int) -> None:
    """Real text of exactly ``size`` bytes: Python's standard library sources, repeated."""
    if path.exists() and path.stat().st_size == size:
        return
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    corpus = b"".join(p.read_bytes() for p in sorted(stdlib.glob("*.py")))
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as f:
        written = 0
        while written < size:
            chunk = corpus[: size - written]
            f.write(chunk)
            written += len(chunk)
    os.replace(tmp, path)


def run_one(name: str, kind: str, size: int, max_steps: int | None, epochs: int, workdir: Path) -> dict:
    """Train one configuration in this process and return its measurements."""
    import numpy as np
    import torch
    from torch import nn

    from lstmkit.data import ByteStream, SeriesStream
    from lstmkit.nn import LSTM
    from lstmkit.train import StepOutput, TrainConfig, Trainer

    torch.set_num_threads(2)
    torch.manual_seed(0)
    if kind == "series":
        path = workdir / f"series-{size}.npy"
        data = SeriesStream(np.load(path, mmap_mode="r"), batch_size=32, chunk_steps=100)

        class Model(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.lstm, self.head = LSTM(1, 64), nn.Linear(64, 1)

            def forward(self, x, state=None):
                out, state = self.lstm(x, state)  # (B, k, 64)
                return self.head(out), state

        def loss_fn(model, batch, state):
            x, y = batch
            pred, state = model(x, state)
            return StepOutput(loss=nn.functional.mse_loss(pred, y), state=state)

    else:
        path = workdir / f"text-{size}.txt"
        data = ByteStream(path, batch_size=64, chunk_steps=100)

        class Model(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.embed, self.lstm, self.head = nn.Embedding(256, 32), LSTM(32, 256), nn.Linear(256, 256)

            def forward(self, x, state=None):
                out, state = self.lstm(self.embed(x), state)  # (B, k, 256)
                return self.head(out), state

        def loss_fn(model, batch, state):
            x, y = batch
            logits, state = model(x, state)
            loss = nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
            return StepOutput(loss=loss, state=state, n_items=x.numel())

    model = Model()
    run_dir = workdir / "runs" / name.split(" ")[0]
    if run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)
    before = rss_mb()
    cfg = TrainConfig(
        epochs=epochs, lr=3e-3, carry_state_across_batches=True, max_steps=max_steps, checkpoint_every_steps=100,
        log_every_steps=10, progress=False,
    )  # fmt: skip
    t0 = time.perf_counter()
    history = Trainer(model, loss_fn, cfg, run_dir=run_dir).fit(data)
    seconds = time.perf_counter() - t0
    steps_csv = (run_dir / "steps.csv").read_text().splitlines()
    first_loss = float(steps_csv[1].split(",")[2])
    return {
        "name": name, "kind": kind, "size": size, "file_mb": round(path.stat().st_size / 2**20, 1),
        "batches_per_epoch": len(data), "steps": history[-1]["step"], "epochs_run": len(history),
        "first_logged_loss": round(first_loss, 4), "final_train_loss": round(history[-1]["train_loss"], 4),
        "seconds": round(seconds, 1), "rss_before_mb": round(before, 1), "peak_rss_mb": round(rss_mb(), 1),
    }  # fmt: skip


def write_doc(rows: list[dict], command: str, started: str, seconds: float) -> None:
    lines = [
        "# Long sequences in bounded memory",
        "",
        f"Measured {started} on {platform.processor() or platform.machine()} ({os.cpu_count()} cores), "
        f"Python {platform.python_version()}, 2 torch threads, one fresh process per row; {seconds:.0f} s in all.",
        "",
        "```",
        command,
        "```",
        "",
        "Truncated BPTT (k = 100 steps, state carried across batches) over streams cut from one long sequence "
        "(`lstmkit.data.SeriesStream` on a memory-mapped `.npy`, `lstmkit.data.ByteStream` reading with `pread`). "
        "Series: LSTM(1, 64) + linear, next-step MSE, 32 streams. Text: byte-level LM, embedding 32, LSTM(32, 256), "
        "64 streams, cross-entropy in nats per byte. Checkpoints every 100 steps. `rss_before` is the process's "
        "peak resident memory after the imports and the model; `peak_rss` at the end.",
        "",
        "| run | data | batches an epoch | steps | loss: first step → last epoch mean | seconds "
        "| peak RSS before training | peak RSS at the end |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['file_mb']:,} MB | {r['batches_per_epoch']:,} | {r['steps']:,} "
            f"({r['epochs_run']} epoch{'s' if r['epochs_run'] > 1 else ''}) | {r['first_logged_loss']} → "
            f"{r['final_train_loss']} | {r['seconds']} | {r['rss_before_mb']:.0f} MB | {r['peak_rss_mb']:.0f} MB |"
        )
    write_keeping_notes(DOC, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/lstmkit-scale"))
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: run config index in this process
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.one is not None:
        print(json.dumps(run_one(*CONFIGS[args.one], workdir=args.workdir)))
        return
    started, t0 = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), time.perf_counter()
    for _, kind, size, _, _ in CONFIGS:
        (make_series if kind == "series" else make_text)(
            args.workdir / (f"series-{size}.npy" if kind == "series" else f"text-{size}.txt"), size
        )
    rows = []
    for i in range(len(CONFIGS)):
        out = subprocess.run(
            [sys.executable, __file__, "--workdir", str(args.workdir), "--one", str(i)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        row = json.loads(out.stdout.strip().splitlines()[-1])
        print(json.dumps(row), flush=True)
        rows.append(row)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as f:
        for row in rows:
            f.write(json.dumps({**row, "measured": started}) + "\n")
    write_doc(rows, f"python experiments/scale.py --workdir {args.workdir}", started, time.perf_counter() - t0)


if __name__ == "__main__":
    main()
