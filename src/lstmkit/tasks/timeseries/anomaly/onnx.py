"""The anomaly detector's ONNX graph: the forecaster's network (method "prediction") or the encoder-decoder
(method "reconstruction") on scaled windows; the scaling, the errors, the Gaussian and the threshold stay in Python.

What the graphs take and give is listed in :mod:`lstmkit.export.onnx`; :func:`lstmkit.export.onnx.export_onnx` checks
them against the detector and writes them. Imported by :meth:`AnomalyDetector.onnx_graphs` on first use.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ....nn.onnx_graph import FLOAT, CheckedGraph, Graph, lstm_sequence, lstm_step
from ..onnx import forecast_network, forecast_samples

__all__ = ["anomaly_detector_graphs"]


def anomaly_detector_graphs(det: Any, streaming: bool, rng: np.random.Generator) -> list[CheckedGraph]:
    """Prediction: the forecaster's network and its median; reconstruction: the encoder-decoder, unrolled."""
    det._check_fitted()
    cfg = det.config
    if cfg.method == "prediction":
        if streaming:
            raise ValueError(
                "A prediction AnomalyDetector has no streaming graph: its forecaster reads each window relative to "
                "that window's own level, so the LSTM state cannot be carried from one origin to the next (each "
                "origin reads its window anew, as AnomalyStream does). Export it without --streaming: one call per "
                "new value, with the last window."
            )
        f = det.forecaster
        net = f._check_fitted().eval()
        W, H, n_in = f.window, f.config.horizon, net.encoder.input_size
        median = list(f.config.quantiles).index(0.5)
        g = Graph("lstmkit_anomaly_prediction")
        x = g.input("x", FLOAT, ["B", W, n_in])
        quantiles = forecast_network(g, net, x, None, W)  # (B, l, Q)
        g.output(g.op("Gather", [quantiles, g.ints(median)], axis=2), "predictions", FLOAT, ["B", H])

        def reference(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
            x_np = torch.from_numpy(feeds["x"])
            with torch.no_grad():
                return [net(x_np, torch.zeros(x_np.shape[0], H, 0))[:, :, median].numpy()]

        return [CheckedGraph(g, forecast_samples(rng, W, n_in, H, 0), reference)]
    if streaming:
        raise ValueError(
            "A reconstruction AnomalyDetector decodes each window once its L values have arrived, so it has no "
            "one-step graph; export it without --streaming (a window in, its reconstruction out)."
        )
    net, L = det.model.eval(), cfg.window
    g = Graph("lstmkit_anomaly_reconstruction")
    window = g.input("window", FLOAT, ["B", L, 1])
    _, h, c = lstm_sequence(g, net.encoder, g.op("Transpose", [window], perm=[1, 0, 2]), None, None)
    x_hat = g.linear(g.op("Gather", [h, g.ints(-1)], axis=0), net.head)  # (B, 1): x'_L from the encoder's state
    outs = [x_hat]
    for _ in range(L - 1):  # the decoder fed its own output back, unrolled (L is fixed by the config)
        y, h, c = lstm_step(g, net.decoder, x_hat, (h, c))
        x_hat = g.linear(y, net.head)
        outs.append(x_hat)
    g.output(g.op("Concat", outs[::-1], axis=1), "reconstruction", FLOAT, ["B", L])  # x'_1 .. x'_L

    def recon_reference(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        with torch.no_grad():
            _, state = net.encoder(torch.from_numpy(feeds["window"]))
            return [net.reconstruct(state, L).numpy()]

    samples = [{"window": rng.standard_normal((b, L, 1)).astype(np.float32)} for b in (1, 4)]
    return [CheckedGraph(g, samples, recon_reference)]
