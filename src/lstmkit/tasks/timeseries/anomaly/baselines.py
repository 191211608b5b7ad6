"""The baseline every anomaly run reports beside the LSTM: a rolling z-score, thresholded the same way."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .config import NotFittedError
from .data import labels_of, series_values
from .metrics import detection_metrics
from .statistics import tail_quantile

__all__ = ["RollingZScore", "rolling_zscore"]


def rolling_zscore(values: np.ndarray, window: int) -> np.ndarray:
    """(T,) ``|x_t - mean| / std`` of the ``window`` values before t (NaN for the first ``window`` steps; missing
    values skipped; a flat window gives 0 for an equal value and inf otherwise)."""
    x = np.asarray(values, dtype=float)
    out = np.full(len(x), np.nan)
    if len(x) <= window:
        return out
    past = np.lib.stride_tricks.sliding_window_view(x[:-1], window)  # (T - w, w): row i holds x[i .. i + w - 1]
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing window: its mean is NaN, as wanted
        mean, std = np.nanmean(past, axis=1), np.nanstd(past, axis=1)
        dev = np.abs(x[window:] - mean)
        out[window:] = np.where(std > 0, dev / np.where(std > 0, std, 1.0), np.where(dev > 0, np.inf, 0.0))
    return out


class RollingZScore:
    """The baseline: rolling z-score, thresholded at the ``1 - false_alarm_rate`` quantile of its scores on the normal
    training data, by :func:`tail_quantile` (the way the LSTM detectors are). The detector's verbs: ``fit``,
    ``score``, ``predict`` (= ``detect``), ``flags``, ``evaluate``; data as for :class:`AnomalyDetector`.

    Args:
        window: the previous steps whose mean and standard deviation standardise x_t.
        false_alarm_rate: the share of normal training steps allowed above the threshold.
        target, time: the value and time columns of a table.
    """

    def __init__(
        self, window: int = 50, false_alarm_rate: float = 0.01, target: str = "value", time: str = "time"
    ) -> None:
        if window < 2:
            raise ValueError(f"The z-score window must be at least 2 steps, got {window}.")
        if not 0 < false_alarm_rate < 1:
            raise ValueError(f"false_alarm_rate must be in (0, 1), got {false_alarm_rate}.")
        self.window, self.false_alarm_rate, self.target, self.time = window, false_alarm_rate, target, time
        self.threshold: float | None = None

    def fit(self, normal: Any) -> RollingZScore:
        scores = rolling_zscore(series_values(normal, self.target, self.time, "normal data"), self.window)
        finite = scores[np.isfinite(scores)]
        if finite.size == 0:
            raise ValueError(f"The normal data are too short for a z-score window of {self.window} steps.")
        self.threshold = tail_quantile(finite, self.false_alarm_rate)
        return self

    def score(self, data: Any, *, context: Any = None) -> np.ndarray:
        """(T,) z-scores; ``context``: the steps just before ``data``, read but not scored."""
        values = series_values(data, self.target, self.time)
        if context is None:
            return rolling_zscore(values, self.window)
        before = series_values(context, self.target, self.time, "context")
        return rolling_zscore(np.concatenate([before, values]), self.window)[len(before) :]

    def flags(self, scores: np.ndarray) -> np.ndarray:
        """(T,) booleans for scores already computed: above the threshold (NaN never flags)."""
        if self.threshold is None:
            raise NotFittedError("This RollingZScore is not fitted yet: call fit(normal_data) first.")
        return np.nan_to_num(np.asarray(scores, dtype=float), nan=-np.inf) > self.threshold

    def detect(self, data: Any, *, context: Any = None) -> np.ndarray:
        return self.flags(self.score(data, context=context))

    predict = detect

    def evaluate(self, data: Any, labels: Any, *, context: Any = None) -> dict[str, Any]:
        """As :meth:`AnomalyDetector.evaluate`: labels per step in time order, or a 0/1 column's name."""
        scores = self.score(data, context=context)
        y = labels_of(data, labels, len(scores), self.time)
        return {**detection_metrics(y, self.flags(scores)), "threshold": self.threshold}
