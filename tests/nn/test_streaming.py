"""Recurrence invariants: one full call == chunked calls carrying the state == ``lstm.step`` one step at a time;
``reset`` restarts a sample; the packed streaming weights follow parameter updates; padded == unpadded per sequence.

``lstm.step`` takes the pre-packed streaming path (:mod:`lstmkit.nn.fused.stream`) for a plain LSTM under
``torch.inference_mode`` / ``torch.no_grad``, and the reference cell with autograd otherwise; both are checked.
"""

import contextlib

import pytest
import torch

import lstmkit.nn as lnn

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")

I, H, P, B, T = 3, 5, 2, 3, 8
F64 = {"rtol": 1e-10, "atol": 1e-12}


VARIANTS = {
    "plain": {},
    "no_bias": {"bias": False},
    "layer_norm": {"layer_norm": True},
    "peephole": {"peephole": True},
    "zoneout": {"zoneout": 0.3},
    "recurrent_dropout": {"recurrent_dropout": 0.4},
    "combined": {"layer_norm": True, "peephole": True, "zoneout": 0.3, "recurrent_dropout": 0.4},
}


def _lstm(dtype=torch.float64, seed=0, **kwargs) -> lnn.LSTM:
    torch.manual_seed(seed)
    lstm = lnn.LSTM(I, H, **kwargs).to(dtype).eval()
    with torch.no_grad():
        for p in lstm.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return lstm


def _inputs(dtype=torch.float64, batch=B, time=T, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, time, I, generator=gen, dtype=dtype)


def _stepwise(lstm, x, state=None):
    outputs = []
    for t in range(x.shape[1]):
        y, state = lstm.step(x[:, t], state)
        outputs.append(y)
    return torch.stack(outputs, dim=1), state


MODES = {"inference_mode": torch.inference_mode, "no_grad": torch.no_grad, "grad": contextlib.nullcontext}


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("proj_size", [0, P])
@pytest.mark.parametrize("mode", list(MODES))
def test_step_by_step_equals_one_full_call_float64(variant, num_layers, proj_size, mode):
    lstm = _lstm(num_layers=num_layers, proj_size=proj_size, **VARIANTS[variant])
    x = _inputs()
    with torch.no_grad():
        expected, (h_n, c_n) = lstm(x)
    with MODES[mode]():
        actual, (h, c) = _stepwise(lstm, x)
    assert actual.requires_grad == (mode == "grad")
    torch.testing.assert_close(actual, expected, **F64)
    torch.testing.assert_close(h, h_n, **F64)
    torch.testing.assert_close(c, c_n, **F64)


@pytest.mark.parametrize("variant", ["plain", "combined"])
@pytest.mark.parametrize("mode", ["inference_mode", "grad"])
def test_step_by_step_equals_one_full_call_float32(variant, mode):
    lstm = _lstm(torch.float32, num_layers=2, proj_size=P, **VARIANTS[variant])
    x = _inputs(torch.float32, time=32)
    with torch.no_grad():
        expected, (h_n, c_n) = lstm(x)
    with MODES[mode]():
        actual, (h, c) = _stepwise(lstm, x)
    torch.testing.assert_close(actual, expected)
    torch.testing.assert_close(h, h_n)
    torch.testing.assert_close(c, c_n)


def test_step_with_grad_gives_the_gradients_of_the_full_call():
    lstm = _lstm(num_layers=2, proj_size=P)
    x = _inputs().requires_grad_()
    grads = []
    for run in (lambda: lstm(x)[0], lambda: _stepwise(lstm, x)[0]):
        lstm.zero_grad()
        x.grad = None
        (run() ** 2).sum().backward()
        grads.append([x.grad.clone()] + [p.grad.clone() for p in lstm.parameters()])
    for expected, actual in zip(*grads, strict=True):
        torch.testing.assert_close(actual, expected, **F64)


@pytest.mark.parametrize("backend", ["auto", "torch", "lstmkit", "reference"])
@pytest.mark.parametrize("num_layers, proj_size", [(1, 0), (2, P)])
def test_chunked_calls_carrying_state_equal_one_full_call(backend, num_layers, proj_size):
    lstm = _lstm(num_layers=num_layers, proj_size=proj_size, backend=backend)
    x = _inputs()
    with torch.no_grad():
        expected, (h_n, c_n) = lstm(x)
        pieces, state, start = [], None, 0
        for size in (3, 1, 4):
            out, state = lstm(x[:, start : start + size], state)
            pieces.append(out)
            start += size
    assert start == T
    torch.testing.assert_close(torch.cat(pieces, dim=1), expected, **F64)
    torch.testing.assert_close(state[0], h_n, **F64)
    torch.testing.assert_close(state[1], c_n, **F64)


@pytest.mark.parametrize("variant", ["layer_norm", "peephole", "zoneout", "combined"])
def test_chunked_calls_with_variants_in_eval_mode(variant):
    lstm = _lstm(num_layers=2, **VARIANTS[variant])
    x = _inputs()
    with torch.no_grad():
        expected, _ = lstm(x)
        first, state = lstm(x[:, :5])
        second, _ = lstm(x[:, 5:], state)
    torch.testing.assert_close(torch.cat((first, second), dim=1), expected, **F64)


@pytest.mark.parametrize("mode", ["inference_mode", "grad"])
@pytest.mark.parametrize("variant", ["plain", "combined"])
def test_reset_zeroes_one_samples_state(mode, variant):
    """Resetting sample 1 at step k equals starting sample 1 fresh at step k; the others run on undisturbed."""
    lstm = _lstm(num_layers=2, **VARIANTS[variant])
    x = _inputs()
    k = 3
    with torch.no_grad():
        continuous, _ = lstm(x)
        fresh, _ = lstm(x[1:2, k:])
    reset = torch.tensor([False, True, False])
    with MODES[mode]():
        state, outputs = None, []
        for t in range(T):
            y, state = lstm.step(x[:, t], state, reset=reset if t == k else None)
            outputs.append(y)
    outputs = torch.stack(outputs, dim=1)
    torch.testing.assert_close(outputs[1, k:], fresh[0], **F64)
    torch.testing.assert_close(outputs[1, :k], continuous[1, :k], **F64)
    torch.testing.assert_close(outputs[[0, 2]], continuous[[0, 2]], **F64)
    assert (outputs[1, k:] - continuous[1, k:]).abs().max() > 1e-4  # the reset did change sample 1


def test_step_refuses_a_bidirectional_lstm():
    lstm = _lstm(bidirectional=True)
    with pytest.raises(ValueError, match="bidirectional"):
        lstm.step(_inputs()[:, 0])


def test_step_rejects_a_wrongly_shaped_reset():
    lstm = _lstm()
    with pytest.raises(ValueError, match=r"reset must have shape \(3,\), got \(2,\)"):
        lstm.step(_inputs()[:, 0], reset=torch.tensor([True, False]))


# ---- the packed streaming weights follow parameter updates ----------------------------------------------------------
def _optimizer_step(make):
    def update(lstm, x):
        opt = make(lstm.parameters())
        out, _ = lstm(x)
        out.pow(2).sum().backward()
        opt.step()

    return update


def _in_place_no_grad(lstm, x):
    with torch.no_grad():
        for p in lstm.parameters():
            p.mul_(1.5)


def _load_state_dict(lstm, x):
    lstm.load_state_dict({k: v * 1.5 for k, v in lstm.state_dict().items()})


def _through_data(lstm, x):
    for p in lstm.parameters():
        p.data.mul_(1.5)


UPDATES = {
    "sgd": _optimizer_step(lambda ps: torch.optim.SGD(ps, lr=0.5)),
    "adam_foreach": _optimizer_step(lambda ps: torch.optim.Adam(ps, lr=0.1, foreach=True)),
    "adam_for_loop": _optimizer_step(lambda ps: torch.optim.Adam(ps, lr=0.1, foreach=False)),
    "adam_fused": _optimizer_step(lambda ps: torch.optim.Adam(ps, lr=0.1, fused=True)),
    "in_place_under_no_grad": _in_place_no_grad,
    "load_state_dict": _load_state_dict,
    "through_dot_data": _through_data,
}


@pytest.mark.parametrize("update", list(UPDATES.values()), ids=list(UPDATES))
@pytest.mark.parametrize("num_layers, proj_size", [(1, 0), (2, P)])
def test_streaming_cache_is_rebuilt_after_an_in_place_parameter_update(update, num_layers, proj_size):
    lstm = _lstm(num_layers=num_layers, proj_size=proj_size)
    x = _inputs()
    with torch.inference_mode():
        before, _ = lstm.step(x[:, 0])  # builds the packed weights
    update(lstm, x)
    with torch.inference_mode():
        after, state = lstm.step(x[:, 0])
    with torch.no_grad():
        expected, (h_n, c_n) = lstm(x[:, :1])
    assert (after - before).abs().max() > 1e-3  # the update changed the function ...
    torch.testing.assert_close(after, expected[:, 0], **F64)  # ... and the stream follows it
    torch.testing.assert_close(state[1], c_n, **F64)


def test_streaming_cache_follows_dtype_moves():
    lstm = _lstm(num_layers=2)
    x = _inputs()
    with torch.inference_mode():
        lstm.step(x[:, 0])
        lstm.float()
        y, _ = lstm.step(x[:, 0].float())
        expected, _ = lstm(x[:, :1].float())
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, expected[:, 0])


# ---- padded == unpadded, per sequence -------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["auto", "torch", "lstmkit", "reference"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("num_layers, proj_size", [(1, 0), (2, P)])
def test_padded_batch_equals_each_sequence_alone(backend, bidirectional, batch_first, num_layers, proj_size):
    lstm = _lstm(
        num_layers=num_layers, proj_size=proj_size, bidirectional=bidirectional, batch_first=batch_first,
        backend=backend,
    )  # fmt: skip
    _check_padded_equals_unpadded(lstm, batch_first)


@pytest.mark.parametrize("backend", ["lstmkit", "reference"])
@pytest.mark.parametrize("variant", ["layer_norm", "peephole", "zoneout", "combined"])
def test_padded_batch_equals_each_sequence_alone_with_variants(backend, variant):
    lstm = _lstm(num_layers=2, bidirectional=True, backend=backend, **VARIANTS[variant])
    _check_padded_equals_unpadded(lstm, batch_first=True)


NAN_PADDING_BUG = (
    "BUG: NaN in the padding of a padded batch (lengths given) leaks into the outputs past the end and into "
    "(h_n, c_n) on backends 'lstmkit' and 'reference': functional.lstm_cell keeps the state past the end with "
    "valid * new + (1 - valid) * prev (and fused/lstm_layer.py with torch.lerp), and 0 * NaN = NaN; backend 'torch' "
    "(packed sequences) is unaffected. The check_finite error message even advises 'pass lengths= to exclude padded "
    "steps'."
)


@pytest.mark.parametrize(
    "backend",
    [
        "auto",
        "torch",
        "lstmkit",
        "reference",
    ],
)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_nan_in_the_padding_does_not_leak(backend, bidirectional):
    lstm = _lstm(num_layers=2, bidirectional=bidirectional, backend=backend)
    _check_padded_equals_unpadded(lstm, batch_first=True, pad_value=float("nan"))


@pytest.mark.parametrize("backend", ["auto", "torch", "lstmkit", "reference"])
def test_padded_steps_get_exactly_zero_input_gradient(backend):
    lstm = _lstm(num_layers=2, bidirectional=True, backend=backend)
    lengths = torch.tensor([5, T, 1])
    x = _inputs().requires_grad_()
    out, (h_n, c_n) = lstm(x, lengths=lengths)
    (out.sum() + h_n.sum() + c_n.sum()).backward()
    for b, n in enumerate(lengths.tolist()):
        assert torch.count_nonzero(x.grad[b, n:]) == 0
        assert x.grad[b, :n].abs().min() > 0


def _check_padded_equals_unpadded(lstm, batch_first, pad_value=100.0):
    lengths = torch.tensor([5, T, 1, 3])
    x = _inputs(batch=4)
    x[0, 5:] = pad_value  # garbage in the padding must not leak into anything
    x[2, 1:] = -pad_value
    x[3, 3:] = pad_value
    D, S = lstm.num_directions, lstm.state_size
    with torch.no_grad():
        out, (h_n, c_n) = lstm(x if batch_first else x.transpose(0, 1), lengths=lengths)
        out = out if batch_first else out.transpose(0, 1)
        assert out.shape == (4, T, D * S)
        for b, n in enumerate(lengths.tolist()):
            alone = x[b : b + 1, :n]
            out_b, (h_b, c_b) = lstm(alone if batch_first else alone.transpose(0, 1))
            out_b = out_b if batch_first else out_b.transpose(0, 1)
            torch.testing.assert_close(out[b, :n], out_b[0], **F64)
            assert torch.count_nonzero(out[b, n:]) == 0  # zeros past the end
            torch.testing.assert_close(h_n[:, b], h_b[:, 0], **F64)
            torch.testing.assert_close(c_n[:, b], c_b[:, 0], **F64)
