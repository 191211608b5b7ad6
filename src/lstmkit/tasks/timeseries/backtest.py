"""Rolling-origin evaluation: refit before each origin, score the LSTM and the baselines on the same splits.

:func:`rolling_folds` cuts the splits, :func:`score_baselines` and :func:`score_forecasts` score what is forecast from
them (the selection of :mod:`lstmkit.tasks.timeseries.forecast_select` uses the three), and :func:`backtest` is the
whole evaluation (``lstmkit forecast backtest``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .baselines import baseline_forecasts
from .forecast_config import ForecastConfig
from .forecasting import Forecaster
from .metrics import nan_mean, summarize
from .seasonality import resolve_season
from .series import Series, as_table, check_season, future_rows, prepare_series, slice_table

__all__ = ["Fold", "backtest", "check_folds", "rolling_folds", "score_baselines", "score_forecasts", "season_periods"]


@dataclass(frozen=True)
class Fold:
    """One origin: the table before it (``history``), the future covariates from it on (``future``, None without
    them), and per series the number of points before it (``cuts``, in the order of ``series``)."""

    origin: str
    history: Any
    future: Any
    cuts: tuple[int, ...]


def rolling_folds(table: Any, config: ForecastConfig, series: list[Series], folds: int, stride: int) -> list[Fold]:
    """The origins ``T - horizon - k * stride`` for ``k = folds - 1 .. 0``, each series counted from its own end (the
    last fold holds out the last horizon). ``config.season`` must be set."""
    assert config.season is not None
    shortest = min(len(s.y) for s in series)
    out = []
    for k in reversed(range(folds)):
        cut = shortest - config.horizon - k * stride
        cuts = tuple(len(s.y) - (shortest - cut) for s in series)
        origins = {s.key: s.time[n] for s, n in zip(series, cuts, strict=True)}
        future = future_rows(table, config, origins) if config.future_covariates else None
        out.append(Fold(str(series[0].time[cuts[0]]), slice_table(table, config, origins), future, cuts))
    return out


def _mean_scores(per_series: list[dict[str, float]]) -> dict[str, float]:
    return {m: nan_mean([d[m] for d in per_series]) for m in per_series[0]} if per_series else {}


def score_baselines(
    series: list[Series], folds: Sequence[Fold], horizon: int, periods: Sequence[int]
) -> list[dict[str, dict[str, float]]]:
    """Per fold, ``{baseline: mean measures over the series}`` for every baseline of
    :func:`lstmkit.tasks.timeseries.baselines.baseline_forecasts`; MASE scaled by the main period ``periods[0]``."""
    m = periods[0]
    out = []
    for fold in folds:
        scores: dict[str, list[dict[str, float]]] = {}
        for s, n in zip(series, fold.cuts, strict=True):
            actual, insample = s.y[n : n + horizon], s.y[:n]
            for name, forecast in baseline_forecasts(insample, horizon, periods).items():
                scores.setdefault(name, []).append(summarize(actual, forecast, insample, m))
        out.append({name: _mean_scores(v) for name, v in scores.items()})
    return out


def score_forecasts(
    series: list[Series], fold: Fold, config: ForecastConfig, pred: Any
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """The mean measures over the series of the forecast table ``pred`` (as :meth:`Forecaster.predict` returns) on
    ``fold``, and each series' median forecast ``{key: (horizon,)}``."""
    assert config.season is not None
    lo, hi = min(config.quantiles), max(config.quantiles)
    per_series, medians = [], {}
    for s, n in zip(series, fold.cuts, strict=True):
        rows = pred[pred[config.id] == s.key] if config.id else pred
        medians[s.key] = rows["q0.5"].to_numpy()
        per_series.append(summarize(
            s.y[n : n + config.horizon], medians[s.key], s.y[:n], config.season,
            rows[f"q{lo:g}"].to_numpy(), rows[f"q{hi:g}"].to_numpy(),
        ))  # fmt: skip
    return _mean_scores(per_series), medians


def check_folds(config: ForecastConfig, shortest: int, folds: int, stride: int) -> None:
    """Every fold's history holds more than two seasons.

    Raises:
        ValueError: naming the folds, the stride and what the first origin leaves.
    """
    assert config.season is not None
    check_season(config.season, shortest, config.horizon)
    first_origin = shortest - config.horizon - (folds - 1) * stride
    if first_origin <= 2 * config.season:
        raise ValueError(
            f"{folds} folds of {config.horizon} steps (stride {stride}) leave {first_origin} points before the first "
            f"origin, and a season of {config.season} needs more than {2 * config.season}; use fewer folds (--folds) "
            "or a shorter horizon."
        )


def backtest(
    data: Any,
    config: ForecastConfig,
    *,
    folds: int = 1,
    stride: int | None = None,
    baselines: bool = True,
    keep_forecasts: bool = False,
    fit: Callable[[ForecastConfig, Any], Forecaster] | None = None,
) -> dict[str, Any]:
    """Rolling-origin evaluation: for each origin, fit on everything before it, forecast ``horizon`` steps, score.

    Origins are ``T - horizon - k * stride`` for ``k = folds - 1 .. 0`` (``stride`` defaults to the horizon), so the
    last fold holds out the last ``horizon`` steps. The baselines (seasonal-naive, and statsforecast's AutoETS,
    AutoTheta, and MSTL where the timestamps imply several seasonalities) are scored on the same splits in the same
    call. Series are scored one by one and the measures averaged over series and folds.

    Args:
        fit: how to fit a forecaster to a fold's history (default ``Forecaster(config).fit(history)``).

    Returns:
        ``{"folds": [{"origin", "model": {...}, "seasonal_naive": {...}, "auto_ets": {...}, ...}, ...], "mean":
        {...}}`` with MAE, RMSE, MASE, sMAPE (and the LSTM's interval coverage) per entry; with ``keep_forecasts``
        each fold also holds ``"forecast"``, the LSTM's forecast table (as :meth:`Forecaster.predict` returns it).
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
    check_folds(config, shortest, folds, stride)
    splits = rolling_folds(table, config, series, folds, stride)
    periods = season_periods(config, season)
    base = score_baselines(series, splits, config.horizon, periods) if baselines else [{} for _ in splits]
    fit = fit or (lambda cfg, history: Forecaster(cfg).fit(history))
    results = []
    for fold, fold_baselines in zip(splits, base, strict=True):
        model = fit(config, fold.history)
        pred = model.predict(fold.history, future=fold.future)
        entry: dict[str, Any] = {"origin": fold.origin, "model": score_forecasts(series, fold, config, pred)[0]}
        if keep_forecasts:
            entry["forecast"] = pred
        entry.update(fold_baselines)
        results.append(entry)
    names = [k for k in results[0] if k not in ("origin", "forecast")]
    mean = {name: {m: nan_mean([f[name][m] for f in results]) for m in results[0][name]} for name in names}
    return {"folds": results, "mean": mean, "season": season}


def season_periods(config: ForecastConfig, season: dict[str, Any]) -> list[int]:
    """The seasonalities a baseline models: the season in use first, then the other periods the timestamps imply."""
    assert config.season is not None
    return [config.season, *[p for p in season.get("periods", []) if p not in (1, config.season)]]
