"""The ``jax`` suite: lstmkit (auto) vs a jitted JAX ``lax.scan`` LSTM with the same weights."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .core import Row, Settings
from .peers import import_jax, infer_fn, pair, train_fn


def _jax_lstm(jax, jnp, params: list[tuple[Any, Any, Any]]):
    """A ``lax.scan`` LSTM stack, batch first; ``params`` per layer: W_ih^T (I, 4H), W_hh^T (H, 4H), b (4H,)."""

    def layer(x, w_ih_t, w_hh_t, b):  # x (T, B, I)
        H = w_hh_t.shape[0]
        xp = x @ w_ih_t + b  # (T, B, 4H), one product for all steps

        def cell(carry, xp_t):
            h, c = carry
            z = xp_t + h @ w_hh_t
            i, f, g, o = jnp.split(z, 4, axis=-1)
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            return (h, c), h

        zeros = jnp.zeros((x.shape[1], H), x.dtype)
        _, hs = jax.lax.scan(cell, (zeros, zeros), xp)
        return hs

    def forward(p, x):
        h = jnp.swapaxes(x, 0, 1)
        for w_ih_t, w_hh_t, b in p:
            h = layer(h, w_ih_t, w_hh_t, b)
        return jnp.swapaxes(h, 0, 1)

    infer = jax.jit(forward)
    train = jax.jit(jax.grad(lambda p, x: forward(p, x).sum()))
    return train, infer


def suite_jax(settings: Settings, progress: Callable[[str], None]) -> list[Row]:
    """lstmkit (auto) vs a jitted JAX lax.scan LSTM with the same weights, train and infer, b c d."""
    jax, jnp = import_jax()
    rows = []
    for name, cfg in settings.configs.items():
        torch.manual_seed(0)
        mine, peer = pair(cfg)
        x = torch.randn(cfg.B, cfg.T, cfg.I)
        params = [
            tuple(
                jnp.asarray(a)
                for a in (
                    getattr(peer, f"weight_ih_l{k}").detach().T.contiguous().numpy(),
                    getattr(peer, f"weight_hh_l{k}").detach().T.contiguous().numpy(),
                    (getattr(peer, f"bias_ih_l{k}") + getattr(peer, f"bias_hh_l{k}")).detach().numpy(),
                )
            )
            for k in range(cfg.L)
        ]
        xj = jnp.asarray(x.numpy())
        j_train, j_infer = _jax_lstm(jax, jnp, params)
        for case, make, jfn in (("train", train_fn, j_train), ("infer", infer_fn, j_infer)):
            progress(f"jax {name} {case}")

            def jax_call(jfn=jfn, params=params, xj=xj) -> None:
                jax.block_until_ready(jfn(params, xj))

            t = settings.measure({"lstmkit": make(mine, x), "jax": jax_call})
            rows.append(Row("jax", name, case, cfg.shape(), "s/call", t["lstmkit"], "JAX lax.scan (jit)", t["jax"],
                            None, note="context; training = grad of outputs.sum() w.r.t. the weights"))  # fmt: skip
    return rows
