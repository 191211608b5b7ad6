"""Rolling-origin evaluation of a forecasting config: refit before each origin, score the LSTM and the baselines on
the same splits."""

from __future__ import annotations

from typing import Any

from .baselines import ets_forecast, seasonal_naive
from .forecast_config import ForecastConfig
from .forecasting import Forecaster
from .metrics import nan_mean, summarize
from .seasonality import resolve_season
from .series import as_table, check_season, future_rows, prepare_series, slice_table

__all__ = ["backtest"]


def backtest(
    data: Any,
    config: ForecastConfig,
    *,
    folds: int = 1,
    stride: int | None = None,
    baselines: bool = True,
    keep_forecasts: bool = False,
) -> dict[str, Any]:
    """Rolling-origin evaluation: for each origin, fit on everything before it, forecast ``horizon`` steps, score.

    Origins are ``T - horizon - k * stride`` for ``k = folds - 1 .. 0`` (``stride`` defaults to the horizon), so the
    last fold holds out the last ``horizon`` steps. Seasonal-naive and ETS (statsmodels) are scored on the same splits
    in the same call. Series are scored one by one and the measures averaged over series and folds.

    Returns:
        ``{"folds": [{"origin", "model": {...}, "seasonal_naive": {...}, "ets": {...}}, ...], "mean": {...}}`` with
        MAE, RMSE, MASE, sMAPE (and the LSTM's interval coverage) per entry; with ``keep_forecasts`` each fold also
        holds ``"forecast"``, the LSTM's forecast table (as :meth:`Forecaster.predict` returns it).
        ``"season"``: the season scored with (MASE's scale, seasonal-naive; inferred from the timestamps when the
        config gives none) and what the timestamps imply (:func:`lstmkit.tasks.timeseries.seasonality.resolve_season`).

    Raises:
        ValueError: if the first origin leaves too little history to train on.
    """
    if folds < 1:
        raise ValueError(f"folds must be at least 1, got {folds}.")
    stride = stride or config.horizon
    table = as_table(data)
    series = prepare_series(table, config)
    shortest = min(len(s.y) for s in series)
    if config.horizon >= shortest:
        raise ValueError(
            f"The horizon ({config.horizon} steps) must be shorter than the history; the shortest series has "
            f"{shortest} points."
        )
    reserve = config.horizon + (folds - 1) * stride + 1  # every fold's history holds two seasons and a point
    config, season = resolve_season(config, table, series, reserve=reserve)
    check_season(config.season, shortest, config.horizon)
    first_origin = shortest - config.horizon - (folds - 1) * stride
    if first_origin <= 2 * config.season:
        raise ValueError(
            f"{folds} folds of {config.horizon} steps (stride {stride}) leave {first_origin} points before the first "
            f"origin, and a season of {config.season} needs more than {2 * config.season}; use fewer folds (--folds) "
            "or a shorter horizon."
        )
    lo, hi = (min(config.quantiles), max(config.quantiles))
    results = []
    for k in reversed(range(folds)):
        cut = shortest - config.horizon - k * stride  # per series, from its own end (aligned ends assumed)
        parts = []
        for s in series:
            n_cut = len(s.y) - (shortest - cut)
            parts.append((s, n_cut))
        history = slice_table(table, config, {s.key: s.time[n] for s, n in parts})
        future = future_rows(table, config, {s.key: s.time[n] for s, n in parts}) if config.future_covariates else None
        model = Forecaster(config).fit(history)
        pred = model.predict(history, future=future)
        entry: dict[str, Any] = {"origin": str(parts[0][0].time[parts[0][1]])}
        if keep_forecasts:
            entry["forecast"] = pred
        scores: dict[str, list[dict[str, float]]] = {"model": [], "seasonal_naive": [], "ets": []}
        for s, n in parts:
            actual, insample = s.y[n : n + config.horizon], s.y[:n]
            rows = pred[pred[config.id] == s.key] if config.id else pred
            scores["model"].append(summarize(
                actual, rows[f"q{0.5:g}"].to_numpy(), insample, config.season,
                rows[f"q{lo:g}"].to_numpy(), rows[f"q{hi:g}"].to_numpy(),
            ))  # fmt: skip
            if baselines:
                h, m = config.horizon, config.season
                scores["seasonal_naive"].append(summarize(actual, seasonal_naive(insample, h, m), insample, m))
                scores["ets"].append(summarize(actual, ets_forecast(insample, h, m), insample, m))
        for name, per_series in scores.items():
            if per_series:
                entry[name] = {m: nan_mean([d[m] for d in per_series]) for m in per_series[0]}
            else:
                entry[name] = {}
        results.append(entry)
    mean = {
        name: {m: nan_mean([f[name][m] for f in results]) for m in results[0][name]}
        for name in ("model", "seasonal_naive", "ets") if results[0][name]
    }  # fmt: skip
    return {"folds": results, "mean": mean, "season": season}
