"""lstmkit's numpy streaming step (lstmkit.inference.kernel) pinned to the reference cell: every supported variant, a
long stream, the folded input scaling; and what it refuses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstmkit.inference.kernel import Linear, StreamKernel, kernel_blockers
from lstmkit.nn import LSTM


def reference_stream(lstm: LSTM, xs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The reference (backend 'reference') over the whole sequence xs (T, I) at batch 1: outputs (T, S), (h, c)."""
    backend = lstm.backend
    lstm.backend = "reference"
    try:
        with torch.no_grad():
            out, (h, c) = lstm.eval()(xs[None])  # (1, T, S): batch first
    finally:
        lstm.backend = backend
    return out[0], h, c


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"num_layers": 3},
        {"peephole": True},
        {"proj_size": 5},
        {"zoneout": 0.3},
        {"num_layers": 2, "peephole": True, "proj_size": 4, "zoneout": 0.1},
    ],
    ids=["plain", "stack", "peephole", "projection", "zoneout", "all"],
)
def test_kernel_equals_the_reference_over_a_long_stream(options) -> None:
    torch.manual_seed(0)
    lstm = LSTM(7, 12, **{"num_layers": 1, **options})
    for p in lstm.parameters():  # larger than the default init, so that the gates saturate somewhere
        torch.nn.init.uniform_(p, -0.8, 0.8)
    xs = torch.randn(300, 7)
    ref_out, ref_h, ref_c = reference_stream(lstm, xs)
    kernel = StreamKernel(lstm)
    L, S, H = lstm.num_layers, lstm.state_size, lstm.hidden_size
    h, c = np.zeros((L, 1, S), np.float32), np.zeros((L, 1, H), np.float32)
    outs = []
    for x in xs.numpy():
        y, h, c = kernel.step(x, h, c)
        outs.append(y.copy())
    np.testing.assert_allclose(np.stack(outs), ref_out.numpy(), atol=2e-5)
    np.testing.assert_allclose(h, ref_h.numpy(), atol=2e-5)
    np.testing.assert_allclose(c, ref_c.numpy(), rtol=1e-5, atol=2e-5)  # c may grow to hundreds


def test_folded_input_scaling_equals_scaling_first() -> None:
    torch.manual_seed(1)
    lstm = LSTM(3, 8)
    shift, scale = np.array([5.0, -2.0, 0.5]), np.array([10.0, 0.1, 1.0])
    raw = (np.random.default_rng(0).standard_normal((50, 3)) * scale + shift).astype(np.float32)
    ref_out, _, _ = reference_stream(lstm, torch.from_numpy(((raw - shift) / scale).astype(np.float32)))
    kernel = StreamKernel(lstm, in_shift=shift, in_scale=scale)
    h, c = np.zeros((1, 1, 8), np.float32), np.zeros((1, 1, 8), np.float32)
    for t, x in enumerate(raw):
        y, h, c = kernel.step(x, h, c)
        np.testing.assert_allclose(y, ref_out[t].numpy(), atol=2e-5)


def test_linear_and_softmax() -> None:
    torch.manual_seed(2)
    lin = torch.nn.Linear(6, 4)
    x = torch.randn(6)
    np.testing.assert_allclose(Linear(lin)(x.numpy()), lin(x).detach().numpy(), atol=1e-6)
    z = np.array([1000.0, 1001.0, 0.0], np.float32)  # no overflow
    np.testing.assert_allclose(Linear.softmax(z), torch.softmax(torch.tensor(z), 0).numpy(), atol=1e-6)


def test_refuses_what_it_does_not_compute() -> None:
    assert kernel_blockers(LSTM(3, 4)) == []
    assert "bidirectional" in kernel_blockers(LSTM(3, 4, bidirectional=True))[0]
    with pytest.raises(ValueError, match="layer normalisation is not in lstmkit's numpy step"):
        StreamKernel(LSTM(3, 4, layer_norm=True))
    with pytest.raises(ValueError, match="both in_shift and in_scale"):
        StreamKernel(LSTM(3, 4), in_shift=np.zeros(3))


def test_large_layers_take_torch_mv_and_give_the_same_numbers(monkeypatch) -> None:
    import lstmkit.inference.kernel as kernel_module

    torch.manual_seed(3)
    lstm = LSTM(5, 16, num_layers=2, proj_size=6)
    xs = torch.randn(40, 5)
    ref_out, _, _ = reference_stream(lstm, xs)
    monkeypatch.setattr(kernel_module, "_TORCH_MV_FROM", 1)  # every layer counts as large
    kernel = StreamKernel(lstm)
    h, c = np.zeros((2, 1, 6), np.float32), np.zeros((2, 1, 16), np.float32)
    for t, x in enumerate(xs.numpy()):
        y, h, c = kernel.step(x, h, c)
        np.testing.assert_allclose(y, ref_out[t].numpy(), atol=2e-5)
