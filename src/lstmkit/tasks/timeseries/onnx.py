"""The forecaster's ONNX graphs: its network on the scaled inputs ``Forecaster.predict`` builds (the per-series
scaling, the level, sorting and the conformal widening stay in Python), and the network alone, which the anomaly
detector's prediction method reuses.

What the graphs take and give is listed in :mod:`lstmkit.export.onnx`; :func:`lstmkit.export.onnx.export_onnx` checks
them against the model and writes them. Imported by :meth:`Forecaster.onnx_graphs` on first use.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ...nn.onnx_graph import FLOAT, CheckedGraph, Graph, lstm_sequence, lstm_step
from .forecast_nets import ForecastEnsemble, RecurrentForecastNet

__all__ = ["forecast_network", "forecast_samples", "forecaster_graphs"]


def forecast_network(g: Graph, net: nn.Module, x: str, future: str | None, W: int) -> str:
    """``DirectForecastNet`` / ``RecurrentForecastNet`` at inference (no target): x (B, W, n_inputs), future
    (B, H, F) or None when F = 0 -> quantiles (B, H, Q). The recurrent horizon loop is unrolled (H is fixed by the
    config)."""
    H, Q = net.horizon, net.n_q
    if isinstance(net, RecurrentForecastNet):
        n_in = net.encoder.input_size
        hist = g.slice(x, [0, 0], [W - 1, 2], [1, 2])  # (B, W - 1, 2): y_{t-1}, observed_{t-1}
        if n_in > 2:  # with the covariates of step t: the net's _shift
            hist = g.op("Concat", [hist, g.slice(x, [1, 2], [W, n_in], [1, 2])], axis=2)
        _, h, c = lstm_sequence(g, net.encoder, g.op("Transpose", [hist], perm=[1, 0, 2]), None, None)
        prev = g.op("Squeeze", [g.slice(x, [W - 1, 0], [W, 2], [1, 2]), g.ints([1])])  # (B, 2): last value, flag
        preds = []
        for step in range(H):
            inp = prev if future is None else g.op("Concat", [prev, g.op("Gather", [future, g.ints(step)], axis=1)],
                                                   axis=1)  # fmt: skip
            y, h, c = lstm_step(g, net.encoder, inp, (h, c))  # y (B, hidden)
            q = g.linear(y, net.head)  # (B, Q)
            preds.append(g.op("Unsqueeze", [q, g.ints([1])]))
            median = g.slice(q, [net.median], [net.median + 1], [1])  # (B, 1), fed back as observed
            ones = g.op("Expand", [g.const(np.ones((1, 1))), g.op("Shape", [median])])
            prev = g.op("Concat", [median, ones], axis=1)
        return g.op("Concat", preds, axis=1)  # (B, H, Q)
    _, h_n, _ = lstm_sequence(g, net.encoder, g.op("Transpose", [x], perm=[1, 0, 2]), None, None)
    z = g.op("Gather", [h_n, g.ints(-1)], axis=0)  # (B, hidden): the top layer's last state
    if future is not None:
        z = g.op("Concat", [z, g.op("Reshape", [future, g.ints([0, -1])])], axis=1)  # (B, hidden + H * F)
    out = g.op("Reshape", [g.sequential(z, net.head), g.ints([0, H, Q])])  # (B, H, Q)
    if net.season and W >= net.season and not net.seasonal_mean:  # plus the window's last season over the horizon
        m = net.season
        rows = g.op("Gather", [x, g.ints([W - m + h % m for h in range(H)])], axis=1)  # (B, H, n_inputs)
        out = g.op("Add", [out, g.slice(rows, [0], [1], [2])])
    elif net.season and W >= net.season:  # the seasonal profile is linear in the window's target: one MatMul
        m, k = net.season, W // net.season
        profile = np.kron(np.ones((k, 1)), np.eye(m) - 1.0 / m) / k  # (k * m, m): each season minus its mean, averaged
        repeat = np.tile(np.eye(m), (1, -(-H // m)))[:, :H]  # (m, H)
        y = g.op("Squeeze", [g.slice(x, [W - k * m, 0], [W, 1], [1, 2]), g.ints([2])])  # (B, k * m)
        pattern = g.op("MatMul", [y, g.const(profile @ repeat)])  # (B, H)
        out = g.op("Add", [out, g.op("Unsqueeze", [pattern, g.ints([2])])])
    return out


def forecast_samples(rng: np.random.Generator, W: int, n_in: int, H: int, F: int,
                      batches: tuple[int, ...] = (1, 3, 5)) -> list[dict]:  # fmt: skip
    """Scaled windows like ``Forecaster._window_tensors`` makes: channel 1 the observed flag (0/1), 0 where unseen."""
    samples = []
    for batch in batches:
        x = rng.standard_normal((batch, W, n_in)).astype(np.float32)
        x[:, :, 1] = rng.random((batch, W)) > 0.2
        x[:, :, 0] *= x[:, :, 1]
        feeds = {"x": x}
        if F:
            feeds["future"] = rng.standard_normal((batch, H, F)).astype(np.float32)
        samples.append(feeds)
    return samples


def forecaster_graphs(f: Any, streaming: bool, rng: np.random.Generator) -> list[CheckedGraph]:
    """A Forecaster's network on its scaled inputs, or with ``streaming`` its step (recurrent strategy only)."""
    net = f._check_fitted().eval()
    cfg, W, F = f.config, f.window, f._n_future
    H, Q, n_in = cfg.horizon, len(cfg.quantiles), net.encoder.input_size
    recurrent = isinstance(net.members[0] if isinstance(net, ForecastEnsemble) else net, RecurrentForecastNet)
    g = Graph("lstmkit_forecaster")
    if streaming and isinstance(net, ForecastEnsemble) and isinstance(net.members[0], RecurrentForecastNet):
        raise ValueError(
            f"A seed ensemble ({len(net.members)} networks, net.members) has no single step to stream: each member "
            "keeps its own state. Export it without --streaming, or train with net.members=1."
        )
    if streaming:
        if not recurrent:
            raise ValueError(
                "A direct Forecaster (strategy='direct') has no step to stream: its head reads the encoder's state "
                "after the whole window, with the covariates of the whole horizon, and forecasts every step at once. "
                "Export it without --streaming (one call per forecast origin), or train with strategy='recurrent'."
            )
        lstm = net.encoder
        L, S, Hc = lstm.num_layers, lstm.state_size, lstm.hidden_size
        x_t = g.input("x_t", FLOAT, ["B", n_in])
        h0, c0 = g.input("h", FLOAT, [L, "B", S]), g.input("c", FLOAT, [L, "B", Hc])
        y, h, c = lstm_step(g, lstm, x_t, (h0, c0))
        g.output(g.linear(y, net.head), "quantiles", FLOAT, ["B", Q])
        g.output(h, "h_next", FLOAT, [L, "B", S])
        g.output(c, "c_next", FLOAT, [L, "B", Hc])

        def step_reference(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
            with torch.no_grad():
                state = (torch.from_numpy(feeds["h"]), torch.from_numpy(feeds["c"]))
                y_t, (h_n, c_n) = lstm.step(torch.from_numpy(feeds["x_t"]), state)
                return [net.head(y_t).numpy(), h_n.numpy(), c_n.numpy()]

        f32 = lambda *shape: rng.standard_normal(shape).astype(np.float32)  # noqa: E731
        samples = [{"x_t": f32(b, n_in), "h": f32(L, b, S), "c": f32(L, b, Hc)} for b in (1, 4)]
        return [CheckedGraph(g, samples, step_reference)]
    x = g.input("x", FLOAT, ["B", W, n_in])
    future = g.input("future", FLOAT, ["B", H, F]) if F else None
    if isinstance(net, ForecastEnsemble):  # the mean of the members' graphs
        outs = [forecast_network(g, m, x, future, W) for m in net.members]
        total = outs[0] if len(outs) == 1 else g.op("Sum", outs)
        g.output(g.op("Mul", [total, g.const(np.float32(1.0 / len(outs)))]), "quantiles", FLOAT, ["B", H, Q])
    else:
        g.output(forecast_network(g, net, x, future, W), "quantiles", FLOAT, ["B", H, Q])

    def reference(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        x_np = torch.from_numpy(feeds["x"])
        fut = torch.from_numpy(feeds["future"]) if F else torch.zeros(x_np.shape[0], H, 0)
        with torch.no_grad():
            return [net(x_np, fut).numpy()]

    return [CheckedGraph(g, forecast_samples(rng, W, n_in, H, F), reference)]
