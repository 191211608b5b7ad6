"""GRU and RNN against torch.nn.GRU / torch.nn.RNN, LSTMCell against torch.nn.LSTMCell, and unbatched inputs.

Weights are copied from the torch module (state_dicts load both ways); outputs, h_n and the gradients of the input,
the initial state and every parameter must agree in float64 to ``rtol=1e-10, atol=1e-12``.
"""

import itertools

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import lstmkit.nn as lnn

I, H, B, T = 3, 4, 3, 6
F64 = {"rtol": 1e-10, "atol": 1e-12}
PAIRS = {"GRU": (lnn.GRU, torch.nn.GRU), "RNN": (lnn.RNN, torch.nn.RNN)}


def _pair(kind, backend, **kwargs):
    ours_cls, torch_cls = PAIRS[kind]
    ref = torch_cls(I, H, **kwargs).double()
    with torch.no_grad():
        for p in ref.parameters():
            p.uniform_(-0.8, 0.8)
    ours = ours_cls(I, H, backend=backend, **kwargs).double()
    assert list(ours.state_dict()) == list(ref.state_dict())
    ours.load_state_dict(ref.state_dict())
    torch_cls(I, H, **kwargs).double().load_state_dict(ours.state_dict())  # and back, strictly
    return ref, ours


def _torch_forward(ref, x, h0, lengths):
    if lengths is None:
        return ref(x, h0)
    packed = pack_padded_sequence(x, lengths, batch_first=ref.batch_first, enforce_sorted=False)
    out, h_n = ref(packed, h0)
    total = x.shape[1] if ref.batch_first else x.shape[0]
    out, _ = pad_packed_sequence(out, batch_first=ref.batch_first, total_length=total)
    return out, h_n


def _results(module, forward, x, h0, lengths):
    module.zero_grad()
    x.grad = h0.grad = None
    out, h_n = forward(module, x, h0, lengths)
    weights = torch.linspace(0.5, 1.5, out.numel(), dtype=out.dtype).view_as(out)
    ((out * weights).sum() + (h_n**2).sum()).backward()
    res = {"output": out.detach(), "h_n": h_n.detach(), "grad x": x.grad.clone(), "grad h_0": h0.grad.clone()}
    return res | {f"grad {n}": p.grad.clone() for n, p in module.named_parameters()}


CASES = list(
    itertools.product(
        ("GRU", "RNN"),
        ("torch", "reference", "auto"),
        (1, 2),  # num_layers
        (False, True),  # bidirectional
        (False, True),  # padded
        (True, False),  # batch_first
    )
)


@pytest.mark.parametrize("kind, backend, num_layers, bidirectional, padded, batch_first", CASES)
def test_matches_torch(kind, backend, num_layers, bidirectional, padded, batch_first):
    ref, ours = _pair(kind, backend, num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first)
    gen = torch.Generator().manual_seed(0)
    D = 2 if bidirectional else 1
    x = torch.randn((B, T, I) if batch_first else (T, B, I), generator=gen, dtype=torch.float64).requires_grad_()
    h0 = torch.randn(num_layers * D, B, H, generator=gen, dtype=torch.float64).requires_grad_()
    lengths = torch.tensor([4, T, 1]) if padded else None
    expected = _results(ref, _torch_forward, x, h0, lengths)
    actual = _results(ours, lambda m, x, h0, lengths: m(x, h0, lengths), x, h0, lengths)
    assert expected.keys() == actual.keys()
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], **F64, msg=lambda m, k=key: f"{k}: {m}")


@pytest.mark.parametrize("kind", ["GRU", "RNN"])
@pytest.mark.parametrize("backend", ["torch", "reference"])
@pytest.mark.parametrize("bias", [True, False])
def test_matches_torch_without_bias_and_zero_state(kind, backend, bias):
    ref, ours = _pair(kind, backend, bias=bias, batch_first=True)
    x = torch.randn(B, T, I, dtype=torch.float64)
    expected, actual = ref(x), ours(x)
    torch.testing.assert_close(actual[0], expected[0], **F64)
    torch.testing.assert_close(actual[1], expected[1], **F64)


@pytest.mark.parametrize("kind", ["GRU", "RNN"])
def test_record_returns_per_step_states_matching_the_output(kind):
    _, ours = _pair(kind, "auto", num_layers=2, bidirectional=True, batch_first=True)
    x = torch.randn(B, T, I, dtype=torch.float64)
    out, h_n, h_steps = ours(x, record=True)
    torch.testing.assert_close(out, ours(x)[0], **F64)
    assert len(h_steps) == 2 and len(h_steps[1]) == 2 and len(h_steps[1][1]) == T
    torch.testing.assert_close(torch.stack(h_steps[1][0], dim=1), out[..., :H], **F64)  # forward direction
    torch.testing.assert_close(torch.stack(h_steps[1][1][::-1], dim=1), out[..., H:], **F64)  # reversed in time
    torch.testing.assert_close(h_steps[1][1][-1], h_n[3], **F64)


@pytest.mark.parametrize("bias", [True, False])
def test_lstm_cell_matches_torch_lstm_cell(bias):
    ref = torch.nn.LSTMCell(I, H, bias=bias).double()
    ours = lnn.LSTMCell(I, H, bias=bias).double()
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [(n, p.shape) for n, p in ref.named_parameters()]
    ours.load_state_dict(ref.state_dict())
    torch.nn.LSTMCell(I, H, bias=bias).double().load_state_dict(ours.state_dict())
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(T, B, I, generator=gen, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(B, H, generator=gen, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(B, H, generator=gen, dtype=torch.float64, requires_grad=True)
    results = []
    for cell in (ref, ours):
        cell.zero_grad()
        x.grad = h0.grad = c0.grad = None
        state, hs = (h0, c0), []
        for t in range(T):  # several steps, so that the state path is exercised too
            state = cell(x[t], state)
            hs.append(state[0])
        (torch.stack(hs).sum() + (state[1] ** 2).sum()).backward()
        grads = [x.grad, h0.grad, c0.grad, *(p.grad for p in cell.parameters())]
        results.append([*(s.detach() for s in state), torch.stack(hs).detach(), *(g.clone() for g in grads)])
    for expected, actual in zip(*results, strict=True):
        torch.testing.assert_close(actual, expected, **F64)


def test_lstm_cell_zero_state_by_default_and_forget_bias():
    cell = lnn.LSTMCell(I, H).double()
    torch.testing.assert_close((cell.bias_ih + cell.bias_hh)[H : 2 * H].detach(), torch.ones(H, dtype=torch.float64))
    x = torch.randn(B, I, dtype=torch.float64)
    zeros = torch.zeros(B, H, dtype=torch.float64)
    h, c = cell(x)
    h_zero, c_zero = cell(x, (zeros, zeros))
    torch.testing.assert_close(h, h_zero, rtol=0, atol=0)
    torch.testing.assert_close(c, c_zero, rtol=0, atol=0)


# ---- unbatched (T, I) inputs -----------------------------------------------------------------------------------------
UNBATCHED = [
    *itertools.product(["LSTM"], ["torch", "lstmkit", "reference"], [True, False], [False, True]),
    *itertools.product(["GRU", "RNN"], ["torch", "reference"], [True, False], [False, True]),
]


@pytest.mark.parametrize("kind, backend, batch_first, bidirectional", UNBATCHED)
def test_unbatched_input_works_like_torch(kind, backend, batch_first, bidirectional):
    torch_cls = {"LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU, "RNN": torch.nn.RNN}[kind]
    ours_cls = {"LSTM": lnn.LSTM, "GRU": lnn.GRU, "RNN": lnn.RNN}[kind]
    kwargs = {"num_layers": 2, "batch_first": batch_first, "bidirectional": bidirectional}
    ref = torch_cls(I, H, **kwargs).double()
    ours = ours_cls(I, H, backend=backend, **kwargs).double()
    ours.load_state_dict(ref.state_dict())
    LD = 2 * (2 if bidirectional else 1)
    x = torch.randn(T, I, dtype=torch.float64)  # (T, I): no batch axis, whatever batch_first says
    h0 = torch.randn(LD, H, dtype=torch.float64)
    state = (h0, torch.randn(LD, H, dtype=torch.float64)) if kind == "LSTM" else h0
    for args in ((x,), (x, state)):
        expected, actual = ref(*args), ours(*args)
        torch.testing.assert_close(actual[0], expected[0], **F64)
        assert actual[0].shape == (T, (2 if bidirectional else 1) * H)
        if kind == "LSTM":
            torch.testing.assert_close(actual[1][0], expected[1][0], **F64)
            torch.testing.assert_close(actual[1][1], expected[1][1], **F64)
            assert actual[1][0].shape == (LD, H)
        else:
            torch.testing.assert_close(actual[1], expected[1], **F64)
            assert actual[1].shape == (LD, H)
