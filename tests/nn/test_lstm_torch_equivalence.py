"""lstmkit.nn.LSTM against torch.nn.LSTM with copied weights: outputs, final state and every gradient, on every backend.

The ground truth is PyTorch's own LSTM. For each backend ("torch", "lstmkit", "reference") the same weights run
through both layers; we compare ``output``, ``h_n``, ``c_n`` and the gradients of the input, of ``(h_0, c_0)`` and of
every parameter. Padded batches are compared against torch run through ``pack_padded_sequence``.

Tolerances (style guide 3.4.1): float64 ``rtol=1e-10, atol=1e-12``; float32 ``torch.testing.assert_close`` defaults
(``rtol=1.3e-6, atol=1e-5``), measured to hold at T=64; a longer T would need an ``atol`` that grows with T.
"""

import itertools
import math

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import lstmkit.nn as lnn

BACKENDS = ("auto", "torch", "lstmkit", "reference")  # "auto" with ragged lengths runs torch + lstmkit
I, H, P, B = 3, 4, 3, 3  # input_size, hidden_size, proj_size (when used), batch
F64 = {"rtol": 1e-10, "atol": 1e-12}


def _pair(
    *, num_layers=1, bias=True, batch_first=True, bidirectional=False, proj_size=0, backend="torch", dtype=torch.float64
):
    """A torch.nn.LSTM with random weights (both biases random too) and a lstmkit LSTM loaded from its state_dict."""
    ref = torch.nn.LSTM(
        I, H, num_layers=num_layers, bias=bias, batch_first=batch_first, bidirectional=bidirectional,
        proj_size=proj_size,
    ).to(dtype)  # fmt: skip
    with torch.no_grad():
        for p in ref.parameters():
            p.uniform_(-0.7, 0.7)
    ours = lnn.LSTM(
        I, H, num_layers=num_layers, bias=bias, batch_first=batch_first, bidirectional=bidirectional,
        proj_size=proj_size, backend=backend,
    ).to(dtype)  # fmt: skip
    ours.load_state_dict(ref.state_dict())
    return ref, ours


def _inputs(ref, *, T, batch_first, given_state, padded, dtype=torch.float64, seed=0):
    """x, (h0, c0) or None, lengths or None, all leaves that require grad where differentiable."""
    gen = torch.Generator().manual_seed(seed)
    D = 2 if ref.bidirectional else 1
    S = ref.proj_size or ref.hidden_size
    shape = (B, T, I) if batch_first else (T, B, I)
    x = torch.randn(shape, generator=gen, dtype=dtype).requires_grad_()
    state = None
    if given_state:
        h0 = torch.randn(ref.num_layers * D, B, S, generator=gen, dtype=dtype).requires_grad_()
        c0 = torch.randn(ref.num_layers * D, B, H, generator=gen, dtype=dtype).requires_grad_()
        state = (h0, c0)
    lengths = None
    if padded:
        # one full-length sequence, one of length 1, one in between; unsorted on purpose
        lengths = torch.tensor([max(1, T // 2 + 1), T, 1])[:B]
    return x, state, lengths


def _torch_forward(ref, x, state, lengths):
    if lengths is None:
        return ref(x, state)
    packed = pack_padded_sequence(x, lengths, batch_first=ref.batch_first, enforce_sorted=False)
    out, (h_n, c_n) = ref(packed, state)
    total = x.shape[1] if ref.batch_first else x.shape[0]
    out, _ = pad_packed_sequence(out, batch_first=ref.batch_first, total_length=total)
    return out, (h_n, c_n)


def _loss(out, h_n, c_n):
    """A scalar that touches every output with distinct weights, so no gradient can cancel by symmetry."""
    w = torch.linspace(0.5, 1.5, out.numel(), dtype=out.dtype).view_as(out)
    return (out * w).sum() + (h_n**2).sum() + (c_n * 0.3).sum()


def _run_both(ref, ours, x, state, lengths):
    """Forward and backward through both layers; returns two dicts of named results."""
    results = []
    for module, forward in ((ref, _torch_forward), (ours, lambda m, *a: m(a[0], a[1], a[2]))):
        module.zero_grad()
        for leaf in (x, *(state or ())):
            leaf.grad = None
        out, (h_n, c_n) = forward(module, x, state, lengths)
        _loss(out, h_n, c_n).backward()
        res = {"output": out.detach(), "h_n": h_n.detach(), "c_n": c_n.detach(), "grad x": x.grad.clone()}
        if state is not None:
            res["grad h_0"], res["grad c_0"] = state[0].grad.clone(), state[1].grad.clone()
        for name, p in module.named_parameters():
            res[f"grad {name}"] = p.grad.clone()
        results.append(res)
    return results


def _assert_same(expected: dict, actual: dict, **tol):
    assert expected.keys() == actual.keys()
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], **tol, msg=lambda m, key=key: f"{key}: {m}")


CASES = list(
    itertools.product(
        BACKENDS,
        (True, False),  # batch_first
        (1, 2),  # num_layers
        (False, True),  # bidirectional
        (0, P),  # proj_size
        (True, False),  # bias
        (1, 7),  # T
        (False, True),  # given state
        (False, True),  # padded
    )
)


@pytest.mark.parametrize(
    "backend, batch_first, num_layers, bidirectional, proj_size, bias, T, given_state, padded",
    CASES,
    ids=[
        f"{b}-{'bf' if bf else 'tf'}-L{nl}-{'bi' if bd else 'uni'}-P{ps}-{'bias' if bs else 'nobias'}-T{t}-"
        f"{'h0' if gs else 'zero'}-{'pad' if pd else 'full'}"
        for b, bf, nl, bd, ps, bs, t, gs, pd in CASES
    ],
)
def test_matches_torch_lstm_float64(
    backend, batch_first, num_layers, bidirectional, proj_size, bias, T, given_state, padded
):
    ref, ours = _pair(
        num_layers=num_layers, bias=bias, batch_first=batch_first, bidirectional=bidirectional,
        proj_size=proj_size, backend=backend,
    )  # fmt: skip
    x, state, lengths = _inputs(ref, T=T, batch_first=batch_first, given_state=given_state, padded=padded)
    expected, actual = _run_both(ref, ours, x, state, lengths)
    # the comparison must be of real numbers, not of two sets of zeros
    assert expected["output"].abs().max() > 1e-3 and expected["grad x"].abs().max() > 1e-3
    _assert_same(expected, actual, **F64)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_matches_torch_lstm_float32_long_sequence(backend, bidirectional):
    """float32 at T=64 within assert_close's default tolerances (rtol=1.3e-6, atol=1e-5)."""
    ref, ours = _pair(num_layers=2, bidirectional=bidirectional, backend=backend, dtype=torch.float32)
    x, state, lengths = _inputs(ref, T=64, batch_first=True, given_state=True, padded=False, dtype=torch.float32)
    expected, actual = _run_both(ref, ours, x, state, lengths)
    _assert_same(expected, actual)


@pytest.mark.parametrize("proj_size", [0, P])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_state_dict_loads_into_torch_lstm_with_same_keys_shapes_and_order(proj_size, bias, bidirectional):
    kwargs = {"num_layers": 2, "bias": bias, "bidirectional": bidirectional, "proj_size": proj_size}
    ours = lnn.LSTM(I, H, **kwargs).double()
    ref = torch.nn.LSTM(I, H, batch_first=True, **kwargs).double()
    ours_sd, ref_sd = ours.state_dict(), ref.state_dict()
    assert list(ours_sd) == list(ref_sd)  # same names in the same order
    assert [tuple(v.shape) for v in ours_sd.values()] == [tuple(v.shape) for v in ref_sd.values()]
    ref.load_state_dict(ours_sd)  # strict: would raise on any missing or unexpected key
    for name, value in ref.state_dict().items():
        assert torch.equal(value, ours_sd[name]), name
    x = torch.randn(2, 5, I, dtype=torch.float64)
    expected, actual = ref(x), ours(x)
    torch.testing.assert_close(actual[0], expected[0], **F64)
    torch.testing.assert_close(actual[1][0], expected[1][0], **F64)
    torch.testing.assert_close(actual[1][1], expected[1][1], **F64)


@pytest.mark.parametrize("num_layers, bidirectional", [(1, False), (2, True)])
def test_forget_bias_sums_to_one_in_the_forget_slice_after_init(num_layers, bidirectional):
    torch.manual_seed(0)
    lstm = lnn.LSTM(I, H, num_layers=num_layers, bidirectional=bidirectional)
    bound = 1.0 / math.sqrt(H)
    biases = [n for n, _ in lstm.named_parameters() if n.startswith("bias_ih")]
    assert len(biases) == num_layers * (2 if bidirectional else 1)
    for name in biases:
        b_ih, b_hh = getattr(lstm, name), getattr(lstm, name.replace("bias_ih", "bias_hh"))
        total = (b_ih + b_hh).detach()
        torch.testing.assert_close(total[H : 2 * H], torch.ones(H), rtol=0, atol=0)
        # the other gates keep torch's init: uniform in [-k, k] for each vector, not constant
        for other in (b_ih, b_hh):
            rest = torch.cat((other[:H], other[2 * H :])).detach()
            assert rest.abs().max() <= bound and rest.std() > 0


def test_forget_bias_value_is_configurable():
    lstm = lnn.LSTM(I, H, forget_bias=2.5)
    torch.testing.assert_close((lstm.bias_ih_l0 + lstm.bias_hh_l0)[H : 2 * H].detach(), torch.full((H,), 2.5))


def test_forget_bias_none_keeps_every_parameter_uniform_in_plus_minus_one_over_sqrt_h():
    torch.manual_seed(0)
    hidden = 16
    lstm = lnn.LSTM(I, hidden, num_layers=2, forget_bias=None)
    bound = 1.0 / math.sqrt(hidden)
    for name, p in lstm.named_parameters():
        assert p.abs().max() <= bound, name
        assert p.abs().max() > 0.5 * bound, name  # spread over the interval, not squeezed near zero
    forget = torch.cat([lstm.bias_ih_l0[hidden : 2 * hidden], lstm.bias_hh_l0[hidden : 2 * hidden]]).detach()
    assert not torch.allclose(forget, forget[0].expand_as(forget))


@pytest.mark.parametrize("bidirectional", [False, True])
def test_auto_never_runs_the_slow_packed_kernel_on_a_ragged_batch(bidirectional):
    lstm = lnn.LSTM(3, 4, num_layers=2, bidirectional=bidirectional)
    explanation = lstm.explain(padded=True)
    assert explanation.backend == ("lstmkit" if bidirectional else "torch+lstmkit")
    assert "packed" not in explanation.kernel
    assert "packed" in lnn.LSTM(3, 4, backend="torch").explain(padded=True).kernel
