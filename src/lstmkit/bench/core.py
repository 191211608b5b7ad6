"""What one measurement is: the configurations and targets, the timing, a row, the settings, the skips."""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SUITES: tuple[str, ...] = ("plain", "variants", "streaming", "precision", "text", "jax", "keras", "deploy")
THREADS = 2


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


class Partial(Exception):
    """A suite ran, but a peer was skipped: carries the rows and the note."""

    def __init__(self, rows: list[Row], note: str) -> None:
        super().__init__(note)
        self.rows = rows
