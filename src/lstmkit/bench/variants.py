"""The ``variants`` suite: each variant in training vs plain ``torch.nn.LSTM`` and an ``LSTMCell`` loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .. import nn as lnn
from .core import TARGET_VARIANT, Config, Row, Settings
from .peers import CellLoop, train_fn


def _variants(cfg: Config) -> dict[str, dict[str, Any]]:
    proj = cfg.H // 2
    return {
        "layer_norm": {"layer_norm": True},
        "peephole": {"peephole": True},
        "recurrent_dropout=0.25": {"recurrent_dropout": 0.25},
        "zoneout=0.1": {"zoneout": 0.1},
        "proj_size=H/2": {"proj_size": proj},
        "all": {"layer_norm": True, "peephole": True, "recurrent_dropout": 0.25, "zoneout": 0.1, "proj_size": proj},
    }


def suite_variants(settings: Settings, progress: Callable[[str], None]) -> list[Row]:
    """Each variant in training vs plain torch.nn.LSTM (target) and vs a torch.nn.LSTMCell loop (context), b c."""
    rows = []
    for name in ("b", "c"):
        cfg = settings.configs[name]
        torch.manual_seed(0)
        x = torch.randn(cfg.B, cfg.T, cfg.I)
        peer = torch.nn.LSTM(cfg.I, cfg.H, cfg.L, batch_first=True)
        loop = CellLoop(cfg.I, cfg.H, cfg.L)
        fns = {"torch": train_fn(peer, x), "cell_loop": train_fn(loop, x)}
        paths = {}
        for case, kwargs in _variants(cfg).items():
            model = lnn.LSTM(cfg.I, cfg.H, cfg.L, batch_first=True, backend="auto", **kwargs)
            paths[case] = model.explain().backend
            fns[case] = train_fn(model, x)
        progress(f"variants {name} train ({len(fns)} callables)")
        t = settings.measure(fns)
        for case in _variants(cfg):
            note = f"auto -> {paths[case]}"
            if paths[case] == "torch" and "proj" in case:
                note += " (with proj_size torch leaves oneDNN for its default implementation)"
            rows.append(Row("variants", name, f"{case} train", cfg.shape(), "s/call", t[case], "torch.nn.LSTM (plain)",
                            t["torch"], TARGET_VARIANT, note=note))  # fmt: skip
            rows.append(Row("variants", name, f"{case} train", cfg.shape(), "s/call", t[case],
                            "torch.nn.LSTMCell loop (plain)", t["cell_loop"], None, note="context"))  # fmt: skip
    return rows
