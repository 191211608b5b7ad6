"""lstmkit's own fast layer (backend "lstmkit", a hand-written backward) pinned to the readable reference.

One helper, :func:`assert_matches_reference`, runs the same weights, inputs and random masks through both backends
and compares forward and backward with ``atol + rtol * |reference|`` (``torch.testing.assert_close``). The masks are
the same because both runs start from the same seed and draw them in the same order.

``gradcheck`` (float64, B=2, T=3, I=4, H=5) checks both the reference and the fast layer's autograd.Function against
finite differences, with fixed masks so that train-mode randomness does not move between evaluations.
"""

import pytest
import torch

import lstmkit.nn as lnn
from lstmkit.nn import functional
from lstmkit.nn.functional import LSTMLayerWeights, StepMasks
from lstmkit.nn.fused import lstm_layer as fast

I, H, P, B, T = 4, 5, 3, 3, 6
TOLERANCES = {torch.float64: {"rtol": 1e-10, "atol": 1e-12}, torch.float32: {"rtol": 1e-5, "atol": 1e-5}}


VARIANTS = {
    "plain": {},
    "layer_norm": {"layer_norm": True},
    "peephole": {"peephole": True},
    "recurrent_dropout": {"recurrent_dropout": 0.3},
    "zoneout": {"zoneout": 0.25},
    "proj_size": {"proj_size": P},
    "forget_bias": {"forget_bias": 3.0},
    "no_bias": {"bias": False},
    "between_layer_dropout": {"dropout": 0.4},
    "combined": {
        "layer_norm": True,
        "peephole": True,
        "recurrent_dropout": 0.3,
        "zoneout": 0.25,
        "proj_size": P,
        "forget_bias": 2.0,
    },
}


def _build(config: dict, backend: str, dtype: torch.dtype, seed: int = 0) -> lnn.LSTM:
    torch.manual_seed(seed)
    lstm = lnn.LSTM(I, H, backend=backend, **config).to(dtype)
    with torch.no_grad():  # move every parameter off its init (LN gains off 1, shifts off 0) so each one matters
        for p in lstm.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return lstm


def _forward_backward(lstm: lnn.LSTM, x, state, lengths, mask_seed: int) -> dict:
    lstm.zero_grad()
    leaves = (x, *state)
    for leaf in leaves:
        leaf.grad = None
    torch.manual_seed(mask_seed)  # the same dropout and zoneout masks in every backend
    out, (h_n, c_n) = lstm(x, state, lengths)
    weights = torch.linspace(-1.0, 1.0, out.numel(), dtype=out.dtype).view_as(out)
    ((out * weights).sum() + (h_n**2).sum() + (c_n**3).sum()).backward()
    res = {"output": out.detach(), "h_n": h_n.detach(), "c_n": c_n.detach()}
    res |= {f"grad {n}": leaf.grad.clone() for n, leaf in zip(("x", "h_0", "c_0"), leaves, strict=True)}
    res |= {f"grad {n}": p.grad.clone() for n, p in lstm.named_parameters()}
    return res


def assert_matches_reference(
    config: dict,
    dtype: torch.dtype = torch.float64,
    *,
    train: bool = False,
    padded: bool = False,
    batch_first: bool = True,
    mask_seed: int = 7,
    tol: dict | None = None,
) -> dict:
    """Backend "lstmkit" equals backend "reference": forward, backward, parameter names and shapes.

    Returns the reference results, so that a caller can check they are not trivial. ``tol`` overrides the dtype's
    default tolerances.
    """
    tol = tol or TOLERANCES[dtype]
    config = {"batch_first": batch_first, **config}
    ours = _build(config, "lstmkit", dtype)
    ref = _build(config, "reference", dtype)
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [(n, p.shape) for n, p in ref.named_parameters()]
    ref.load_state_dict(ours.state_dict())
    ours.train(train)
    ref.train(train)
    gen = torch.Generator().manual_seed(3)
    D, L, S = ours.num_directions, ours.num_layers, ours.state_size
    x = torch.randn((B, T, I) if batch_first else (T, B, I), generator=gen, dtype=dtype).requires_grad_()
    h0 = torch.randn(L * D, B, S, generator=gen, dtype=dtype).requires_grad_()
    c0 = torch.randn(L * D, B, H, generator=gen, dtype=dtype).requires_grad_()
    lengths = torch.tensor([4, T, 1]) if padded else None
    expected = _forward_backward(ref, x, (h0, c0), lengths, mask_seed)
    actual = _forward_backward(ours, x, (h0, c0), lengths, mask_seed)
    assert expected.keys() == actual.keys()
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], **tol, msg=lambda m, k=key: f"{k}: {m}")
    return expected


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("padded", [False, True], ids=["full", "padded"])
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_fast_layer_matches_reference_float64(variant, num_layers, bidirectional, padded, train):
    config = {**VARIANTS[variant], "num_layers": num_layers, "bidirectional": bidirectional}
    expected = assert_matches_reference(config, torch.float64, train=train, padded=padded)
    assert expected["output"].abs().max() > 1e-2
    for key in ("grad x", "grad weight_hh_l0", "grad h_0", "grad c_0"):
        assert expected[key].abs().max() > 1e-3, key


@pytest.mark.parametrize("variant", ["plain", "peephole", "zoneout", "combined"])
def test_fast_layer_matches_reference_float32(variant):
    """fp32 at rtol=1e-5 for every variant except layer norm, which divides by a small standard deviation over 4H
    values and amplifies rounding: measured worst relative error 3.7e-4 (combined, 2 layers, bidirectional, over 6
    mask seeds; float64 agrees to 1e-10, so this is rounding, not a formula difference)."""
    config = {**VARIANTS[variant], "num_layers": 2, "bidirectional": True}
    tol = {"rtol": 1e-3, "atol": 1e-5} if config.get("layer_norm") else None
    assert_matches_reference(config, torch.float32, train=True, padded=True, tol=tol)


def test_fast_layer_matches_reference_time_major():
    assert_matches_reference({**VARIANTS["combined"], "num_layers": 2}, batch_first=False, train=True, padded=True)


@pytest.mark.parametrize("variant", ["recurrent_dropout", "zoneout", "between_layer_dropout"])
def test_train_mode_masks_change_the_result(variant):
    """The train-mode comparisons above compare sampled masks, not expectations: the masks do matter."""
    config = {**VARIANTS[variant], "num_layers": 2}
    train = assert_matches_reference(config, train=True)
    evaluation = assert_matches_reference(config, train=False)
    assert (train["output"] - evaluation["output"]).abs().max() > 1e-3


def test_parameter_names_and_shapes_identical_across_backends():
    config = {**VARIANTS["combined"], "num_layers": 2, "bidirectional": True}
    layouts = []
    for backend in ("auto", "lstmkit", "reference"):
        lstm = lnn.LSTM(I, H, backend=backend, **config)
        layouts.append([(n, tuple(p.shape)) for n, p in lstm.named_parameters()])
    assert layouts[0] == layouts[1] == layouts[2]
    names = [n for n, _ in layouts[0]]
    assert "weight_peephole_l1_reverse" in names and "layer_norm_cell_bias_l0" in names and "weight_hr_l1" in names
    plain = [(n, tuple(p.shape)) for n, p in lnn.LSTM(I, H, backend="torch", num_layers=2).named_parameters()]
    assert plain == [(n, tuple(p.shape)) for n, p in lnn.LSTM(I, H, backend="lstmkit", num_layers=2).named_parameters()]


# ---- gradcheck ------------------------------------------------------------------------------------------------------
GB, GT, GI, GH, GP = 2, 3, 4, 5, 3  # the style guide's tiny sizes

LAYER_VARIANTS = {
    "plain": {},
    "no_bias": {"bias": False},
    "layer_norm": {"layer_norm": True},
    "peephole": {"peephole": True},
    "proj_size": {"proj": True},
    "recurrent_dropout": {"recurrent": True},
    "zoneout_train": {"zoneout": "train"},
    "zoneout_eval": {"zoneout": "eval"},
    "padded": {"valid": True},
    "combined": {"layer_norm": True, "peephole": True, "proj": True, "recurrent": True, "zoneout": "train",
                 "valid": True},
}  # fmt: skip


def _layer_case(variant: dict, seed: int = 0):
    """Tensors for one layer call: x, h0, c0, the weights as a dict of leaves, and fixed masks."""
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=0.5):
        return (scale * torch.randn(*shape, generator=gen, dtype=torch.float64)).requires_grad_()

    S = GP if variant.get("proj") else GH
    x, h0, c0 = rand(GT, GB, GI, scale=1.0), rand(GB, S), rand(GB, GH)
    weights = {"weight_ih": rand(4 * GH, GI), "weight_hh": rand(4 * GH, S)}
    if variant.get("bias", True):
        weights |= {"bias_ih": rand(4 * GH), "bias_hh": rand(4 * GH)}
    if variant.get("proj"):
        weights["weight_hr"] = rand(GP, GH)
    if variant.get("peephole"):
        weights["weight_peephole"] = rand(3, GH)
    if variant.get("layer_norm"):
        weights |= {
            "ln_ih_weight": (1 + rand(4 * GH)).detach().requires_grad_(),
            "ln_hh_weight": (1 + rand(4 * GH)).detach().requires_grad_(),
            "ln_cell_weight": (1 + rand(GH)).detach().requires_grad_(),
            "ln_cell_bias": rand(GH),
        }
    masks = {}
    if variant.get("recurrent"):
        masks["recurrent"] = torch.bernoulli(torch.full((GB, S), 0.7, dtype=torch.float64), generator=gen) / 0.7
    if variant.get("zoneout") == "train":
        masks["zoneout_h"] = torch.bernoulli(torch.full((GT, GB, S), 0.3, dtype=torch.float64), generator=gen)
        masks["zoneout_c"] = torch.bernoulli(torch.full((GT, GB, GH), 0.3, dtype=torch.float64), generator=gen)
    elif variant.get("zoneout") == "eval":
        masks["zoneout_h"] = masks["zoneout_c"] = 0.3
    if variant.get("valid"):
        masks["valid"] = (torch.arange(GT)[:, None] < torch.tensor([GT, 2])[None, :]).to(torch.float64)[..., None]
    return x, h0, c0, weights, StepMasks(**masks)


def _as_function(layer_fn, names: list[str], masks: StepMasks):
    """(x, h0, c0, *weights) -> (output, h_n, c_n) with the masks fixed: a pure function for gradcheck."""

    def fn(x, h0, c0, *tensors):
        w = LSTMLayerWeights(**dict(zip(names, tensors, strict=True)))
        out, (h_n, c_n), _ = layer_fn(x, (h0, c0), w, masks)
        return out, h_n, c_n

    return fn


@pytest.mark.parametrize("variant", list(LAYER_VARIANTS))
@pytest.mark.parametrize("layer_fn", [functional.lstm_layer, fast.lstm_layer], ids=["reference", "lstmkit"])
def test_gradcheck_layer(layer_fn, variant):
    x, h0, c0, weights, masks = _layer_case(LAYER_VARIANTS[variant])
    fn = _as_function(layer_fn, list(weights), masks)
    assert torch.autograd.gradcheck(fn, (x, h0, c0, *weights.values()), eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("variant", list(LAYER_VARIANTS))
def test_fast_layer_equals_reference_layer_with_fixed_masks(variant):
    """The layers alone, outside the module's mask sampling: identical float64 numbers and gradients."""
    x, h0, c0, weights, masks = _layer_case(LAYER_VARIANTS[variant])
    inputs = (x, h0, c0, *weights.values())
    results = []
    for layer_fn in (functional.lstm_layer, fast.lstm_layer):
        outs = _as_function(layer_fn, list(weights), masks)(*inputs)
        seed_grads = [torch.linspace(-1, 1, o.numel(), dtype=o.dtype).view_as(o) for o in outs]
        grads = torch.autograd.grad(outs, inputs, seed_grads)
        results.append([o.detach() for o in outs] + list(grads))
    for expected, actual in zip(*results, strict=True):
        torch.testing.assert_close(actual, expected, **TOLERANCES[torch.float64])


def test_gradcheck_reference_lstm_module_two_layers_bidirectional():
    """gradcheck through the whole reference module (layers, directions, padding) via torch.func.functional_call.

    fast_mode checks random projections of the Jacobian (the full one costs ~10 s here); the per-layer gradchecks
    above check every entry.
    """
    torch.manual_seed(0)
    lstm = lnn.LSTM(GI, GH, num_layers=2, bidirectional=True, backend="reference").double()
    names = [n for n, _ in lstm.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for p in lstm.parameters())
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(GB, GT, GI, generator=gen, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(4, GB, GH, generator=gen, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(4, GB, GH, generator=gen, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([GT, 2])

    def fn(x, h0, c0, *tensors):
        out, (h_n, c_n) = torch.func.functional_call(
            lstm, dict(zip(names, tensors, strict=True)), (x, (h0, c0), lengths)
        )
        return out, h_n, c_n

    assert torch.autograd.gradcheck(fn, (x, h0, c0, *params), eps=1e-6, atol=1e-7, rtol=1e-5, fast_mode=True)


def test_gradgradcheck_reference_plain():
    x, h0, c0, weights, masks = _layer_case({})
    fn = _as_function(functional.lstm_layer, list(weights), masks)
    assert torch.autograd.gradgradcheck(fn, (x, h0, c0, *weights.values()), eps=1e-6, atol=1e-6, rtol=1e-4)


def test_fast_layer_refuses_record():
    x, h0, c0, weights, masks = _layer_case({})
    with pytest.raises(ValueError, match="record"):
        fast.lstm_layer(x, (h0, c0), LSTMLayerWeights(**weights), masks, record=True)


# ---- CUDA -----------------------------------------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("variant", ["plain", "combined"])
def test_backends_agree_on_cuda(variant, dtype):
    """On the GPU: torch (cuDNN, plain configs only), lstmkit and reference give the same numbers and gradients.

    TF32 is switched off so that float32 matmuls are float32; layer norm needs the looser fp32 rtol (see above).
    """
    previous = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        config = {**VARIANTS[variant], "num_layers": 2, "bidirectional": True}
        backends = ("reference", "lstmkit", "torch") if variant == "plain" else ("reference", "lstmkit")
        tol = TOLERANCES[dtype]
        if dtype == torch.float32:
            tol = {"rtol": 1e-3 if variant == "combined" else 1e-4, "atol": 1e-5}
        weights = _build(config, "reference", dtype).state_dict()
        gen = torch.Generator().manual_seed(3)
        S = P if config.get("proj_size") else H
        x = torch.randn(B, T, I, generator=gen, dtype=dtype).cuda().requires_grad_()
        h0 = torch.randn(4, B, S, generator=gen, dtype=dtype).cuda().requires_grad_()
        c0 = torch.randn(4, B, H, generator=gen, dtype=dtype).cuda().requires_grad_()
        lengths = torch.tensor([4, T, 1])
        results = []
        for backend in backends:
            lstm = lnn.LSTM(I, H, backend=backend, **config).to(dtype)
            lstm.load_state_dict(weights)
            lstm.cuda().train(variant != "plain")  # train mode: the sampled masks must agree too
            assert lstm.explain().backend == backend
            results.append(_forward_backward(lstm, x, (h0, c0), lengths, mask_seed=7))
        for backend, other in zip(backends[1:], results[1:], strict=True):
            for key in results[0]:
                torch.testing.assert_close(
                    other[key], results[0][key], **tol, msg=lambda m, k=key, b=backend: f"{b}, {k}: {m}"
                )
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = previous
