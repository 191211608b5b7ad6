"""The ``plain`` suite: lstmkit ``LSTM`` (backend ``auto``) vs ``torch.nn.LSTM``, training and inference."""

from __future__ import annotations

from collections.abc import Callable

import torch

from .core import TARGET_PLAIN, Row, Settings
from .peers import infer_fn, pair, train_fn


def suite_plain(settings: Settings, progress: Callable[[str], None]) -> list[Row]:
    """Plain LSTM (auto) vs torch.nn.LSTM, train and infer, b c d."""
    rows = []
    for name, cfg in settings.configs.items():
        torch.manual_seed(0)
        mine, peer = pair(cfg)
        x = torch.randn(cfg.B, cfg.T, cfg.I)
        path = mine.explain().backend
        for case, make in (("train", train_fn), ("infer", infer_fn)):
            progress(f"plain {name} {case}")
            t = settings.measure({"lstmkit": make(mine, x), "torch": make(peer, x)})
            rows.append(
                Row("plain", name, case, cfg.shape(), "s/call", t["lstmkit"], "torch.nn.LSTM", t["torch"],
                    TARGET_PLAIN, note=f"auto -> {path}")
            )  # fmt: skip
    return rows
