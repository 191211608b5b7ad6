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

The package: ``core`` (configurations, targets, timing, rows, settings), ``machine`` (threads, the machine
description), ``peers`` (what several suites share), one module per suite (``plain``, ``variants``, ``streaming``,
``precision``, ``text``, ``jax``, ``keras``, ``deploy``), ``runner`` (:func:`run`) and ``report`` (Markdown). It is
not imported by ``import lstmkit``: only ``lstmkit bench`` and ``benchmarks/run_bench.py`` load it.
"""

from __future__ import annotations

from .core import (
    CONFIGS,
    NOISY_SPREAD,
    QUICK_CONFIGS,
    QUICK_STREAM_CONFIGS,
    STREAM_CONFIGS,
    SUITES,
    TARGET_BF16_TRAIN,
    TARGET_DEPLOY,
    TARGET_DEPLOY_INT8,
    TARGET_KERAS,
    TARGET_PLAIN,
    TARGET_STREAM_JAX,
    TARGET_STREAM_TORCH,
    TARGET_TEXT,
    TARGET_VARIANT,
    THREADS,
    Config,
    Row,
    Settings,
    Skip,
    Timing,
    measure,
    time_call,
)

# The suites import torch (and JAX, Keras when present): loaded on first use (PEP 562), so that `lstmkit --help`, which
# reads SUITES and THREADS for the bench command's options, does not pay for torch.
_LAZY = {
    "KERAS_EXAMPLE": "keras", "sine_task": "keras", "machine_info": "machine", "set_threads": "machine",
    "CellLoop": "peers", "format_seconds": "report", "format_timing": "report", "format_verdict": "report",
    "markdown": "report", "SCHEMA_VERSION": "runner", "SUITE_FUNCTIONS": "runner", "run": "runner",
}  # fmt: skip


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CONFIGS", "KERAS_EXAMPLE", "NOISY_SPREAD", "QUICK_CONFIGS", "QUICK_STREAM_CONFIGS", "SCHEMA_VERSION",
    "STREAM_CONFIGS", "SUITES", "SUITE_FUNCTIONS", "TARGET_BF16_TRAIN", "TARGET_DEPLOY", "TARGET_DEPLOY_INT8",
    "TARGET_KERAS", "TARGET_PLAIN", "TARGET_STREAM_JAX", "TARGET_STREAM_TORCH", "TARGET_TEXT", "TARGET_VARIANT",
    "THREADS", "CellLoop", "Config", "Row", "Settings", "Skip", "Timing", "format_seconds", "format_timing",
    "format_verdict", "machine_info", "markdown", "measure", "run", "set_threads", "sine_task", "time_call",
]  # fmt: skip
