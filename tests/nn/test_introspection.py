"""Looking inside: ``record=True`` traces, ``hidden_grad_norms`` and ``explain()``.

The trace is checked against the LSTM equations themselves (``c_t = f * c_{t-1} + i * g``, ``h_t = o * tanh(c_t)``),
the gradient norms against an independent ``retain_grad`` computation, and the vanishing-gradient picture
qualitatively: a small-weight tanh RNN forgets exponentially, an LSTM with a large forget bias does not.
"""

import pytest
import torch

import lstmkit.nn as lnn

I, H, P, B, T = 3, 4, 2, 2, 6
F64 = {"rtol": 1e-10, "atol": 1e-12}


def _lstm(seed=0, **kwargs) -> lnn.LSTM:
    torch.manual_seed(seed)
    return lnn.LSTM(I, H, **kwargs).double().eval()


def _x(batch=B, time=T, seed=1):
    return torch.randn(batch, time, I, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# ---- record=True ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [{}, {"num_layers": 2, "bidirectional": True}, {"layer_norm": True, "peephole": True}, {"proj_size": P}],
    ids=["plain", "2-layers-bidirectional", "layer_norm-peephole", "projection"],
)
def test_record_returns_gates_and_cells_with_shapes_and_ranges(kwargs):
    lstm = _lstm(**kwargs)
    x = _x()
    out, (h_n, c_n), trace = lstm(x, record=True)
    L, D = lstm.num_layers, lstm.num_directions
    assert isinstance(trace, lnn.LSTMTrace)
    assert len(trace.gates) == len(trace.cells) == len(trace.h_steps) == L
    for layer in range(L):
        assert len(trace.gates[layer]) == len(trace.cells[layer]) == len(trace.h_steps[layer]) == D
        for direction in range(D):
            gates, cells = trace.gates[layer][direction], trace.cells[layer][direction]
            assert gates.shape == (B, T, 4, H) and cells.shape == (B, T, H)
            i, f, g, o = gates.unbind(dim=2)
            for sigmoid_gate in (i, f, o):
                assert sigmoid_gate.min() >= 0 and sigmoid_gate.max() <= 1
            assert g.min() >= -1 and g.max() <= 1 and g.min() < 0 < g.max()  # tanh, both signs used
            assert len(trace.h_steps[layer][direction]) == T
            # the recorded cells are c_T of the state
            last = cells[:, -1] if direction == 0 else cells[:, 0]
            torch.testing.assert_close(last, c_n[layer * D + direction], **F64)


@pytest.mark.parametrize("kwargs", [{}, {"num_layers": 2, "bidirectional": True}])
def test_recorded_gates_and_cells_obey_the_lstm_equations(kwargs):
    lstm = _lstm(**kwargs)
    out, _, trace = lstm(_x(), record=True)
    for direction in range(lstm.num_directions):
        gates, cells = trace.gates[-1][direction], trace.cells[-1][direction]
        i, f, g, o = gates.unbind(dim=2)
        c_prev = torch.zeros(B, H, dtype=torch.float64)
        steps = range(T) if direction == 0 else reversed(range(T))  # the backward direction runs from T-1 to 0
        for t in steps:
            torch.testing.assert_close(cells[:, t], f[:, t] * c_prev + i[:, t] * g[:, t], **F64)
            c_prev = cells[:, t]
        h = o * torch.tanh(cells)  # (B, T, H): this direction's half of the output
        torch.testing.assert_close(h, out[..., direction * H : (direction + 1) * H], **F64)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"num_layers": 2, "bidirectional": True, "proj_size": P},
        {"layer_norm": True, "peephole": True, "zoneout": 0.2, "num_layers": 2},
    ],
    ids=["plain", "2-layers-bidirectional-projection", "variants"],
)
@pytest.mark.parametrize("padded", [False, True])
def test_recorded_output_equals_the_unrecorded_output(kwargs, padded):
    """record=True runs the reference; the unrecorded call runs the fast path ("torch" or "lstmkit")."""
    lstm = _lstm(**kwargs)
    x = _x(batch=3)
    lengths = torch.tensor([T, 2, 4]) if padded else None
    assert lstm.explain().backend in ("torch", "lstmkit") and lstm.explain(record=True).backend == "reference"
    out, (h_n, c_n) = lstm(x, lengths=lengths)
    rec_out, (rec_h, rec_c), _ = lstm(x, lengths=lengths, record=True)
    torch.testing.assert_close(rec_out, out, **F64)
    torch.testing.assert_close(rec_h, h_n, **F64)
    torch.testing.assert_close(rec_c, c_n, **F64)


# ---- hidden_grad_norms ----------------------------------------------------------------------------------------------
def _independent_lstm_norms(lstm: lnn.LSTM, x: torch.Tensor) -> torch.Tensor:
    """A hand-written one-layer LSTM loop on lstm's weights; dL/dh_t from .grad of retained non-leaf tensors."""
    W_x, W_h = lstm.weight_ih_l0, lstm.weight_hh_l0
    b = lstm.bias_ih_l0 + lstm.bias_hh_l0
    h = torch.zeros(x.shape[0], H, dtype=x.dtype)
    c = torch.zeros(x.shape[0], H, dtype=x.dtype)
    hs = []
    for t in range(x.shape[1]):
        z_i, z_f, z_g, z_o = (x[:, t] @ W_x.T + h @ W_h.T + b).chunk(4, dim=1)
        c = torch.sigmoid(z_f) * c + torch.sigmoid(z_i) * torch.tanh(z_g)
        h = torch.sigmoid(z_o) * torch.tanh(c)
        h.retain_grad()
        hs.append(h)
    _loss(torch.stack(hs, dim=1)).backward()
    return torch.stack([h.grad.norm(dim=-1).mean() for h in hs])


def _loss(out):
    """Depends on every step, with weights growing in time."""
    w = torch.linspace(0.1, 1.0, out.shape[1], dtype=out.dtype)[None, :, None]
    return (out * w).sin().sum()


def test_hidden_grad_norms_equal_an_independent_retain_grad_computation():
    lstm = _lstm()
    x = _x(batch=3, time=8)
    out, _, trace = lstm(x, record=True)
    norms = lnn.hidden_grad_norms(_loss(out), trace.h_steps[0][0])
    assert norms.shape == (8,) and not norms.requires_grad
    torch.testing.assert_close(norms, _independent_lstm_norms(lstm, x), **F64)


def test_hidden_grad_norms_equal_retain_grad_on_the_recorded_steps_of_a_stack():
    """Two layers, bidirectional: the total derivative through every later step and layer, via .grad."""
    lstm = _lstm(num_layers=2, bidirectional=True)
    out, _, trace = lstm(_x(), record=True)
    loss = _loss(out)
    steps = trace.h_steps[0][1]  # layer 0, backward direction
    norms = lnn.hidden_grad_norms(loss, steps, retain_graph=True)
    for h in steps:
        h.retain_grad()
    loss.backward()
    expected = torch.stack([h.grad.norm(dim=-1).mean() for h in steps])
    torch.testing.assert_close(norms, expected, **F64)


def _ratio_first_to_last(layer, x, steps_of):
    out, *_, trace = layer(x, record=True)
    norms = lnn.hidden_grad_norms(out[:, -1].sum(), steps_of(trace))  # loss at the last step only
    return norms, (norms[0] / norms[-1]).item()


def test_gradient_vanishes_with_lag_in_a_tanh_rnn_but_not_in_an_lstm_with_a_large_forget_bias():
    """Hochreiter 1991 / Bengio et al. 1994 vs Gers et al. 2000, seeded: over 40 steps, the small-weight tanh RNN's
    dL/dh_t shrinks by more than 1e-10 (measured ~1e-17) while the LSTM's stays within 1e-3 (measured ~1e-2)."""
    time = 40
    torch.manual_seed(0)
    x = torch.randn(4, time, 2, dtype=torch.float64)  # float64: float32 would underflow the RNN's tail to 0
    rnn = lnn.RNN(2, 8).double()
    lstm = lnn.LSTM(2, 8, forget_bias=None).double()
    with torch.no_grad():
        for p in [*rnn.parameters(), *lstm.parameters()]:
            p.uniform_(-0.2, 0.2)
        lstm.bias_ih_l0[8:16] = 5.0  # forget gate nearly open: sigmoid(5) = 0.993
    rnn_norms, rnn_ratio = _ratio_first_to_last(rnn, x, lambda steps: steps[0][0])
    lstm_norms, lstm_ratio = _ratio_first_to_last(lstm, x, lambda trace: trace.h_steps[0][0])
    assert (rnn_norms[1:] > rnn_norms[:-1]).all()  # monotone decay with the lag T - t
    assert rnn_ratio < 1e-10
    assert lstm_ratio > 1e-3
    assert lstm_ratio > 1e6 * rnn_ratio


# ---- explain() ------------------------------------------------------------------------------------------------------
def test_explain_plain_lstm_takes_torch_fused_kernel():
    explanation = _lstm().explain()
    assert (explanation.backend, explanation.ruled_out_fused) == ("torch", ())
    assert str(explanation) == "backend 'torch': PyTorch's fused LSTM kernel (oneDNN)."


@pytest.mark.parametrize(
    "kwargs, blockers",
    [
        ({"layer_norm": True}, ("layer_norm=True",)),
        ({"peephole": True, "zoneout": 0.1}, ("peephole=True", "zoneout=0.1")),
        ({"recurrent_dropout": 0.3}, ("recurrent_dropout=0.3",)),
    ],
)
def test_explain_names_the_path_and_the_blocking_arguments(kwargs, blockers):
    explanation = _lstm(**kwargs).train().explain()
    assert explanation.backend == "lstmkit"
    assert explanation.ruled_out_fused == blockers
    text = str(explanation)
    assert text.startswith("backend 'lstmkit': lstmkit's own fast layer")
    assert text.endswith(f"PyTorch's fused kernel is ruled out by {', '.join(blockers)}.")


def test_recurrent_dropout_leaves_the_fused_kernel_in_eval_mode():
    lstm = _lstm(recurrent_dropout=0.3)
    assert lstm.train().explain().backend == "lstmkit"
    assert lstm.eval().explain().backend == "torch"  # dropout does nothing at evaluation: the plain cell runs


def test_explain_record_names_the_reference_and_record():
    explanation = _lstm().explain(record=True)
    assert explanation.backend == "reference"
    assert "record=True" in explanation.ruled_out_fused
    assert "reference loop" in str(explanation) and "record=True" in str(explanation)


def test_explain_honours_an_explicit_backend():
    assert _lstm(backend="reference").explain().backend == "reference"
    assert _lstm(backend="lstmkit").explain().backend == "lstmkit"
    assert _lstm(backend="lstmkit", peephole=True).explain().ruled_out_fused == ("peephole=True",)


def test_gate_saturation_counts_saturated_activations_per_gate():
    from lstmkit.nn import LSTM
    from lstmkit.nn.introspect import gate_saturation

    gates = torch.full((2, 3, 4, 5), 0.5)  # (B, T, 4, H): nothing saturated
    gates[:, :, 1] = 0.99  # forget gate wide open everywhere
    gates[0, 0, 2, :2] = -0.97  # two candidate values saturated at one step
    sat = gate_saturation([gates])
    assert sat == {"i": 0.0, "f": 1.0, "g": 2 / 30, "o": 0.0}
    assert gate_saturation([gates], lengths=torch.tensor([1, 1]))["g"] == 2 / 10  # padded steps left out

    torch.manual_seed(0)
    lstm = LSTM(3, 8, num_layers=2, bidirectional=True, peephole=True, backend="lstmkit")
    x = torch.randn(4, 6, 3)
    stats = lstm.gate_saturation(x)
    assert set(stats) == {"i", "f", "g", "o"} and all(0.0 <= v <= 1.0 for v in stats.values())
    assert lstm.backend == "lstmkit"  # the recording run did not change the module
    with torch.no_grad():
        lstm.weight_ih_l0.mul_(100.0)  # drives the first layer's gates into saturation
    saturated = lstm.gate_saturation(x)
    assert all(saturated[g] > stats[g] for g in "ifgo"), (stats, saturated)


def test_locate_nonfinite_names_layer_direction_and_step():
    from lstmkit.nn import LSTM

    torch.manual_seed(0)
    lstm = LSTM(2, 4, num_layers=2, bidirectional=True, layer_norm=True)
    x = torch.zeros(1, 8, 2)
    assert lstm.locate_nonfinite(x) is None
    with torch.no_grad():
        lstm.weight_ih_l0[0, 0] = 3e38  # overflows on a large input; layer norm turns inf into NaN
    x[0, 6, 0] = 10.0
    # the forward direction meets it at step 6; the backward direction (T-1 .. 0) meets it first too, at step 6
    assert lstm.locate_nonfinite(x) == "layer 0 (forward), time step 6 of 8, in the gates"
