"""The baselines every LSTM forecast is compared with, on the same splits.

Seasonal-naive (repeat the last season) is written here: it is the scale of MASE and the residual the direct network
can forecast. The statistical models come from statsforecast (Nixtla), fitted per series on NumPy arrays: AutoETS and
AutoTheta with the main season, and MSTL (each seasonality by STL, the trend by AutoETS) when the timestamps imply
several seasonalities (half-hourly: 48 and 336). NaN marks a missing value; the statistical models see it
interpolated.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

__all__ = ["STATISTICAL", "baseline_forecasts", "combination_members", "seasonal_naive", "statistical_forecast"]

# what each name fits (statsforecast's model), for the tables that report them
STATISTICAL = {
    "auto_ets": "AutoETS: exponential smoothing, error/trend/season chosen by AICc (seasonal up to a season of 24)",
    "auto_theta": "AutoTheta: the Theta method, its variant and decomposition chosen by in-sample fit",
    "mstl": "MSTL: several seasonalities removed by STL, the rest forecast by AutoETS (needs two seasonalities)",
}


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


def _filled(history: np.ndarray) -> np.ndarray:
    y = np.asarray(history, dtype=float)
    ok = ~np.isnan(y)
    if not ok.any():
        raise ValueError("Every value of the history is missing; no baseline can be fitted to it.")
    if ok.all():
        return y
    idx = np.arange(y.size)
    return np.interp(idx, idx[ok], y[ok])


def statistical_forecast(name: str, history: np.ndarray, horizon: int, periods: Sequence[int]) -> np.ndarray:
    """The ``horizon``-step point forecast of statsforecast's model ``name`` (a key of :data:`STATISTICAL`) fitted
    to ``history``; ``periods`` are the seasonalities, the main one first (``[1]`` for none).

    A season the history cannot estimate (fewer than two full cycles) is dropped, as the models themselves require.

    Raises:
        ImportError: statsforecast is not installed (it comes with ``pip install 'lstmkit[timeseries]'``).
        ValueError: an unknown name, or MSTL without two usable seasonalities.
    """
    try:
        from statsforecast import models as sf
    except ImportError as e:  # pragma: no cover - the timeseries extra installs it
        raise ImportError(
            "The statistical baselines come from statsforecast: pip install 'lstmkit[timeseries]'."
        ) from e
    y = _filled(history)
    usable = _usable(periods, y.size)
    main = usable[0] if usable else 1
    if name == "auto_ets":
        model = sf.AutoETS(season_length=main)
    elif name == "auto_theta":
        model = sf.AutoTheta(season_length=main)
    elif name == "mstl":
        if len(usable) < 2:
            raise ValueError(f"MSTL is for several seasonalities; the usable periods here are {usable}.")
        model = sf.MSTL(season_length=usable, trend_forecaster=sf.AutoETS(model="ZZN"))
    else:
        raise ValueError(f"Unknown statistical baseline {name!r}; known: {sorted(STATISTICAL)}.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter; the forecast is judged by its errors
        return np.asarray(model.forecast(y=y, h=horizon)["mean"], dtype=float)


def _usable(periods: Sequence[int], n: int) -> list[int]:
    """The seasonal periods a history of ``n`` points can estimate: two full cycles of each."""
    return [m for m in periods if m > 1 and n >= 2 * m]


def combination_members(n: int, periods: Sequence[int]) -> tuple[str, str]:
    """The statistical forecasts a combined forecaster averages with its network (``combine="statistical"``):
    MSTL and AutoTheta where the history of ``n`` points holds two seasonalities (AutoETS models one season of at
    most 24), else AutoETS and AutoTheta."""
    return ("mstl", "auto_theta") if len(_usable(periods, n)) >= 2 else ("auto_ets", "auto_theta")


def baseline_forecasts(history: np.ndarray, horizon: int, periods: Sequence[int]) -> dict[str, np.ndarray]:
    """The baselines of ``periods``, the same names for every history (so that series of different lengths share one
    table): seasonal-naive with the main period (and ``seasonal_naive_{p}`` with each longer period p: the same week
    last week, for half-hourly data), AutoETS, AutoTheta, and MSTL when there are two or more periods.
    ``{name: (horizon,) forecast}``; NaN where the history cannot carry one (a period longer than it, MSTL without two
    seasonalities twice over, a model that refuses a handful of points)."""
    main = periods[0] if periods else 1
    out = {"seasonal_naive": seasonal_naive(history, horizon, main)}
    for p in periods:
        if p > main:  # NaN where the history is shorter than the period
            out[f"seasonal_naive_{p}"] = (
                seasonal_naive(history, horizon, p) if np.size(history) >= p else np.full(horizon, np.nan)
            )
    names = ["auto_ets", "auto_theta"]
    if len([m for m in periods if m > 1]) >= 2:
        names.append("mstl")  # NaN where the history holds fewer than two seasonalities twice
    for name in names:
        try:
            out[name] = statistical_forecast(name, history, horizon, periods)
        except (ValueError, NotImplementedError, ArithmeticError, np.linalg.LinAlgError):
            out[name] = np.full(horizon, np.nan)  # too short for it ("tiny datasets"): no score, not a failure
    return out
