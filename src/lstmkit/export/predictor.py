"""``lstmkit.Predictor``: a trained run for inference, on torch or onnxruntime, with per-stream recurrent state.

    p = Predictor.load("runs/gun", runtime="onnxruntime")
    p.predict(X)                        # a batch, as the task's own predict
    p.stream("sensor-7", x_t)           # one observation; the stream's state is carried to the next call

A stream is a name and its recurrent state ``(h, c)``; ``stream`` creates it on first use, ``reset`` zeroes it,
``delete`` forgets it; ``get_state`` / ``set_state`` move it in and out (numpy arrays) for a store that outlives the
process. Streaming one observation costs one recurrent step, never a re-read of the history.

Runtimes: ``"torch"`` runs the task object (its streaming step is ``LSTM.step``); ``"onnxruntime"`` runs the graphs
``lstmkit export onnx`` writes (verified against torch when the predictor loads). Weights: ``"float32"``;
``"int8"`` (onnxruntime: dynamic quantisation of the weights, ``onnxruntime.quantization.quantize_dynamic``);
``"bfloat16"`` (torch: the products in bfloat16 under autocast, the state in float32).

Kinds that stream today: SequenceClassifier and SequenceRegressor built as a unidirectional LSTM reading its last
state, and LanguageModel (one text piece per call, the next token's probabilities back).
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

Runtime = Literal["torch", "onnxruntime"]
Weights = Literal["float32", "int8", "bfloat16"]
STREAMING_KINDS = ("sequence_classifier", "sequence_regressor", "language_model")


class Predictor:
    """See the module docstring. Build with :meth:`load`."""

    def __init__(self, model: Any, kind: str, runtime: Runtime, weights: Weights, run_dir: Path | None,
                 max_streams: int) -> None:  # fmt: skip
        self.model, self.kind, self.runtime, self.weights = model, kind, runtime, weights
        self.run_dir, self.max_streams = run_dir, max_streams
        self._states: dict[str, tuple[np.ndarray, np.ndarray]] = {}
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
        from .onnx import _builder

        if runtime not in ("torch", "onnxruntime"):
            raise ValueError(f"Unknown runtime {runtime!r}; choose 'torch' or 'onnxruntime'.")
        if weights not in ("float32", "int8", "bfloat16"):
            raise ValueError(f"Unknown weights {weights!r}; choose 'float32', 'int8' or 'bfloat16'.")
        if (runtime, weights) in (("torch", "int8"), ("onnxruntime", "bfloat16")):
            other = "onnxruntime" if weights == "int8" else "torch"
            raise ValueError(f"weights={weights!r} runs on runtime={other!r}; {runtime} has no {weights} path here.")
        if max_streams < 1:
            raise ValueError(f"max_streams must be at least 1, got {max_streams}.")
        run_dir = None
        if isinstance(source, str | os.PathLike):
            run_dir = Path(source)
            source = runs.load(run_dir)
        kind, _ = _builder(source)
        predictor = cls(source, kind, runtime, weights, run_dir, max_streams)
        if runtime == "onnxruntime" and kind in STREAMING_KINDS:
            predictor._open_sessions()
        return predictor

    def _open_sessions(self) -> None:
        import onnxruntime as ort

        from .onnx import export_onnx

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
        """Why this model cannot stream (one sentence), or None when it can."""
        try:
            self._check_streamable()
        except ValueError as exc:
            return str(exc)
        return None

    def _core(self) -> Any:
        if self.kind == "language_model":
            return self.model.net.lstm
        return self.model._check_fitted().core

    def _zero_state(self) -> tuple[np.ndarray, np.ndarray]:
        core = self._core()
        L = core.num_layers
        return (np.zeros((L, 1, core.state_size), np.float32), np.zeros((L, 1, core.hidden_size), np.float32))

    def _check_streamable(self) -> None:
        if self.kind not in STREAMING_KINDS:
            kinds = ", ".join(STREAMING_KINDS)
            raise ValueError(f"A {self.kind} run cannot stream here yet; the kinds that stream: {kinds}.")
        if self.kind != "language_model":
            from .onnx import streaming_blockers

            blockers = streaming_blockers(self.model._check_fitted())
            if blockers:
                raise ValueError(f"This model cannot stream one observation at a time: {'; '.join(blockers)}.")

    def stream(self, stream_id: str, observation: Any) -> np.ndarray:
        """Feed one observation to stream ``stream_id`` (created on first use) and return the output after it:
        class probabilities (classifier), the prediction (regressor), or the next token's probabilities (language
        model, ``observation`` a text piece)."""
        self._check_streamable()
        if stream_id not in self._states and len(self._states) >= self.max_streams:
            raise ValueError(
                f"Too many streams: {len(self._states)} open, the limit is {self.max_streams}; delete finished "
                "streams or raise max_streams."
            )
        h, c = self._states.get(stream_id) or self._zero_state()
        if self.kind == "language_model":
            ids = self.model.tokenizer.encode(str(observation), strict=True, what="text")
            if not ids:
                raise ValueError("The observation gives no tokens; send some text.")
            out = None
            for token in ids:
                out, h, c = self._lm_step(token, h, c)
        else:
            x = np.asarray(observation, dtype=np.float32).reshape(-1)
            n = self.model.input_size_
            if x.shape[0] != n:
                raise ValueError(f"An observation has {n} numbers (the model's features per step), got {x.shape[0]}.")
            if not np.isfinite(x).all():
                raise ValueError("The observation holds NaN or infinite values; send finite numbers.")
            out, h, c = self._estimator_step(x, h, c)
        self._states[stream_id] = (h, c)
        return out

    def _autocast(self) -> Any:
        if self.weights == "bfloat16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        import contextlib

        return contextlib.nullcontext()

    def _estimator_step(self, x: np.ndarray, h: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, Any, Any]:
        classifier = self.kind == "sequence_classifier"
        if self._session is not None:
            out = self._session.run(None, {"x_t": x[None], "h": h, "c": c})
            named = dict(zip(self._outputs, out, strict=True))
            result = named["probabilities"][0] if classifier else named["prediction"][0]
            return result, named["h_next"], named["c_next"]
        model = self.model._check_fitted()
        x_t = torch.from_numpy(self.model._scale(x[None, None, :], None)[:, 0])
        with torch.inference_mode(), self._autocast():
            y, (h_t, c_t) = model.core.step(x_t, (torch.from_numpy(h), torch.from_numpy(c)))
            logits = model.head(y).float()
        result = torch.softmax(logits, -1)[0] if classifier else logits[0]
        return result.numpy(), h_t.float().numpy(), c_t.float().numpy()

    def _lm_step(self, token: int, h: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, Any, Any]:
        if self._session is not None:
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
        """Zero the stream's state (it stays open)."""
        self._require(stream_id)
        self._states[stream_id] = self._zero_state()

    def delete(self, stream_id: str) -> None:
        """Forget the stream."""
        self._require(stream_id)
        del self._states[stream_id]

    def streams(self) -> list[str]:
        return list(self._states)

    def get_state(self, stream_id: str) -> dict[str, np.ndarray]:
        """The stream's state as numpy arrays ``{"h": (L, 1, S), "c": (L, 1, H)}`` (copies)."""
        self._require(stream_id)
        h, c = self._states[stream_id]
        return {"h": h.copy(), "c": c.copy()}

    def set_state(self, stream_id: str, state: dict[str, np.ndarray]) -> None:
        """Restore a stream from :meth:`get_state`'s arrays (a store that outlived the process, say)."""
        self._check_streamable()
        h0, c0 = self._zero_state()
        h, c = np.asarray(state["h"], np.float32), np.asarray(state["c"], np.float32)
        if h.shape != h0.shape or c.shape != c0.shape:
            raise ValueError(f"State shapes {h.shape} and {c.shape} do not fit this model's {h0.shape} and {c0.shape}.")
        self._states[stream_id] = (h, c)

    def _require(self, stream_id: str) -> None:
        if stream_id not in self._states:
            raise KeyError(f"No stream {stream_id!r}; open streams: {len(self._states)}. Send an observation first.")
