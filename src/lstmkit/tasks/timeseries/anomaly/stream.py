"""Scoring a series one value at a time: :class:`AnomalyStream`, what :meth:`AnomalyDetector.stream` returns."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from .data import as_table
from .encdec import SCORE_DTYPE
from .statistics import mahalanobis

if TYPE_CHECKING:
    from .detector import AnomalyDetector

__all__ = ["AnomalyStream"]


class AnomalyStream:
    """Score a series one value at a time: ``update(value)`` returns the score of the step ``delay`` steps back (NaN
    before it exists), ``finish()`` the scores of the last ``delay`` steps. Together they equal
    :meth:`AnomalyDetector.score` of the whole series (to float64 round-off on any CPU: see SCORE_DTYPE; tested).

    What is carried between calls:

    - reconstruction: one encoder state (h, c) per window still being read (up to L, stepped together as a batch of
      windows: each value advances every open window by one step, nothing is re-read), the last L scaled values and
      their smallest window errors so far; a window is decoded when its L-th value arrives, and a step's score is
      final when the window starting at it is done (``delay = L - 1``).
    - prediction: the forecasts already made of the next ``steps_ahead`` steps and the last window of values. The
      forecaster reads each window relative to that window's own level, so its LSTM state cannot be carried from
      one origin to the next: each new origin reads its window once (``delay = 0``).
    """

    def __init__(self, detector: AnomalyDetector) -> None:
        self.det = detector
        self.delay = detector.delay
        self.t = 0  # steps seen
        if detector.config.method == "reconstruction":
            # The last min(t, L) steps, oldest first: scaled value and its smallest window error so far.
            self._z: list[float] = []
            self._best: list[float] = []
            # (N, A, H) each (N layers): the encoder states of the A open windows, oldest first
            self._state: tuple[Tensor, Tensor] | None = None
            self._broken: list[bool] = []  # per open window: it read a missing value
        else:
            self._recent: list[float] = []  # the last window of raw values
            self._pending: dict[int, np.ndarray] = {}  # origin -> its forecast of steps origin .. origin + l - 1

    def update(self, value: float) -> float:
        """Feed x_t; returns the score of step t - delay (NaN while t < delay or when that step has no error)."""
        value = float(value)
        if math.isinf(value):
            raise ValueError(f"Step {self.t} is infinite; pass a finite number, or NaN for a missing value.")
        if self.det.config.method == "reconstruction":
            out = self._update_reconstruction(value)
        else:
            out = self._update_prediction(value)
        self.t += 1
        return out

    def get_state(self) -> dict[str, np.ndarray]:
        """What the stream carries, as numpy arrays by name (for a store that outlives the process); ``set_state``
        on a fresh stream of the same detector continues exactly."""
        state = {"t": np.array(self.t, np.int64)}
        if self.det.config.method == "reconstruction":
            state |= {"z": np.asarray(self._z, np.float64), "best": np.asarray(self._best, np.float64),
                      "broken": np.asarray(self._broken, np.bool_)}  # fmt: skip
            if self._state is not None:
                state |= {"h": self._state[0].numpy().copy(), "c": self._state[1].numpy().copy()}
        else:
            origins = sorted(self._pending)
            l = self.det.config.steps_ahead  # noqa: E741
            forecasts = np.asarray([self._pending[o] for o in origins], np.float64).reshape(-1, l)
            state |= {"recent": np.asarray(self._recent, np.float64), "origins": np.asarray(origins, np.int64),
                      "forecasts": forecasts}  # fmt: skip
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Continue from :meth:`get_state`'s arrays."""
        try:
            t = int(state["t"])
            if self.det.config.method == "reconstruction":
                z, best = [float(v) for v in state["z"]], [float(v) for v in state["best"]]
                broken = [bool(v) for v in state["broken"]]
                hc = ((torch.as_tensor(state["h"], dtype=SCORE_DTYPE), torch.as_tensor(state["c"], dtype=SCORE_DTYPE))
                      if "h" in state else None)  # fmt: skip
                enc = self.det.model.encoder  # type: ignore[union-attr]
                N, H = enc.num_layers, enc.hidden_size
                if len(z) != len(best) or (hc is not None and (hc[0].shape != (N, len(broken), H) or hc[0].shape
                                                                != hc[1].shape)):  # fmt: skip
                    raise ValueError("its arrays disagree in length")
                self._z, self._best, self._broken, self._state = z, best, broken, hc
            else:
                l = self.det.config.steps_ahead  # noqa: E741
                forecasts = np.asarray(state["forecasts"], np.float64).reshape(-1, l)
                origins = [int(o) for o in state["origins"]]
                if len(origins) != len(forecasts):
                    raise ValueError("its arrays disagree in length")
                self._recent = [float(v) for v in state["recent"]]
                self._pending = dict(zip(origins, forecasts, strict=True))
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(
                f"This state does not belong to a {self.det.config.method} anomaly stream ({exc})."
            ) from None
        self.t = t

    def finish(self) -> np.ndarray:
        """(delay,) the scores of the last ``delay`` steps (fewer if fewer were fed), from the windows that exist."""
        if self.det.config.method != "reconstruction":
            return np.zeros(0)
        return self._score(np.array([self._error(i) for i in range(len(self._z))]))

    # -- internals
    def _score(self, e: np.ndarray) -> np.ndarray:
        det = self.det
        assert det.mean is not None and det.precision is not None
        return mahalanobis(e.reshape(len(e), -1), det.mean, det.precision)

    def _error(self, i: int) -> float:
        """The error of pending step i: its smallest over the windows decoded so far (NaN if none or missing)."""
        return math.nan if math.isinf(self._best[i]) or math.isnan(self._z[i]) else self._best[i]

    def _update_reconstruction(self, value: float) -> float:
        det, L = self.det, self.det.config.window
        assert det.scale is not None
        net = det.scoring_net()
        z = (value - det.scale[0]) / det.scale[1]
        self._z.append(z)
        self._best.append(math.inf)
        zero = torch.zeros(net.encoder.num_layers, 1, net.encoder.hidden_size, dtype=SCORE_DTYPE)  # (N, 1, H)
        if self._state is None:
            self._state = (zero, zero.clone())
        else:  # open the window that starts at this step with a fresh (zero) encoder state
            self._state = (torch.cat([self._state[0], zero], 1), torch.cat([self._state[1], zero], 1))
        missing = math.isnan(z)
        self._broken = [b or missing for b in self._broken + [False]]
        A = self._state[0].shape[1]
        x = torch.full((A, 1), 0.0 if missing else z, dtype=SCORE_DTYPE)  # (A, 1): this value, to every window
        with torch.no_grad():
            _, self._state = net.encoder.step(x, self._state)  # (N, A, H) each
        if self.t < L - 1:
            return math.nan
        # The oldest open window (steps t - L + 1 .. t) has read its L values: decode it and close it.
        h, c = self._state
        if not self._broken[0]:
            recon = net.reconstruct((h[:, :1], c[:, :1]), L)[0].numpy()  # (L,)
            err = np.abs(recon - np.asarray(self._z))  # (L,)
            self._best = [min(b, float(e)) for b, e in zip(self._best, err, strict=True)]
        self._state = (h[:, 1:], c[:, 1:])
        self._broken.pop(0)
        score = float(self._score(np.array([self._error(0)]))[0])  # step t - L + 1 is in no later window
        del self._z[0], self._best[0]
        return score

    def _update_prediction(self, value: float) -> float:
        det, cfg = self.det, self.det.config
        l, W = cfg.steps_ahead, det.forecaster.window
        t = self.t
        e = np.full(l, np.nan)
        for k in range(l):  # the forecast of x_t made from origin t - k
            f = self._pending.get(t - k)
            if f is not None:
                e[k] = value - f[k]
        self._pending.pop(t - l + 1, None)
        self._recent = (self._recent + [value])[-W:]
        # Forecast steps t + 1 .. t + l from the last W values; a window missing everywhere gives no forecast (as in
        # score(), where that origin's forecast is NaN).
        if len(self._recent) == W and not np.isnan(self._recent).all():
            window = np.asarray(self._recent + [np.nan])  # a placeholder row: rolling_medians forecasts origin W
            table = as_table(window, cfg.target, cfg.time)
            medians = next(iter(det.forecaster.rolling_medians(table, dtype=SCORE_DTYPE).values()))
            self._pending[t + 1] = medians[W]
        return float(self._score(e[None])[0])
