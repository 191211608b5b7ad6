"""The run: the suites in order, the threads set and restored, the JSON-ready document."""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

import torch

from .core import NOISY_SPREAD, SUITES, THREADS, Partial, Row, Settings, Skip
from .deploy import suite_deploy
from .jax import suite_jax
from .keras import suite_keras
from .machine import THREAD_ENV, machine_info, set_threads
from .plain import suite_plain
from .precision import suite_precision
from .streaming import suite_streaming
from .text import suite_text
from .variants import suite_variants

SCHEMA_VERSION = 1

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
    saved_env = {key: os.environ.get(key) for key in THREAD_ENV}
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
            except Partial as part:
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
