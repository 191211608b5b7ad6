"""The ``streaming`` suite: ``LSTM.step`` at batch 1 vs a one-step torch call, a JAX step and the gemv floor."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .. import nn as lnn
from .core import TARGET_STREAM_JAX, TARGET_STREAM_TORCH, Partial, Row, Settings, Skip
from .peers import import_jax


def _jax_step_fn(jax, jnp, weight: np.ndarray, bias: np.ndarray, x: np.ndarray, H: int):
    """A jitted single LSTM step with packed weights (I+H, 4H), carrying its state; blocks on the result."""

    @jax.jit
    def step(w, b, x_t, h, c):
        z = jnp.concatenate([x_t, h], axis=-1) @ w + b
        i, f, g, o = jnp.split(z, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return h, c

    w, b, xj = jnp.asarray(weight), jnp.asarray(bias), jnp.asarray(x)
    state = [jnp.zeros((1, H), jnp.float32), jnp.zeros((1, H), jnp.float32)]

    def call() -> None:
        h, c = step(w, b, xj, state[0], state[1])
        jax.block_until_ready((h, c))
        state[0], state[1] = h, c

    return call


def suite_streaming(settings: Settings, progress: Callable[[str], None]) -> list[Row]:
    """Batch-1 step latency: lstmkit step vs one-step torch.nn.LSTM, JAX jitted step, and the addmv floor."""
    rows = []
    try:
        jax, jnp = import_jax()
        jax_note = ""
    except Skip as exc:
        jax = jnp = None
        jax_note = str(exc)
    for name, (I, H) in settings.stream_configs.items():
        progress(f"streaming {name}")
        torch.manual_seed(0)
        peer = torch.nn.LSTM(I, H, 1, batch_first=True).eval()
        mine = lnn.LSTM(I, H, 1, batch_first=True).eval()
        mine.load_state_dict(peer.state_dict())
        x_t = torch.randn(1, I)
        x_seq = x_t.reshape(1, 1, I)
        mine_state: list[Any] = [None]
        peer_state: list[Any] = [(torch.zeros(1, 1, H), torch.zeros(1, 1, H))]

        def mine_step(mine=mine, x_t=x_t, st=mine_state) -> None:
            _, st[0] = mine.step(x_t, st[0])

        def peer_step(peer=peer, x_seq=x_seq, st=peer_state) -> None:
            _, st[0] = peer(x_seq, st[0])

        with torch.no_grad():
            weight = torch.cat((peer.weight_ih_l0, peer.weight_hh_l0), dim=1).contiguous()  # (4H, I+H)
            bias = peer.bias_ih_l0 + peer.bias_hh_l0
        vec = torch.randn(I + H)

        def floor(weight=weight, bias=bias, vec=vec) -> None:
            torch.addmv(bias, weight, vec)

        w_np, b_np, v_np = weight.numpy(), bias.numpy(), vec.numpy()

        def floor_numpy(w_np=w_np, b_np=b_np, v_np=v_np) -> None:
            w_np @ v_np + b_np  # OpenBLAS gemv: much faster than MKL's at batch 1 on some CPUs

        fns: dict[str, Callable[[], Any]] = {
            "lstmkit": mine_step, "torch": peer_step, "floor": floor, "floor_numpy": floor_numpy
        }  # fmt: skip
        if jax is not None:
            fns["jax"] = _jax_step_fn(
                jax, jnp, weight.T.contiguous().numpy(), bias.numpy(), x_t.numpy(), H
            )  # same weights, (I+H, 4H)
        blas_limit, blas_note = _blas_threads(settings.threads)
        with torch.inference_mode(), blas_limit:
            t = settings.measure(fns)
        shape = f"B=1 I={I} H={H} L=1"
        rows.append(Row("streaming", name, "step", shape, "s/step", t["lstmkit"], "torch.nn.LSTM one-step call",
                        t["torch"], TARGET_STREAM_TORCH.get(name), note="inference_mode, state carried"))  # fmt: skip
        if "jax" in t:
            rows.append(Row("streaming", name, "step", shape, "s/step", t["lstmkit"], "JAX jitted step", t["jax"],
                            TARGET_STREAM_JAX, note="same weights, blocks on the result"))  # fmt: skip
        rows.append(Row("streaming", name, "step", shape, "s/step", t["lstmkit"], "torch.addmv (4H, I+H) floor",
                        t["floor"], None, note="context: the bare matrix-vector product"))  # fmt: skip
        note = f"context: the same product through numpy's BLAS; {blas_note}"
        rows.append(Row("streaming", name, "step", shape, "s/step", t["lstmkit"], "numpy (4H, I+H) @ v floor",
                        t["floor_numpy"], None, note=note))  # fmt: skip
    if jax_note:
        raise Partial(rows, f"streaming: JAX peer skipped: {jax_note}")
    return rows


def _blas_threads(threads: int) -> tuple[contextlib.AbstractContextManager, str]:
    """A context limiting numpy's BLAS pool to ``threads`` (threadpoolctl, if installed), and a note saying which."""
    try:
        threadpoolctl = importlib.import_module("threadpoolctl")
    except ImportError:
        return contextlib.nullcontext(), "numpy's BLAS threads not set (threadpoolctl is not installed)"
    return threadpoolctl.threadpool_limits(limits=threads, user_api="blas"), f"numpy's BLAS at {threads} thread(s)"
