"""``lstmkit.Predictor``: a trained run for inference, on torch or onnxruntime, with per-stream recurrent state.

    p = Predictor.load("runs/gun", runtime="onnxruntime")
    p.predict(X)                        # a batch, as the task's own predict
    p.stream("sensor-7", x_t)           # one observation; the stream's state is carried to the next call

A stream is a name and its recurrent state ``(h, c)``; ``stream`` creates it on first use, ``reset`` zeroes it,
``delete`` forgets it; ``get_state`` / ``set_state`` move it in and out (numpy arrays) for a store that outlives the
process. Streaming one observation costs one recurrent step, never a re-read of the history.

Runtimes: ``"torch"`` runs the task object (its streaming step is ``LSTM.step``); ``"onnxruntime"`` runs the graphs
``lstmkit export onnx`` writes (verified against torch when the predictor loads); ``"lstmkit"`` streams with
lstmkit's own numpy step (:mod:`lstmkit.inference.kernel`: one packed matrix-vector product per layer, the fastest at
batch 1; pinned to the torch runtime by tests), and predicts batches as ``"torch"`` does. Weights: ``"float32"``;
``"int8"`` (onnxruntime: dynamic quantisation of the weights, ``onnxruntime.quantization.quantize_dynamic``);
``"bfloat16"`` (torch: the products in bfloat16 under autocast, the state in float32).

Kinds that stream, and what a stream carries:

- SequenceClassifier / SequenceRegressor built as a unidirectional LSTM reading its last state: ``(h, c)``; one
  observation (F numbers) in, the class probabilities or the prediction after it out. Every runtime.
- LanguageModel: ``(h, c)``; a text piece in (its tokens fed in order), the next token's probabilities out. Every
  runtime.
- AnomalyDetector: a reading in, the anomaly score of the step ``delay`` readings back out (NaN before it exists):
  :class:`lstmkit.tasks.timeseries.anomaly.stream.AnomalyStream`, whose state (the open windows' encoder
  states, or the pending forecasts and the last window) moves through ``get_state`` /
  ``set_state`` like ``(h, c)``. Runtime torch.
- Forecaster (no covariates): a reading in, the ``(horizon, quantiles)`` forecast from the last ``input_window``
  readings out (NaN until that many arrived). The model reads each window relative to that window's own level (the
  DeepAR scaling that lets it follow a trend), so its LSTM state belongs to one origin and cannot be carried to the
  next: a stream carries the last window of readings and each reading re-reads it (``input_window`` steps, one
  batch-1 pass). A forecaster trained on several series streams the series its stream is named after. Runtime torch.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

__all__ = ["Predictor"]

Runtime = Literal["torch", "onnxruntime", "lstmkit"]
Weights = Literal["float32", "int8", "bfloat16"]
RUNTIMES = ("torch", "onnxruntime", "lstmkit")
RECURRENT_KINDS = ("sequence_classifier", "sequence_regressor", "language_model")  # a stream carries (h, c)
WINDOW_KINDS = ("anomaly_detector", "forecaster")  # a stream carries the task's own streaming state
STREAMING_KINDS = (*RECURRENT_KINDS, *WINDOW_KINDS)


def run_kind(run_dir: str | os.PathLike[str]) -> str:
    """The kind of the run in ``run_dir``, read from its ``config.json`` without loading the model (a kind that
    cannot be served may not load at all)."""
    from .. import runs

    return runs.read_run_config(run_dir)["kind"]


class Predictor:
    """See the module docstring. Build with :meth:`load`."""

    def __init__(self, model: Any, kind: str, runtime: Runtime, weights: Weights, run_dir: Path | None,
                 max_streams: int) -> None:  # fmt: skip
        self.model, self.kind, self.runtime, self.weights = model, kind, runtime, weights
        self.run_dir, self.max_streams = run_dir, max_streams
        self._states: dict[str, Any] = {}  # stream id -> (h, c), an AnomalyStream, or a forecaster's readings
        self._blocker: str | None | bool = False  # why it cannot stream (None: it can), computed once
        self._kernel: Any = None  # runtime "lstmkit": the numpy step, the head / embedding and decoder
        self._session: Any = None
        self._batch_session: Any = None
        self._outputs: list[str] = []

    # ---- loading ---------------------------------------------------------------------------------------------------
    @classmethod
    def load(cls, source: str | os.PathLike[str] | Any, runtime: Runtime = "torch", *, weights: Weights = "float32",
             max_streams: int = 10_000) -> Predictor:  # fmt: skip
        """A run directory (or a loaded task object) ready for ``predict`` and ``stream``.

        Raises:
            ValueError: an unknown runtime or weights option, or one the runtime does not offer.
            FileNotFoundError: no run directory at ``source``.
        """
        from .. import runs
        from ..export.onnx import exportable_kind

        if runtime not in RUNTIMES:
            raise ValueError(f"Unknown runtime {runtime!r}; choose 'torch', 'onnxruntime' or 'lstmkit'.")
        if weights not in ("float32", "int8", "bfloat16"):
            raise ValueError(f"Unknown weights {weights!r}; choose 'float32', 'int8' or 'bfloat16'.")
        if weights != "float32" and (runtime, weights) not in (("onnxruntime", "int8"), ("torch", "bfloat16")):
            other = "onnxruntime" if weights == "int8" else "torch"
            raise ValueError(f"weights={weights!r} runs on runtime={other!r}; {runtime} has no {weights} path here.")
        if max_streams < 1:
            raise ValueError(f"max_streams must be at least 1, got {max_streams}.")
        run_dir = None
        if isinstance(source, str | os.PathLike):
            run_dir = Path(source)
            source = runs.load(run_dir)
        kind = exportable_kind(source)
        predictor = cls(source, kind, runtime, weights, run_dir, max_streams)
        if predictor.streaming_blocker() is None:
            if runtime == "onnxruntime":
                predictor._open_sessions()
            elif runtime == "lstmkit":
                predictor._build_kernel()
        return predictor

    def _build_kernel(self) -> None:
        from .kernel import Linear, StreamKernel

        if self.kind == "language_model":
            net = self.model.net.eval()
            emb = net.embedding.weight.detach().to(torch.float32).numpy().copy()  # (V, E)
            self._kernel = (StreamKernel(net.lstm), emb, Linear(net.decoder))
        else:
            model = self.model.network
            scaler = self.model.scaler_
            kernel = StreamKernel(model.core, *(scaler if scaler is not None else (None, None)))
            self._kernel = (kernel, None, Linear(model.head))

    def _open_sessions(self) -> None:
        import onnxruntime as ort

        from ..export.onnx import export_onnx

        tmp = Path(tempfile.mkdtemp(prefix="lstmkit-predictor-"))
        try:
            step = export_onnx(self.model, tmp / "step.onnx", streaming=self.kind != "language_model")
            path = Path(step.path)
            if self.weights == "int8":
                import logging

                from onnxruntime.quantization import QuantType, quantize_dynamic

                root = logging.getLogger()
                level = root.level
                root.setLevel(logging.ERROR)  # its advice to pre-process is for convolutional image models
                try:
                    quantize_dynamic(str(path), str(tmp / "step-int8.onnx"), weight_type=QuantType.QInt8)
                finally:
                    root.setLevel(level)
                path = tmp / "step-int8.onnx"
            options = ort.SessionOptions()
            options.intra_op_num_threads = torch.get_num_threads()
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            self._outputs = [o.name for o in self._session.get_outputs()]
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    # ---- metadata --------------------------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """What is loaded: kind, runtime, weights, the run directory, and what a stream takes and gives."""
        info: dict[str, Any] = {"kind": self.kind, "runtime": self.runtime, "weights": self.weights,
                                "run_dir": None if self.run_dir is None else str(self.run_dir),
                                "streams": len(self._states), "max_streams": self.max_streams}  # fmt: skip
        if self.kind in ("sequence_classifier", "sequence_regressor"):
            n = self.model.input_size_
            info["observation"] = f"{n} number{'s' if n != 1 else ''} per step"
            if self.kind == "sequence_classifier":
                info["classes"] = self.model.classes_.tolist()
        elif self.kind == "language_model":
            info["observation"] = "a text piece (its tokens are fed in order)"
            info["vocabulary_size"] = self.model.tokenizer.vocab_size
        elif self.kind == "forecaster":
            cfg = self.model.config
            info |= {"observation": "one reading of the target", "horizon": cfg.horizon,
                     "quantiles": list(cfg.quantiles), "input_window": self.model.window,
                     "series": sorted(self.model.scales)}  # fmt: skip
        elif self.kind == "anomaly_detector":
            info |= {"observation": "one reading", "method": self.model.config.method, "delay": self.model.delay,
                     "threshold": self.model.threshold}  # fmt: skip
        return info

    # ---- batch -----------------------------------------------------------------------------------------------------
    def predict(self, batch: Any) -> Any:
        """The task's own ``predict`` on a batch (class labels, numbers, ...), on the torch runtime's weights."""
        with self._autocast():
            return self.model.predict(batch)

    def predict_proba(self, batch: Any) -> np.ndarray:
        """A classifier's ``(N, K)`` class probabilities on a batch (columns in the order of ``info()["classes"]``)."""
        if self.kind != "sequence_classifier":
            raise ValueError(f"A {self.kind} run gives no class probabilities; call predict.")
        with self._autocast():
            return self.model.predict_proba(batch)

    # ---- streams ---------------------------------------------------------------------------------------------------
    def streaming_blocker(self) -> str | None:
        """Why this model cannot stream here (one sentence), or None when it can."""
        if self._blocker is False:
            self._blocker = self._find_blocker()
        return self._blocker  # type: ignore[return-value]

    def _find_blocker(self) -> str | None:
        if self.kind not in STREAMING_KINDS:
            kinds = ", ".join(STREAMING_KINDS)
            return f"A {self.kind} run cannot stream here; the kinds that stream: {kinds}."
        if self.kind in WINDOW_KINDS:
            if self.runtime != "torch":
                return f"A {self.kind} streams on runtime 'torch' (its streaming state is the task's own)."
            if self.kind == "forecaster":
                cfg = self.model.config
                covariates = [*cfg.past_covariates, *cfg.future_covariates, *cfg.static_covariates]
                if covariates:
                    return (f"This forecaster reads covariates {covariates}; a stream of readings cannot feed them "
                            "(train without covariates to stream, or call predict).")  # fmt: skip
            return None
        if self.kind == "language_model":
            from .kernel import kernel_blockers

            blockers = kernel_blockers(self.model.net.lstm) if self.runtime == "lstmkit" else []
        else:
            from ..tasks.sequence.onnx import streaming_blockers
            from .kernel import kernel_blockers

            model = self.model.network
            blockers = streaming_blockers(model)
            if not blockers and self.runtime == "lstmkit":
                blockers = kernel_blockers(model.core)
        if blockers:
            return f"This model cannot stream one observation at a time: {'; '.join(blockers)}."
        return None

    def _check_streamable(self) -> None:
        blocker = self.streaming_blocker()
        if blocker is not None:
            raise ValueError(blocker)

    def _core(self) -> Any:
        if self.kind == "language_model":
            return self.model.net.lstm
        return self.model.network.core

    def _zero_state(self) -> Any:
        if self.kind == "anomaly_detector":
            return self.model.stream()
        if self.kind == "forecaster":
            return np.zeros(0)  # the readings so far (the last input_window of them)
        core = self._core()
        L = core.num_layers
        return (np.zeros((L, 1, core.state_size), np.float32), np.zeros((L, 1, core.hidden_size), np.float32))

    def stream(self, stream_id: str, observation: Any) -> np.ndarray:
        """Feed one observation to stream ``stream_id`` (created on first use) and return the output after it:
        class probabilities (classifier), the prediction (regressor), the next token's probabilities (language
        model, ``observation`` a text piece), ``[score]`` (anomaly detector: the score of the step ``delay`` readings
        back, NaN before it exists) or the ``(horizon, quantiles)`` forecast (forecaster, NaN until the window is
        full). A failed observation leaves the stream as it was."""
        self._check_streamable()
        state = self._states.get(stream_id)
        if state is None:
            if len(self._states) >= self.max_streams:
                raise ValueError(
                    f"Too many streams: {len(self._states)} open, the limit is {self.max_streams}; delete finished "
                    "streams or raise max_streams."
                )
            state = self._zero_state()
        kind = self.kind
        if kind == "language_model":
            ids = self.model.tokenizer.encode(str(observation), strict=True, what="text")
            if not ids:
                raise ValueError("The observation gives no tokens; send some text.")
            h, c = state
            out = None
            for token in ids:
                out, h, c = self._lm_step(token, h, c)
            self._states[stream_id] = (h, c)
            return out
        if kind in WINDOW_KINDS:
            value = self._reading(observation)
            if kind == "anomaly_detector":
                if stream_id not in self._states:
                    self._states[stream_id] = state
                return np.array([state.update(value)])
            values = np.append(state, value)[-self.model.window :]
            out = self._forecast(stream_id, values)  # before the state moves: a refused reading changes nothing
            self._states[stream_id] = values
            return out
        x = np.asarray(observation, dtype=np.float32).reshape(-1)
        n = self.model.input_size_
        if x.shape[0] != n:
            raise ValueError(f"An observation has {n} numbers (the model's features per step), got {x.shape[0]}.")
        if not np.isfinite(x).all():
            raise ValueError("The observation holds NaN or infinite values; send finite numbers.")
        out, h, c = self._estimator_step(x, *state)
        self._states[stream_id] = (h, c)
        return out

    @staticmethod
    def _reading(observation: Any) -> float:
        x = np.asarray(observation, dtype=np.float64).reshape(-1)
        if x.shape[0] != 1:
            raise ValueError(f"An observation is one reading (one number), got {x.shape[0]}.")
        if np.isinf(x[0]):
            raise ValueError("The reading is infinite; send a finite number (NaN marks a missing one).")
        return float(x[0])

    def _forecast(self, stream_id: str, values: np.ndarray) -> np.ndarray:
        f = self.model
        shape = (f.config.horizon, len(f.config.quantiles))
        if len(values) < f.window or np.isnan(values).all():
            return np.full(shape, np.nan)
        series = None if len(f.scales) == 1 else stream_id
        if series is not None and series not in f.scales:
            raise ValueError(f"This forecaster knows {len(f.scales)} series; name the stream after one of them "
                             f"({', '.join(sorted(f.scales)[:5])}...).")  # fmt: skip
        return f.forecast_window(values, series)

    def _autocast(self) -> Any:
        if self.weights == "bfloat16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        import contextlib

        return contextlib.nullcontext()

    def _estimator_step(self, x: np.ndarray, h: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, Any, Any]:
        classifier = self.kind == "sequence_classifier"
        if self._kernel is not None:
            kernel, _, head = self._kernel
            y, h, c = kernel.step(x, h, c)
            z = head(y)
            return (head.softmax(z) if classifier else z), h, c
        if self._session is not None:
            out = self._session.run(None, {"x_t": x[None], "h": h, "c": c})
            named = dict(zip(self._outputs, out, strict=True))
            result = named["probabilities"][0] if classifier else named["prediction"][0]
            return result, named["h_next"], named["c_next"]
        model = self.model.network
        x_t = torch.from_numpy(self.model.standardise(x[None, None, :])[:, 0])
        with torch.inference_mode(), self._autocast():
            y, (h_t, c_t) = model.core.step(x_t, (torch.from_numpy(h), torch.from_numpy(c)))
            logits = model.head(y).float()
        result = torch.softmax(logits, -1)[0] if classifier else logits[0]
        return result.numpy(), h_t.float().numpy(), c_t.float().numpy()

    def _lm_step(self, token: int, h: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, Any, Any]:
        if self._kernel is not None:
            kernel, emb, decoder = self._kernel
            y, h, c = kernel.step(emb[token], h, c)
            z = decoder(y).astype(np.float64)
        elif self._session is not None:
            logits, h, c = self._session.run(None, {"ids": np.array([[token]], np.int64), "h0": h, "c0": c})
            z = logits[0, -1].astype(np.float64)
        else:
            net = self.model.net.eval()
            with torch.inference_mode(), self._autocast():  # the engine's streaming step, not a one-step forward
                x_t = net.embedding(torch.tensor([token]))  # (1, E)
                y_t, (h_t, c_t) = net.lstm.step(x_t, (torch.from_numpy(h), torch.from_numpy(c)))
                out = net.decoder(y_t)  # (1, V)
            z, h, c = out[0].double().numpy(), h_t.float().numpy(), c_t.float().numpy()
        p = np.exp(z - z.max())
        return (p / p.sum()).astype(np.float32), h, c

    def reset(self, stream_id: str) -> None:
        """Back to the zero state (the stream stays open)."""
        self._require(stream_id)
        self._states[stream_id] = self._zero_state()

    def delete(self, stream_id: str) -> None:
        """Forget the stream."""
        self._require(stream_id)
        del self._states[stream_id]

    def streams(self) -> list[str]:
        return list(self._states)

    def get_state(self, stream_id: str) -> dict[str, np.ndarray]:
        """The stream's state as numpy arrays by name (copies): ``{"h": (L, 1, S), "c": (L, 1, H)}`` for recurrent
        kinds, ``{"values": (n,)}`` for a forecaster, the AnomalyStream's arrays for an anomaly detector."""
        self._require(stream_id)
        state = self._states[stream_id]
        if self.kind == "anomaly_detector":
            return state.get_state()
        if self.kind == "forecaster":
            return {"values": state.copy()}
        h, c = state
        return {"h": h.copy(), "c": c.copy()}

    def set_state(self, stream_id: str, state: dict[str, np.ndarray]) -> None:
        """Restore a stream from :meth:`get_state`'s arrays (a store that outlived the process, say)."""
        self._check_streamable()
        if self.kind == "anomaly_detector":
            stream = self.model.stream()
            stream.set_state(state)
            self._states[stream_id] = stream
            return
        if self.kind == "forecaster":
            if "values" not in state:
                raise ValueError("A forecaster stream's state holds its last readings ('values').")
            self._states[stream_id] = np.asarray(state["values"], np.float64).reshape(-1)[-self.model.window :]
            return
        h0, c0 = self._zero_state()
        h, c = np.asarray(state["h"], np.float32), np.asarray(state["c"], np.float32)
        if h.shape != h0.shape or c.shape != c0.shape:
            raise ValueError(f"State shapes {h.shape} and {c.shape} do not fit this model's {h0.shape} and {c0.shape}.")
        self._states[stream_id] = (h, c)

    def _require(self, stream_id: str) -> None:
        if stream_id not in self._states:
            raise KeyError(f"No stream {stream_id!r}; open streams: {len(self._states)}. Send an observation first.")
