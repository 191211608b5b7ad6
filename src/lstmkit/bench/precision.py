"""The ``precision`` suite: bfloat16 autocast vs float32 for the same model and input."""

from __future__ import annotations

from collections.abc import Callable

import torch

from .. import nn as lnn
from .core import TARGET_BF16_TRAIN, Row, Settings
from .peers import infer_fn


def _autocast_fn(fn: Callable[[], None], dtype: torch.dtype | None) -> Callable[[], None]:
    """``fn`` run inside ``torch.autocast("cpu", dtype=dtype)``; ``dtype=None``: ``fn`` itself (float32)."""
    if dtype is None:
        return fn

    def under_autocast() -> None:
        with torch.autocast("cpu", dtype=dtype):
            fn()

    return under_autocast


def _train_autocast_fn(model: torch.nn.Module, x: torch.Tensor, dtype: torch.dtype | None) -> Callable[[], None]:
    """:func:`train_fn` with the forward under autocast and the backward outside it (PyTorch's recommended use)."""
    params = list(model.parameters())
    model.train()

    def train() -> None:
        for p in params:
            p.grad = None
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            out, _ = model(x)
        out.float().sum().backward()

    return train


def suite_precision(settings: Settings, progress: Callable[[str], None]) -> list[Row]:
    """bfloat16 autocast vs float32, the same model and input: lstmkit (auto) plain and layer_norm, on c.

    Each row's ``lstmkit`` side is the bfloat16 time and its peer the float32 time of the same model, so
    ``ratio = float32 time / bfloat16 time`` (above 1: bfloat16 is faster). Context rows give the same ratio for
    ``torch.nn.LSTM`` under autocast and for a bare 2048^3 matrix product, the hardware's own bf16/fp32 ratio.
    """
    rows = []
    bf16 = torch.bfloat16
    cfg = settings.configs["c"]
    torch.manual_seed(0)
    x = torch.randn(cfg.B, cfg.T, cfg.I)
    models = {
        "plain": lnn.LSTM(cfg.I, cfg.H, cfg.L, batch_first=True, backend="auto"),
        "layer_norm": lnn.LSTM(cfg.I, cfg.H, cfg.L, batch_first=True, backend="auto", layer_norm=True),
        "torch.nn.LSTM": torch.nn.LSTM(cfg.I, cfg.H, cfg.L, batch_first=True),
    }
    for name, model in models.items():
        path = model.explain().backend if isinstance(model, lnn.LSTM) else "PyTorch's own autocast"
        for case in ("train", "infer"):
            progress(f"precision c {name} {case}")
            if case == "train":
                fns = {"bf16": _train_autocast_fn(model, x, bf16), "fp32": _train_autocast_fn(model, x, None)}
            else:
                fns = {"bf16": _autocast_fn(infer_fn(model, x), bf16), "fp32": infer_fn(model, x)}
            t = settings.measure(fns)
            target = TARGET_BF16_TRAIN if (name, case) == ("plain", "train") else None
            label = name if isinstance(model, lnn.LSTM) else "context: torch.nn.LSTM"
            note = f"autocast(cpu, bfloat16); auto -> {path}" if isinstance(model, lnn.LSTM) else "context"
            rows.append(Row("precision", "c", f"{label} {case} bf16", cfg.shape(), "s/call", t["bf16"],
                            f"{label} float32", t["fp32"], target, note=note))  # fmt: skip
    n = 64 if settings.quick else 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    a16, b16 = a.to(bf16), b.to(bf16)
    progress("precision matmul")
    t = settings.measure({"bf16": lambda: a16 @ b16, "fp32": lambda: a @ b})
    rows.append(Row("precision", "matmul", "torch.mm bf16", f"{n}x{n} @ {n}x{n}", "s/call", t["bf16"],
                    "torch.mm float32", t["fp32"], None,
                    note="context: the CPU's own bf16/fp32 matrix-product ratio"))  # fmt: skip
    return rows
