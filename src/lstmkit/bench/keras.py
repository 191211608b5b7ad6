"""The ``keras`` suite: the three-line Keras example, ``lstmkit.SequenceRegressor`` vs Keras 3 (JAX backend)."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .core import TARGET_KERAS, Row, Settings, Skip, Timing

KERAS_EXAMPLE = {"n": 1000, "steps": 10, "hidden": 50, "epochs": 10, "batch_size": 16, "lr": 1e-3}


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


def find_regressor():
    """``lstmkit.SequenceRegressor``, or :class:`Skip` when it does not exist (yet)."""
    try:
        lstmkit = importlib.import_module("lstmkit")
        cls = getattr(lstmkit, "SequenceRegressor", None)
        if cls is None:
            cls = importlib.import_module("lstmkit.tasks.sequence.estimators").SequenceRegressor
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
    regressor = find_regressor()
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
