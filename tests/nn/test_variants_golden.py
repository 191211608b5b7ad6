"""Each LSTM variant against an independent formula written here in numpy, on hand-set weights; plus golden numbers.

The numpy formulas follow the papers, not lstmkit's code: layer norm (Ba, Kiros & Hinton 2016, eqs. 20-22),
peephole connections (Gers & Schmidhuber 2000), projection (LSTMP, Sak et al. 2014), zoneout at evaluation
(Krueger et al. 2016: the expectation of the keep mask, ``z * previous + (1 - z) * new``) and variational recurrent
dropout at evaluation (Gal & Ghahramani 2016: no mask, the plain LSTM).

Weights are deterministic patterns (``0.4 * sin(0.7 * k + phase)``), not constants: with Keras-style constant
weights every unit computes the same number and a swapped gate order or a transposed matrix would go unnoticed. One
Keras-style constant case (0.01 / 0.02 / 0.03 with ``np.arange`` inputs) is kept as well.
"""

import numpy as np
import pytest
import torch

import lstmkit.nn as lnn
from lstmkit.nn import functional

B, T, I, H, P = 2, 5, 4, 3, 2
EPS = 1e-5  # layer-norm epsilon, torch.nn.LayerNorm's


# ---- the independent formulas ---------------------------------------------------------------------------------------
def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def layer_norm(v, gain, shift=0.0):
    """Ba et al.: normalise over the last axis with the population variance, then gain and shift."""
    mu = v.mean(axis=-1, keepdims=True)
    sigma = np.sqrt(((v - mu) ** 2).mean(axis=-1, keepdims=True) + EPS)
    return gain * (v - mu) / sigma + shift


def numpy_lstm(x, p, *, peephole=False, layer_norm_=False, proj=False, zoneout=0.0, recurrent_mask=1.0):
    """One forward layer. x: (B, T, I); p: the parameters by torch's names (suffix _l0). Returns out, h_n, c_n.

    z = W_x x (+ LN) + W_h (m * h) (+ LN) + b_ih + b_hh, with m the recurrent dropout mask (1 at evaluation); gates
    i, f, g, o; i and f see c_{t-1} through the peepholes, o sees c_t; h = o * tanh(c) or o * tanh(LN(c)); with
    projection h = W_hr h; zoneout mixes the previous state in with weight z: a float (evaluation) or per-step masks
    ``(z_h, z_c)`` of shapes (T, B, S) and (T, B, H) (training).
    """
    W_x, W_h = p["weight_ih_l0"], p["weight_hh_l0"]
    b = p["bias_ih_l0"] + p["bias_hh_l0"]
    h = np.zeros((x.shape[0], W_h.shape[1]))
    c = np.zeros((x.shape[0], W_h.shape[0] // 4))
    outputs = []
    for t in range(x.shape[1]):
        a_x = x[:, t] @ W_x.T
        a_h = (recurrent_mask * h) @ W_h.T
        if layer_norm_:
            a_x = layer_norm(a_x, p["layer_norm_ih_weight_l0"])
            a_h = layer_norm(a_h, p["layer_norm_hh_weight_l0"])
        z_i, z_f, z_g, z_o = np.split(a_x + a_h + b, 4, axis=1)
        if peephole:
            w_ci, w_cf, w_co = p["weight_peephole_l0"]
            z_i, z_f = z_i + w_ci * c, z_f + w_cf * c
        c_new = sigmoid(z_f) * c + sigmoid(z_i) * np.tanh(z_g)
        if peephole:
            z_o = z_o + w_co * c_new
        cell = layer_norm(c_new, p["layer_norm_cell_weight_l0"], p["layer_norm_cell_bias_l0"]) if layer_norm_ else c_new
        h_new = sigmoid(z_o) * np.tanh(cell)
        if proj:
            h_new = h_new @ p["weight_hr_l0"].T
        z_h, z_c = (zoneout[0][t], zoneout[1][t]) if isinstance(zoneout, tuple) else (zoneout, zoneout)
        c = z_c * c + (1 - z_c) * c_new
        h = z_h * h + (1 - z_h) * h_new
        outputs.append(h)
    return np.stack(outputs, axis=1), h, c


# ---- hand-set weights -----------------------------------------------------------------------------------------------
def pattern(shape, phase, scale=0.4, offset=0.0):
    n = int(np.prod(shape))
    return offset + scale * np.sin(0.7 * np.arange(n) + phase).reshape(shape)


def patterned_params(lstm: lnn.LSTM) -> dict:
    """A deterministic, non-constant value for every parameter of ``lstm``, set into it; returned as numpy arrays."""
    values = {}
    for k, (name, p) in enumerate(lstm.named_parameters()):
        offset = 1.0 if name.startswith("layer_norm") and "weight" in name else 0.0  # gains around 1
        values[name] = pattern(tuple(p.shape), phase=1.3 * k, offset=offset)
    with torch.no_grad():
        for name, p in lstm.named_parameters():
            p.copy_(torch.from_numpy(values[name]))
    return values


def arange_input(scale=0.1):
    return (np.arange(B * T * I).reshape(B, T, I) % 7 - 3) * scale


VARIANTS = {
    "plain": ({}, {}),
    "layer_norm": ({"layer_norm": True}, {"layer_norm_": True}),
    "peephole": ({"peephole": True}, {"peephole": True}),
    "projection": ({"proj_size": P}, {"proj": True}),
    "zoneout_eval": ({"zoneout": 0.3}, {"zoneout": 0.3}),
    "recurrent_dropout_eval": ({"recurrent_dropout": 0.5}, {}),  # at evaluation: the plain LSTM
    "combined": (
        {"layer_norm": True, "peephole": True, "proj_size": P, "zoneout": 0.3, "recurrent_dropout": 0.5},
        {"layer_norm_": True, "peephole": True, "proj": True, "zoneout": 0.3},
    ),
}


@pytest.mark.parametrize("backend", ["lstmkit", "reference"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variant_matches_independent_numpy_formula(variant, backend):
    lstm_kwargs, formula_kwargs = VARIANTS[variant]
    lstm = lnn.LSTM(I, H, backend=backend, **lstm_kwargs).double().eval()
    params = patterned_params(lstm)
    x = arange_input()
    expected_out, expected_h, expected_c = numpy_lstm(x, params, **formula_kwargs)
    with torch.no_grad():
        out, (h_n, c_n) = lstm(torch.from_numpy(x))
    np.testing.assert_allclose(out.numpy(), expected_out, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h_n[0].numpy(), expected_h, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(c_n[0].numpy(), expected_c, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("variant", ["layer_norm", "peephole", "zoneout_eval"])
def test_each_variant_changes_the_numbers(variant):
    """The variant formulas are not the plain one in disguise: the same weights give different outputs."""
    _, formula_kwargs = VARIANTS[variant]
    params = patterned_params(lnn.LSTM(I, H, **VARIANTS[variant][0]).double())
    x = arange_input()
    assert np.abs(numpy_lstm(x, params, **formula_kwargs)[0] - numpy_lstm(x, params)[0]).max() > 1e-3


def test_recurrent_dropout_and_zoneout_are_random_in_training_mode():
    lstm = lnn.LSTM(I, H, recurrent_dropout=0.5, zoneout=0.3).double()
    patterned_params(lstm)
    x = torch.from_numpy(arange_input())
    with torch.no_grad():
        lstm.train()
        torch.manual_seed(0)
        first = lstm(x)[0]
        second = lstm(x)[0]
        lstm.eval()
        evaluation = lstm(x)[0]
    assert (first - second).abs().max() > 1e-4
    assert (first - evaluation).abs().max() > 1e-4


def test_train_mode_masks_are_the_papers_masks_and_enter_the_formula_as_written(monkeypatch):
    """Training mode: the recurrent dropout mask is one Bernoulli(1 - p) draw per sequence scaled by 1 / (1 - p), the
    same at every step (Gal & Ghahramani); zoneout draws a fresh Bernoulli(z) keep mask per step and unit (Krueger
    et al.). The masks are captured from the reference cell and fed to the numpy formula."""
    p_drop, z, batch = 0.5, 0.3, 400
    captured = []
    real_cell = functional.lstm_cell

    def spy(x, state, w, **masks):
        captured.append(masks)
        return real_cell(x, state, w, **masks)

    monkeypatch.setattr(functional, "lstm_cell", spy)
    lstm = lnn.LSTM(I, H, recurrent_dropout=p_drop, zoneout=z, backend="reference").double().train()
    params = patterned_params(lstm)
    x = np.random.default_rng(0).normal(size=(batch, T, I))
    torch.manual_seed(0)
    with torch.no_grad():
        out, (h_n, c_n) = lstm(torch.from_numpy(x))
    assert len(captured) == T
    recurrent = captured[0]["recurrent_mask"]
    assert all(step["recurrent_mask"] is recurrent for step in captured)  # one mask per sequence, every step
    assert set(recurrent.unique().tolist()) == {0.0, 1 / (1 - p_drop)}
    assert abs((recurrent == 0).double().mean().item() - p_drop) < 0.05
    z_h = torch.stack([step["zoneout_h"] for step in captured]).numpy()  # (T, B, H)
    z_c = torch.stack([step["zoneout_c"] for step in captured]).numpy()
    for keep in (z_h, z_c):
        assert set(np.unique(keep).tolist()) == {0.0, 1.0} and abs(keep.mean() - z) < 0.03
        assert (keep[0] != keep[1]).any()  # fresh draws every step
    assert (z_h != z_c).any()  # and separate draws for h and c
    expected = numpy_lstm(x, params, zoneout=(z_h, z_c), recurrent_mask=recurrent.numpy())
    np.testing.assert_allclose(out.numpy(), expected[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(c_n[0].numpy(), expected[2], rtol=1e-10, atol=1e-12)


# ---- golden numbers -------------------------------------------------------------------------------------------------
# Made once with numpy_lstm above (float64) on patterned_params of lnn.LSTM(4, 3) (the sin pattern; parameter k
# gets phase 1.3 * k in named_parameters order: weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0) and
# arange_input(): x = (arange(40).reshape(2, 5, 4) % 7 - 3) * 0.1. Rounded to 9 decimals. (Made by a one-off script
# that imported pattern / numpy_lstm / arange_input from this file; regenerate only with a reason.)
# fmt: off
EXPECTED_PLAIN_OUTPUT = [
    [
        [0.134065037, 0.060118692, 0.058324975],
        [0.179373918, 0.105030043, 0.053160627],
        [0.227068275, 0.100846415, 0.072771458],
        [0.220515987, 0.125378466, 0.062235485],
        [0.261547101, 0.103022649, 0.071931152],
    ],
    [
        [0.104854194, 0.084335595, 0.044124883],
        [0.200103919, 0.091140903, 0.051829431],
        [0.222472540, 0.096750379, 0.074106858],
        [0.235081078, 0.113717867, 0.059809758],
        [0.252984082, 0.103263062, 0.074266782],
    ],
]
EXPECTED_PLAIN_C_N = [
    [0.527643574, 0.317930867, 0.199250182],
    [0.537172322, 0.300640928, 0.213178959],
]
# Keras-style (keras lstm_test.test_correctness): weight_ih 0.01, weight_hh 0.02, bias_ih 0.03, bias_hh 0, and
# x = arange(2 * 5 * 4).reshape(2, 5, 4), unscaled as in Keras; every unit computes the same value, so one number
# per (batch, step).
EXPECTED_KERAS_STYLE_OUTPUT = [
    [0.024485065, 0.091949408, 0.195226008, 0.321892272, 0.453034283],
    [0.329982828, 0.555226221, 0.687912511, 0.764632707, 0.811721471],
]
# fmt: on


@pytest.mark.parametrize("backend", ["auto", "torch", "lstmkit", "reference"])
def test_plain_golden_numbers(backend):
    lstm = lnn.LSTM(I, H, backend=backend).double()
    patterned_params(lstm)
    with torch.no_grad():
        out, (h_n, c_n) = lstm(torch.from_numpy(arange_input()))
    np.testing.assert_allclose(out.numpy(), np.array(EXPECTED_PLAIN_OUTPUT), rtol=0, atol=1e-6)
    np.testing.assert_allclose(h_n[0].numpy(), np.array(EXPECTED_PLAIN_OUTPUT)[:, -1], rtol=0, atol=1e-6)
    np.testing.assert_allclose(c_n[0].numpy(), np.array(EXPECTED_PLAIN_C_N), rtol=0, atol=1e-6)


def test_plain_golden_numbers_from_torch_nn_lstm():
    """The golden numbers are torch.nn.LSTM's too, so they are not merely numpy_lstm's."""
    ref = torch.nn.LSTM(I, H, batch_first=True).double()
    patterned_params(ref)
    with torch.no_grad():
        out, _ = ref(torch.from_numpy(arange_input()))
    np.testing.assert_allclose(out.numpy(), np.array(EXPECTED_PLAIN_OUTPUT), rtol=0, atol=1e-6)


@pytest.mark.parametrize("backend", ["torch", "lstmkit", "reference"])
def test_keras_style_constant_golden_numbers(backend):
    lstm = lnn.LSTM(I, H, backend=backend)  # float32, as Keras runs it
    with torch.no_grad():
        lstm.weight_ih_l0.fill_(0.01)
        lstm.weight_hh_l0.fill_(0.02)
        lstm.bias_ih_l0.fill_(0.03)
        lstm.bias_hh_l0.zero_()
    x = torch.arange(B * T * I, dtype=torch.float32).reshape(B, T, I)
    with torch.no_grad():
        out, _ = lstm(x)
    expected = np.repeat(np.array(EXPECTED_KERAS_STYLE_OUTPUT)[..., None], H, axis=-1)
    np.testing.assert_allclose(out.numpy(), expected, rtol=0, atol=1e-6)
