"""Speed benchmark: lstmkit's paths against their peers, measured in the same run.

Every result is a row: lstmkit's time, a peer's time and ``ratio = peer time / lstmkit time`` (a throughput ratio:
above 1 means lstmkit is faster), with the target from the issue and whether the median meets it.

How it measures (see docs/results/bench.md and the project's benchmarking notes):

- threads are set explicitly: ``torch.set_num_threads(threads)`` (2 by default), ``OMP_NUM_THREADS`` /
  ``MKL_NUM_THREADS`` for child processes, and ``XLA_FLAGS`` for JAX when it is imported here for the first time
  (``--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads=<threads>``; recent XLA CPU builds size their
  pool from the CPUs the process may use, so on a machine with more cores pin the process, e.g. ``taskset -c 0,1``);
- every callable is warmed up, then calibrated to a number of calls per sample so that one sample lasts at least
  ``min_sample_s`` (0.2 s); the result is the median seconds per call over ``samples`` (>= 5) samples, with min-max;
- the callables of one comparison are timed in the same rounds, in rotating order (A B, B A, A B, ... for two),
  so that neither side always runs first or always follows the other: an order effect of 21-50 % was seen in
  this project when one LSTM followed another in the same process;
- float32 (the ``precision`` suite: bfloat16 autocast against float32), CPU, the garbage collector off during
  each sample.

Suites (``SUITES``):

``plain``      lstmkit ``LSTM`` (backend ``auto``) vs ``torch.nn.LSTM``, training (forward + backward of
               ``outputs.sum()``) and inference (forward under ``torch.inference_mode``) on configs b, c, d.
``variants``   each variant (layer_norm, peephole, recurrent_dropout, zoneout, proj_size, all combined) in training
               on b and c vs plain ``torch.nn.LSTM``, and vs a Python loop over ``torch.nn.LSTMCell`` for context.
``streaming``  ``LSTM.step`` at batch 1 under inference mode vs a one-step ``torch.nn.LSTM`` call, a jitted JAX step
               with the same weights, and the bare matrix-vector product (``torch.addmv``, and numpy's), the floor.
``precision``  the same lstmkit ``LSTM`` (backend ``auto``) under ``torch.autocast("cpu", dtype=torch.bfloat16)`` vs
               float32, training and inference on c, plain and layer_norm: ``ratio = float32 time / bfloat16 time``;
               for context the same ratio for ``torch.nn.LSTM`` and for a bare matrix product of 2048^3.
``text``       a character language model's training step (embedding, 2-layer LSTM 512, decoder, cross-entropy, Adam)
               as ``lstmkit.LanguageModel`` builds it vs the same network from ``torch.nn`` modules (the layout of
               PyTorch's ``word_language_model`` example), B=64 x 100 characters; the note gives characters per second.
``jax``        a JAX ``lax.scan`` LSTM (jitted; training = ``grad`` of ``outputs.sum()``) on b, c, d.
``keras``      the three-line Keras example (LSTM(50) on (10, 1), Dense(1), Adam, MSE, batch 16): ``fit`` seconds
               per epoch of ``lstmkit.SequenceRegressor`` vs Keras 3 on its JAX backend, in a child process.
``deploy``     ``Predictor.stream`` at batch 1 (runtimes lstmkit, torch, onnxruntime, onnxruntime int8, torch bf16) vs
               onnxruntime running ONNX's ``LSTM`` operator one step at a time (the same layer, exported), and the
               bare ``torch.mv``. The float32 target is on the ``lstmkit`` runtime (the streaming one), int8 on
               onnxruntime.

``jax`` and ``keras`` (and the JAX peer of ``streaming``) need the ``bench`` extra (``pip install -e .[bench]``);
without it they are skipped with a note.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import importlib.metadata
import importlib.util
import inspect
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import nn as lnn

SUITES: tuple[str, ...] = ("plain", "variants", "streaming", "precision", "text", "jax", "keras", "deploy")
THREADS = 2
SCHEMA_VERSION = 1


# ---- configurations ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Config:
    """One sequence configuration: batch B, length T, input I, hidden H, layers L."""

    B: int
    T: int
    I: int  # noqa: E741
    H: int
    L: int

    def shape(self) -> str:
        return f"B={self.B} T={self.T} I={self.I} H={self.H} L={self.L}"


CONFIGS: dict[str, Config] = {
    "b": Config(64, 100, 128, 256, 1),
    "c": Config(32, 200, 64, 512, 2),
    "d": Config(128, 50, 256, 1024, 1),
}
# Streaming: batch 1, one step per call, (I, H).
STREAM_CONFIGS: dict[str, tuple[int, int]] = {"H=256": (128, 256), "H=1024": (256, 1024)}
# quick=True: tiny shapes under the same names, for a smoke test of the machinery (the numbers mean nothing).
QUICK_CONFIGS: dict[str, Config] = {
    "b": Config(4, 6, 8, 16, 1),
    "c": Config(2, 8, 4, 24, 2),
    "d": Config(4, 5, 8, 32, 1),
}
QUICK_STREAM_CONFIGS: dict[str, tuple[int, int]] = {"H=256": (8, 16), "H=1024": (16, 32)}

# Targets: the minimum throughput ratio (peer time / lstmkit time) the issue asks for.
TARGET_PLAIN = 0.95  # plain LSTM, auto, vs torch.nn.LSTM, train and infer, b c d
TARGET_VARIANT = 0.6  # each variant in training vs plain torch.nn.LSTM, b c
TARGET_STREAM_TORCH = {"H=256": 5.0, "H=1024": 10.0}  # latency at most 0.2x / 0.1x of a one-step torch call
TARGET_STREAM_JAX = 1.0  # "ahead of JAX"
TARGET_DEPLOY = 1.0  # Predictor.stream (lstmkit runtime) no slower than onnxruntime's LSTM operator one step (float32)
TARGET_DEPLOY_INT8 = 1.0001  # and faster than it with int8 weights
TARGET_BF16_TRAIN = 1.4  # plain LSTM (auto) training on c under bf16 autocast, throughput vs float32 (AVX-512 BF16)
TARGET_KERAS = 1.0  # fit seconds per epoch no slower than Keras 3 (JAX)
TARGET_TEXT = 0.95  # char-LM training step vs the same network from torch.nn modules (same kernel underneath)

NOISY_SPREAD = 0.5  # a row whose samples spread by more than this fraction of the median is flagged "noisy"

KERAS_EXAMPLE = {"n": 1000, "steps": 10, "hidden": 50, "epochs": 10, "batch_size": 16, "lr": 1e-3}


# ---- timing ---------------------------------------------------------------------------------------------------
@dataclass
class Timing:
    """Seconds per call of one callable: median, min and max over the samples; ``repeats`` calls per sample."""

    median: float
    min: float
    max: float
    samples: list[float] = field(default_factory=list)
    repeats: int = 1

    @classmethod
    def from_samples(cls, samples: Sequence[float], repeats: int = 1) -> Timing:
        if not samples:
            raise ValueError("Timing.from_samples: no samples.")
        values = [float(s) for s in samples]
        return cls(statistics.median(values), min(values), max(values), values, repeats)


def _calibrate(fn: Callable[[], Any], min_sample_s: float, max_repeats: int) -> int:
    """Calls per sample so that one sample lasts at least ``min_sample_s``."""
    n, elapsed = 1, 0.0
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        elapsed = time.perf_counter() - t0
        if elapsed >= min(0.05, min_sample_s) or n >= max_repeats:
            break
        n *= 2
    per_call = max(elapsed / n, 1e-9)
    return int(min(max_repeats, max(1, math.ceil(min_sample_s / per_call))))


def measure(
    fns: Mapping[str, Callable[[], Any]],
    *,
    samples: int = 5,
    min_sample_s: float = 0.2,
    warmup: int = 1,
    max_repeats: int = 100_000,
) -> dict[str, Timing]:
    """Time several callables in the same rounds, rotating their order each round.

    Each callable is called ``warmup`` times, then calibrated to ``repeats`` calls per sample (a sample lasts at
    least ``min_sample_s``); then ``samples`` rounds run, round r starting at callable r mod n (for two callables:
    A B, B A, A B, ...). The garbage collector is off during each sample.

    Args:
        fns: name -> callable with no arguments. The callable must finish its work before returning (JAX callables
            block on their results).
        samples: samples per callable (the median is over these).
        min_sample_s: the shortest sample, in seconds; short calls are repeated to reach it.
        warmup: calls per callable before calibration (compilation, caches, allocator).
        max_repeats: the most calls per sample.

    Returns:
        name -> :class:`Timing`, seconds per call.
    """
    if samples < 1:
        raise ValueError(f"measure: samples must be >= 1, got {samples}.")
    names = list(fns)
    for _ in range(max(0, warmup)):
        for name in names:
            fns[name]()
    repeats = {name: _calibrate(fns[name], min_sample_s, max_repeats) for name in names}
    times: dict[str, list[float]] = {name: [] for name in names}
    gc_was_enabled = gc.isenabled()
    try:
        for r in range(samples):
            k = r % len(names)
            for name in names[k:] + names[:k]:
                fn, n = fns[name], repeats[name]
                gc.collect()
                gc.disable()
                t0 = time.perf_counter()
                for _ in range(n):
                    fn()
                times[name].append((time.perf_counter() - t0) / n)
                if gc_was_enabled:
                    gc.enable()
    finally:
        if gc_was_enabled:
            gc.enable()
    return {name: Timing.from_samples(times[name], repeats[name]) for name in names}


def time_call(
    fn: Callable[[], Any], *, samples: int = 5, min_sample_s: float = 0.2, warmup: int = 1, max_repeats: int = 100_000
) -> Timing:
    """Median seconds per call of one callable, with min-max (see :func:`measure`)."""
    timings = measure({"fn": fn}, samples=samples, min_sample_s=min_sample_s, warmup=warmup, max_repeats=max_repeats)
    return timings["fn"]


# ---- rows -----------------------------------------------------------------------------------------------------
@dataclass
class Row:
    """One comparison. ``ratio = peer.median / lstmkit.median``: above 1, lstmkit is faster."""

    suite: str
    config: str
    case: str
    shape: str
    unit: str
    lstmkit: Timing
    peer: str
    peer_time: Timing
    target: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.peer_time.median / self.lstmkit.median

    @property
    def passed(self) -> bool | None:
        return None if self.target is None else bool(self.ratio >= self.target)

    @property
    def noisy(self) -> bool:
        """Either side's samples spread by more than ``NOISY_SPREAD`` of its median (min to max)."""
        return any((t.max - t.min) > NOISY_SPREAD * t.median for t in (self.lstmkit, self.peer_time))

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "config": self.config,
            "case": self.case,
            "shape": self.shape,
            "unit": self.unit,
            "lstmkit_s": self.lstmkit.median,
            "lstmkit_min_s": self.lstmkit.min,
            "lstmkit_max_s": self.lstmkit.max,
            "peer": self.peer,
            "peer_s": self.peer_time.median,
            "peer_min_s": self.peer_time.min,
            "peer_max_s": self.peer_time.max,
            "ratio": self.ratio,
            "target": self.target,
            "passed": self.passed,
            "samples": len(self.lstmkit.samples),
            "repeats": [self.lstmkit.repeats, self.peer_time.repeats],
            "noisy": self.noisy,
            "note": self.note,
        }


@dataclass(frozen=True)
class Settings:
    """How hard to measure. ``quick`` shrinks everything for a smoke test."""

    quick: bool = False
    threads: int = THREADS
    samples: int = 5
    min_sample_s: float = 0.2
    warmup: int = 1

    @classmethod
    def make(cls, quick: bool, threads: int = THREADS) -> Settings:
        if quick:
            return cls(quick=True, threads=threads, samples=2, min_sample_s=0.005, warmup=1)
        return cls(quick=False, threads=threads)

    def measure(self, fns: Mapping[str, Callable[[], Any]]) -> dict[str, Timing]:
        return measure(fns, samples=self.samples, min_sample_s=self.min_sample_s, warmup=self.warmup)

    @property
    def configs(self) -> dict[str, Config]:
        return QUICK_CONFIGS if self.quick else CONFIGS

    @property
    def stream_configs(self) -> dict[str, tuple[int, int]]:
        return QUICK_STREAM_CONFIGS if self.quick else STREAM_CONFIGS


class Skip(Exception):
    """A suite (or a peer) cannot run here; the message says why."""


# ---- threads, optional peers, machine -------------------------------------------------------------------------
_THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "XLA_FLAGS", "JAX_PLATFORMS")


def set_threads(threads: int = THREADS) -> int:
    """Use ``threads`` threads: torch now, OpenMP / MKL in child processes, XLA if JAX is not imported yet.

    Returns the previous ``torch.get_num_threads()`` (to restore it).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    if "jax" not in sys.modules and "XLA_FLAGS" not in os.environ:
        os.environ["XLA_FLAGS"] = f"--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={threads}"
    return previous


def _import_jax():
    """``(jax, jax.numpy)``, float32 on CPU, or :class:`Skip` when the bench extra is not installed."""
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    try:
        jax = importlib.import_module("jax")
        jnp = importlib.import_module("jax.numpy")
    except ImportError as exc:
        raise Skip(f"JAX is not installed ({exc}); pip install -e '.[bench]' for this peer") from None
    return jax, jnp


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags() -> list[str]:
    wanted = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16")
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    return [flag for flag in wanted if flag in have]
    except OSError:
        pass
    return []


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def machine_info() -> dict[str, Any]:
    """The machine and the software the numbers come from."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    jax_mod = sys.modules.get("jax")
    return {
        "cpu": _cpu_model(),
        "cpu_flags": _cpu_flags(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "memory_gib": _memory_gib(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "jax": getattr(jax_mod, "__version__", None) or _version("jax"),
        "jaxlib": _version("jaxlib"),
        "keras": _version("keras"),
        "lstmkit": _version("lstmkit"),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "MKL_NUM_THREADS": os.environ.get("MKL_NUM_THREADS"),
        "XLA_FLAGS": os.environ.get("XLA_FLAGS"),
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


# ---- torch helpers --------------------------------------------------------------------------------------------
def _pair(cfg: Config, **variant: Any) -> tuple[lnn.LSTM, torch.nn.LSTM]:
    """lstmkit's LSTM and torch.nn.LSTM with the same plain weights (variant-only weights keep lstmkit's init)."""
    peer = torch.nn.LSTM(cfg.I, cfg.H, cfg.L, batch_first=True)
    mine = lnn.LSTM(cfg.I, cfg.H, cfg.L, batch_first=True, backend="auto", **variant)
    if not variant:
        mine.load_state_dict(peer.state_dict())
    return mine, peer


def _train_fn(model: torch.nn.Module, x: torch.Tensor) -> Callable[[], None]:
    """One training step's work: forward, ``outputs.sum()``, backward (gradients reset to None first)."""
    params = list(model.parameters())
    model.train()

    def train() -> None:
        for p in params:
            p.grad = None
        out, _ = model(x)
        out.sum().backward()

    return train


def _infer_fn(model: torch.nn.Module, x: torch.Tensor) -> Callable[[], None]:
    """A forward call under ``torch.inference_mode`` (the callable enters it; both sides pay the same)."""
    model.eval()

    def infer() -> None:
        with torch.inference_mode():
            model(x)

    return infer


class CellLoop(torch.nn.Module):
    """The hand-written reference peer: a Python loop over ``torch.nn.LSTMCell``, layer by layer."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int) -> None:
        super().__init__()
        self.cells = torch.nn.ModuleList(
            torch.nn.LSTMCell(input_size if k == 0 else hidden_size, hidden_size) for k in range(num_layers)
        )

    def forward(self, x: torch.Tensor):  # x (B, T, I)
        seq = x.unbind(1)
        for cell in self.cells:
            h = c = x.new_zeros(x.shape[0], cell.hidden_size)
            outs = []
            for x_t in seq:
                h, c = cell(x_t, (h, c))
                outs.append(h)
            seq = outs
        return torch.stack(seq, dim=1), None


# ---- suites ---------------------------------------------------------------------------------------------------
def suite_plain(settings: Settings, progress: Callable[[str], None]) -> list[Row]:
    """Plain LSTM (auto) vs torch.nn.LSTM, train and infer, b c d."""
    rows = []
    for name, cfg in settings.configs.items():
        torch.manual_seed(0)
        mine, peer = _pair(cfg)
        x = torch.randn(cfg.B, cfg.T, cfg.I)
        path = mine.explain().backend
        for case, make in (("train", _train_fn), ("infer", _infer_fn)):
            progress(f"plain {name} {case}")
            t = settings.measure({"lstmkit": make(mine, x), "torch": make(peer, x)})
            rows.append(
                Row("plain", name, case, cfg.shape(), "s/call", t["lstmkit"], "torch.nn.LSTM", t["torch"],
                    TARGET_PLAIN, note=f"auto -> {path}")
            )  # fmt: skip
    return rows


def _variants(cfg: Config) -> dict[str, dict[str, Any]]:
    proj = cfg.H // 2
    return {
        "layer_norm": {"layer_norm": True},
        "peephole": {"peephole": True},
        "recurrent_dropout=0.25": {"recurrent_dropout": 0.25},
        "zoneout=0.1": {"zoneout": 0.1},
        "proj_size=H/2": {"proj_size": proj},
        "all": {"layer_norm": True, "peephole": True, "recurrent_dropout": 0.25, "zoneout": 0.1, "proj_size": proj},
    }


def suite_variants(settings: Settings, progress: Callable[[str], None]) -> list[Row]:
    """Each variant in training vs plain torch.nn.LSTM (target) and vs a torch.nn.LSTMCell loop (context), b c."""
    rows = []
    for name in ("b", "c"):
        cfg = settings.configs[name]
        torch.manual_seed(0)
        x = torch.randn(cfg.B, cfg.T, cfg.I)
        peer = torch.nn.LSTM(cfg.I, cfg.H, cfg.L, batch_first=True)
        loop = CellLoop(cfg.I, cfg.H, cfg.L)
        fns = {"torch": _train_fn(peer, x), "cell_loop": _train_fn(loop, x)}
        paths = {}
        for case, kwargs in _variants(cfg).items():
            model = lnn.LSTM(cfg.I, cfg.H, cfg.L, batch_first=True, backend="auto", **kwargs)
            paths[case] = model.explain().backend
            fns[case] = _train_fn(model, x)
        progress(f"variants {name} train ({len(fns)} callables)")
        t = settings.measure(fns)
        for case in _variants(cfg):
            note = f"auto -> {paths[case]}"
            if paths[case] == "torch" and "proj" in case:
                note += " (with proj_size torch leaves oneDNN for its default implementation)"
            rows.append(Row("variants", name, f"{case} train", cfg.shape(), "s/call", t[case], "torch.nn.LSTM (plain)",
                            t["torch"], TARGET_VARIANT, note=note))  # fmt: skip
            rows.append(Row("variants", name, f"{case} train", cfg.shape(), "s/call", t[case],
                            "torch.nn.LSTMCell loop (plain)", t["cell_loop"], None, note="context"))  # fmt: skip
    return rows


def _jax_step_fn(jax, jnp, weight: np.ndarray, bias: np.ndarray, x: np.ndarray, H: int):
    """A jitted single LSTM step with packed weights (I+H, 4H), carrying its state; blocks on the result."""

    @jax.jit
    def step(w, b, x_t, h, c):
        z = jnp.concatenate([x_t, h], axis=-1) @ w + b
        i, f, g, o = jnp.split(z, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return h, c

    w, b, xj = jnp.asarray(weight), jnp.asarray(bias), jnp.asarray(x)
    state = [jnp.zeros((1, H), jnp.float32), jnp.zeros((1, H), jnp.float32)]

    def call() -> None:
        h, c = step(w, b, xj, state[0], state[1])
        jax.block_until_ready((h, c))
        state[0], state[1] = h, c

    return call


def suite_streaming(settings: Settings, progress: Callable[[str], None]) -> list[Row]:
    """Batch-1 step latency: lstmkit step vs one-step torch.nn.LSTM, JAX jitted step, and the addmv floor."""
    rows = []
    try:
        jax, jnp = _import_jax()
        jax_note = ""
    except Skip as exc:
        jax = jnp = None
        jax_note = str(exc)
    for name, (I, H) in settings.stream_configs.items():
        progress(f"streaming {name}")
        torch.manual_seed(0)
        peer = torch.nn.LSTM(I, H, 1, batch_first=True).eval()
        mine = lnn.LSTM(I, H, 1, batch_first=True).eval()
        mine.load_state_dict(peer.state_dict())
        x_t = torch.randn(1, I)
        x_seq = x_t.reshape(1, 1, I)
        mine_state: list[Any] = [None]
        peer_state: list[Any] = [(torch.zeros(1, 1, H), torch.zeros(1, 1, H))]

        def mine_step(mine=mine, x_t=x_t, st=mine_state) -> None:
            _, st[0] = mine.step(x_t, st[0])

        def peer_step(peer=peer, x_seq=x_seq, st=peer_state) -> None:
            _, st[0] = peer(x_seq, st[0])

        with torch.no_grad():
            weight = torch.cat((peer.weight_ih_l0, peer.weight_hh_l0), dim=1).contiguous()  # (4H, I+H)
            bias = peer.bias_ih_l0 + peer.bias_hh_l0
        vec = torch.randn(I + H)

        def floor(weight=weight, bias=bias, vec=vec) -> None:
            torch.addmv(bias, weight, vec)

        w_np, b_np, v_np = weight.numpy(), bias.numpy(), vec.numpy()

        def floor_numpy(w_np=w_np, b_np=b_np, v_np=v_np) -> None:
            w_np @ v_np + b_np  # OpenBLAS gemv: much faster than MKL's at batch 1 on some CPUs

        fns: dict[str, Callable[[], Any]] = {
            "lstmkit": mine_step, "torch": peer_step, "floor": floor, "floor_numpy": floor_numpy
        }  # fmt: skip
        if jax is not None:
            fns["jax"] = _jax_step_fn(
                jax, jnp, weight.T.contiguous().numpy(), bias.numpy(), x_t.numpy(), H
            )  # same weights, (I+H, 4H)
        blas_limit, blas_note = _blas_threads(settings.threads)
        with torch.inference_mode(), blas_limit:
            t = settings.measure(fns)
        shape = f"B=1 I={I} H={H} L=1"
        rows.append(Row("streaming", name, "step", shape, "s/step", t["lstmkit"], "torch.nn.LSTM one-step call",
                        t["torch"], TARGET_STREAM_TORCH.get(name), note="inference_mode, state carried"))  # fmt: skip
        if "jax" in t:
            rows.append(Row("streaming", name, "step", shape, "s/step", t["lstmkit"], "JAX jitted step", t["jax"],
                            TARGET_STREAM_JAX, note="same weights, blocks on the result"))  # fmt: skip
        rows.append(Row("streaming", name, "step", shape, "s/step", t["lstmkit"], "torch.addmv (4H, I+H) floor",
                        t["floor"], None, note="context: the bare matrix-vector product"))  # fmt: skip
        note = f"context: the same product through numpy's BLAS; {blas_note}"
        rows.append(Row("streaming", name, "step", shape, "s/step", t["lstmkit"], "numpy (4H, I+H) @ v floor",
                        t["floor_numpy"], None, note=note))  # fmt: skip
    if jax_note:
        raise _Partial(rows, f"streaming: JAX peer skipped: {jax_note}")
    return rows


def _blas_threads(threads: int) -> tuple[contextlib.AbstractContextManager, str]:
    """A context limiting numpy's BLAS pool to ``threads`` (threadpoolctl, if installed), and a note saying which."""
    try:
        threadpoolctl = importlib.import_module("threadpoolctl")
    except ImportError:
        return contextlib.nullcontext(), "numpy's BLAS threads not set (threadpoolctl is not installed)"
    return threadpoolctl.threadpool_limits(limits=threads, user_api="blas"), f"numpy's BLAS at {threads} thread(s)"


class _Partial(Exception):
    """A suite ran, but a peer was skipped: carries the rows and the note."""

    def __init__(self, rows: list[Row], note: str) -> None:
        super().__init__(note)
        self.rows = rows


def _autocast_fn(fn: Callable[[], None], dtype: torch.dtype | None) -> Callable[[], None]:
    """``fn`` run inside ``torch.autocast("cpu", dtype=dtype)``; ``dtype=None``: ``fn`` itself (float32)."""
    if dtype is None:
        return fn

    def under_autocast() -> None:
        with torch.autocast("cpu", dtype=dtype):
            fn()

    return under_autocast


def _train_autocast_fn(model: torch.nn.Module, x: torch.Tensor, dtype: torch.dtype | None) -> Callable[[], None]:
    """:func:`_train_fn` with the forward under autocast and the backward outside it (PyTorch's recommended use)."""
    params = list(model.parameters())
    model.train()

    def train() -> None:
        for p in params:
            p.grad = None
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            out, _ = model(x)
        out.float().sum().backward()

    return train


def suite_precision(settings: Settings, progress: Callable[[str], None]) -> list[Row]:
    """bfloat16 autocast vs float32, the same model and input: lstmkit (auto) plain and layer_norm, on c.

    Each row's ``lstmkit`` side is the bfloat16 time and its peer the float32 time of the same model, so
    ``ratio = float32 time / bfloat16 time`` (above 1: bfloat16 is faster). Context rows give the same ratio for
    ``torch.nn.LSTM`` under autocast and for a bare 2048^3 matrix product, the hardware's own bf16/fp32 ratio.
    """
    rows = []
    bf16 = torch.bfloat16
    cfg = settings.configs["c"]
    torch.manual_seed(0)
    x = torch.randn(cfg.B, cfg.T, cfg.I)
    models = {
        "plain": lnn.LSTM(cfg.I, cfg.H, cfg.L, batch_first=True, backend="auto"),
        "layer_norm": lnn.LSTM(cfg.I, cfg.H, cfg.L, batch_first=True, backend="auto", layer_norm=True),
        "torch.nn.LSTM": torch.nn.LSTM(cfg.I, cfg.H, cfg.L, batch_first=True),
    }
    for name, model in models.items():
        path = model.explain().backend if isinstance(model, lnn.LSTM) else "PyTorch's own autocast"
        for case in ("train", "infer"):
            progress(f"precision c {name} {case}")
            if case == "train":
                fns = {"bf16": _train_autocast_fn(model, x, bf16), "fp32": _train_autocast_fn(model, x, None)}
            else:
                fns = {"bf16": _autocast_fn(_infer_fn(model, x), bf16), "fp32": _infer_fn(model, x)}
            t = settings.measure(fns)
            target = TARGET_BF16_TRAIN if (name, case) == ("plain", "train") else None
            label = name if isinstance(model, lnn.LSTM) else "context: torch.nn.LSTM"
            note = f"autocast(cpu, bfloat16); auto -> {path}" if isinstance(model, lnn.LSTM) else "context"
            rows.append(Row("precision", "c", f"{label} {case} bf16", cfg.shape(), "s/call", t["bf16"],
                            f"{label} float32", t["fp32"], target, note=note))  # fmt: skip
    n = 64 if settings.quick else 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    a16, b16 = a.to(bf16), b.to(bf16)
    progress("precision matmul")
    t = settings.measure({"bf16": lambda: a16 @ b16, "fp32": lambda: a @ b})
    rows.append(Row("precision", "matmul", "torch.mm bf16", f"{n}x{n} @ {n}x{n}", "s/call", t["bf16"],
                    "torch.mm float32", t["fp32"], None,
                    note="context: the CPU's own bf16/fp32 matrix-product ratio"))  # fmt: skip
    return rows


def _jax_lstm(jax, jnp, params: list[tuple[Any, Any, Any]]):
    """A ``lax.scan`` LSTM stack, batch first; ``params`` per layer: W_ih^T (I, 4H), W_hh^T (H, 4H), b (4H,)."""

    def layer(x, w_ih_t, w_hh_t, b):  # x (T, B, I)
        H = w_hh_t.shape[0]
        xp = x @ w_ih_t + b  # (T, B, 4H), one product for all steps

        def cell(carry, xp_t):
            h, c = carry
            z = xp_t + h @ w_hh_t
            i, f, g, o = jnp.split(z, 4, axis=-1)
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            return (h, c), h

        zeros = jnp.zeros((x.shape[1], H), x.dtype)
        _, hs = jax.lax.scan(cell, (zeros, zeros), xp)
        return hs

    def forward(p, x):
        h = jnp.swapaxes(x, 0, 1)
        for w_ih_t, w_hh_t, b in p:
            h = layer(h, w_ih_t, w_hh_t, b)
        return jnp.swapaxes(h, 0, 1)

    infer = jax.jit(forward)
    train = jax.jit(jax.grad(lambda p, x: forward(p, x).sum()))
    return train, infer


def suite_jax(settings: Settings, progress: Callable[[str], None]) -> list[Row]:
    """lstmkit (auto) vs a jitted JAX lax.scan LSTM with the same weights, train and infer, b c d."""
    jax, jnp = _import_jax()
    rows = []
    for name, cfg in settings.configs.items():
        torch.manual_seed(0)
        mine, peer = _pair(cfg)
        x = torch.randn(cfg.B, cfg.T, cfg.I)
        params = [
            tuple(
                jnp.asarray(a)
                for a in (
                    getattr(peer, f"weight_ih_l{k}").detach().T.contiguous().numpy(),
                    getattr(peer, f"weight_hh_l{k}").detach().T.contiguous().numpy(),
                    (getattr(peer, f"bias_ih_l{k}") + getattr(peer, f"bias_hh_l{k}")).detach().numpy(),
                )
            )
            for k in range(cfg.L)
        ]
        xj = jnp.asarray(x.numpy())
        j_train, j_infer = _jax_lstm(jax, jnp, params)
        for case, make, jfn in (("train", _train_fn, j_train), ("infer", _infer_fn, j_infer)):
            progress(f"jax {name} {case}")

            def jax_call(jfn=jfn, params=params, xj=xj) -> None:
                jax.block_until_ready(jfn(params, xj))

            t = settings.measure({"lstmkit": make(mine, x), "jax": jax_call})
            rows.append(Row("jax", name, case, cfg.shape(), "s/call", t["lstmkit"], "JAX lax.scan (jit)", t["jax"],
                            None, note="context; training = grad of outputs.sum() w.r.t. the weights"))  # fmt: skip
    return rows


# ---- the Keras example ----------------------------------------------------------------------------------------
_KERAS_WORKER = r"""
import json, sys, time
import numpy as np
import keras

data = np.load(sys.argv[1])
X, y = data["X"], data["y"]
epochs, batch_size, hidden, lr = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])


class EpochTimer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.t0)


import jax
print(json.dumps({"ready": True, "keras": keras.__version__, "backend": keras.backend.backend(),
                  "jax": jax.__version__}), flush=True)
for line in sys.stdin:
    if line.strip() != "fit":
        break
    t0 = time.perf_counter()
    model = keras.Sequential([keras.Input((X.shape[1], X.shape[2])), keras.layers.LSTM(hidden), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr), loss="mse")
    timer = EpochTimer()
    timer.times = []
    model.fit(X, y, epochs=epochs, batch_size=batch_size, verbose=0, callbacks=[timer])
    fit_s = time.perf_counter() - t0
    print(json.dumps({"fit_s": fit_s, "epochs_s": timer.times}), flush=True)
"""


def sine_task(n: int, steps: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The noisy sine task of the Keras example: X (n, steps, 1) windows, y (n,) the next value."""
    rng = np.random.default_rng(seed)
    t = np.arange(n + steps, dtype=np.float64) * 0.1
    series = np.sin(t) + 0.1 * rng.standard_normal(t.shape)
    X = np.stack([series[i : i + steps] for i in range(n)])[:, :, None].astype(np.float32)
    y = series[steps : steps + n].astype(np.float32)
    return X, y


def _find_regressor():
    """``lstmkit.SequenceRegressor``, or :class:`Skip` when it does not exist (yet)."""
    try:
        lstmkit = importlib.import_module("lstmkit")
        cls = getattr(lstmkit, "SequenceRegressor", None)
        if cls is None:
            cls = importlib.import_module("lstmkit.tasks.estimators").SequenceRegressor
    except (ImportError, AttributeError) as exc:
        raise Skip(f"lstmkit.SequenceRegressor is not available ({exc})") from None
    return cls


class _KerasWorker:
    """Keras 3 on its JAX backend in a child process (the backend is fixed per process); one ``fit`` per request."""

    def __init__(self, data_path: str, epochs: int, batch_size: int, hidden: int, lr: float, threads: int) -> None:
        env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", OMP_NUM_THREADS=str(threads),
                   MKL_NUM_THREADS=str(threads), TF_CPP_MIN_LOG_LEVEL="2")  # fmt: skip
        env.setdefault("XLA_FLAGS", f"--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={threads}")
        self._stderr = tempfile.TemporaryFile(mode="w+")
        args = [sys.executable, "-c", _KERAS_WORKER, data_path, str(epochs), str(batch_size), str(hidden), str(lr)]
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True, env=env
        )
        self.info = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.strip()
            if line.startswith("{"):
                return json.loads(line)
        self.proc.wait()
        self._stderr.seek(0)
        tail = self._stderr.read()[-1500:]
        raise Skip(f"the Keras (JAX backend) process ended with code {self.proc.returncode}: {tail.strip()}")

    def fit(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write("fit\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()


def suite_keras(settings: Settings, progress: Callable[[str], None]) -> list[Row]:
    """The Keras example: fit seconds per epoch, lstmkit.SequenceRegressor vs Keras 3 (JAX backend), same data."""
    regressor = _find_regressor()
    if importlib.util.find_spec("keras") is None or importlib.util.find_spec("jax") is None:
        raise Skip("Keras 3 and JAX are not both installed; pip install -e '.[bench]' for this peer")
    ex = dict(KERAS_EXAMPLE)
    if settings.quick:
        ex.update(n=64, epochs=2)
    X, y = sine_task(ex["n"], ex["steps"])
    kwargs: dict[str, Any] = {"hidden_size": ex["hidden"], "epochs": ex["epochs"], "batch_size": ex["batch_size"]}
    accepted = inspect.signature(regressor).parameters
    for key, value in (("lr", ex["lr"]), ("progress", False)):
        if key in accepted:
            kwargs[key] = value

    def lstmkit_fit() -> tuple[float, list[float]]:
        t0 = time.perf_counter()
        est = regressor(**kwargs).fit(X, y)
        fit_s = time.perf_counter() - t0
        history = getattr(est, "history_", None) or []
        return fit_s, [float(r["seconds"]) for r in history if isinstance(r, dict) and "seconds" in r]

    with tempfile.TemporaryDirectory() as tmp:
        data_path = os.path.join(tmp, "sine.npz")
        np.savez(data_path, X=X, y=y)
        progress("keras: starting Keras 3 (JAX backend) in a child process")
        worker = _KerasWorker(data_path, ex["epochs"], ex["batch_size"], ex["hidden"], ex["lr"], settings.threads)
        try:
            if worker.info.get("backend") != "jax":
                raise Skip(f"Keras runs on backend {worker.info.get('backend')!r}, not 'jax'")
            fits: dict[str, list[float]] = {"lstmkit": [], "keras": []}
            epochs: dict[str, list[float]] = {"lstmkit": [], "keras": []}
            samples = 1 if settings.quick else settings.samples
            rounds = samples + (0 if settings.quick else max(1, settings.warmup))
            for r in range(rounds):
                progress(f"keras: fit {r + 1}/{rounds}")
                for side in ("lstmkit", "keras") if r % 2 == 0 else ("keras", "lstmkit"):
                    if side == "lstmkit":
                        fit_s, per_epoch = lstmkit_fit()
                    else:
                        out = worker.fit()
                        fit_s, per_epoch = float(out["fit_s"]), [float(s) for s in out["epochs_s"]]
                    if r >= rounds - samples:  # the first fits (warm-up) are dropped
                        fits[side].append(fit_s / ex["epochs"])
                        epochs[side].extend(per_epoch[1:])  # steady state: every epoch but the first
        finally:
            worker.close()
    shape = f"N={ex['n']} T={ex['steps']} I=1 H={ex['hidden']} batch={ex['batch_size']} epochs={ex['epochs']}"
    peer = f"Keras {worker.info.get('keras')} (JAX {worker.info.get('jax')})"
    rows = [
        Row("keras", "example", "fit wall / epochs", shape, "s/epoch", Timing.from_samples(fits["lstmkit"]), peer,
            Timing.from_samples(fits["keras"]), TARGET_KERAS,
            note="whole fit (model build, compile, 10 epochs) / epochs, fresh model each sample"),
    ]  # fmt: skip
    if epochs["lstmkit"] and epochs["keras"]:
        rows.append(Row("keras", "example", "steady epoch", shape, "s/epoch", Timing.from_samples(epochs["lstmkit"]),
                        peer, Timing.from_samples(epochs["keras"]), None,
                        note="context: epochs 2.. of each fit, per-epoch timers"))  # fmt: skip
    return rows


class _TorchCharRNN(torch.nn.Module):
    """The peer: a character LM from ``torch.nn`` modules, as PyTorch's ``word_language_model`` example builds it."""

    def __init__(self, vocab: int, emb: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(vocab, emb)
        self.lstm = torch.nn.LSTM(emb, hidden, layers, batch_first=True)
        self.decoder = torch.nn.Linear(hidden, vocab)

    def forward(self, ids: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        out, state = self.lstm(self.embedding(ids), state)  # (B, T, H)
        return self.decoder(out), state  # (B, T, V)


def suite_text(settings: Settings, progress: Callable[[str], None]) -> list[Row]:
    """Char-LM training step: lstmkit.LanguageModel's network vs the same from torch.nn modules, same weights."""
    import torch.nn.functional as F

    from ..tasks.language import LanguageModelConfig, LMNet

    B, T, V, E, H, L = (4, 8, 20, 8, 16, 2) if settings.quick else (64, 100, 85, 128, 512, 2)
    torch.manual_seed(0)
    mine = LMNet(V, LanguageModelConfig(embedding_size=E, hidden_size=H, num_layers=L, dropout=0.0))
    peer = _TorchCharRNN(V, E, H, L)
    peer.load_state_dict(mine.state_dict())  # the same weights: lstmkit speaks torch's state_dict keys
    x = torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(0))
    y = torch.roll(x, -1, dims=1)

    def step(model: torch.nn.Module) -> Callable[[], None]:
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)

        def fn() -> None:
            logits, _ = model(x)
            loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return fn

    progress("text char-lm train step")
    t = settings.measure({"lstmkit": step(mine), "torch": step(peer)})
    chars = B * T
    note = (f"{chars / t['lstmkit'].median:,.0f} chars/s trained (torch.nn: {chars / t['torch'].median:,.0f}); "
            f"backend {mine.lstm.explain().backend}")  # fmt: skip
    shape = f"B={B} T={T} V={V} E={E} H={H} L={L}"
    return [Row("text", "char-lm", "train step", shape, "s/step", t["lstmkit"], "torch.nn char-rnn", t["torch"],
                TARGET_TEXT, note=note)]  # fmt: skip


def suite_deploy(settings: Settings, progress: Callable[[str], None]) -> list[Row]:
    """Issue 6's streaming target: ``Predictor.stream`` at batch 1 (a stream's state kept between calls) against
    onnxruntime running ONNX's ``LSTM`` operator one step at a time, the state fed back by hand."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise Skip("onnxruntime is not installed (pip install -e .[export])") from exc
    from ..export.onnx import export_onnx
    from ..export.predictor import Predictor
    from ..tasks.estimators import SequenceRegressor

    rows = []
    for name, (I, H) in settings.stream_configs.items():
        progress(f"deploy {name}")
        rng = np.random.default_rng(0)
        est = SequenceRegressor(hidden_size=H, epochs=1, batch_size=8, normalize=False)
        est.fit(rng.standard_normal((8, 2, I)).astype(np.float32), rng.standard_normal(8).astype(np.float32))
        with tempfile.TemporaryDirectory() as tmp:  # the peer: the bare LSTM operator, exported from the same layer
            export_onnx(est.model_.core, Path(tmp) / "lstm.onnx", streaming=True)
            options = ort.SessionOptions()
            options.intra_op_num_threads = settings.threads
            peer = ort.InferenceSession(str(Path(tmp) / "lstm.onnx"), options, providers=["CPUExecutionProvider"])
        x = rng.standard_normal(I).astype(np.float32)
        peer_state = [np.zeros((1, 1, H), np.float32), np.zeros((1, 1, H), np.float32)]

        def peer_step(peer=peer, x=x[None], st=peer_state) -> None:
            _, st[0], st[1] = peer.run(None, {"x_t": x, "h": st[0], "c": st[1]})

        predictors = {
            "lstmkit": Predictor.load(est, "lstmkit"),
            "torch": Predictor.load(est, "torch"), "onnxruntime": Predictor.load(est, "onnxruntime"),
            "onnxruntime int8": Predictor.load(est, "onnxruntime", weights="int8"),
            "torch bf16": Predictor.load(est, "torch", weights="bfloat16"),
        }  # fmt: skip
        fns: dict[str, Callable[[], Any]] = {"peer": peer_step}
        for label, predictor in predictors.items():
            fns[label] = lambda predictor=predictor, x=x: predictor.stream("s", x)
        with torch.no_grad():
            core = est.model_.core
            weight = torch.cat((core.weight_ih_l0, core.weight_hh_l0), dim=1).contiguous()  # (4H, I+H)
        vec = torch.randn(I + H)
        fns["floor"] = lambda weight=weight, vec=vec: torch.mv(weight, vec)
        t = settings.measure(fns)
        shape = f"B=1 I={I} H={H} L=1, SequenceRegressor head"
        for label in predictors:
            int8 = label == "onnxruntime int8"
            rows.append(Row("deploy", name, f"Predictor.stream ({label})", shape, "s/step", t[label],
                            "onnxruntime LSTM operator, one step", t["peer"], TARGET_DEPLOY_INT8 if int8 else
                            TARGET_DEPLOY if label == "lstmkit" else None,
                            note="float32 peer; the stream's state kept by the Predictor"))  # fmt: skip
        rows.append(Row("deploy", name, "Predictor.stream (lstmkit)", shape, "s/step", t["lstmkit"],
                        "torch.mv (4H, I+H) floor", t["floor"], None,
                        note="context: the bare matrix-vector product, the limit"))  # fmt: skip
    return rows


SUITE_FUNCTIONS: dict[str, Callable[[Settings, Callable[[str], None]], list[Row]]] = {
    "plain": suite_plain,
    "variants": suite_variants,
    "streaming": suite_streaming,
    "precision": suite_precision,
    "text": suite_text,
    "jax": suite_jax,
    "keras": suite_keras,
    "deploy": suite_deploy,
}


# ---- the run --------------------------------------------------------------------------------------------------
def run(
    suites: Sequence[str] | None = None,
    quick: bool = False,
    *,
    threads: int = THREADS,
    progress: Callable[[str], None] | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Run the benchmark suites in this process and return the JSON-ready document.

    Args:
        suites: names from :data:`SUITES` (default: all), run in that order.
        quick: tiny shapes, 2 samples of >= 5 ms, fewer Keras epochs: a smoke test of the machinery (< 20 s); its
            numbers mean nothing.
        threads: torch / OpenMP / XLA threads (2, as the issue asks).
        progress: called with a short message before each measurement (e.g. print to stderr).
        command: the command line to record in the document.

    Returns:
        ``{"schema", "command", "settings", "machine", "rows", "skipped", "notes", "summary", "started",
        "duration_s"}``; each row as :meth:`Row.to_dict` (times in seconds, ``ratio = peer_s / lstmkit_s``).
    """
    chosen = list(SUITES) if not suites else list(dict.fromkeys(suites))
    unknown = [s for s in chosen if s not in SUITE_FUNCTIONS]
    if unknown:
        raise ValueError(f"Unknown suite(s) {', '.join(map(repr, unknown))}; choose from {', '.join(SUITES)}.")
    say = progress or (lambda message: None)
    settings = Settings.make(quick, threads)
    saved_env = {key: os.environ.get(key) for key in _THREAD_ENV}
    previous_threads = set_threads(threads)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    t0 = time.perf_counter()
    rows: list[Row] = []
    skipped: dict[str, str] = {}
    notes: list[str] = []
    load_before = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    try:
        for name in chosen:
            try:
                with warnings.catch_warnings():  # torch: "LSTM with projections is not supported with oneDNN"
                    warnings.filterwarnings("ignore", message=".*not supported with oneDNN.*")
                    rows.extend(SUITE_FUNCTIONS[name](settings, say))
            except _Partial as part:
                rows.extend(part.rows)
                notes.append(str(part))
                say(str(part))
            except Skip as exc:
                skipped[name] = str(exc)
                say(f"{name}: skipped: {exc}")
        machine = machine_info()
    finally:
        torch.set_num_threads(previous_threads)
        for key, value in saved_env.items():  # JAX has read its flags by now; leave the caller's environment as it was
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    machine["torch_threads"] = threads
    machine["loadavg_before"] = load_before
    if quick:
        notes.append("quick=True: tiny shapes and samples, a smoke test; the numbers are not a measurement.")
    if load_before and load_before[0] > 0.5 * (machine.get("usable_cores") or 1):
        notes.append(f"load average {load_before[0]:.2f} at the start: other work shared the CPUs; expect noise.")
    dicts = [row.to_dict() for row in rows]
    if any(d["noisy"] for d in dicts):
        why = (
            f" On a busy machine, {threads} torch threads stall at every parallel op for a scheduler time slice "
            "(milliseconds)."
            if threads > 1
            else ""
        )
        notes.append(
            f"{sum(1 for d in dicts if d['noisy'])} row(s) marked noisy: a side's samples spread by more than "
            f"{NOISY_SPREAD:.0%} of the median.{why} Measure on a quiet machine."
        )
    with_target = [d for d in dicts if d["passed"] is not None]
    return {
        "schema": SCHEMA_VERSION,
        "command": command,
        "settings": {**asdict(settings), "dtype": "float32 (precision: bfloat16 autocast vs float32)", "device": "cpu",
                     "suites": chosen,
                     "order": "rotating per round (A B, B A, ...)", "ratio": "peer_s / lstmkit_s (>1: lstmkit faster)"},
        "machine": machine,
        "rows": dicts,
        "skipped": skipped,
        "notes": notes,
        "summary": {"rows": len(dicts), "with_target": len(with_target),
                    "passed": sum(1 for d in with_target if d["passed"]), "noisy": sum(1 for d in dicts if d["noisy"])},
        "started": started,
        "duration_s": time.perf_counter() - t0,
    }  # fmt: skip


# ---- formatting -----------------------------------------------------------------------------------------------
def format_seconds(seconds: float) -> str:
    """A time with a readable unit: 12.3 µs, 4.56 ms, 1.23 s."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.3f} s"


def format_timing(row: Mapping[str, Any], side: str, compact: bool = False) -> str:
    """``median (min–max)`` of ``side`` ("lstmkit" or "peer") of a row dict; compact: ``median ±x%``, x the
    largest distance of min or max from the median."""
    median, low, high = row[f"{side}_s"], row[f"{side}_min_s"], row[f"{side}_max_s"]
    if compact:
        spread = max(high - median, median - low) / median * 100 if median > 0 else 0.0
        return f"{format_seconds(median)} ±{spread:.0f}%"
    return f"{format_seconds(median)} ({format_seconds(low)}–{format_seconds(high)})"


def format_verdict(row: Mapping[str, Any]) -> str:
    """pass / FAIL against the target ("–" without one), "(noisy)" appended for a noisy row."""
    verdict = "–" if row["passed"] is None else ("pass" if row["passed"] else "FAIL")
    return verdict + (" (noisy)" if row.get("noisy") else "")


def markdown(result: Mapping[str, Any]) -> str:
    """The result as Markdown: the machine, the command, the table, skipped suites and notes."""
    m = result["machine"]
    lines = [
        "## Machine",
        "",
        f"- CPU: {m['cpu']} ({m['usable_cores']} usable of {m['cores']} cores; flags: {', '.join(m['cpu_flags'])}), "
        f"{m['memory_gib']} GiB",
        f"- {m['platform']}, Python {m['python']}, torch {m['torch']} ({m['torch_threads']} threads, "
        f"oneDNN {'on' if m['mkldnn'] else 'off'}), JAX {m['jax']}, Keras {m['keras']}",
        f"- OMP_NUM_THREADS={m['OMP_NUM_THREADS']}, XLA_FLAGS={m['XLA_FLAGS']!r}, "
        f"load average before {m.get('loadavg_before')} / after {m.get('loadavg')}",
        f"- started {result['started']}, {result['duration_s']:.0f} s",
        "",
    ]
    if result.get("command"):
        lines += ["Command:", "", "```", str(result["command"]), "```", ""]
    s = result["settings"]
    lines += [
        f"Median of {s['samples']} samples (each >= {s['min_sample_s']} s), min–max in brackets; "
        "ratio = peer time / lstmkit time (above 1: lstmkit faster); callables alternate within each round.",
        "",
        "| suite | config | case | lstmkit | peer | peer time | ratio | target | |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        target = f"≥ {row['target']:.2f}×" if row["target"] is not None else ""
        lines.append(
            f"| {row['suite']} | {row['config']} | {row['case']} | {format_timing(row, 'lstmkit')} | {row['peer']} | "
            f"{format_timing(row, 'peer')} | {row['ratio']:.2f}× | {target} | {format_verdict(row)} |"
        )
    summary = result["summary"]
    lines += ["", f"{summary['passed']} of {summary['with_target']} targets met."]
    for name, why in result["skipped"].items():
        lines.append(f"- skipped {name}: {why}")
    for note in result["notes"]:
        lines.append(f"- {note}")
    return "\n".join(lines) + "\n"
