"""Forecast accuracy measures, computed alike for the LSTM and the baselines it is compared with, on the same splits.

Measures (Hyndman & Koehler 2006 for MASE; the M4 competition's sMAPE in percent):

- ``mae``, ``rmse``: on the original scale;
- ``mase``: MAE divided by the in-sample MAE of the seasonal-naive forecast on the training part (season ``m``); below
  1 means better than seasonal-naive was in-sample;
- ``smape``: 200/h * sum |y - f| / (|y| + |f|), in percent (0 when both are 0);
- ``coverage``: the share of observations inside a prediction interval; ``pinball``: the quantile loss.

The baselines these measures compare with are in :mod:`lstmkit.tasks.timeseries.baselines`.

Every function takes NumPy arrays and ignores positions where the actual value is NaN (missing, not zero).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["coverage", "mae", "mase", "nan_mean", "pinball", "rmse", "smape", "summarize"]


def _pair(actual: np.ndarray, forecast: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, f = np.asarray(actual, dtype=float), np.asarray(forecast, dtype=float)
    if a.shape != f.shape:
        raise ValueError(f"actual and forecast shapes differ: {a.shape} and {f.shape}.")
    keep = ~np.isnan(a)
    return a[keep], f[keep]


def mae(actual: np.ndarray, forecast: np.ndarray) -> float:
    a, f = _pair(actual, forecast)
    return float(np.mean(np.abs(a - f))) if a.size else math.nan


def rmse(actual: np.ndarray, forecast: np.ndarray) -> float:
    a, f = _pair(actual, forecast)
    return float(np.sqrt(np.mean((a - f) ** 2))) if a.size else math.nan


def smape(actual: np.ndarray, forecast: np.ndarray) -> float:
    a, f = _pair(actual, forecast)
    if not a.size:
        return math.nan
    denom = np.abs(a) + np.abs(f)
    terms = np.where(denom > 0, 2.0 * np.abs(a - f) / np.where(denom > 0, denom, 1.0), 0.0)
    return float(100.0 * np.mean(terms))


def mase(actual: np.ndarray, forecast: np.ndarray, insample: np.ndarray, m: int) -> float:
    """MAE scaled by the in-sample MAE of the seasonal-naive forecast ``y[t] = y[t - m]`` (NaN pairs skipped)."""
    y = np.asarray(insample, dtype=float)
    if y.size <= m:
        raise ValueError(f"MASE needs more than m={m} in-sample values, got {y.size}.")
    diffs = np.abs(y[m:] - y[:-m])
    scale = float(np.nanmean(diffs))
    if not np.isfinite(scale) or scale == 0:
        return math.nan
    return mae(actual, forecast) / scale


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """The share of actual values inside ``[lower, upper]``."""
    a = np.asarray(actual, dtype=float)
    keep = ~np.isnan(a)
    if not keep.any():
        return math.nan
    lo, hi = np.asarray(lower, dtype=float)[keep], np.asarray(upper, dtype=float)[keep]
    return float(np.mean((a[keep] >= lo) & (a[keep] <= hi)))


def pinball(actual: np.ndarray, forecast: np.ndarray, q: float) -> float:
    a, f = _pair(actual, forecast)
    diff = a - f
    return float(np.mean(np.maximum(q * diff, (q - 1) * diff))) if a.size else math.nan


def summarize(
    actual: np.ndarray, forecast: np.ndarray, insample: np.ndarray, m: int,
    lower: np.ndarray | None = None, upper: np.ndarray | None = None,
) -> dict[str, float]:  # fmt: skip
    """MAE, RMSE, MASE, sMAPE (and interval coverage when bounds are given) of one forecast."""
    out = {
        "mae": mae(actual, forecast), "rmse": rmse(actual, forecast), "mase": mase(actual, forecast, insample, m),
        "smape": smape(actual, forecast),
    }  # fmt: skip
    if lower is not None and upper is not None:
        out["coverage"] = coverage(actual, lower, upper)
    return out


def nan_mean(values: list[float]) -> float:
    """The mean of the values that are not NaN (a measure undefined on some series or folds); NaN when none is."""
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan
