"""The baselines every LSTM forecast is compared with, on the same splits: seasonal-naive (repeat the last season) and
exponential smoothing (Holt-Winters ETS, statsmodels) with the season; ETS falls back to a non-seasonal model when the
history is shorter than two seasons. Both take NumPy arrays; NaN marks a missing value.
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["ets_forecast", "seasonal_naive"]


def seasonal_naive(history: np.ndarray, horizon: int, m: int) -> np.ndarray:
    """Repeat the last full season of ``history`` (the last observed value for ``m`` = 1); NaNs in it are carried
    back from one season earlier where possible."""
    y = np.asarray(history, dtype=float)
    if y.size < m:
        raise ValueError(f"Seasonal-naive needs at least one season (m={m}) of history, got {y.size} values.")
    last = y[-m:].copy()
    for k in range(1, y.size // m):
        hole = np.isnan(last)
        if not hole.any():
            break
        last[hole] = y[-(k + 1) * m : -k * m][hole]
    reps = -(-horizon // m)
    return np.tile(last, reps)[:horizon]


def ets_forecast(history: np.ndarray, horizon: int, m: int) -> np.ndarray:
    """Holt-Winters exponential smoothing (additive trend, additive season of period ``m``), fitted by statsmodels.

    Missing values in ``history`` are interpolated for this baseline only. Falls back to a trend-only model when the
    history holds fewer than two seasons.
    """
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    y = np.asarray(history, dtype=float)
    if np.isnan(y).any():
        idx = np.arange(y.size)
        ok = ~np.isnan(y)
        y = np.interp(idx, idx[ok], y[ok])
    seasonal = "add" if m > 1 and y.size >= 2 * m else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter; the forecast is judged by its errors
        model = ExponentialSmoothing(
            y, trend="add", seasonal=seasonal, seasonal_periods=m if seasonal else None,
            initialization_method="estimated",
        )  # fmt: skip
        fit = model.fit()
    return np.asarray(fit.forecast(horizon), dtype=float)
