"""LSTM, GRU and RNN under ``torch.autocast`` (bfloat16): every backend and variant runs forward and backward, keeps
float32 gradients, and stays within a bfloat16 tolerance of float32 and of the reference.

The contract (:mod:`lstmkit.nn.lstm`): under autocast the output and h_n come back in the autocast dtype, c_n in
float32, every parameter gradient in float32; an input or state may be passed in either dtype.

Tolerance. bfloat16 keeps 8 significant bits, so one rounding is off by up to 2^-9 = 0.2 %; a layer rounds its
input, its weights and, at every step, the h that feeds the recurrent product. Errors are compared per tensor
against its largest value, ``max|actual - expected| <= tol * max|expected|`` (elements near zero would fail any
element-wise rtol). Measured with these sizes over 20 seeds and 1 or 2 layers (torch 2.13, CPU):

- against float32: at most 1.2e-2 (outputs) and 1.6e-2 (gradients, the torch kernel with projection) without layer
  norm: ``TOL_FP32 = 3e-2``;
- with layer norm each normalisation divides the rounding error by its row's spread, three times a step, and the
  error grows along the sequence: up to 0.24 in outputs and 1.5 in gradients at T=6 (the reference under autocast
  does the same, to 1e-6 of the fast layer in forward). Layer-norm variants are compared to float32 in forward
  only, at T=3 (measured at most 8.7e-2): ``TOL_FP32_LAYER_NORM = 0.15``;
- GRU and RNN against float32: at most 9.5e-3 in forward; gradients at most 2.2e-2 with the reference and 4.1e-2
  with PyTorch's kernel, which sums every step's weight and bias gradient in bfloat16 (2 layers, bidirectional,
  6 seeds): ``TOL_FP32`` forward, ``TOL_FP32_GRU_RNN_GRADS = 8e-2``;
- lstmkit's fast layer against the reference, both under autocast (same bfloat16 products; the reference rounds
  x W_ih + h W_hh to bfloat16 before adding the biases and sums its per-step weight gradients in bfloat16, the fast
  layer adds in float32 and takes one GEMM over all steps): at most 7.0e-3 in forward and 1.4e-2 in gradients, 2.1e-2
  with layer norm, over the cases below and 4 seeds: ``TOL_REFERENCE = 4e-2``.
"""

import pytest
import torch

import lstmkit.nn as lnn

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")

I, H, P, B, T = 4, 8, 5, 3, 6
BF16 = torch.bfloat16
TOL_FP32 = 3e-2
TOL_FP32_LAYER_NORM = 0.15
TOL_REFERENCE = 4e-2
TOL_FP32_GRU_RNN_GRADS = 8e-2

VARIANTS = {
    "plain": {},
    "layer_norm": {"layer_norm": True},
    "peephole": {"peephole": True},
    "proj_size": {"proj_size": P},
    "zoneout": {"zoneout": 0.25},
    "recurrent_dropout": {"recurrent_dropout": 0.3},
    "combined": {"layer_norm": True, "peephole": True, "proj_size": P, "zoneout": 0.25, "recurrent_dropout": 0.3},
}
TORCH_KERNEL_VARIANTS = ("plain", "proj_size")  # what PyTorch's fused kernel can run


def assert_close_scaled(actual: dict, expected: dict, tol: float, what: str = "") -> None:
    """Every tensor: ``max|actual - expected| <= tol * max|expected|``, with the failing key and error named."""
    assert actual.keys() == expected.keys()
    for key, ref in expected.items():
        err = (actual[key].double() - ref.double()).abs().max().item()
        scale = ref.double().abs().max().item()
        assert err <= tol * scale, f"{what}{key}: max error {err:.3g} > {tol} * max|expected| {scale:.3g}"


def _lstm(config: dict, backend: str, num_layers: int = 2, seed: int = 0) -> lnn.LSTM:
    torch.manual_seed(seed)
    return lnn.LSTM(I, H, num_layers, backend=backend, **config).train()


def _run(lstm, x, state=None, lengths=None, autocast=True, mask_seed=7) -> tuple[dict, dict]:
    """Forward under autocast (or not), then backward of a loss that weighs every output, h_n and c_n.

    Returns (forward results as float32, gradients of x and of every parameter)."""
    lstm.zero_grad()
    x = x.detach().clone().requires_grad_()
    torch.manual_seed(mask_seed)  # the same dropout and zoneout masks in every run
    with torch.autocast("cpu", dtype=BF16, enabled=autocast):
        out, (h_n, c_n) = lstm(x, state, lengths)
    if autocast:
        assert (out.dtype, h_n.dtype, c_n.dtype) == (BF16, BF16, torch.float32)
    weights = torch.linspace(-1.0, 1.0, out.numel()).view_as(out)
    ((out.float() * weights).sum() + h_n.float().sum() + c_n.float().sum()).backward()
    grads = {"grad x": x.grad} | {f"grad {n}": p.grad for n, p in lstm.named_parameters()}
    for name, grad in grads.items():
        assert grad is not None and grad.dtype == torch.float32, name
        assert torch.isfinite(grad).all(), name
    return {"output": out.detach().float(), "h_n": h_n.detach().float(), "c_n": c_n.detach().float()}, grads


def _input(time: int = T, seed: int = 1) -> torch.Tensor:
    return torch.randn(B, time, I, generator=torch.Generator().manual_seed(seed))


def _backends(variant: str) -> list[str]:
    return ["lstmkit", "reference"] + (["torch"] if variant in TORCH_KERNEL_VARIANTS else [])


# ---- LSTM against float32 --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "variant, backend", [(v, b) for v in VARIANTS for b in _backends(v)], ids=lambda v: str(v)
)  # fmt: skip
def test_lstm_autocast_close_to_float32(variant, backend):
    """Forward and backward run, gradients are float32 and finite, and the numbers are float32's within bf16."""
    layer_norm = VARIANTS[variant].get("layer_norm", False)
    x = _input(3 if layer_norm else T)
    expected = _run(_lstm(VARIANTS[variant], "reference"), x, autocast=False)
    lstm = _lstm(VARIANTS[variant], backend)
    assert lstm.explain().backend == backend
    actual = _run(lstm, x)
    if layer_norm:  # forward only: see the module docstring
        assert_close_scaled(actual[0], expected[0], TOL_FP32_LAYER_NORM)
    else:
        assert_close_scaled(actual[0], expected[0], TOL_FP32)
        assert_close_scaled(actual[1], expected[1], TOL_FP32)


@pytest.mark.parametrize("variant", ["plain", "layer_norm", "combined"])
def test_auto_backend_under_autocast(variant):
    """backend="auto" takes the same path under autocast (torch for plain, lstmkit for variants) and keeps the
    contract; a plain LSTM's output is within bf16 of torch.nn.LSTM's under autocast."""
    lstm = _lstm(VARIANTS[variant], "auto")
    forward, _ = _run(lstm, _input())
    if variant == "plain":
        peer = torch.nn.LSTM(I, H, 2, batch_first=True)
        peer.load_state_dict(lstm.state_dict())
        with torch.autocast("cpu", dtype=BF16):
            out, _ = peer(_input())
        assert_close_scaled({"output": forward["output"]}, {"output": out.float()}, TOL_FP32)


# ---- fast layer and PyTorch's kernel against the reference, both under autocast --------------------------------------
@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("padded", [False, True], ids=["full", "padded"])
def test_fast_layer_matches_reference_under_autocast(variant, bidirectional, padded):
    config = {**VARIANTS[variant], "bidirectional": bidirectional}
    D, S = 1 + bidirectional, VARIANTS[variant].get("proj_size") or H
    gen = torch.Generator().manual_seed(5)
    state = (torch.randn(2 * D, B, S, generator=gen), torch.randn(2 * D, B, H, generator=gen))
    lengths = torch.tensor([4, T, 1]) if padded else None
    expected = _run(_lstm(config, "reference"), _input(), state, lengths)
    actual = _run(_lstm(config, "lstmkit"), _input(), state, lengths)
    assert_close_scaled(actual[0], expected[0], TOL_REFERENCE)
    assert_close_scaled(actual[1], expected[1], TOL_REFERENCE)


@pytest.mark.parametrize("variant", TORCH_KERNEL_VARIANTS)
@pytest.mark.parametrize("padded", [False, True], ids=["full", "padded"])
def test_torch_kernel_matches_reference_under_autocast(variant, padded):
    """backend="torch" (oneDNN's bfloat16 LSTM on CPU) and, padded, "auto"'s torch prefix + lstmkit suffix."""
    lengths = torch.tensor([4, T, 2]) if padded else None
    expected = _run(_lstm(VARIANTS[variant], "reference"), _input(), None, lengths)
    for backend in ("torch", "auto"):
        lstm = _lstm(VARIANTS[variant], backend)
        assert lstm.explain(padded=padded).backend in ("torch", "torch+lstmkit")
        actual = _run(lstm, _input(), None, lengths)
        assert_close_scaled(actual[0], expected[0], TOL_FP32, f"{backend}: ")
        assert_close_scaled(actual[1], expected[1], TOL_FP32, f"{backend}: ")


# ---- state, dtypes, streaming ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["torch", "lstmkit", "reference"])
def test_state_carries_across_calls_under_autocast(backend):
    """h_n (bf16) and c_n (float32) feed the next call as they are; two halves give the whole within bf16, and an
    input already in bfloat16 (a previous autocast op's output) is accepted."""
    lstm = _lstm({}, backend).eval()
    x = _input()
    with torch.no_grad(), torch.autocast("cpu", dtype=BF16):
        whole, _ = lstm(x)
        first, state = lstm(x[:, :3])
        second, _ = lstm(x[:, 3:].to(BF16), state)
    halves = torch.cat((first, second), dim=1)
    assert halves.dtype == BF16
    assert_close_scaled({"output": halves.float()}, {"output": whole.float()}, TOL_REFERENCE)


def test_step_under_autocast_matches_forward():
    lstm = _lstm({}, "auto").eval()
    x = _input()
    with torch.no_grad(), torch.autocast("cpu", dtype=BF16):
        full, _ = lstm(x)
        state, steps = None, []
        for t in range(T):
            y_t, state = lstm.step(x[:, t], state)
            steps.append(y_t)
    assert (y_t.dtype, state[0].dtype, state[1].dtype) == (BF16, BF16, torch.float32)
    stepped = torch.stack(steps, dim=1).float()
    assert_close_scaled({"output": stepped}, {"output": full.float()}, TOL_FP32)


@pytest.mark.parametrize("backend", ["torch", "lstmkit", "reference"])
def test_float64_is_left_alone_by_autocast(backend):
    """Autocast lowers only float32 work: a float64 LSTM gives its float64 numbers, bit for bit."""
    lstm = _lstm({}, backend).double()
    x = _input().double()
    expected, _ = lstm(x)
    with torch.autocast("cpu", dtype=BF16):
        actual, (h_n, c_n) = lstm(x)
    assert (actual.dtype, h_n.dtype, c_n.dtype) == (torch.float64,) * 3
    assert torch.equal(actual, expected)


def test_backward_inside_autocast_keeps_float32_products():
    """A float32 forward whose backward runs inside an autocast region: lstmkit's hand-written backward switches
    autocast off, so the gradients equal those of a backward outside it."""
    lstm = _lstm({"layer_norm": True}, "lstmkit")
    x = _input()
    grads = []
    for inside in (False, True):
        lstm.zero_grad()
        out, _ = lstm(x)
        with torch.autocast("cpu", dtype=BF16, enabled=inside):
            out.sum().backward()
        grads.append([p.grad.clone() for p in lstm.parameters()])
    for outside, inside in zip(*grads, strict=True):
        assert torch.equal(outside, inside)


# ---- GRU and RNN -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [lnn.GRU, lnn.RNN], ids=["GRU", "RNN"])
@pytest.mark.parametrize("backend", ["torch", "reference"])
@pytest.mark.parametrize("padded", [False, True], ids=["full", "padded"])
def test_gru_rnn_autocast_close_to_float32(cls, backend, padded):
    torch.manual_seed(0)
    layer = cls(I, H, num_layers=2, bidirectional=True, backend=backend)
    lengths = torch.tensor([4, T, 1]) if padded else None
    results = []
    for autocast in (False, True):
        layer.zero_grad()
        x = _input().requires_grad_()
        with torch.autocast("cpu", dtype=BF16, enabled=autocast):
            out, h_n = layer(x, None, lengths)
        assert (out.dtype, h_n.dtype) == ((BF16, BF16) if autocast else (torch.float32, torch.float32))
        weights = torch.linspace(-1.0, 1.0, out.numel()).view_as(out)
        ((out.float() * weights).sum() + h_n.float().sum()).backward()
        grads = {"grad x": x.grad} | {f"grad {n}": p.grad for n, p in layer.named_parameters()}
        assert all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads.values())
        results.append(({"output": out.detach().float(), "h_n": h_n.detach().float()}, grads))
    (expected_fwd, expected_grads), (actual_fwd, actual_grads) = results
    assert_close_scaled(actual_fwd, expected_fwd, TOL_FP32)
    assert_close_scaled(actual_grads, expected_grads, TOL_FP32_GRU_RNN_GRADS)


# ---- CUDA ------------------------------------------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("variant", ["plain", "combined"])
def test_autocast_on_cuda(variant):
    """The same contract on the GPU: bfloat16 outputs (PyTorch's own cuDNN autocast would give float16), float32
    c_n and gradients, and every backend within bf16 of the reference under autocast."""
    backends = ["reference", "lstmkit"] + (["torch"] if variant == "plain" else [])
    x = _input().cuda()
    results = []
    for backend in backends:
        lstm = _lstm(VARIANTS[variant], backend).cuda()
        lstm.zero_grad()
        xg = x.clone().requires_grad_()
        torch.manual_seed(7)
        with torch.autocast("cuda", dtype=BF16):
            out, (h_n, c_n) = lstm(xg)
        assert (out.dtype, h_n.dtype, c_n.dtype) == (BF16, BF16, torch.float32)
        (out.float().sum() + c_n.sum()).backward()
        grads = {"grad x": xg.grad} | {f"grad {n}": p.grad for n, p in lstm.named_parameters()}
        assert all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads.values())
        results.append(({"output": out.detach().float().cpu()}, {k: g.cpu() for k, g in grads.items()}))
    for backend, (fwd, grads) in zip(backends[1:], results[1:], strict=True):
        assert_close_scaled(fwd, results[0][0], TOL_FP32, f"{backend}: ")
        assert_close_scaled(grads, results[0][1], TOL_FP32, f"{backend}: ")
