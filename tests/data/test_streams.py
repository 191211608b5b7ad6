"""Long sequences in bounded memory (issue 5): stream layout, file reading, resume, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from lstmkit.data import ByteStream, SeriesStream
from lstmkit.nn import LSTM
from lstmkit.train import StepOutput, TrainConfig, Trainer


def test_series_batches_continue_each_stream_and_targets_are_one_step_ahead() -> None:
    series = np.arange(1000, dtype=np.float32).reshape(500, 2)  # (N=500, F=2)
    s = SeriesStream(series, batch_size=4, chunk_steps=10)
    assert s.stream_len == 125 and len(s) == 12
    batches = list(s)
    x0, y0 = batches[0]
    x1, _ = batches[1]
    assert x0.shape == (4, 10, 2) and y0.shape == (4, 10, 2)
    assert torch.equal(y0[:, :-1], x0[:, 1:])  # next-step targets
    assert torch.equal(x1[:, 0], y0[:, -1])  # batch j+1 continues batch j in every stream
    assert torch.equal(x0[2, 0], torch.tensor(series[2 * 125]))  # stream b starts at b * stream_len
    assert [torch.equal(a[0], b[0]) for a, b in zip(list(s.iter_from(5)), batches[5:], strict=True)] == [True] * 7


def test_series_from_a_memory_map_with_separate_targets(tmp_path: Path) -> None:
    path = tmp_path / "series.npy"
    np.save(path, np.random.default_rng(0).normal(size=(400, 3)).astype(np.float32))
    series = np.load(path, mmap_mode="r")
    s = SeriesStream(series, batch_size=2, chunk_steps=20, targets=np.asarray(series[:, 0]))
    x, y = next(iter(s))
    assert x.shape == (2, 20, 3) and y.shape == (2, 20, 1) and torch.equal(y[..., 0], x[..., 0])


def test_bytes_stream_reads_the_file_bytes(tmp_path: Path) -> None:
    data = bytes(range(256)) * 20  # 5,120 bytes
    path = tmp_path / "corpus.txt"
    path.write_bytes(data)
    s = ByteStream(path, batch_size=4, chunk_steps=16)
    assert s.stream_len == 1280 and len(s) == 79
    batches = list(s)
    x, y = batches[3]
    assert x.dtype == torch.int64 and x.shape == (4, 16)
    for b in range(4):
        start = b * 1280 + 3 * 16
        assert x[b].tolist() == list(data[start : start + 16]) and y[b].tolist() == list(data[start + 1 : start + 17])
    assert all(torch.equal(a[0], b[0]) for a, b in zip(s.iter_from(70), batches[70:], strict=True))
    tail = ByteStream(path, batch_size=1, chunk_steps=8, start=5000)
    assert next(iter(tail))[0][0].tolist() == list(data[5000:5008])


def test_stream_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="too short for 8 streams"):
        SeriesStream(np.zeros(50), batch_size=8, chunk_steps=10)
    with pytest.raises(ValueError, match=r"shaped \(N,\) or \(N, F\)"):
        SeriesStream(np.zeros((2, 3, 4)), batch_size=1, chunk_steps=1)
    with pytest.raises(FileNotFoundError, match="No file at"):
        ByteStream(tmp_path / "missing.txt", 2, 4)
    (tmp_path / "f").write_bytes(b"x" * 100)
    with pytest.raises(ValueError, match="does not fit"):
        ByteStream(tmp_path / "f", 2, 4, start=90, stop=200)


class ByteLM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(256, 8)
        self.lstm = LSTM(8, 16)
        self.head = nn.Linear(16, 256)

    def forward(self, x, state=None):
        out, state = self.lstm(self.embed(x), state)  # (B, k, 16)
        return self.head(out), state


def test_truncated_bptt_over_a_byte_stream_resumes_exactly(tmp_path: Path) -> None:
    path = tmp_path / "text.txt"
    path.write_bytes(("the quick brown fox jumps over the lazy dog. " * 60).encode())
    calls = {"n": 0, "crash": None}

    def loss_fn(model, batch, state):
        calls["n"] += 1
        if calls["n"] == calls["crash"]:
            raise KeyboardInterrupt
        x, y = batch
        logits, state = model(x, state)
        return StepOutput(loss=nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten()), state=state)

    cfg = TrainConfig(epochs=2, lr=0.01, carry_state_across_batches=True, checkpoint_every_steps=3, progress=False)

    def run(run_dir: Path, crash: int | None = None, resume: bool = False) -> dict[str, torch.Tensor]:
        calls["n"], calls["crash"] = 0, crash
        torch.manual_seed(0)
        model = ByteLM()
        Trainer(model, loss_fn, cfg, run_dir=run_dir).fit(ByteStream(path, 4, 20), resume=resume)
        return model.state_dict()

    full = run(tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b", crash=41)  # epoch 2 (33 batches an epoch), after the checkpoint at step 39
    resumed = run(tmp_path / "b", resume=True)
    assert all(torch.equal(full[k], resumed[k]) for k in full)
